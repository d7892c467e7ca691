from __future__ import annotations

import sys

import click

from mlv.cli import output
from mlv.cli.common import json_option, open_repo, wait_for_lock_option
from mlv.core import checkout as checkout_mod

SHOW = 20


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
    repo = open_repo(wait_for_lock)
    try:
        with output.TerminalProgress() as progress:
            results = checkout_mod.checkout(repo, list(paths), force, relink, progress)
    finally:
        repo.close()
    if as_json:
        output.emit_json({"ok": all(r.ok for r in results), "targets": [vars(r) for r in results]})
    else:
        render_results(results)
    if not all(r.ok for r in results):
        sys.exit(1)


def render_results(results: list[checkout_mod.CheckoutResult]) -> None:
    """The summary line first, then the problems: what was left alone is the last thing
    on the screen, not hidden above a 'Restored' line."""
    restored = sum(len(r.restored) for r in results)
    removed = sum(len(r.removed) for r in results)
    if restored or removed:
        output.info(f"Restored {output.plural(restored, 'file')}, removed {removed}.")
    elif all(r.ok for r in results):
        output.info("Workspace already matches the pointers.")
    output.flush()
    for r in results:
        if r.error:
            output.error(r.error)
        _list(
            r.conflicts,
            "not in the cache, left alone (use --force to overwrite, or `mlv commit` to keep it)",
        )
        _list(
            r.missing,
            "missing from the cache (`mlv pull` fetches them from the remote; or re-add the "
            "data where it exists)",
        )
        _list(
            r.corrupt,
            "cache object corrupt, not copied (`mlv pull` fetches a good copy when a remote "
            "has one; or delete the object, then re-add the data)",
            {p: f"  (object {obj})" for p, obj in r.corrupt_objects.items()},
        )
        _list(
            list(r.unreadable),
            "not restored, cache object unreadable (make it readable, e.g. `chmod a+r` on "
            "the object, then run `mlv checkout` again)",
            {p: f"  (object {why})" for p, why in r.unreadable.items()},
        )


def _list(paths: list[str], why: str, detail: dict[str, str] | None = None) -> None:
    if not paths:
        return
    items = [f"{output.repo_path(p)}{(detail or {}).get(p, '')}" for p in paths]
    output.error_list(f"{len(paths)} file(s) {why}:", items, SHOW)
