from __future__ import annotations

import click

from mlv.cli import output
from mlv.cli.add import _as_dict
from mlv.cli.common import json_option, open_repo, wait_for_lock_option
from mlv.core import add as add_mod


@click.command("commit")
@click.argument("paths", nargs=-1, type=click.Path())
@json_option
@wait_for_lock_option
def commit_cmd(paths: tuple[str, ...], as_json: bool, wait_for_lock: bool) -> None:
    """Record workspace changes of tracked paths (all when none are named) into their
    pointers."""
    repo = open_repo(wait_for_lock)
    try:
        with output.TerminalProgress() as progress:
            results = add_mod.commit(repo, list(paths), progress)
    finally:
        repo.close()
    if as_json:
        output.emit_json([_as_dict(r) for r in results])
        return
    changed = [r for r in results if r.changed]
    for r in changed:
        output.info(f"Recorded {r.path} -> {r.pointer}")
    if not changed:
        output.info("Nothing changed.")
