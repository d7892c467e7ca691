"""`mlv status`: how each tracked path's workspace and cache compare with its pointer.

Read-only and lock-free. An unchanged dataset costs one stat per file: the state database
supplies hashes, the folder trees are rebuilt in memory, and equal root hashes end the
comparison without reading a single tree object.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlv.core import targets
from mlv.core.repo import Repo
from mlv.core.targets import Target
from mlv.core.workspace import Scanner
from mlv.errors import MlvError, TreeError
from mlv.objects import hashing, treediff
from mlv.objects.pointer import SUFFIX
from mlv.objects.store import Cache
from mlv.objects.tree import Tree

CLEAN = "clean"
MODIFIED = "modified"
MISSING = "missing"  # missing from the workspace
NOT_IN_CACHE = "not_in_cache"
ERROR = "error"


@dataclass
class TargetStatus:
    path: str
    pointer: str
    kind: str
    status: str  # clean | modified | missing | not_in_cache | error
    in_cache: bool  # every object the pointer names is in the cache
    added: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    error: str | None = None
    # modified, and the workspace holds a version the cache already has: most likely the
    # pointer moved (`git checkout OLD`) while the data stayed. Not in the --json shape.
    recorded_elsewhere: bool = False
    warnings: list[str] = field(default_factory=list)  # found while scanning (stderr)

    @property
    def clean(self) -> bool:
        return self.status == CLEAN


def tree_complete(repo: Repo, cache: Cache, load: treediff.TreeLoader, tree_hash: str) -> bool:
    """True when the tree and everything below it are in the cache (remembered once true)."""
    if not cache.has(tree_hash):
        return False
    generation = cache.generation(hashing.algorithm_of(tree_hash))
    if repo.state.is_complete(tree_hash, generation):
        return True
    try:
        for _path, entry in treediff.walk(load, tree_hash):
            if not cache.has(entry.hash):
                return False
    except MlvError:
        return False
    repo.state.mark_complete(tree_hash, generation)
    return True


def in_cache(repo: Repo, scanner: Scanner, target: Target) -> bool:
    ptr = target.pointer
    if ptr.kind == "file":
        return repo.cache.has(ptr.hash)
    return tree_complete(repo, repo.cache, scanner.load_tree, ptr.hash)


def status_of(repo: Repo, target: Target) -> TargetStatus:
    ptr = target.pointer
    scanner = Scanner(repo, store=False, algo=hashing.algorithm_of(ptr.hash))
    result = TargetStatus(target.data_rel, target.pointer_rel, ptr.kind, CLEAN, True)
    try:
        result.in_cache = in_cache(repo, scanner, target)
        actual = scanner.scan(target.data_rel)
        if actual is None:
            result.status = MISSING
        elif actual.hash != ptr.hash or actual.kind != ptr.kind:
            result.status = MODIFIED
            result.recorded_elsewhere = repo.cache.has(actual.hash)
            if ptr.kind == "dir" and actual.is_dir:
                _list_changes(scanner, ptr.hash, actual.hash, result)
            else:
                result.modified.append(target.data_rel)
        elif not result.in_cache:
            result.status = NOT_IN_CACHE
    except MlvError as e:
        result.status = ERROR
        result.error = e.text()
    result.warnings = scanner.notes
    return result


def _list_changes(scanner: Scanner, old: str, new: str, result: TargetStatus) -> None:
    def load(hash_id: str) -> Tree:
        return scanner.load_tree(hash_id)

    prefix = result.path + "/"
    try:
        for change in treediff.diff(load, old, new):
            entry = change.new or change.old
            if entry is None:
                continue
            path = prefix + change.path
            if entry.is_dir:
                if entry.files or (change.old is not None and change.new is not None):
                    continue  # its files are listed one by one
                path += "/"  # an empty folder that came or went
            if change.old is None:
                result.added.append(path)
            elif change.new is None:
                result.deleted.append(path)
            else:
                result.modified.append(path)
    except TreeError:
        raise  # a tree that is there but refused (hostile, too deep): the target's error
    except MlvError:
        # The recorded tree is not in the cache: we know it differs, not how.
        result.in_cache = False


def _narrow(result: TargetStatus, target: Target) -> TargetStatus:
    """The part of a directory's status below target.sub (`mlv status data/cats`)."""
    prefix = target.rel + "/"

    def keep(paths: list[str]) -> list[str]:  # the path itself (a file), or below it
        return [p for p in paths if p.startswith(prefix) or p == target.rel]

    result.path = target.rel
    result.added, result.modified, result.deleted = (
        keep(result.added),
        keep(result.modified),
        keep(result.deleted),
    )
    if result.status == MODIFIED and not (result.added or result.modified or result.deleted):
        result.status = CLEAN if result.in_cache else NOT_IN_CACHE
    return result


def status(repo: Repo, paths: list[str]) -> list[TargetStatus]:
    targets.refuse_undecodable(paths)
    known, broken = targets.readable_targets(repo)
    named = {repo.rel(p) for p in paths}
    results = [
        TargetStatus(p.removesuffix(SUFFIX), p, "?", ERROR, False, error=e.text())
        for p, e in broken
        if not paths or named & targets.names_of(p)
    ]
    broken_names = {n for p, _ in broken for n in targets.names_of(p)}
    rest = [p for p in paths if repo.rel(p) not in broken_names]
    chosen = [] if paths and not rest else targets.resolve(repo, rest, known)
    targets.require_sub(repo, chosen)  # a typo inside a tracked directory is not "clean"
    try:
        return results + [
            _narrow(status_of(repo, t), t) if t.sub else status_of(repo, t) for t in chosen
        ]
    finally:
        repo.state.flush()
