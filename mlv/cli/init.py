from __future__ import annotations

import os

import click

from mlv.cli import output
from mlv.core import repo as repo_mod


@click.command("init")
@click.option("--no-scm", is_flag=True, help="Use mlv in a plain folder, without git.")
@click.option("--force", is_flag=True, help="Initialise again even if .mlv/ exists.")
def init_cmd(no_scm: bool, force: bool) -> None:
    """Create .mlv/ (config.yaml, .gitignore) at the git root and stage it."""
    repo = repo_mod.init(os.getcwd(), no_scm=no_scm, force=force)
    output.info(f"Initialised mlv in {repo.mlv_dir}")
    if not no_scm:
        output.info("Staged .mlv/config.yaml and .mlv/.gitignore; commit them with git.")
