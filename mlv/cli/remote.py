"""`mlv remote add | modify | list | remove | default`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mlv.cli import output
from mlv.cli.common import json_option
from mlv.core import remotes
from mlv.errors import MlvError

F = TypeVar("F", bound=Callable[..., Any])


def level_options(f: F) -> F:
    f = click.option(
        "--global", "level", flag_value="global", help="The user's config (all repositories)."
    )(f)
    f = click.option(
        "--local",
        "level",
        flag_value="local",
        help=".mlv/config.local.yaml: this machine only, not committed (for secrets).",
    )(f)
    return f


@click.group("remote")
def remote_group() -> None:
    """Manage remote storage: a folder, s3://, gs://, az://, ssh://, or any fsspec URL.

    Options of a remote (endpoint_url, region, profile, anon, key, ...) are passed to the
    storage backend. Secrets never go to the committed .mlv/config.yaml: use --local, the
    global config or the backend's usual environment variables (AWS_*, ssh agent).
    """


@remote_group.command("add")
@click.argument("name")
@click.argument("url")
@click.option("-d", "--default", "default", is_flag=True, help="Also make it the default remote.")
@click.option("-f", "--force", is_flag=True, help="Replace a remote of the same name.")
@level_options
def add_cmd(name: str, url: str, default: bool, force: bool, level: str | None) -> None:
    """Add remote NAME at URL (a folder path, or s3://bucket/prefix, ssh://host/path ...)."""
    remotes.add(name, url, default, level or "repo", force)
    output.info(f"Remote '{name}' added{' (default)' if default else ''}.")


@remote_group.command("modify")
@click.argument("name")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--unset", is_flag=True, help="Remove the option.")
@level_options
def modify_cmd(name: str, key: str, value: str | None, unset: bool, level: str | None) -> None:
    """Set option KEY of remote NAME to VALUE (e.g. endpoint_url, region, profile).

    Secrets (secret, password, token, ...) are refused without --local or --global.
    """
    if unset == (value is not None):
        raise click.UsageError("give a VALUE, or --unset (not both)")
    remotes.modify(name, key, None if unset else value, level or "repo")


@remote_group.command("list")
@json_option
def list_cmd(as_json: bool) -> None:
    """List remotes (credentials in URLs and secret options are masked)."""
    found = remotes.listing()
    if as_json:
        output.emit_json(
            [
                {"name": r.name, "url": r.url, "default": r.default, "options": r.options}
                for r in found
            ]
        )
        return
    for r in found:
        mark = "  (default)" if r.default else ""
        output.info(f"{r.name}\t{r.url}{mark}")


@remote_group.command("remove")
@click.argument("name")
@level_options
def remove_cmd(name: str, level: str | None) -> None:
    """Remove remote NAME (its data on the remote is left alone)."""
    remotes.remove(name, level or "repo")


@remote_group.command("default")
@click.argument("name", required=False)
@click.option("--unset", is_flag=True, help="Remove the default.")
@level_options
def default_cmd(name: str | None, unset: bool, level: str | None) -> None:
    """Print the default remote, or make NAME the default."""
    if unset:
        remotes.set_default(None, level or "repo")
        return
    if name is None:
        current = remotes.default_name()
        if current is None:
            raise MlvError("no default remote is set", "set one with `mlv remote default NAME`")
        output.info(current)
        return
    remotes.set_default(name, level or "repo")
