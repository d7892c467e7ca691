from __future__ import annotations

import click

from mlv.cli import output
from mlv.core import configure
from mlv.core.repo import Repo


@click.group("cache")
def cache_group() -> None:
    """Manage the local cache."""


@cache_group.command("dir")
@click.argument("path", required=False, type=click.Path())
@click.option("--global", "level", flag_value="global", help="Set it in the user's config.")
@click.option("--local", "level", flag_value="local", help="Set it for this machine only.")
def cache_dir_cmd(path: str | None, level: str | None) -> None:
    """Print the cache folder, or set it to PATH (a shared disk, say).

    Without --global or --local, a folder inside the repository goes into the committed
    .mlv/config.yaml and one outside it into .mlv/config.local.yaml (this machine only):
    a committed config never chooses where mlv writes outside the repository.

    Objects already cached are not moved; copy them over with `cp -a`.
    """
    repo = Repo.open()
    if path is None:
        output.info(repo.cache_dir)
        return
    absolute, written, notes = configure.set_cache_dir(repo, path, level)
    for note in notes:
        output.info(note)
    if level is None and written == "local":
        output.info(
            f"Cache folder set to {absolute} for this machine (.mlv/config.local.yaml): "
            "the committed config may only name a folder inside the repository"
        )
    else:
        output.info(f"Cache folder set to {absolute}")
