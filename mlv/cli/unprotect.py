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
    edited without touching the cache. Run `mlv commit` to record the edits.

    A symbolic link is replaced only when it leads to a cache object (cache type
    `symlink`); a link of yours to another file is left as it is."""
    repo = open_repo(wait_for_lock)
    try:
        targets.check_named(repo, list(paths))  # a typo is an error, not "0 file(s)"
        done, left = unprotect_mod.unprotect(repo, list(paths))
    finally:
        repo.close()
    output.info(f"Unprotected {len(done)} file(s).")
    if left:
        first = output.repo_path(left[0])
        more = f" and {len(left) - 1} more" if len(left) > 1 else ""
        output.info(
            f"Left {first}{more} as it is: a symbolic link to a file outside the cache "
            "(an edit through it changes that file, never the cache)."
        )
