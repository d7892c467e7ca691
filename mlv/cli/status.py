from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from mlv.cli import output
from mlv.cli.common import json_option, remote_option
from mlv.core import status as status_mod
from mlv.core.repo import Repo

if TYPE_CHECKING:
    from mlv.core.transfer import RemoteStatus

SHOW_FILES = 20
_LABEL = {
    status_mod.CLEAN: "clean",
    status_mod.MODIFIED: "modified",
    status_mod.MISSING: "missing",
    status_mod.NOT_IN_CACHE: "not in cache",
    status_mod.ERROR: "error",
}


@click.command("status")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--check", is_flag=True, help="Exit 1 when anything is not clean.")
@remote_option("Instead: what the remote NAME lacks (not pushed); NAME defaults to core.remote.")
@json_option
def status_cmd(paths: tuple[str, ...], check: bool, remote: str | None, as_json: bool) -> None:
    """Compare tracked data with its pointers.

    For each pointer: clean; modified (for directories, which files were added, modified
    or deleted); missing from the workspace; or not in the cache. Takes no lock.

    With --remote NAME: for each pointer, whether the remote holds everything it needs,
    as push sees it: a folder's tree found on the remote is taken to stand for all it
    names (one check per pointer). `mlv verify --remote NAME` asks for every object.
    """
    if remote is not None:
        _remote_status(list(paths), remote or None, check, as_json)
        return
    repo = Repo.open()
    try:
        results = status_mod.status(repo, list(paths))
    finally:
        repo.close()
    all_clean = all(r.clean for r in results)
    for r in results:
        for warning in r.warnings:
            output.warn(warning)
    if as_json:
        output.emit_json({"clean": all_clean, "targets": [_as_dict(r) for r in results]})
    else:
        _render(results)
    if any(r.status == status_mod.ERROR for r in results) or (check and not all_clean):
        sys.exit(1)


def _render(results: list[status_mod.TargetStatus]) -> None:
    if not results:
        output.info("No tracked data (add some with `mlv add PATH`).")
        return
    for r in results:
        label = _LABEL[r.status]
        extra = ""
        compared = r.in_cache or r.added or r.modified or r.deleted
        if r.status == status_mod.MODIFIED and r.kind == "dir" and compared:
            # (without the recorded tree nothing was compared: not "0 added, 0 modified")
            extra = (
                f"  ({len(r.added)} added, {len(r.modified)} modified, {len(r.deleted)} deleted)"
            )
        elif r.status == status_mod.MISSING:
            extra = "  (run `mlv checkout`)" if r.in_cache else "  (not in the cache either)"
        elif r.status == status_mod.NOT_IN_CACHE:
            extra = "  (workspace is clean; the cache lacks objects: `mlv commit` stores them)"
        elif r.status == status_mod.ERROR:
            extra = f"  ({r.error or 'cannot compare'})"
            output.error(
                r.error or f"{output.repo_path(r.path)}: cannot compare"
            )  # and on stderr, as errors go
        if r.status == status_mod.MODIFIED and not r.in_cache:
            extra += "  [the recorded version is not in the cache]"
        if r.status == status_mod.MODIFIED and r.recorded_elsewhere:
            # the pointer's version not in the cache (a `git pull` brought it): checkout
            # would fail, pull fetches it first
            match = "mlv checkout" if r.in_cache else "mlv pull"
            extra += (
                f"  [the workspace holds another recorded version: run `{match}` to match"
                " the pointer, or `mlv commit` to record it]"
            )
        output.info(f"{label:<13}{output.repo_path(r.path)}{extra}")
        for kind, files in (("added", r.added), ("modified", r.modified), ("deleted", r.deleted)):
            if r.kind != "dir":
                continue
            for f in files[:SHOW_FILES]:
                output.info(f"    {kind}: {output.repo_path(f)}")
            if len(files) > SHOW_FILES:
                output.info(f"    ... and {len(files) - SHOW_FILES} more {kind} (see --json)")


def _as_dict(r: status_mod.TargetStatus) -> dict[str, object]:
    return {
        "path": r.path,
        "pointer": r.pointer,
        "kind": r.kind,
        "status": r.status,
        "in_cache": r.in_cache,
        "added": r.added,
        "modified": r.modified,
        "deleted": r.deleted,
        "error": r.error,
    }


def _pushed_label(r: RemoteStatus) -> str:
    """What a target's "pushed" rests on, as its text output says: `pushed` when every
    object it needs was found on the remote; `tree present` when a folder's tree found there
    was taken to stand for what it names (push's shortcut, not proof); `indexed` when the
    remote's indexes name every object (their packs unlooked-at)."""
    if r.trusted:
        return "tree present"
    if r.indexed:
        return "indexed"
    return "pushed"


def _remote_status(paths: list[str], remote: str | None, check: bool, as_json: bool) -> None:
    from mlv.core import transfer
    from mlv.core.remotes import folder_problem, resolve_name

    repo = Repo.open()
    try:
        problem = folder_problem(repo, resolve_name(repo, remote))
        name, url, results = transfer.run_status(repo, remote, paths)
    finally:
        repo.close()
    if problem is not None:
        output.warn(
            f"{problem}: nothing is pushed there (`mlv push -r {name}` creates it; for "
            f"another folder: `mlv remote modify --local {name} url PATH`)"
        )
    pushed = all(r.pushed for r in results)
    if as_json:
        output.emit_json(
            {
                "remote": name,
                "url": url,
                "pushed": pushed,
                "targets": [
                    {
                        "path": r.path,
                        "pointer": r.pointer,
                        "pushed": r.pushed,
                        "not_pushed": r.not_pushed,
                        "not_in_cache": r.not_in_cache,
                        "trusted_trees": r.trusted,
                        "indexed_objects": r.indexed,
                    }
                    for r in results
                ],
            }
        )
    else:
        if not results:
            output.info("No tracked data (add some with `mlv add PATH`).")
        for r in results:
            if r.pushed:
                output.info(f"{_pushed_label(r):<13}{output.repo_path(r.path)}")
                continue
            if r.tree_lost:  # its file count is unknown: the list of them is what is lost
                extra = (
                    f"  (its folder's tree is neither on '{name}' nor in the cache: "
                    "`mlv push` from the clone that added it sends it"
                )
            else:
                extra = f"  ({r.not_pushed} object(s) not on '{name}'"
                if r.not_in_cache:
                    extra += f", {r.not_in_cache} not in the cache either"
            output.info(f"{'not pushed':<13}{output.repo_path(r.path)}{extra})")
        if any(r.pushed and r.trusted for r in results):
            output.info(
                f"(tree present: a folder's tree is on '{name}', taken to stand for all it "
                f"names, unchecked; `mlv verify --remote {name}` asks for every object, "
                f"`mlv push --verify -r {name}` re-sends what is missing)"
            )
        if any(r.pushed and r.indexed and not r.trusted for r in results):
            output.info(
                f"(indexed: the indexes of '{name}' name every object, in packs not looked "
                f"at; `mlv verify --remote {name}` checks that the packs are there, "
                f"`mlv push --verify -r {name}` re-sends what is missing)"
            )
    if check and not pushed:
        sys.exit(1)
