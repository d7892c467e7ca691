"""Which pointers a command works on: those of the workspace (all, or the paths named),
plus those of git revisions (--rev, --all-branches, --all-tags, --all-commits).

push, fetch, pull, verify and gc select this way (gc keeps, rather than moves, what the
revisions name); the CLI's `revision_options` turns the flags into a `Revisions`. A path
inside a tracked directory selects that subtree alone (Target.sub).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlv import git
from mlv.core import targets as targets_mod
from mlv.core.repo import Repo
from mlv.core.targets import Target
from mlv.errors import MlvError, UsageError


@dataclass(frozen=True, kw_only=True)
class Revisions:
    """Which git revisions to take pointers from, besides the workspace."""

    revs: tuple[str, ...] = ()
    all_branches: bool = False
    all_tags: bool = False
    all_commits: bool = False

    @property
    def any(self) -> bool:
        return bool(self.revs or self.all_branches or self.all_tags or self.all_commits)


def select(repo: Repo, paths: list[str], revisions: Revisions) -> list[Target]:
    """Targets of the workspace (and of the revisions asked for), without duplicates."""
    chosen = targets_mod.resolve(repo, paths)
    if not revisions.any:
        return chosen
    seen = {(t.pointer.hash, t.sub) for t in chosen}
    for commit in revision_commits(repo, revisions):
        for target in targets_at(repo, commit, paths):
            if (target.pointer.hash, target.sub) not in seen:
                seen.add((target.pointer.hash, target.sub))
                chosen.append(target)
    return chosen


def revision_commits(repo: Repo, revisions: Revisions) -> list[str]:
    """The commit ids the revisions name, sorted, without duplicates."""
    if not revisions.any:
        return []
    if not repo.scm:
        raise UsageError("--rev and --all-* need a git repository")
    commits: set[str] = {git.rev_parse(repo.root, r) for r in revisions.revs}
    if revisions.all_branches:
        commits.update(git.refs(repo.root, "heads"))
    if revisions.all_tags:
        commits.update(git.refs(repo.root, "tags"))
    if revisions.all_commits:
        commits.update(git.all_commits(repo.root))
    return sorted(commits)


def targets_at(
    repo: Repo,
    commit: str,
    paths: list[str],
    broken: list[tuple[str, MlvError]] | None = None,
) -> list[Target]:
    """The pointers of a commit (those of paths only, if given). Pointers that do not parse
    in that commit are skipped (nothing can be moved for them), and listed in broken as
    (pointer path, error) when a list is given."""
    found = targets_mod.at_commit(repo.root, commit, None, broken)
    if not paths:
        return found
    picked: list[Target] = []
    for raw in paths:
        for t in targets_mod.match(repo.rel(raw), found):
            if t not in picked:
                picked.append(t)
    return picked
