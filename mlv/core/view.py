"""The tracked data of one revision, seen without checking it out.

A View answers "what was at PATH in revision REV" for `mlv ls`, `du`, `get`, `log` and the
Python API: its pointers come from git (a commit) or from the workspace, and the objects
they name come from the cache, else from other local caches (a source repository's own),
else from a remote. Whatever is fetched is checked against its hash and kept in the cache,
so the second look is free.

Paths are repository-relative posix paths; "" is the root. Besides tracked data, a view
shows the files git tracks (a `params.yaml`), so that one path space covers a revision.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from mlv import git, log
from mlv.core import targets as targets_mod
from mlv.core.repo import MLV_DIR, Repo
from mlv.core.targets import Target
from mlv.errors import ObjectCorruptError, ObjectMissingError, UsageError, rpath
from mlv.objects import hashing
from mlv.objects import tree as tree_mod
from mlv.objects.pointer import SUFFIX
from mlv.objects.remote import RemoteStore
from mlv.objects.store import Cache, hash_path_mmap
from mlv.objects.tree import Entry, Tree, check_depth

if TYPE_CHECKING:
    from mlv.objects.packs.usage import Usage

MLV = "mlv"  # data tracked by a pointer
GIT = "git"  # a file git tracks
FOLDER = "folder"  # a folder on the way to tracked paths


@dataclass(frozen=True)
class Node:
    """One path of a view: a tracked file or directory, a git file, or a plain folder."""

    path: str
    kind: str  # file | dir
    tracked: str  # mlv | git | folder
    size: int | None = None  # bytes (a folder: of what it holds, when known)
    files: int | None = None  # directories: files below
    hash: str | None = None  # mlv data only

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


class Objects:
    """Where a view's objects come from: the cache, then other local caches, then a remote
    (opened on first need). Everything fetched is verified and lands in the cache."""

    def __init__(
        self,
        cache: Cache,
        remote: Callable[[], RemoteStore] | None = None,
        others: Sequence[Cache] = (),
    ) -> None:
        self.cache = cache
        self._remote_factory = remote
        self._remote: RemoteStore | None = None
        self.others = list(others)
        self._trees: dict[str, Tree] = {}
        self.tree_reads = 0  # tree objects parsed (diff and ls promise to read few)

    def tree(self, hash_id: str) -> Tree:
        tree = self._trees.get(hash_id)
        if tree is None:
            self.ensure({hash_id: 0})
            log.debug(__name__, f"read tree {hash_id}")
            self.tree_reads += 1
            tree = tree_mod.decode(self.cache.read_bytes(hash_id), f"tree {hash_id}")
            self._trees[hash_id] = tree
        return tree

    def ensure(self, sizes: dict[str, int]) -> None:
        """Bring every object named (hash -> size, 0 when unknown) into the cache, or raise
        naming what could be found nowhere."""
        lacking = [h for h in sizes if not self.cache.has(h)]
        for other in self.others:
            if not lacking:
                return
            lacking = [h for h in lacking if not self._copy_from(other, h)]
        if not lacking:
            return
        store = self.remote()
        if store is None:
            raise ObjectMissingError(
                f"{len(lacking)} object(s) are not in the cache (first: {lacking[0]})",
                "fetch them with `mlv fetch`, or configure a remote",
            )
        outcome = store.download(self.cache, lacking, None, {h: sizes[h] for h in lacking})
        if outcome.corrupt:
            raise ObjectCorruptError(
                f"object {outcome.corrupt[0]} on remote '{store.name}' is corrupt",
                "push it again from a repository that has it intact",
            )
        gone = [h for h in lacking if not self.cache.has(h)]
        if gone:
            reason = outcome.failed.get(gone[0], "not on the remote")
            raise ObjectMissingError(
                f"object {gone[0]} is not in the cache nor on remote '{store.name}' ({reason})",
                "push it from a repository that has it",
            )

    def _copy_from(self, other: Cache, hash_id: str) -> bool:
        try:
            data_path = other.object_path(hash_id)
            if not os.path.exists(data_path):
                return False
            tmp = self.cache.new_tmp()
            try:
                with open(data_path, "rb") as src, open(tmp, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                if hash_path_mmap(hashing.algorithm_of(hash_id), tmp) != hash_id:
                    return False
                self.cache.adopt(tmp, hash_id)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            return True
        except OSError:
            return False

    def remote(self) -> RemoteStore | None:
        if self._remote is None and self._remote_factory is not None:
            self._remote = self._remote_factory()
        return self._remote

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()
            self._remote = None


class View:
    """The paths of one revision. `commit` None: the workspace's pointers and files."""

    def __init__(
        self, root: str, commit: str | None, objects: Objects, targets: list[Target]
    ) -> None:
        self.root = root
        self.commit = commit
        self.objects = objects
        self.targets = sorted(targets, key=lambda t: t.data_rel)
        self._by_path = {t.data_rel: t for t in self.targets}
        self._git_files: dict[str, int | None] | None = None
        self.local = False  # the user's own repository (of_repo): its paths are marked

    def _shown(self, path: str) -> str:
        """A path for a message: marked in the user's repository (shown from the current
        folder), as it is in another (a source of get or import)."""
        return rpath(path) if self.local else path

    # ---- construction ----------------------------------------------------------------

    @classmethod
    def of_repo(cls, repo: Repo, rev: str | None, remote: str | None = None) -> View:
        """A view of this repository at rev (None: the workspace). Objects the cache lacks
        come from `remote` (or the default remote, when one is configured)."""
        commit = None
        if rev is not None:
            if not repo.scm:
                raise UsageError("--rev needs a git repository")
            commit = git.rev_parse(repo.root, rev)
        found = (
            targets_mod.all_targets(repo)
            if commit is None
            else targets_mod.at_commit(repo.root, commit)
        )
        view = cls(repo.root, commit, Objects(repo.cache, remote_opener(repo, remote)), found)
        view.local = True
        return view

    # ---- looking up paths ------------------------------------------------------------

    def git_files(self) -> dict[str, int | None]:
        """Files git tracks (path -> size when cheap to know), without pointer files."""
        if self._git_files is None:
            if not os.path.exists(os.path.join(self.root, ".git")):
                self._git_files = {}
            elif self.commit is None:
                names = git.list_files(self.root, ".")
                self._git_files = {n: None for n in names if _plain(n)}
            else:
                sizes = git.tree_sizes(self.root, self.commit)
                self._git_files = {n: s for n, s in sizes.items() if _plain(n)}
        return self._git_files

    def info(self, path: str) -> Node:
        path = _norm(path)
        owner = self._owner(path)
        if owner is not None:
            entry = self._entry(owner, path)
            if entry is None:
                raise UsageError(
                    f"{self._shown(path)}: no such path in {self._shown(owner.pointer_rel)}"
                    f"{self._at()}"
                )
            return _node(path, entry)
        if path in self.git_files():
            return Node(path, "file", GIT, self._git_size(path))
        prefix = path + "/" if path else ""
        if any(p.startswith(prefix) for p in self._by_path) or any(
            p.startswith(prefix) for p in self.git_files()
        ):
            return Node(path, "dir", FOLDER)
        raise UsageError(
            f"{self._shown(path or '.')}: not tracked{self._at()}",
            "name a path that mlv or git tracks (see `mlv ls`)",
        )

    def ls(self, path: str) -> list[Node]:
        """The children of a folder or tracked directory; a file lists itself."""
        node = self.info(path)
        if not node.is_dir:
            return [node]
        if node.tracked == MLV:
            assert node.hash is not None
            tree = self.objects.tree(node.hash)
            return [_node(_join(node.path, e.name), e) for e in tree.entries]
        prefix = node.path + "/" if node.path else ""
        children: dict[str, Node] = {}
        for data_rel, target in self._by_path.items():
            if data_rel.startswith(prefix):
                name = data_rel[len(prefix) :].partition("/")[0]
                child = prefix + name
                if child == data_rel:
                    children[name] = _node(child, target.entry())
                else:
                    children.setdefault(name, Node(child, "dir", FOLDER))
        for git_path in self.git_files():
            if git_path.startswith(prefix):
                name = git_path[len(prefix) :].partition("/")[0]
                child = prefix + name
                if child == git_path:
                    children.setdefault(name, Node(child, "file", GIT, self._git_size(child)))
                else:
                    children.setdefault(name, Node(child, "dir", FOLDER))
        return [children[name] for name in sorted(children)]

    def walk(self, path: str) -> Iterator[Node]:
        """Every file and directory below path (depth first, folders before content)."""
        inside = (r for r in self._by_path if path == r or path.startswith(r + "/"))
        return self._walk(path, next((r + "/" for r in inside), ""))

    def _walk(self, path: str, root: str) -> Iterator[Node]:
        """root: the tracked directory path lies in ("" outside one), whose tree's depth is
        bounded as checkout bounds it."""
        for child in self.ls(path):
            yield child
            if not child.is_dir:
                continue
            if child.path in self._by_path:
                yield from self._walk(child.path, child.path + "/")
                continue
            if root and child.path.startswith(root):
                check_depth(child.path[len(root) :], child.hash or child.path)
            yield from self._walk(child.path, root)

    def data_nodes(self, path: str) -> Iterator[Node]:
        """The top-level tracked paths at or below path (or the one containing it)."""
        node = self.info(path)
        if node.tracked != FOLDER:
            yield node
            return
        prefix = node.path + "/" if node.path else ""
        for data_rel, target in self._by_path.items():
            if data_rel.startswith(prefix):
                yield _node(data_rel, target.entry())

    # ---- reading ---------------------------------------------------------------------

    def open(self, path: str) -> BinaryIO:
        """A tracked file's bytes, from the cache (fetched there first when absent)."""
        node = self.info(path)
        if node.is_dir:
            raise UsageError(f"{self._shown(node.path)}: is a directory", "name a file inside it")
        if node.tracked == GIT:
            if self.commit is None:
                return open(os.path.join(self.root, node.path), "rb")
            blobs = git.read_blobs(self.root, [f"{self.commit}:{node.path}"], limit=None)
            return io.BytesIO(blobs[f"{self.commit}:{node.path}"])
        assert node.hash is not None and node.size is not None
        self.objects.ensure({node.hash: node.size})
        cache = self.objects.cache
        if not cache.is_intact(node.hash):
            raise cache.corrupt(node.hash)
        return open(cache.object_path(node.hash), "rb")

    def fetch(self, path: str) -> list[tuple[Node, Entry]]:
        """Bring every object below path into the cache; the files found, with entries."""
        files: list[tuple[Node, Entry]] = []
        for node in self.data_nodes(path):
            if node.tracked == GIT:
                continue
            entry = self._entry_of(node)
            if entry.is_dir:
                for sub, child in _walk(self.objects, entry.hash, node.path):
                    if not child.is_dir:
                        files.append((_node(sub, child), child))
            else:
                files.append((node, entry))
        sizes = {e.hash: e.size for _, e in files}
        self.objects.ensure(sizes)
        return files

    # ---- internals -------------------------------------------------------------------

    def _at(self) -> str:
        return f" at {self.commit[:10]}" if self.commit else " in the workspace"

    def _git_size(self, path: str) -> int | None:
        size = self.git_files().get(path)
        if size is None and self.commit is None:
            try:
                size = os.stat(os.path.join(self.root, path)).st_size
            except OSError:
                return None
        return size

    def _owner(self, path: str) -> Target | None:
        for data_rel in _ancestors(path):
            target = self._by_path.get(data_rel)
            if target is not None:
                return target
        return None

    def _entry(self, target: Target, path: str) -> Entry | None:
        entry = target.entry()
        sub = path[len(target.data_rel) + 1 :] if path != target.data_rel else ""
        for part in sub.split("/") if sub else []:
            if not entry.is_dir:
                return None
            child = self.objects.tree(entry.hash).by_name().get(part)
            if child is None:
                return None
            entry = child
        return entry

    def _entry_of(self, node: Node) -> Entry:
        owner = self._owner(node.path)
        assert owner is not None
        entry = self._entry(owner, node.path)
        assert entry is not None
        return entry

    def close(self) -> None:
        self.objects.close()


# ---- helpers ---------------------------------------------------------------------------


def remote_opener(repo: Repo, name: str | None) -> Callable[[], RemoteStore] | None:
    """Opens `name` (or the default remote) on first need; None when there is none."""
    cfg = repo.config
    if name is None and (cfg.remote is None or cfg.remote not in cfg.remotes):
        return None

    def opener() -> RemoteStore:
        from mlv.core.remotes import open_remote

        return open_remote(repo, name)

    return opener


def _node(path: str, entry: Entry) -> Node:
    if entry.is_dir:
        return Node(path, "dir", MLV, entry.size, entry.files, entry.hash)
    return Node(path, "file", MLV, entry.size, None, entry.hash)


def _walk(objects: Objects, tree_hash: str, prefix: str) -> Iterator[tuple[str, Entry]]:
    for entry in objects.tree(tree_hash).entries:
        path = _join(prefix, entry.name)
        yield path, entry
        if entry.is_dir:
            check_depth(path, tree_hash)
            yield from _walk(objects, entry.hash, path)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def _norm(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UsageError(f"{path}: '..' is not allowed here", "use a path inside the repository")
    return "/".join(parts)


def _ancestors(path: str) -> Iterator[str]:
    """path itself, then each parent up to (not including) the root."""
    while path:
        yield path
        path = path.rpartition("/")[0]


def _plain(name: str) -> bool:
    return not name.endswith(SUFFIX) and not name.startswith(MLV_DIR + "/")


# ---- `mlv du --remote`: what a remote holds and what it costs -----------------------------


@dataclass(frozen=True)
class RemoteUsage:
    """A remote's objects with their whole (logical) and stored sizes."""

    name: str
    url: str
    usage: Usage


def remote_usage(repo: Repo, name: str | None) -> RemoteUsage:
    """Read from the remote's indexes (and one listing of its loose objects): no object is
    downloaded, so it costs the same for a 10 GB remote as for a small one."""
    from mlv.core.remotes import open_remote
    from mlv.objects.packs.usage import usage

    store = open_remote(repo, name)
    try:
        return RemoteUsage(store.name, store.url, usage(store, repo.cache))
    finally:
        store.close()
