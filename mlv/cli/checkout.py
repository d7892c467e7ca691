"""The click command `mlv checkout`: its options and help. What it does and prints is
mlv.cli.checkout_report's, which mlv.cli.main also runs without click for a plain checkout."""

from __future__ import annotations

import sys

import click

from mlv.cli.checkout_report import render_results, run
from mlv.cli.common import json_option, wait_for_lock_option

__all__ = ["checkout_cmd", "render_results"]


@click.command("checkout")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--force",
    "-f",
    is_flag=True,
    help="Also overwrite or delete workspace content that is not in the cache.",
)
@click.option("--relink", is_flag=True, help="Re-create every file with the configured link type.")
@json_option
@wait_for_lock_option
def checkout_cmd(
    paths: tuple[str, ...], force: bool, relink: bool, as_json: bool, wait_for_lock: bool
) -> None:
    """Make the workspace match the pointers (all, or PATHS; a subdirectory of a tracked
    directory works too).

    Restores what is missing and replaces what differs when the workspace version is safe
    in the cache. Content the cache does not have (edits never added) is listed and left
    alone, with exit 1, unless --force.
    """
    code = run(paths, force, relink, as_json, wait_for_lock)
    if code:
        sys.exit(code)
