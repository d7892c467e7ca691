from __future__ import annotations

import click

from mlv.cli import output
from mlv.cli.common import json_option, open_repo, wait_for_lock_option
from mlv.core import add as add_mod


@click.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--desc", help="A description stored in the pointer file.")
@json_option
@wait_for_lock_option
def add_cmd(paths: tuple[str, ...], desc: str | None, as_json: bool, wait_for_lock: bool) -> None:
    """Track files or directories.

    Hashes PATHS into the cache, writes PATH.mlv beside each, adds PATH to the .gitignore
    of its folder and stages both in git. Adding a tracked path again records its changes.
    """
    repo = open_repo(wait_for_lock)
    try:
        with output.TerminalProgress() as progress:
            results = add_mod.add(repo, list(paths), progress, desc=desc)
    finally:
        repo.close()
    if as_json:
        output.emit_json([_as_dict(r) for r in results])
        return
    for r in results:
        what = f"{output.plural(r.files, 'file')}, " if r.files is not None else ""
        verb = "Added" if r.changed else "Unchanged"
        size = output.human_size(r.size)
        path, pointer = output.repo_path(r.path), output.repo_path(r.pointer)
        output.info(f"{verb} {path} ({what}{size}) -> {pointer}")
    if any(r.changed for r in results) and repo.scm:
        output.info("Staged the pointers; run `git commit` to record this version.")


def _as_dict(r: add_mod.Tracked) -> dict[str, object]:
    return {
        "path": r.path,
        "pointer": r.pointer,
        "kind": r.kind,
        "hash": r.hash,
        "size": r.size,
        "files": r.files,
        "changed": r.changed,
    }
