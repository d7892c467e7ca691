"""`mlv remote add | modify | list | remove | default | repack`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from mlv.cli import output
from mlv.cli.common import json_option, open_repo, wait_for_lock_option
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
    notes = remotes.add(name, url, default, level or "repo", force)
    output.info(f"Remote '{name}' added{' (default)' if default else ''}.")
    _notes(notes)
    absent = remotes.absent_folder(url)
    if absent is not None:  # a typo shows now, not as objects missing at the first pull
        push = "mlv push" if default else f"mlv push -r {name}"
        output.info(f"Its folder {output.path(absent)} does not exist yet: `{push}` creates it.")


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
    _notes(remotes.modify(name, key, None if unset else value, level or "repo"))


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
    _notes(remotes.remove(name, level or "repo"))


@remote_group.command("default")
@click.argument("name", required=False)
@click.option("--unset", is_flag=True, help="Remove the default.")
@level_options
def default_cmd(name: str | None, unset: bool, level: str | None) -> None:
    """Print the default remote, or make NAME the default."""
    if unset:
        _notes(remotes.set_default(None, level or "repo"))
        return
    if name is None:
        current = remotes.default_name()
        if current is None:
            raise MlvError("no default remote is set", "set one with `mlv remote default NAME`")
        output.info(current)
        return
    _notes(remotes.set_default(name, level or "repo"))


def _notes(lines: list[str]) -> None:
    """What a write to the config files tells the user (see configure.path_to_write)."""
    for line in lines:
        output.info(line)


@remote_group.command("repack")
@click.argument("name")
@click.option("--dry-run", is_flag=True, help="Show what would be packed; change nothing.")
@click.option(
    "-j", "--jobs", type=click.IntRange(min=1), help="Transfers at once (default: per backend)."
)
@json_option
@wait_for_lock_option
def repack_cmd(
    name: str, dry_run: bool, jobs: int | None, as_json: bool, wait_for_lock: bool
) -> None:
    """Pack the loose objects of remote NAME below its pack_threshold (a remote written by
    mlv 0.1, or pushed with pack_threshold 0), then delete their loose copies.

    Runs under the remote's exclusive lock, as `mlv gc -r` does. Once no small loose object
    remains, the remote's format marker says so, and mlv 0.1 can no longer read the remote.
    """
    from mlv.core.repack import RepackOptions, run_repack

    repo = open_repo(wait_for_lock)
    try:
        with output.TerminalProgress() as progress:
            r = run_repack(repo, name, RepackOptions(dry_run=dry_run, jobs=jobs), progress)
    finally:
        repo.close()
    for warning in r.warnings:
        output.warn(warning)
    if as_json:
        output.emit_json(
            {
                "remote": r.name,
                "dry_run": r.dry_run,
                "packed": r.packed,
                "bytes": r.bytes,
                "packs": r.packs,
                "deleted": r.deleted,
                "large": r.large,
                "remaining": r.remaining,
                "marker_written": r.marker_written,
                "corrupt": [{"hash": h, "got": got} for h, got in r.corrupt.items()],
                "failed": [{"hash": h, "reason": why} for h, why in r.failed.items()],
            }
        )
    else:
        size = output.human_size(r.bytes)
        if r.dry_run:
            output.info(
                f"Would pack {output.plural(r.packed, 'object')} ({size}) of remote "
                f"'{r.name}' into about {r.packs} pack(s); would delete "
                f"{_copies(r.deleted)}."
            )
        else:
            output.info(
                f"Packed {output.plural(r.packed, 'object')} ({size}) of remote '{r.name}' "
                f"into {r.packs} pack(s); deleted {_copies(r.deleted)}."
            )
        if r.corrupt:
            output.error_list(
                f"{len(r.corrupt)} loose object(s) corrupt on remote '{r.name}', left as they "
                f"are (run `mlv push --verify -r {r.name}` to send good copies):",
                [f"{h}: its bytes hash to {got}" for h, got in r.corrupt.items()],
                20,
            )
        if r.failed:
            output.error_list(
                f"{len(r.failed)} object(s) not packed or not deleted (run repack again):",
                [f"{h}: {why}" for h, why in r.failed.items()],
                20,
            )
    if not r.ok:
        sys.exit(1)


def _copies(n: int) -> str:
    return f"{n} loose cop{'y' if n == 1 else 'ies'}"
