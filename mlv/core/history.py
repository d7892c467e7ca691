"""`mlv log PATH`: the commits that changed a tracked path, with what it was at each.

A tracked path's history is its pointer file's history: `git log` of the pointer (of the
path's own pointer, or of the one tracking the directory that contains it, or mlv.lock for
a stage out of the workspace's lock) names the candidate commits, one `git cat-file
--batch` reads the pointer at each, and a commit is listed when the path's hash differs
from the one before it. For a path inside a tracked directory, that needs the trees on its
path at each commit (from the cache, else the default remote).
"""

from __future__ import annotations

from dataclasses import dataclass

from mlv import git
from mlv.core import targets as targets_mod
from mlv.core.repo import Repo
from mlv.core.view import Objects, remote_opener
from mlv.errors import MlvError, UsageError, rpath
from mlv.objects import pointer as pointer_mod
from mlv.objects.pointer import SUFFIX
from mlv.objects.tree import Entry


@dataclass(frozen=True)
class Version:
    """The path as one commit left it. entry None: deleted there; unknown: trees missing."""

    commit: str
    time: int  # commit time, seconds since the epoch
    author: str
    subject: str
    entry: Entry | None
    unknown: str | None = None  # why the entry could not be read


def history(repo: Repo, path: str, limit: int | None = None, rev: str = "HEAD") -> list[Version]:
    """Newest first: each commit (reachable from rev) where `path` changed."""
    if not repo.scm:
        raise UsageError("mlv log needs a git repository")
    git.rev_parse(repo.root, rev)
    candidates = [p + SUFFIX for p in _ancestors(path)]
    if _is_stage_out(repo, path):
        candidates.append(targets_mod.LOCK_FILE)
    commits = git.log_path(repo.root, candidates, rev)
    if not commits:
        raise UsageError(
            f"{rpath(path or '.')}: no commit changed a pointer for this path",
            "name a path tracked by mlv (see `mlv ls`), committed at least once",
        )
    names = list(candidates)
    if targets_mod.LOCK_FILE in candidates:
        names.append(targets_mod.PIPELINE_FILE)  # which outs it caches
    blobs = git.read_blobs(repo.root, [f"{c[0]}:{name}" for c in commits for name in names])
    objects = Objects(repo.cache, remote_opener(repo, None))
    versions: list[Version] = []
    try:
        for commit, time, author, subject in commits:
            entry, unknown = _entry_at(objects, commit, path, candidates, blobs)
            versions.append(Version(commit, time, author, subject, entry, unknown))
    finally:
        objects.close()
    changed = [
        v
        for i, v in enumerate(versions)
        if i + 1 == len(versions) or _key(v) != _key(versions[i + 1]) or v.unknown
    ]
    changed = [
        v for v in changed if not (v.entry is None and v.unknown is None and _last(v, versions))
    ]
    return changed[:limit] if limit is not None else changed


def _last(v: Version, versions: list[Version]) -> bool:
    """The oldest candidate commit, where the path did not exist yet: not a change."""
    return v is versions[-1]


def _key(v: Version) -> tuple[str, str] | None:
    return (v.entry.kind, v.entry.hash) if v.entry is not None else None


def _entry_at(
    objects: Objects,
    commit: str,
    path: str,
    candidates: list[str],
    blobs: dict[str, bytes],
) -> tuple[Entry | None, str | None]:
    """The entry for path at commit, from the nearest pointer above it that exists there."""
    for pointer_rel in candidates:
        data = blobs.get(f"{commit}:{pointer_rel}")
        if data is None:
            continue
        try:
            if pointer_rel == targets_mod.LOCK_FILE:
                outs = targets_mod.outs_of_lock(
                    data,
                    blobs.get(f"{commit}:{targets_mod.PIPELINE_FILE}"),
                    f"{rpath(pointer_rel)} at {commit[:10]}",
                    f"{rpath(targets_mod.PIPELINE_FILE)} at {commit[:10]}",
                )
                owner = targets_mod.owner_of(path, outs)
                if owner is None:
                    continue
                ptr, data_rel = owner.pointer, owner.data_rel
            else:
                ptr = pointer_mod.parse(data, f"{rpath(pointer_rel)} at {commit[:10]}")
                folder = pointer_rel.rpartition("/")[0]
                data_rel = f"{folder}/{ptr.path}" if folder else ptr.path
        except MlvError as e:
            return None, e.message
        if not (path == data_rel or path.startswith(data_rel + "/")):
            continue
        entry = Entry(ptr.kind, data_rel.rpartition("/")[2], ptr.hash, ptr.size, ptr.files or 1)
        sub = path[len(data_rel) + 1 :] if path != data_rel else ""
        try:
            for part in sub.split("/") if sub else []:
                if not entry.is_dir:
                    return None, None
                child = objects.tree(entry.hash).by_name().get(part)
                if child is None:
                    return None, None
                entry = child
        except MlvError as e:
            return None, e.message
        return entry, None
    return None, None


def _is_stage_out(repo: Repo, path: str) -> bool:
    """path is (or lies inside) a cached stage out of the workspace's mlv.lock."""
    try:
        outs = targets_mod.lock_targets(repo)
    except MlvError:
        return False  # a lock that cannot be read: its history is not this path's
    return targets_mod.owner_of(path, outs) is not None


def _ancestors(path: str) -> list[str]:
    out = []
    while path:
        out.append(path)
        path = path.rpartition("/")[0]
    return out
