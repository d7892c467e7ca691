from __future__ import annotations

from collections.abc import Callable

import click

from mlv.cli import output
from mlv.cli.common import json_option
from mlv.core import diff as diff_mod
from mlv.core.diff import DiffResult, FileChange
from mlv.core.repo import Repo


@click.command("diff")
@click.argument("a_rev", metavar="[A]", required=False)
@click.argument("b_rev", metavar="[B]", required=False)
@click.option(
    "--path",
    "paths",
    multiple=True,
    metavar="PATH",
    help="Only changes at or below PATH (repeatable).",
)
@json_option
@click.option("--md", "as_md", is_flag=True, help="Print a Markdown table.")
def diff_cmd(
    a_rev: str | None, b_rev: str | None, paths: tuple[str, ...], as_json: bool, as_md: bool
) -> None:
    """Show tracked files added, deleted, modified or renamed between revisions.

    No revision: HEAD against the workspace. One: A against the workspace. Two: A against
    B. Files inside tracked directories are listed one by one, with sizes and hashes
    (--json, --md). Nothing is checked out; trees missing from the cache come from the
    default remote when there is one.
    """
    repo = Repo.open()
    try:
        rel = [repo.rel(p) for p in paths]
        result = diff_mod.diff(repo, a_rev, b_rev, rel)
    finally:
        repo.close()
    if as_json:
        output.emit_json(as_dict(result))
    elif as_md:
        _markdown(result)
    else:
        _text(result)


def _rows(result: DiffResult) -> list[tuple[str, FileChange]]:
    rows = [("added", c) for c in result.added]
    rows += [("deleted", c) for c in result.deleted]
    rows += [("modified", c) for c in result.modified]
    rows += [("renamed", c) for c in result.renamed]
    return rows


def _size(change: FileChange) -> str:
    old, new = change.old, change.new
    if old is not None and new is not None and old.size != new.size:
        return f"{output.human_size(old.size)} -> {output.human_size(new.size)}"
    entry = new or old
    return output.human_size(entry.size) if entry is not None else ""


def _label(change: FileChange, shown: Callable[[str], str] = output.repo_path) -> str:
    """The change's path (old -> new for a rename): relative to the current folder in text
    output; --md passes output.path, for paths from the root (a comment on a pull request)."""
    if change.old_path:
        return f"{shown(change.old_path)} -> {shown(change.path)}"
    return shown(change.path)


def _text(result: DiffResult) -> None:
    if result.empty:
        output.info("No tracked data changed.")
        return
    for title, changes in (
        ("Added", result.added),
        ("Deleted", result.deleted),
        ("Modified", result.modified),
        ("Renamed", result.renamed),
    ):
        if changes:
            output.info(f"{title}:")
            for c in changes:
                output.info(f"    {_label(c)}  ({_size(c)})")
    for path, why in result.unknown.items():
        output.warn(f"{output.repo_path(path)}: changed, files not listed ({why})")
    output.info(
        f"files summary: {len(result.added)} added, {len(result.deleted)} deleted, "
        f"{len(result.renamed)} renamed, {len(result.modified)} modified"
    )


def _markdown(result: DiffResult) -> None:
    lines = ["| Status | Path | Size | Hash |", "|--------|------|------|------|"]
    for status, c in _rows(result):
        entry = c.new or c.old
        hash_id = entry.hash if entry is not None else ""
        if c.old is not None and c.new is not None and c.old.hash != c.new.hash:
            hash_id = f"{c.old.hash} -> {c.new.hash}"
        lines.append(f"| {status} | {_label(c, output.path)} | {_size(c)} | {hash_id} |")
    for path in result.unknown:
        lines.append(f"| changed (files not listed) | {output.path(path)} |  |  |")
    output.out("\n".join(lines))


def as_dict(result: DiffResult) -> dict[str, object]:
    def one(c: FileChange) -> dict[str, object]:
        entry = c.new or c.old
        assert entry is not None
        return {"path": c.path, "hash": entry.hash, "size": entry.size}

    def both(c: FileChange) -> dict[str, object]:
        assert c.old is not None and c.new is not None
        return {
            "path": c.path,
            "hash": {"old": c.old.hash, "new": c.new.hash},
            "size": {"old": c.old.size, "new": c.new.size},
        }

    def moved(c: FileChange) -> dict[str, object]:
        assert c.new is not None
        return {"path": {"old": c.old_path, "new": c.path}, "hash": c.new.hash, "size": c.new.size}

    return {
        "a": result.a,
        "b": result.b,
        "added": [one(c) for c in result.added],
        "deleted": [one(c) for c in result.deleted],
        "modified": [both(c) for c in result.modified],
        "renamed": [moved(c) for c in result.renamed],
        "unknown": [{"path": p, "reason": why} for p, why in result.unknown.items()],
    }
