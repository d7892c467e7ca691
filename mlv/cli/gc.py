"""`mlv gc`: delete the cache's (or a remote's) objects that no kept revision references."""

from __future__ import annotations

import sys
from typing import Any

import click

from mlv.cli import output
from mlv.cli.common import (
    json_option,
    open_repo,
    remote_option,
    revision_options,
    wait_for_lock_option,
)
from mlv.core import gc as gc_mod
from mlv.core.gc import GcPlan, GcResult, Scope
from mlv.core.selection import Revisions
from mlv.errors import UsageError

SHOW = 20


@click.command("gc")
@click.option(
    "-w",
    "--workspace",
    is_flag=True,
    help="Keep what the workspace references (always kept; the scope when nothing else).",
)
@revision_options(keep=True)
@remote_option("Clean remote NAME instead of the local cache; NAME defaults to core.remote.")
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option(
    "-f",
    "--force",
    is_flag=True,
    help="Remote: delete without asking. Go on when a tree of an older revision is missing.",
)
@json_option
@wait_for_lock_option
def gc_cmd(
    workspace: bool,
    revisions: Revisions,
    remote: str | None,
    dry_run: bool,
    force: bool,
    as_json: bool,
    wait_for_lock: bool,
) -> None:
    """Delete the objects that no kept pointer references.

    Always kept: every pointer file in the workspace (committed or not) and every pointer
    staged in git's index. The scope flags add revisions to keep: -a, -T, -A, --rev. At
    least one scope flag is required; `mlv gc -w` keeps the workspace alone.

    Without -r, cleans the local cache. With -r NAME, cleans that remote only (the cache
    is not touched), after a yes at the terminal or with --force.
    """
    scope = Scope(workspace=workspace, revisions=revisions)

    def confirm(plan: GcPlan) -> bool:
        place = _place(plan.where)
        size = output.human_size(plan.bytes)
        if plan.where == "cache":
            if not as_json:
                output.info(f"Deleting {unreferenced(plan.count)} ({size}) from {place}...")
            return True
        if not as_json:
            output.info(f"{unreferenced(plan.count)} ({size}) on {place}{_pack_plan(plan)}.")
        if force:
            return True
        if output.can_ask():
            if click.confirm(
                f"Delete {output.plural(plan.count, 'object')} ({size}) from {place}?",
                default=False,
                err=True,
            ):
                return True
            raise click.exceptions.Abort()
        raise UsageError(
            f"not deleting {output.plural(plan.count, 'object')} ({size}) from {place} "
            "without confirmation",
            "pass --force (or run at a terminal to be asked)",
        )

    # A prompt may come (remote, no --force): no progress display then, it would hide it.
    asks = remote is not None and not force and not dry_run
    repo = open_repo(wait_for_lock)
    try:
        if asks:
            result = gc_mod.run_gc(repo, scope, remote, dry_run, force, confirm)
        else:
            with output.TerminalProgress() as progress:
                result = gc_mod.run_gc(repo, scope, remote, dry_run, force, confirm, progress)
    finally:
        repo.close()
    for warning in result.warnings:
        output.warn(warning)
    if as_json:
        output.emit_json(_as_dict(result))
    else:
        _render(result)
    if not result.ok:
        sys.exit(1)


def unreferenced(count: int) -> str:
    return f"{count} unreferenced object{'' if count == 1 else 's'}"


def _pack_plan(plan: GcPlan) -> str:
    """What gc does to a packed remote's packs, for the line shown before it asks."""
    p = plan.packed
    if p is None or not (p.dead or p.rewrite or p.orphans):
        return ""
    parts = []
    if p.dead or p.orphans:
        parts.append(f"{output.plural(len(p.dead) + len(p.orphans), 'pack')} to delete")
    if p.rewrite:
        parts.append(
            f"{output.plural(len(p.rewrite), 'pack')} to rewrite "
            f"({output.plural(len(p.copy), 'kept object')} copied)"
        )
    return f" ({', '.join(parts)})"


def _place(where: str) -> str:
    if where == "cache":
        return "the cache"
    return f"remote '{where.removeprefix('remote ')}'"


def _render(r: GcResult) -> None:
    size = output.human_size(r.bytes)
    place = _place(r.where)
    verb = "would be removed" if r.dry_run else "removed"
    packs = ""
    if r.packs.get("deleted") or r.packs.get("written") or r.packs.get("reindexed"):
        would = "would be " if r.dry_run else ""
        packs = (
            f" ({output.plural(r.packs['deleted'], 'pack')} {would}deleted, "
            f"{r.packs['written']} {would}written"
            + (f", {r.packs['reindexed']} indexed again" if r.packs.get("reindexed") else "")
            + ")"
        )
    output.info(
        f"{output.plural(r.removed, 'object')}, {size} {verb} from {place}{packs}; {r.kept} kept."
    )
    if r.indexes:
        n = r.indexes
        output.info(
            f"{n} cached remote index{'' if n == 1 else 'es'} ({output.human_size(r.index_bytes)}) "
            f"unused for {gc_mod.INDEX_EXPIRY // 86400} days {verb}."
        )
    if r.chunk_lists:
        output.info(
            f"{output.plural(r.chunk_lists, 'chunk list')} "
            f"({output.human_size(r.chunk_list_bytes)}) of objects not in the cache {verb}."
        )
    if r.corrupt:
        name = r.where.removeprefix("remote ")
        output.error_list(
            f"{len(r.corrupt)} kept object(s) corrupt on {place}, not copied into the new "
            f"packs (run `mlv push --verify -r {name}` to send good copies):",
            [f"{h}: corrupt in pack {pack}" for h, pack in r.corrupt.items()],
            SHOW,
        )
    if r.failed:
        output.error_list(
            f"{len(r.failed)} object(s) could not be deleted (run gc again to retry):",
            [f"{h}: {reason}" for h, reason in r.failed.items()],
            SHOW,
        )


def _as_dict(r: GcResult) -> dict[str, Any]:
    doc = {
        "where": r.where,
        "dry_run": r.dry_run,
        "removed": r.removed,
        "bytes": r.bytes,
        "kept": r.kept,
        "failed": [{"hash": h, "reason": reason} for h, reason in r.failed.items()],
    }
    if r.corrupt:
        doc["corrupt"] = [{"hash": h, "pack": pack} for h, pack in r.corrupt.items()]
    if r.where != "cache":  # a remote: what happened to its packs
        doc["packs"] = r.packs
    else:  # the local index cache: copies of remote indexes unused for 30 days
        doc["indexes_expired"] = r.indexes
        doc["index_bytes"] = r.index_bytes
        doc["chunk_lists"] = r.chunk_lists
        doc["chunk_list_bytes"] = r.chunk_list_bytes
    return doc
