from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from mlv.cli import output, status_report
from mlv.cli.common import json_option, remote_option
from mlv.core.repo import Repo

if TYPE_CHECKING:
    from mlv.core.transfer import RemoteStatus


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
    code = status_report.run_local(paths, check, as_json)
    if code:
        sys.exit(code)


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
