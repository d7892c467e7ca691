"""`mlv exp show`: one table of revisions by their params and metrics.

Rows: the workspace, then HEAD's first-parent history, newest first (at most `limit`
commits), or with all_commits every commit of every branch and tag (not the stash).
Columns: every metric and param key any row has, metrics before params, and within that
the columns whose values differ between rows before those that are the same everywhere
(each group in the order the keys first appear, workspace first). Rows without a key do
not make its column changed: a commit from before the pipeline existed does not push
every column forward. A column is named by its key, or `FILE:KEY` where the key alone
would name two columns.

sort_by names a column (KEY or FILE:KEY); rows are sorted by it, ascending unless
descending; numbers before other values (NaN among those), rows without the value last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlv.core.pipeline import revs
from mlv.core.pipeline.revs import Rev, Snapshot, is_nan, is_number
from mlv.core.pipeline.vouched import repo_objects
from mlv.core.repo import Repo
from mlv.errors import UsageError

DEFAULT_LIMIT = 10
METRIC, PARAM = "metric", "param"


@dataclass(frozen=True)
class Column:
    kind: str  # "metric" | "param"
    file: str
    key: str
    name: str  # key, or FILE:KEY when the key is not unique among all columns
    changed: bool  # values differ between rows

    @property
    def full_name(self) -> str:
        return f"{self.file}:{self.key}"


@dataclass(frozen=True)
class Row:
    rev: Rev
    snapshot: Snapshot

    def value(self, column: Column) -> Any:
        """The row's value in column, or None."""
        table = self.snapshot.metrics if column.kind == METRIC else self.snapshot.params
        return table.get(column.file, {}).get(column.key)

    def has(self, column: Column) -> bool:
        table = self.snapshot.metrics if column.kind == METRIC else self.snapshot.params
        return column.key in table.get(column.file, {})


@dataclass
class Table:
    columns: list[Column] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


def show(
    repo: Repo,
    limit: int | None = DEFAULT_LIMIT,
    all_commits: bool = False,
    sort_by: str | None = None,
    descending: bool = False,
) -> Table:
    commits = revs.history(repo.root, limit, all_commits) if repo.scm else []
    rev_list = [revs.workspace_rev(), *commits]
    snaps = revs.read(repo.root, [r.commit for r in rev_list], repo_objects(repo))
    rows = [Row(r, s) for r, s in zip(rev_list, snaps, strict=True)]
    table = Table(_columns(rows), rows)
    if sort_by is not None:
        column = find_column(table.columns, sort_by)
        table.rows = sort_rows(rows, column, descending)
    return table


def _columns(rows: list[Row]) -> list[Column]:
    found: list[tuple[str, str, str]] = []
    for kind in (METRIC, PARAM):
        keys: dict[tuple[str, str, str], None] = {}
        for row in rows:
            table = row.snapshot.metrics if kind == METRIC else row.snapshot.params
            for file, values in table.items():
                for key in values:
                    keys[(kind, file, key)] = None
        found += list(keys)
    counts: dict[str, int] = {}
    for _, _, key in found:
        counts[key] = counts.get(key, 0) + 1
    columns = []
    for kind, file, key in found:
        name = key if counts[key] == 1 else f"{file}:{key}"
        probe = Column(kind, file, key, name, False)
        seen = {_token(r.value(probe)) for r in rows if r.has(probe)}
        columns.append(Column(kind, file, key, name, len(seen) > 1))
    changed = [c for c in columns if c.changed]
    return changed + [c for c in columns if not c.changed]


def _token(value: Any) -> str:
    """A hashable stand-in for a value (lists and mappings too; 1 differs from 1.0)."""
    return f"{type(value).__name__}:{value!r}"


def find_column(columns: list[Column], name: str) -> Column:
    """The column KEY or FILE:KEY names; a UsageError when none or several do."""
    exact = [c for c in columns if name in (c.full_name, c.name)]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [c for c in columns if c.key == name]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UsageError(
            f"--sort-by {name} is ambiguous: {', '.join(c.full_name for c in matches)}",
            "name one as FILE:KEY",
        )
    known = ", ".join(c.name for c in columns) or "none"
    raise UsageError(f"--sort-by {name}: no such param or metric", f"columns: {known}")


def sort_rows(rows: list[Row], column: Column, descending: bool) -> list[Row]:
    present = [r for r in rows if r.has(column) and r.value(column) is not None]
    absent = [r for r in rows if not (r.has(column) and r.value(column) is not None)]
    numbers = [r for r in present if _sortable(r.value(column))]
    others = [r for r in present if not _sortable(r.value(column))]
    numbers.sort(key=lambda r: r.value(column), reverse=descending)
    others.sort(key=lambda r: str(r.value(column)), reverse=descending)
    return numbers + others + absent


def _sortable(value: Any) -> bool:
    """A number that orders (NaN does not: it sorts with the other values)."""
    return is_number(value) and not is_nan(value)
