"""`mlv exp show`: revisions by params and metrics, in one table."""

from __future__ import annotations

import csv
import datetime
import io
from typing import Any

import click

from mlv.cli import output
from mlv.cli.common import json_option
from mlv.cli.metrics import cell, emit_json, md_option, one_format, rev_label, warn_errors
from mlv.core.pipeline import experiments
from mlv.core.pipeline.experiments import Column, Row
from mlv.core.repo import Repo


@click.group("exp")
def exp_group() -> None:
    """Compare experiments: commits (and the workspace) by params and metrics."""


@exp_group.command("show")
@click.option(
    "-n",
    "--num",
    "limit",
    type=click.IntRange(min=0),
    help=f"Show at most N commits of HEAD's history.  [default: {experiments.DEFAULT_LIMIT}]",
)
@click.option("-A", "--all-commits", is_flag=True, help="Every commit of every branch and tag.")
@click.option("--sort-by", metavar="KEY", help="Sort rows by a metric or param (KEY, FILE:KEY).")
@click.option(
    "--sort-order",
    type=click.Choice(["asc", "desc"]),
    default="asc",
    show_default=True,
    help="Order for --sort-by.",
)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV.")
@json_option
@md_option
def show_cmd(
    limit: int | None,
    all_commits: bool,
    sort_by: str | None,
    sort_order: str,
    as_csv: bool,
    as_json: bool,
    as_md: bool,
) -> None:
    """Show the workspace and commits, one row each, by params and metrics.

    Rows: the workspace, then HEAD's first-parent history, newest first (-n N commits,
    default 10), or with --all-commits every commit. Columns: metrics, then params; those
    whose values differ between rows come first. --sort-by KEY sorts the rows (ascending,
    or --sort-order desc); rows without the value go last.
    """
    if limit is not None and all_commits:
        raise click.UsageError("-n and --all-commits cannot be combined")
    one_format(csv=as_csv, json=as_json, md=as_md)
    if sort_by is None and sort_order != "asc":
        raise click.UsageError("--sort-order needs --sort-by")
    repo = Repo.open()
    try:
        result = experiments.show(
            repo,
            experiments.DEFAULT_LIMIT if limit is None else limit,
            all_commits,
            sort_by,
            sort_order == "desc",
        )
    finally:
        repo.close()
    if as_json:
        emit_json(
            {
                "columns": [
                    {
                        "name": c.name,
                        "type": c.kind,
                        "file": c.file,
                        "key": c.key,
                        "changed": c.changed,
                    }
                    for c in result.columns
                ],
                "rows": [_row_dict(r) for r in result.rows],
            }
        )
        return
    if as_csv:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["rev", "commit", "time", "subject", *_csv_names(result.columns)])
        for row in result.rows:
            writer.writerow(
                [
                    rev_label(row.rev),
                    row.rev.commit or "",
                    _iso(row.rev.time),
                    row.rev.subject or "",
                    *[_csv_cell(row, c) for c in result.columns],
                ]
            )
        output.out(text.getvalue(), end="")
        return
    for row in result.rows:
        label = "" if row.rev.commit is None else f" at {rev_label(row.rev)}"
        warn_errors(row.snapshot.errors, label)
    headers = ["Rev", "Created", *[_header(c, as_md) for c in result.columns]]
    rows = [
        [
            rev_label(r.rev),
            _when(r.rev.time),
            *[cell(r.value(c)) if r.has(c) else "-" for c in result.columns],
        ]
        for r in result.rows
    ]
    output.table(headers, rows, as_md)


def _header(column: Column, as_md: bool) -> str:
    """A column's name; FILE:KEY (a key that two files hold) names the file as the other
    paths of a text table, relative to the current folder (Markdown: to the root)."""
    if as_md or column.name == column.key:
        return column.name
    return f"{output.repo_path(column.file)}:{column.key}"


def _row_dict(row: Row) -> dict[str, Any]:
    return {
        "rev": row.rev.name,
        "commit": row.rev.commit,
        "time": row.rev.time,
        "author": row.rev.author,
        "subject": row.rev.subject,
        "metrics": row.snapshot.metrics,
        "params": row.snapshot.params,
        "errors": row.snapshot.errors,
    }


def _csv_names(columns: list[Column]) -> list[str]:
    return [c.full_name for c in columns]


def _csv_cell(row: Row, column: Column) -> str:
    if not row.has(column) or row.value(column) is None:
        return ""
    value = row.value(column)
    return cell(value)


def _iso(time: int | None) -> str:
    if time is None:
        return ""
    return datetime.datetime.fromtimestamp(time, datetime.timezone.utc).isoformat()


def _when(time: int | None) -> str:
    if time is None:
        return "-"
    return datetime.datetime.fromtimestamp(time).strftime("%Y-%m-%d %H:%M")
