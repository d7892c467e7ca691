"""What `mlv status` (without --remote) prints: the comparison of each tracked path with
its pointer, as text or JSON.

Click-free: mlv.cli.main runs a plain `mlv status [--json] [--check]` through run_local
without importing click; the click command (mlv.cli.status) calls the same function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlv.cli import output
from mlv.core.repo import Repo

if TYPE_CHECKING:
    from mlv.core import status as status_mod

SHOW_FILES = 20


def run_local(paths: tuple[str, ...], check: bool, as_json: bool) -> int:
    """Compare the workspace with the pointers (those of paths, else all) and print it;
    returns the exit code: 1 when a target could not be compared, or with check when
    anything is not clean. The git questions status asks start first, and run while the
    comparison's modules are imported (~15 ms: mlv.core.status is imported here, not at
    the top, for that)."""
    repo = Repo.open()
    try:
        repo.ask_git_ahead()
        from mlv.core import status as status_mod

        results = status_mod.status(repo, list(paths))
    finally:
        repo.close()
    all_clean = all(r.clean for r in results)
    for r in results:
        for warning in r.warnings:
            output.warn(warning)
    if as_json:
        output.emit_json({"clean": all_clean, "targets": [_as_dict(r) for r in results]})
    else:
        _render(results)
    if any(r.status == status_mod.ERROR for r in results) or (check and not all_clean):
        return 1
    return 0


def _render(results: list[status_mod.TargetStatus]) -> None:
    from mlv.core import status as status_mod

    labels = {
        status_mod.CLEAN: "clean",
        status_mod.MODIFIED: "modified",
        status_mod.MISSING: "missing",
        status_mod.NOT_IN_CACHE: "not in cache",
        status_mod.ERROR: "error",
    }
    if not results:
        output.info("No tracked data (add some with `mlv add PATH`).")
        return
    for r in results:
        label = labels[r.status]
        extra = ""
        compared = r.in_cache or r.added or r.modified or r.deleted
        if r.status == status_mod.MODIFIED and r.kind == "dir" and compared:
            # (without the recorded tree nothing was compared: not "0 added, 0 modified")
            extra = (
                f"  ({len(r.added)} added, {len(r.modified)} modified, {len(r.deleted)} deleted)"
            )
        elif r.status == status_mod.MISSING:
            extra = "  (run `mlv checkout`)" if r.in_cache else "  (not in the cache either)"
        elif r.status == status_mod.NOT_IN_CACHE:
            extra = "  (workspace is clean; the cache lacks objects: `mlv commit` stores them)"
        elif r.status == status_mod.ERROR:
            extra = f"  ({r.error or 'cannot compare'})"
            output.error(
                r.error or f"{output.repo_path(r.path)}: cannot compare"
            )  # and on stderr, as errors go
        if r.status == status_mod.MODIFIED and not r.in_cache:
            extra += "  [the recorded version is not in the cache]"
        if r.status == status_mod.MODIFIED and r.recorded_elsewhere:
            # the pointer's version not in the cache (a `git pull` brought it): checkout
            # would fail, pull fetches it first
            match = "mlv checkout" if r.in_cache else "mlv pull"
            extra += (
                f"  [the workspace holds another recorded version: run `{match}` to match"
                " the pointer, or `mlv commit` to record it]"
            )
        output.info(f"{label:<13}{output.repo_path(r.path)}{extra}")
        for kind, files in (("added", r.added), ("modified", r.modified), ("deleted", r.deleted)):
            if r.kind != "dir":
                continue
            for f in files[:SHOW_FILES]:
                output.info(f"    {kind}: {output.repo_path(f)}")
            if len(files) > SHOW_FILES:
                output.info(f"    ... and {len(files) - SHOW_FILES} more {kind} (see --json)")


def _as_dict(r: status_mod.TargetStatus) -> dict[str, object]:
    return {
        "path": r.path,
        "pointer": r.pointer,
        "kind": r.kind,
        "status": r.status,
        "in_cache": r.in_cache,
        "added": r.added,
        "modified": r.modified,
        "deleted": r.deleted,
        "error": r.error,
    }
