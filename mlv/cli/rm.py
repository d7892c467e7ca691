from __future__ import annotations

import click

from mlv.cli import output
from mlv.cli.common import open_repo, wait_for_lock_option
from mlv.core import remove as remove_mod


@click.command("rm")
@click.argument("targets", nargs=-1, required=True, type=click.Path())
@click.option("--outs", is_flag=True, help="Delete the data from the workspace too.")
@wait_for_lock_option
def rm_cmd(targets: tuple[str, ...], outs: bool, wait_for_lock: bool) -> None:
    """Stop tracking TARGETS (data paths or their .mlv files).

    Removes the pointer and the .gitignore entry; the data stays as plain writable files
    unless --outs. Cached objects stay in the cache.
    """
    repo = open_repo(wait_for_lock)
    try:
        done = remove_mod.remove(repo, list(targets), outs)
    finally:
        repo.close()
    for r in done:
        tail = " and deleted its data" if r.data_deleted else "; the data is kept"
        path, pointer = output.repo_path(r.path), output.repo_path(r.pointer)
        output.info(f"Stopped tracking {path} (removed {pointer}){tail}.")
