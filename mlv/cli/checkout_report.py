"""What `mlv checkout` does and prints: the checkout of the pointers (all, or the paths
named), then a summary line and the problems.

Click-free: mlv.cli.main runs a plain `mlv checkout [PATHS] [-f] [--relink] [--json]
[--wait-for-lock]` through run without importing click (~15 ms of CPU, and click's own
imports pull in more: ~30 ms of the start-up of a hard-link checkout whose floor, `cp -al`
of 20,000 files, takes ~0.3 s); the click command (mlv.cli.checkout) calls the same
function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlv.cli import output
from mlv.core.repo import Repo

if TYPE_CHECKING:
    from mlv.core import checkout as checkout_mod

SHOW = 20


def run(
    paths: tuple[str, ...], force: bool, relink: bool, as_json: bool, wait_for_lock: bool
) -> int:
    """Check out paths (all pointers without any) and print the outcome; returns the exit
    code: 1 when anything was left alone or could not be restored. The `git ls-files` that
    listing the pointers and the check of mlv's own files run start first, beside the
    imports of the checkout's modules (as status does; Repo.ask_git_ahead), unless the
    command is to wait for the lock: a listing from before a long wait could miss a pointer
    another mlv writes meanwhile (a pointer removed meanwhile is skipped anyway:
    targets.pointer_files keeps the files still there)."""
    repo = Repo.open(lock_wait=None if wait_for_lock else 3.0)
    try:
        if not wait_for_lock:
            repo.ask_git_ahead()
        from mlv.core import checkout as checkout_mod

        with output.TerminalProgress() as progress:
            results = checkout_mod.checkout(repo, list(paths), force, relink, progress)
    finally:
        repo.close()
    if as_json:
        output.emit_json({"ok": all(r.ok for r in results), "targets": [vars(r) for r in results]})
    else:
        render_results(results)
    return 0 if all(r.ok for r in results) else 1


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
