from __future__ import annotations

import sys

import click

from mlv.cli import output
from mlv.core import configure
from mlv.errors import UsageError


@click.command("config")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--global", "level", flag_value="global", help="The user's config file.")
@click.option(
    "--local",
    "level",
    flag_value="local",
    help=".mlv/config.local.yaml (this machine, not committed; for secrets).",
)
@click.option("--unset", is_flag=True, help="Remove KEY.")
def config_cmd(key: str, value: str | None, level: str | None, unset: bool) -> None:
    """Get or set a configuration value.

    KEY is SECTION.OPTION: core.hash (xxh128 | sha256), cache.type (reflink, copy,
    hardlink, symlink, or a comma-separated list tried in order), cache.dir, core.remote,
    remote.NAME.OPTION. Without VALUE, prints the effective value (or the value in the
    chosen file). Writes go to .mlv/config.yaml unless --local or --global.
    """
    if unset:
        if value is not None:
            raise UsageError("--unset takes no VALUE")
        for note in configure.unset(key, level or "repo"):
            output.info(note)
        return
    if value is None:
        current = configure.shown(key, level)  # secrets masked
        if current is None:
            sys.exit(1)
        if isinstance(current, (list, tuple)):
            output.info(",".join(str(v) for v in current))
        elif isinstance(current, bool):
            output.info("true" if current else "false")
        else:
            output.info(str(current))
        return
    for note in configure.set_(key, value, level or "repo"):
        output.info(note)
