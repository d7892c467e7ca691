"""`mlv metrics show`, `mlv metrics diff` and `mlv params diff`.

Values come from revs (as of any revision). A diff pairs the values of two revisions by
file and dotted key: `change` is new - old and `relative` is (new - old) / abs(old), both
only when both values are finite numbers (relative also needs old != 0). Both are rounded
to 12 significant digits, so that 0.92 - 0.9 reads 0.02 and not 0.020000000000000018. NaN
equals NaN here: an unchanged NaN is not a change.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mlv import git
from mlv.core.pipeline import revs, spec
from mlv.core.pipeline.revs import Rev, Snapshot, Values, is_finite, is_nan
from mlv.core.pipeline.spec import Stage
from mlv.core.pipeline.vouched import repo_objects
from mlv.core.repo import Repo
from mlv.errors import MlvError, UsageError, rpath

MISSING: Any = None  # a value absent on one side is reported as null


def ignored_notes(repo: Repo, stages: Sequence[Stage] | None = None) -> list[str]:
    """Warnings for the metrics and params files of stages (default: every stage of the
    workspace's mlv.yaml) that git ignores and does not track: commits leave them out
    (a `/eval` line in .gitignore), so `metrics diff` across commits sees nothing."""
    if not repo.scm:
        return []
    if stages is None:
        try:
            stages = list(spec.load(repo.root).stages.values())
        except MlvError:
            return []  # a broken mlv.yaml is reported where it is read
    whose: dict[str, str] = {}
    for stage in stages:
        for path in stage.metrics:
            whose.setdefault(path, f"a metrics file of stage '{stage.name}'")
        for ref in stage.params:
            whose.setdefault(ref.file, f"a params file of stage '{stage.name}'")
    present = [p for p in whose if os.path.lexists(repo.abs(p))]
    return [
        f"{rpath(path)} ({whose[path]}) is ignored by git, so commits leave it out and `mlv "
        f"metrics diff`, `params diff` and `exp show` cannot compare it: run `git add -f "
        f"{rpath(path)}` to "
        "track it"
        for path in git.ignored(repo.root, present)
    ]


@dataclass(frozen=True)
class Shown:
    rev: Rev
    snapshot: Snapshot


def show(repo: Repo, rev_names: Sequence[str] = (), all_commits: bool = False) -> list[Shown]:
    """The workspace's metrics, then those of each named revision (or of every commit)."""
    _need_git(repo, "metrics show", bool(rev_names) or all_commits)
    if all_commits:
        rev_list = revs.history(repo.root, None, all_commits=True)
    else:
        rev_list = revs.resolve(repo.root, rev_names)
    rev_list = [revs.workspace_rev(), *rev_list]
    snaps = revs.read(repo.root, [r.commit for r in rev_list], repo_objects(repo))
    return [Shown(r, s) for r, s in zip(rev_list, snaps, strict=True)]


@dataclass(frozen=True)
class Change:
    file: str
    key: str
    old: Any  # None when absent
    new: Any
    change: float | int | None = None  # new - old, numbers only
    relative: float | None = None  # (new - old) / abs(old), numbers only, old != 0

    @property
    def changed(self) -> bool:
        if type(self.old) is not type(self.new):
            return True
        if is_nan(self.old) and is_nan(self.new):
            return False  # NaN != NaN, but an unchanged NaN is no change
        return bool(self.old != self.new)


@dataclass
class DiffResult:
    a: Rev
    b: Rev
    changes: list[Change] = field(default_factory=list)
    errors: dict[str, dict[str, str]] = field(default_factory=dict)  # "a"|"b" -> file -> why


def diff_metrics(
    repo: Repo, a: str | None = None, b: str | None = None, everything: bool = False
) -> DiffResult:
    """Metrics of revision a (default HEAD) against b (default: the workspace). Only the
    keys whose values differ, unless everything."""
    return _diff(repo, a, b, everything, "metrics", numeric=True)


def diff_params(
    repo: Repo, a: str | None = None, b: str | None = None, everything: bool = False
) -> DiffResult:
    """Params of revision a (default HEAD) against b (default: the workspace)."""
    return _diff(repo, a, b, everything, "params", numeric=False)


def _diff(
    repo: Repo, a: str | None, b: str | None, everything: bool, kind: str, numeric: bool
) -> DiffResult:
    _need_git(repo, f"{kind} diff", True)
    (rev_a,) = revs.resolve(repo.root, [a or "HEAD"])
    rev_b = revs.resolve(repo.root, [b])[0] if b is not None else revs.workspace_rev()
    snap_a, snap_b = revs.read(repo.root, [rev_a.commit, rev_b.commit], repo_objects(repo))
    old: Values = getattr(snap_a, kind)
    new: Values = getattr(snap_b, kind)
    result = DiffResult(rev_a, rev_b)
    for side, snap in (("a", snap_a), ("b", snap_b)):
        if snap.errors:
            result.errors[side] = dict(snap.errors)
    for file in _union(list(old), list(new)):
        olds, news = old.get(file, {}), new.get(file, {})
        for key in _union(list(olds), list(news)):
            change = compare(file, key, olds.get(key, MISSING), news.get(key, MISSING), numeric)
            if everything or change.changed:
                result.changes.append(change)
    return result


def compare(file: str, key: str, old: Any, new: Any, numeric: bool = True) -> Change:
    """change and relative only between two finite numbers (not NaN, not infinity)."""
    if numeric and is_finite(old) and is_finite(new):
        delta = _round(new - old)
        relative = _round((new - old) / abs(old)) if old != 0 else None
        return Change(file, key, old, new, delta, relative)
    return Change(file, key, old, new)


def _round(x: float | int) -> float | int:
    if isinstance(x, int):
        return x
    return float(f"{x:.12g}")


def _union(a: list[str], b: list[str]) -> list[str]:
    return list(dict.fromkeys(a + b))


def _need_git(repo: Repo, what: str, needed: bool) -> None:
    if needed and not repo.scm:
        raise UsageError(f"mlv {what} needs a git repository", "run `git init` and commit first")
