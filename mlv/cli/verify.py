"""`mlv verify`: prove that tracked data is intact, in the workspace, cache and a remote."""

from __future__ import annotations

import sys
from typing import Any

import click

from mlv.cli import output
from mlv.cli.common import json_option, remote_option, revision_options
from mlv.core import verify as verify_mod
from mlv.core.repo import Repo
from mlv.core.selection import Revisions


@click.command("verify")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--workspace", is_flag=True, help="Check workspace files against their pointers.")
@click.option("--cache", is_flag=True, help="Check the cache holds every object, intact.")
@remote_option("Check remote NAME holds every object needed; NAME defaults to core.remote.")
@revision_options()
@click.option(
    "--changed-since",
    metavar="REV",
    help="Only the workspace pointers that differ from git revision REV.",
)
@click.option("--rehash", is_flag=True, help="Workspace: read every byte (no state database).")
@click.option(
    "--sample",
    type=click.FloatRange(0, 100, min_open=True),
    metavar="PCT",
    help="Remote: also download and re-hash a random PCT% of the bytes.",
)
@click.option("--full", is_flag=True, help="Remote: download and re-hash every object.")
@click.option(
    "--seed", type=click.IntRange(min=0), metavar="N", help="Seed of --sample (default: random)."
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Remote requests at once (default: per backend).",
)
@json_option
def verify_cmd(
    paths: tuple[str, ...],
    workspace: bool,
    cache: bool,
    remote: str | None,
    revisions: Revisions,
    changed_since: str | None,
    rehash: bool,
    sample: float | None,
    full: bool,
    seed: int | None,
    jobs: int | None,
    as_json: bool,
) -> None:
    """Prove that what the pointers say about their data is true.

    --workspace: the files match their pointers (hashes from the state database; --rehash
    reads every byte). --cache: every object the selection needs is in the cache and its
    bytes hash to its name (always read). --remote NAME: every object is on the remote
    (checked one by one); --sample PCT or --full also download and re-hash them. No check
    named: workspace and cache.

    Selects the workspace's pointers (all, or PATHS), plus those of --rev and --all-*
    (cache and remote only). Never changes the workspace, cache or remote. Exit 0 when
    everything checked holds, 1 when something does not, 2 on bad usage.
    """
    options = verify_mod.Options(
        workspace=workspace,
        cache=cache,
        remote=remote,
        rehash=rehash,
        sample=sample,
        full=full,
        seed=seed,
        jobs=jobs,
        changed_since=changed_since,
    )
    repo = Repo.open()
    try:
        with output.TerminalProgress(transfer=True) as progress:
            report = verify_mod.verify(repo, list(paths), revisions, options, progress)
    finally:
        repo.close()
    repair = None
    if any(p.where == verify_mod.REMOTE and p.found == verify_mod.MISSING for p in report.problems):
        from mlv.cli.transfer import repair_command

        named = report.remote.name if report.remote is not None else remote
        repair = repair_command(paths, named, revisions)
    if as_json:
        output.emit_json({**as_dict(report), "repair": repair})
    else:
        render(report)
        if repair is not None:
            output.info(f"Where a cache holds the missing objects, `{repair}` re-sends them.")
    if not report.ok:
        sys.exit(1)


def _n(count: int, what: str) -> str:
    return f"{count:,} {what}{'' if count == 1 else 's'}"


def _state(check: verify_mod.Check) -> str:
    return "ok" if not check.problems else _n(check.problems, "problem")


def render(r: verify_mod.Report) -> None:
    size = output.human_size
    if not r.targets:
        output.info("Nothing to verify: no pointer selected.")
    rows: list[tuple[str, str, str]] = []
    if r.workspace is not None:
        w = r.workspace
        how = "every byte read (--rehash)" if r.rehash else f"{size(w.read_bytes)} read"
        rows.append(
            (
                "workspace",
                _state(w),
                f"{_n(w.objects, 'file')}, {size(w.bytes)}, {how}, in {w.seconds:.2f} s",
            )
        )
    if r.cache is not None:
        c = r.cache
        rows.append(
            (
                "cache",
                _state(c),
                f"{_n(c.objects, 'object')}, {size(c.read_bytes)} read, in {c.seconds:.2f} s",
            )
        )
    if r.remote is not None:
        m = r.remote
        text = f"{_n(m.objects, 'object')} needed, {m.present:,} present"
        if m.mode == verify_mod.FULL:
            text += "; every file downloaded and re-hashed"
        elif m.sample is not None:
            s = m.sample
            text += (
                f"; sample of {s.percent:g}% (seed {s.seed}): {_n(s.objects, 'file')}, "
                f"{size(s.bytes)} of {size(s.of_bytes)} downloaded and re-hashed"
            )
            if s.too_large:
                text += (
                    f" ({_n(s.too_large, 'file')}, {size(s.too_large_bytes)}, larger than "
                    "the sample and not eligible: --full checks them)"
                )
        text += (
            f"; {size(m.read_bytes)} downloaded in all ({_n(m.downloaded_objects, 'object')})"
            f", in {m.seconds:.2f} s"
        )
        rows.append((f"remote '{m.name}'", _state(m), text))
    if r.remote is not None:
        for line in r.remote.warnings:
            output.warn(f"remote '{r.remote.name}': {line}")
    width = max((len(name) for name, _, _ in rows), default=0) + 2
    for name, state, text in rows:
        output.info(f"{name:<{width}}{state:<12}{text}")
    for p in r.problems:
        output.out(problem_line(p, r))
    if r.problems:
        output.info(f"{_n(len(r.problems), 'problem')} found ({r.seconds:.2f} s).")
    else:
        output.info(f"Everything checked holds ({r.seconds:.2f} s).")


def problem_line(p: verify_mod.Problem, r: verify_mod.Report) -> str:
    found = p.found
    if p.got is not None and p.found in (verify_mod.CORRUPT, verify_mod.MODIFIED):
        found += f" (got {p.got})"
    elif p.got is not None and p.found == verify_mod.ADDED:
        found += f" ({p.got})"
    where = p.where
    if p.where == verify_mod.REMOTE and r.remote is not None:
        where = f"remote {r.remote.name}"
    path = output.repo_path(p.path)
    path = path if p.revision is None else f"{path} (at {p.revision[:10]})"
    line = f"{path}  expected {p.hash or '-'}  found: {found}  where: {where}"
    if p.reason:
        line += f"  ({p.reason})"
    return line


def _check_dict(c: verify_mod.Check | None, unit: str) -> dict[str, Any] | None:
    if c is None:
        return None
    return {
        unit: c.objects,
        "bytes": c.bytes,
        "read_bytes": c.read_bytes,
        "seconds": round(c.seconds, 3),
        "problems": c.problems,
    }


def as_dict(r: verify_mod.Report) -> dict[str, Any]:
    workspace = _check_dict(r.workspace, "files")
    if workspace is not None:
        workspace["rehash"] = r.rehash
    remote: dict[str, Any] | None = None
    if r.remote is not None:
        m = r.remote
        remote = {
            "name": m.name,
            "url": m.url,
            "mode": m.mode,
            "objects": m.objects,
            "present": m.present,
            "bytes": m.bytes,
            "sample": None
            if m.sample is None
            else {
                "percent": m.sample.percent,
                "seed": m.sample.seed,
                "objects": m.sample.objects,
                "bytes": m.sample.bytes,
                "of_objects": m.sample.of_objects,
                "of_bytes": m.sample.of_bytes,
                "too_large": {
                    "objects": m.sample.too_large,
                    "bytes": m.sample.too_large_bytes,
                },
            },
            "downloaded": {"objects": m.downloaded_objects, "bytes": m.read_bytes},
            "seconds": round(m.seconds, 3),
            "problems": m.problems,
            "warnings": m.warnings,
        }
    return {
        "ok": r.ok,
        "seconds": round(r.seconds, 3),
        "targets": [
            {"path": t.path, "pointer": t.pointer, "revision": t.revision} for t in r.targets
        ],
        "workspace": workspace,
        "cache": _check_dict(r.cache, "objects"),
        "remote": remote,
        "problems": [
            {
                "path": p.path,
                "revision": p.revision,
                "hash": p.hash,
                "found": p.found,
                "got": p.got,
                "where": p.where,
                "reason": p.reason,
            }
            for p in r.problems
        ],
    }
