"""`mlv push`, `mlv fetch` and `mlv pull`: one set of options, one summary."""

from __future__ import annotations

import functools
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, cast

import click

from mlv.cli import output
from mlv.cli.common import (
    json_option,
    open_repo,
    remote_option,
    revision_options,
    wait_for_lock_option,
)
from mlv.core import transfer as transfer_mod
from mlv.core.repo import Repo
from mlv.core.selection import Revisions
from mlv.core.transfer import RunsSummary, TransferSummary

F = TypeVar("F", bound=Callable[..., Any])
SHOW = 20


def transfer_options(f: F) -> F:
    """The selection options every transfer command takes: PATHS, -r, -j, the revision
    options, --run-cache (handed to the command as one `chosen: Selection`), --json,
    --wait-for-lock."""

    @functools.wraps(f)
    def with_selection(
        paths: tuple[str, ...],
        remote: str | None,
        jobs: int | None,
        revisions: Revisions,
        run_cache: bool,
        **rest: Any,
    ) -> Any:
        chosen = Selection(
            paths=paths, remote=remote or None, jobs=jobs, revisions=revisions, run_cache=run_cache
        )
        return f(chosen=chosen, **rest)

    command: Any = with_selection
    decorators = [
        click.argument("paths", nargs=-1, type=click.Path()),
        remote_option("Remote to use (default, and without NAME: core.remote)."),
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(min=1),
            help="Transfers at once (default: per backend).",
        ),
        revision_options(),
        click.option(
            "--run-cache",
            is_flag=True,
            help="Also the run cache: every entry the other side lacks, with its objects.",
        ),
        json_option,
        wait_for_lock_option,
    ]
    for decorate in reversed(decorators):
        command = decorate(command)
    return cast(F, command)


@dataclass(frozen=True, kw_only=True)
class Selection:
    """What a transfer command was asked to move, as its options said."""

    paths: tuple[str, ...]
    remote: str | None
    jobs: int | None
    revisions: Revisions
    run_cache: bool

    @property
    def repair(self) -> str:
        return repair_command(self.paths, self.remote, self.revisions)


def _move(run: Callable[..., TransferSummary], repo: Repo, chosen: Selection) -> TransferSummary:
    """Run push or fetch with the selection options every transfer command takes."""
    with output.TerminalProgress(transfer=True) as progress:
        summary: TransferSummary = run(
            repo,
            chosen.remote,
            list(chosen.paths),
            chosen.revisions,
            chosen.jobs,
            progress,
            chosen.run_cache,
        )
    return summary


@click.command("push")
@transfer_options
@click.option(
    "--verify",
    is_flag=True,
    help="Ask the remote for every object (no tree taken to stand for its folder) and "
    "re-send what it lacks: repairs a remote that lost objects.",
)
def push_cmd(chosen: Selection, as_json: bool, wait_for_lock: bool, verify: bool) -> None:
    """Upload the objects that the selected pointers need and the remote lacks.

    Selects the workspace's pointers (all, or PATHS), plus those of --rev REV and the
    --all-* revisions. A directory's tree object goes up only after everything it names,
    so a tree on the remote is taken to stand for its whole folder; --verify checks every
    object instead (one listing or existence check each, as `mlv verify --remote`).
    """
    from mlv.core.remotes import missing_folder

    repo = open_repo(wait_for_lock)
    try:
        creates = missing_folder(repo, chosen.remote)
        run = partial(transfer_mod.run_push, verify=verify)
        summary = _move(run, repo, chosen)
    finally:
        repo.close()
    if creates is not None and os.path.isdir(creates) and not as_json:
        # said, so that a mistyped path or a share that is not mounted is noticed
        output.info(f"Created the folder {output.path(creates)} for remote '{summary.remote}'.")
    _finish(summary, as_json)


@click.command("fetch")
@transfer_options
def fetch_cmd(chosen: Selection, as_json: bool, wait_for_lock: bool) -> None:
    """Download into the cache the objects that the selected pointers need.

    Every object is checked against its hash before it enters the cache. The workspace is
    not touched (`mlv pull` also checks out).
    """
    repo = open_repo(wait_for_lock)
    try:
        summary = _move(transfer_mod.run_fetch, repo, chosen)
    finally:
        repo.close()
    _finish(summary, as_json, chosen.repair)


@click.command("pull")
@transfer_options
@click.option(
    "--force", "-f", is_flag=True, help="Checkout may overwrite content not in the cache."
)
def pull_cmd(chosen: Selection, as_json: bool, wait_for_lock: bool, force: bool) -> None:
    """Fetch, then check out: make the workspace match the pointers, from the remote.

    `mlv pull images/cats` fetches and checks out only that subtree of a tracked directory.
    """
    from mlv.cli.checkout import render_results
    from mlv.core import checkout as checkout_mod

    repo = open_repo(wait_for_lock)
    try:
        summary = _move(transfer_mod.run_fetch, repo, chosen)
        with output.TerminalProgress() as progress:
            results = checkout_mod.checkout(repo, list(chosen.paths), force, False, progress)
        # objects the checkout found corrupt in the cache: a good copy from the remote
        # replaces each, then their paths are checked out again
        with output.TerminalProgress(transfer=True) as progress:
            repaired = transfer_mod.repair_checkout(
                repo, chosen.remote, chosen.jobs, results, force, progress
            )
    finally:
        repo.close()
    checked_out = all(r.ok for r in results)
    ok = summary.ok and checked_out and (repaired is None or repaired.ok)
    if as_json:
        doc = _as_dict(summary)
        doc["action"] = "pull"
        if repaired is not None:
            doc["repaired"] = _as_dict(repaired)
        doc["checkout"] = {"ok": checked_out, "targets": [vars(r) for r in results]}
        doc["ok"] = ok
        output.emit_json(doc)
    else:
        _render(summary, chosen.repair)
        if repaired is not None:
            _render_repaired(repaired)
        render_results(results)
    if not ok:
        sys.exit(1)


def _render_repaired(s: TransferSummary) -> None:
    """What `mlv pull` did about objects its checkout found corrupt in the cache."""
    if s.transferred:
        output.info(f"Replaced {s.transferred} corrupt object(s) in the cache from '{s.remote}'.")
    remote = f"'{s.remote}' ({s.url})"
    if s.missing:
        _list(s, s.missing, f"corrupt in the cache and not on remote {remote}")
    if s.corrupt:
        _list(s, s.corrupt, f"corrupt in the cache and on remote {remote}")
    if s.failed:
        _list(s, list(s.failed), "corrupt in the cache, download failed", s.failed)


def repair_command(
    paths: tuple[str, ...] | list[str] = (),
    remote: str | None = None,
    revisions: Revisions | None = None,
) -> str:
    """The `mlv push --verify ...` that re-sends what the remote lacks, for the same
    selection (named in the messages of pull, fetch, verify and `status --remote`)."""
    words = ["mlv", "push", "--verify"]
    if remote is not None:
        words += ["-r", remote]
    r = revisions or Revisions()
    for rev in r.revs:
        words += ["--rev", rev]
    words += [
        flag
        for flag, on in (("-a", r.all_branches), ("-T", r.all_tags), ("-A", r.all_commits))
        if on
    ]
    words += list(paths)
    return " ".join(shlex.quote(w) for w in words)


def _finish(summary: TransferSummary, as_json: bool, repair: str = "") -> None:
    if as_json:
        output.emit_json(_as_dict(summary))
    else:
        _render(summary, repair)
    if not summary.ok:
        sys.exit(1)


def _render(s: TransferSummary, repair: str = "") -> None:
    for line in s.warnings:
        output.warn(f"remote '{s.remote}': {line}")
    verb = {"push": "Pushed", "fetch": "Fetched"}[s.action]
    where = "to" if s.action == "push" else "from"
    there = "on the remote" if s.action == "push" else "in the cache"
    output.info(
        f"{verb} {output.plural(s.transferred, 'object')} ({output.human_size(s.bytes)}) {where} "
        f"'{s.remote}'; {s.skipped} already {there}."
    )
    if s.verified and s.ok:
        output.info(f"Checked every object on '{s.remote}': it holds all the selection needs.")
    remote = f"'{s.remote}' ({s.url})"
    if s.missing:
        if s.action == "push":
            why = "not in the cache, not pushed (`mlv fetch` or re-add them where they exist)"
        else:
            command = repair or "mlv push --verify"
            why = f"not on remote {remote} (where a cache has them, `{command}` re-sends them)"
        _list(s, s.missing, why)
    if s.corrupt:
        if s.action == "push":
            why = (
                "corrupt in the cache, not pushed (delete the object file, then `mlv add` the "
                "data again, or `mlv pull` it from a remote that has it)"
            )
        else:
            command = repair or "mlv push --verify"
            why = (
                f"corrupt on remote {remote}, not used (delete them there, then `{command}` "
                "from a cache that has them intact)"
            )
        objects = {h: f"object file {f}" for h, f in s.objects.items()}
        _list(s, s.corrupt, why, objects)
    if s.failed:
        _list(s, list(s.failed), "failed (see each reason; run again to retry)", s.failed)
    if s.runs is not None:
        _render_runs(s, s.runs)


def _render_runs(s: TransferSummary, runs: RunsSummary) -> None:
    verb = {"push": "Pushed", "fetch": "Fetched"}[s.action]
    there = "on the remote" if s.action == "push" else "in the cache"
    output.info(f"{verb} {_entries(runs.transferred)}; {runs.skipped} already {there}.")
    if runs.incomplete:
        lacking = "the cache" if s.action == "push" else f"remote '{s.remote}'"
        output.warn(
            f"{_entries(len(runs.incomplete))} left out: objects they name are not in "
            f"{lacking} (first: {runs.incomplete[0]})"
        )
    if runs.invalid:
        output.warn(
            f"{_entries(len(runs.invalid))} left out: not entries this mlv reads "
            f"(first: {runs.invalid[0]})"
        )
    if runs.failed:
        output.error_list(
            f"{_entries(len(runs.failed))} failed (run again to retry):",
            [f"{key}: {reason}" for key, reason in runs.failed.items()],
            SHOW,
        )


def _entries(count: int) -> str:
    return f"{count} run-cache {'entry' if count == 1 else 'entries'}"


def _list(
    s: TransferSummary, hashes: list[str], why: str, reasons: dict[str, str] | None = None
) -> None:
    reasons = reasons or {}
    items = [
        f"{h}  {output.repo_path(s.paths[h]) if h in s.paths else '?'}"
        + (f": {reasons[h]}" if h in reasons else "")
        for h in hashes
    ]
    output.error_list(f"{len(hashes)} object(s) {why}:", items, SHOW)


def _as_dict(s: TransferSummary) -> dict[str, Any]:
    return {
        "action": s.action,
        "remote": s.remote,
        "url": s.url,
        "ok": s.ok,
        "transferred": {"objects": s.transferred, "bytes": s.bytes},
        "skipped": {"objects": s.skipped},
        "failed": [{"hash": h, "path": s.paths.get(h), "reason": r} for h, r in s.failed.items()],
        "missing": [{"hash": h, "path": s.paths.get(h)} for h in s.missing],
        "corrupt": [{"hash": h, "path": s.paths.get(h)} for h in s.corrupt],
        **({"verified": True} if s.verified else {}),
        **({"warnings": s.warnings} if s.warnings else {}),
        **({"run_cache": _runs_dict(s.runs)} if s.runs is not None else {}),
    }


def _runs_dict(runs: RunsSummary) -> dict[str, Any]:
    return {
        "transferred": runs.transferred,
        "skipped": runs.skipped,
        "incomplete": runs.incomplete,
        "invalid": runs.invalid,
        "failed": [{"key": k, "reason": r} for k, r in runs.failed.items()],
    }
