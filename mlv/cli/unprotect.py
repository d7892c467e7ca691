from __future__ import annotations

import click

from mlv.cli import output
from mlv.cli.common import open_repo, wait_for_lock_option
from mlv.core import targets
from mlv.core import unprotect as unprotect_mod


@click.command("unprotect")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@wait_for_lock_option
def unprotect_cmd(paths: tuple[str, ...], wait_for_lock: bool) -> None:
    """Replace linked, read-only workspace files with writable copies, so they can be
    edited without touching the cache. Run `mlv commit` to record the edits."""
    repo = open_repo(wait_for_lock)
    try:
        targets.check_named(repo, list(paths))  # a typo is an error, not "0 file(s)"
        done = unprotect_mod.unprotect(repo, list(paths))
    finally:
        repo.close()
    output.info(f"Unprotected {len(done)} file(s).")
