"""Finding pointer files and resolving what the user named on the command line.

A target is one pointer and, optionally, a sub-path inside the directory it tracks
(`mlv checkout images/cats` where images.mlv tracks images/).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mlv import git
from mlv.core.repo import MLV_DIR, Repo
from mlv.errors import MlvError, PointerError, UsageError
from mlv.objects import pointer as pointer_mod
from mlv.objects.pointer import SUFFIX, Pointer
from mlv.objects.tree import Entry


@dataclass(frozen=True)
class Target:
    pointer_rel: str  # the pointer file, relative to the root ("data/images.mlv")
    data_rel: str  # the tracked path, relative to the root ("data/images")
    pointer: Pointer
    sub: str = ""  # a path inside a tracked directory, relative to data_rel ("" = all)

    @property
    def rel(self) -> str:
        """The workspace path this target covers."""
        return f"{self.data_rel}/{self.sub}" if self.sub else self.data_rel

    def entry(self) -> Entry:
        """The pointer's object as a tree entry named after the tracked path."""
        ptr = self.pointer
        files = ptr.files if ptr.files is not None else (1 if ptr.kind == "file" else 0)
        return Entry(ptr.kind, self.data_rel.rpartition("/")[2], ptr.hash, ptr.size, files)


def load_target(repo: Repo, pointer_rel: str) -> Target:
    ptr = pointer_mod.read(repo.abs(pointer_rel), pointer_rel)
    folder = pointer_rel.rpartition("/")[0]
    data_rel = f"{folder}/{ptr.path}" if folder else ptr.path
    data_rel = os.path.normpath(data_rel).replace(os.sep, "/")
    if data_rel == MLV_DIR or data_rel.startswith(MLV_DIR + "/"):
        raise PointerError(f"{pointer_rel}: points into {MLV_DIR}/, which mlv never tracks")
    return Target(pointer_rel, data_rel, ptr)


def pointer_files(repo: Repo) -> list[str]:
    """Every pointer file in the repository (relative paths), skipping tracked data and
    anything git ignores."""
    if repo.scm:
        found = git.list_files(repo.root, f"*{SUFFIX}")
        return [p for p in found if os.path.isfile(repo.abs(p)) and not p.startswith(".mlv/")]
    return _walk_pointers(repo.root)


def _walk_pointers(root: str) -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel_folder == "." else rel_folder + "/"
        pointers = {f for f in files if f.endswith(SUFFIX) and len(f) > len(SUFFIX)}
        dirs[:] = sorted(
            d for d in dirs if d not in (".git", MLV_DIR) and f"{d}{SUFFIX}" not in pointers
        )
        found.extend(prefix + f for f in sorted(pointers))
    return sorted(found)


def all_targets(repo: Repo) -> list[Target]:
    return [load_target(repo, p) for p in pointer_files(repo)]


def readable_targets(repo: Repo) -> tuple[list[Target], list[tuple[str, PointerError]]]:
    """Every pointer that parses, and (pointer, error) for those that do not: a report
    such as status shows the broken ones instead of stopping at the first."""
    good: list[Target] = []
    bad: list[tuple[str, PointerError]] = []
    for p in pointer_files(repo):
        try:
            good.append(load_target(repo, p))
        except PointerError as e:
            bad.append((p, e))
    return good, bad


def resolve(repo: Repo, paths: list[str], targets: list[Target] | None = None) -> list[Target]:
    """Targets for command-line paths: a pointer file, its data path, a path inside a
    tracked directory, or a folder (every pointer below it). No paths: every pointer."""
    if targets is None:
        targets, broken = readable_targets(repo)
        for pointer_rel, error in broken:
            named = {repo.rel(p) for p in paths}
            if not paths or named & {pointer_rel, pointer_rel[: -len(SUFFIX)]}:
                raise error  # a broken pointer stops only commands that need it
    if not paths:
        return targets
    result: list[Target] = []
    for raw in paths:
        rel = repo.rel(raw)
        matched = match(rel, targets)
        if not matched:
            if os.path.isfile(repo.abs(rel)) and rel.endswith(SUFFIX):
                matched = [load_target(repo, rel)]
            else:
                raise UsageError(
                    f"{raw}: not tracked by mlv",
                    "name a tracked path or its .mlv file (see `mlv status`), or `mlv add` it",
                )
        for target in matched:
            if target not in result:
                result.append(target)
    return result


def match(rel: str, targets: list[Target]) -> list[Target]:
    """The targets a repository-relative path names (see resolve)."""
    hits: list[Target] = []
    for t in targets:
        if rel in (t.pointer_rel, t.data_rel):
            hits.append(t)
        elif rel.startswith(t.data_rel + "/") and t.pointer.kind == "dir":
            hits.append(Target(t.pointer_rel, t.data_rel, t.pointer, rel[len(t.data_rel) + 1 :]))
        elif rel == "" or t.pointer_rel.startswith(rel + "/"):
            hits.append(t)
    return hits


def owner_of(rel: str, targets: list[Target]) -> Target | None:
    """The target whose tracked directory contains rel (or is rel)."""
    for t in targets:
        if rel == t.data_rel or rel.startswith(t.data_rel + "/"):
            return t
    return None


def at_commit(
    root: str,
    commit: str,
    names: list[str] | None = None,
    broken: list[tuple[str, MlvError]] | None = None,
) -> list[Target]:
    """The pointers of a commit (all, or those of the pointer files named), read through
    one `git cat-file --batch`. Pointers that do not parse there are skipped (listed in
    broken as (pointer path, error) when a list is given); absent names are skipped."""
    if names is None:
        names = [n for n in git.files_at(root, commit, SUFFIX) if not n.startswith(MLV_DIR + "/")]
    blobs = git.read_blobs(root, [f"{commit}:{n}" for n in names])
    found: list[Target] = []
    for name in names:
        data = blobs.get(f"{commit}:{name}")
        if data is None:
            continue
        try:
            ptr = pointer_mod.parse(data, f"{name} at {commit[:10]}")
        except MlvError as e:
            if broken is not None:
                broken.append((name, e))
            continue
        folder = name.rpartition("/")[0]
        found.append(Target(name, f"{folder}/{ptr.path}" if folder else ptr.path, ptr))
    return found
