"""`mlv diff`: the tracked files added, deleted, modified or renamed between two revisions.

Between two commits only the pointers git says changed are read (`git diff --name-only`),
and inside a tracked directory only the trees whose hashes differ: a 20,000-file dataset
that changed in 10 files costs the trees on those 10 paths, whatever its size. Against the
workspace, the tracked data is scanned like `mlv status` does (the state database makes an
unchanged file one stat) and its trees are built in memory.

Trees the cache lacks come from the default remote when one is configured; otherwise the
directory is reported as changed without its file list (`unknown`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from mlv import git
from mlv.core import targets as targets_mod
from mlv.core.repo import Repo
from mlv.core.view import Objects, remote_opener
from mlv.errors import ObjectCorruptError, ObjectMissingError, UsageError
from mlv.objects import hashing, treediff
from mlv.objects.pointer import SUFFIX
from mlv.objects.tree import Entry, Tree, decode

WORKSPACE = "workspace"


@dataclass(frozen=True)
class FileChange:
    """One file that differs: absent on one side for added and deleted files."""

    path: str
    old: Entry | None
    new: Entry | None
    old_path: str | None = None  # renamed files: where it was


@dataclass
class DiffResult:
    a: str  # commit id
    b: str  # commit id, or "workspace"
    added: list[FileChange] = field(default_factory=list)
    deleted: list[FileChange] = field(default_factory=list)
    modified: list[FileChange] = field(default_factory=list)
    renamed: list[FileChange] = field(default_factory=list)
    unknown: dict[str, str] = field(default_factory=dict)  # tracked dir -> why not listed
    tree_reads: int = 0

    @property
    def empty(self) -> bool:
        return not (self.added or self.deleted or self.modified or self.renamed or self.unknown)


class _Trees:
    """Trees of both sides: those a workspace scan built in memory, else the objects."""

    def __init__(self, objects: Objects, built: dict[str, bytes]) -> None:
        self.objects = objects
        self.built = built
        self._memo: dict[str, Tree] = {}

    def load(self, hash_id: str) -> Tree:
        tree = self._memo.get(hash_id)
        if tree is None:
            data = self.built.get(hash_id)
            tree = decode(data, f"tree {hash_id}") if data else self.objects.tree(hash_id)
            self._memo[hash_id] = tree
        return tree


def diff(repo: Repo, a: str | None, b: str | None, paths: list[str] | None = None) -> DiffResult:
    """Changes from revision a (default HEAD) to revision b (default: the workspace)."""
    if not repo.scm:
        raise UsageError("mlv diff needs a git repository", "run `git init` and commit first")
    old_commit = git.rev_parse(repo.root, a or "HEAD")
    objects = Objects(repo.cache, remote_opener(repo, None))
    try:
        if b is None:
            result = DiffResult(old_commit, WORKSPACE)
            old, new, built = _against_workspace(repo, old_commit)
        else:
            new_commit = git.rev_parse(repo.root, b)
            result = DiffResult(old_commit, new_commit)
            old, new = _between_commits(repo, old_commit, new_commit)
            built = {}
        trees = _Trees(objects, built)
        for data_rel in sorted(old.keys() | new.keys()):
            if paths and not _selected(data_rel, paths):
                continue
            _compare(trees, data_rel, old.get(data_rel), new.get(data_rel), result)
        _pair_renames(result)
        if paths:
            _narrow(result, paths)
        result.tree_reads = objects.tree_reads
        return result
    finally:
        objects.close()
        repo.state.flush()


# ---- the two sides ---------------------------------------------------------------------


Side = dict[str, Entry]  # tracked path -> its root entry


def _between_commits(repo: Repo, a: str, b: str) -> tuple[Side, Side]:
    changed = [
        n for n in git.changed_files(repo.root, a, b, f"*{SUFFIX}") if not n.startswith(".mlv/")
    ]
    # the stage outs of mlv.lock (whose cache flags mlv.yaml holds)
    if git.changed_files(repo.root, a, b, targets_mod.LOCK_FILE) or git.changed_files(
        repo.root, a, b, targets_mod.PIPELINE_FILE
    ):
        changed.append(targets_mod.LOCK_FILE)
    return _pointers(repo, a, changed), _pointers(repo, b, changed)


def _pointers(repo: Repo, commit: str, names: list[str]) -> Side:
    return {t.data_rel: t.entry() for t in targets_mod.at_commit(repo.root, commit, names)}


def _against_workspace(repo: Repo, commit: str) -> tuple[Side, Side, dict[str, bytes]]:
    from mlv.core.workspace import Scanner

    old = {t.data_rel: t.entry() for t in targets_mod.at_commit(repo.root, commit)}
    new: Side = {}
    built: dict[str, bytes] = {}
    scanners: dict[str, Scanner] = {}
    for target in targets_mod.all_targets(repo):
        algo = hashing.algorithm_of(target.pointer.hash)
        scanner = scanners.get(algo)
        if scanner is None:
            scanner = scanners[algo] = Scanner(repo, store=False, algo=algo)
        actual = scanner.scan(target.data_rel)
        if actual is not None:
            new[target.data_rel] = actual
    for scanner in scanners.values():
        built.update(scanner.trees)
    return old, new, built


# ---- comparing -------------------------------------------------------------------------


def _compare(
    trees: _Trees, path: str, old: Entry | None, new: Entry | None, result: DiffResult
) -> None:
    if old is not None and new is not None and old.hash == new.hash and old.kind == new.kind:
        return
    try:
        if old is not None and new is not None and old.kind == new.kind:
            if not old.is_dir:
                result.modified.append(FileChange(path, old, new))
                return
            for change in treediff.diff(trees.load, old.hash, new.hash, path):
                _book(change, result)
            return
        if old is not None:
            _whole(trees, path, old, result.deleted, new=False)
        if new is not None:
            _whole(trees, path, new, result.added, new=True)
    except (ObjectMissingError, ObjectCorruptError) as e:
        result.unknown[path] = e.message


def _whole(trees: _Trees, path: str, entry: Entry, into: list[FileChange], new: bool) -> None:
    """Every file of a tracked path that exists on one side only."""
    if not entry.is_dir:
        into.append(FileChange(path, None, entry) if new else FileChange(path, entry, None))
        return
    for sub, child in treediff.walk(trees.load, entry.hash, path):
        if not child.is_dir:
            into.append(FileChange(sub, None, child) if new else FileChange(sub, child, None))


def _book(change: treediff.Change, result: DiffResult) -> None:
    entry = change.new or change.old
    if entry is None or entry.is_dir:
        return  # directories: their files are listed one by one
    if change.old is None:
        result.added.append(FileChange(change.path, None, change.new))
    elif change.new is None:
        result.deleted.append(FileChange(change.path, change.old, None))
    elif change.old.is_dir or change.new.is_dir:
        pass
    else:
        result.modified.append(FileChange(change.path, change.old, change.new))


def _pair_renames(result: DiffResult) -> None:
    """A deleted and an added file with the same content is a rename."""
    gone: dict[str, list[FileChange]] = defaultdict(list)
    for change in result.deleted:
        assert change.old is not None
        gone[change.old.hash].append(change)
    if not gone:
        return
    still_added: list[FileChange] = []
    paired: set[str] = set()
    for change in result.added:
        assert change.new is not None
        candidates = gone.get(change.new.hash)
        if candidates:
            was = candidates.pop(0)
            paired.add(was.path)
            result.renamed.append(FileChange(change.path, was.old, change.new, was.path))
        else:
            still_added.append(change)
    result.added = still_added
    result.deleted = [c for c in result.deleted if c.path not in paired]


def _selected(data_rel: str, paths: list[str]) -> bool:
    return any(
        p in ("", data_rel) or data_rel.startswith(p + "/") or p.startswith(data_rel + "/")
        for p in paths
    )


def _narrow(result: DiffResult, paths: list[str]) -> None:
    def keep(changes: list[FileChange]) -> list[FileChange]:
        return [
            c
            for c in changes
            if _selected(c.path, paths) or (c.old_path is not None and _selected(c.old_path, paths))
        ]

    result.added = keep(result.added)
    result.deleted = keep(result.deleted)
    result.modified = keep(result.modified)
    result.renamed = keep(result.renamed)
