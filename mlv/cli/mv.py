from __future__ import annotations

import click

from mlv.cli import output
from mlv.cli.common import open_repo, wait_for_lock_option
from mlv.core import move as move_mod


@click.command("mv")
@click.argument("src", type=click.Path())
@click.argument("dst", type=click.Path())
@wait_for_lock_option
def mv_cmd(src: str, dst: str, wait_for_lock: bool) -> None:
    """Move tracked data SRC and its pointer to DST (into DST if it is a folder)."""
    repo = open_repo(wait_for_lock)
    try:
        moved = move_mod.move(repo, src, dst)
    finally:
        repo.close()
    src, dst = output.repo_path(moved.src), output.repo_path(moved.dst)
    output.info(f"Moved {src} -> {dst} (pointer {output.repo_path(moved.pointer)}).")
