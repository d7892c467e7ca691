from __future__ import annotations

import datetime

import click

from mlv.cli import output
from mlv.cli.common import json_option
from mlv.core import history
from mlv.core.repo import Repo


@click.command("log")
@click.argument("path", type=click.Path())
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=1), help="Show at most N.")
@click.option(
    "--rev", default="HEAD", show_default=True, metavar="REV", help="Walk the history of REV."
)
@json_option
def log_cmd(path: str, limit: int | None, rev: str, as_json: bool) -> None:
    """Show the commits that changed a tracked path, newest first.

    PATH may be a tracked file or directory, or a path inside a tracked directory. Each
    commit shows the path's hash, size and file count as that commit left it.
    """
    repo = Repo.open()
    try:
        rel = repo.rel(path)
        if not rel:
            raise click.UsageError("name a tracked path, not the repository root")
        versions = history.history(repo, rel, limit, rev)
    finally:
        repo.close()
    if as_json:
        output.emit_json(
            [
                {
                    "commit": v.commit,
                    "time": v.time,
                    "author": v.author,
                    "subject": v.subject,
                    "status": _status(v),
                    "kind": v.entry.kind if v.entry else None,
                    "hash": v.entry.hash if v.entry else None,
                    "size": v.entry.size if v.entry else None,
                    "files": v.entry.files if v.entry else None,
                    "unknown": v.unknown,
                }
                for v in versions
            ]
        )
        return
    for v in versions:
        when = datetime.datetime.fromtimestamp(v.time).strftime("%Y-%m-%d %H:%M")
        output.out(f"{v.commit[:10]}  {when}  {v.author}  {v.subject}")
        if v.entry is not None:
            files = f", {output.plural(v.entry.files, 'file')}" if v.entry.is_dir else ""
            output.out(f"    {v.entry.hash}  {output.human_size(v.entry.size)}{files}")
        elif v.unknown:
            output.out(f"    (cannot read: {v.unknown})")
        else:
            output.out("    deleted")


def _status(v: history.Version) -> str:
    if v.unknown:
        return "unknown"
    return "deleted" if v.entry is None else "changed"
