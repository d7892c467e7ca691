"""Which workspace files mlv prints values from: those git tracks, and those mlv records.

`mlv params diff --md`, `metrics show/diff`, `exp show` and `plots show/diff` print what
the files mlv.yaml names hold, and CI posts that table to a pull request. The pull
request chooses mlv.yaml, so a file it names is only read for printing when it is the
repository's own content: a file git tracks, or a file whose bytes mlv.lock (a stage's
outputs) or a pointer records, hash for hash, as they are now (a clone cannot write a
hash of a secret it does not know). Anything else in the work tree, such as the key file a
CI job writes there (ignored, untracked), is refused with one line, whether mlv.yaml names
it or a committed link leads to it: the link's target must qualify itself. `mlv repro`
reads params files as they are: it runs the pipeline's commands, which read whatever they
like (docs/decisions.md). A workspace outside git (`mlv init --no-scm`) has no such bar.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlv import git
from mlv.core.pipeline import lockfile
from mlv.errors import MlvError, rpath
from mlv.objects import hashing, pointer, tree

if TYPE_CHECKING:
    from mlv.core.repo import Repo

ObjectReader = Callable[[str], bytes]  # a cache object's bytes by hash id (a folder's tree)


class Gate:
    """Answers, for workspace files named relative to root, whether their values may be
    printed. Asks git once per file (only for files that exist) and reads mlv.lock once."""

    def __init__(self, root: str, read_object: ObjectReader | None = None) -> None:
        self.root = root
        self.top = os.path.realpath(root)
        self.read_object = read_object  # None: folders' contents cannot be vouched for
        self.active = git.dot_git(root) is not None
        self._records: list[tuple[str, str]] | None = None  # (path, hash) of mlv.lock outs
        self._asked: set[str] = set()  # targets git was asked about (ask)
        self._tracked: set[str] = set()  # those of them it tracks

    def ask(self, rels: list[str]) -> None:
        """Ask git about the targets of rels in one call (a plot folder's files), not one
        call each when refusal() comes to them."""
        if not self.active:
            return
        targets = sorted({t for t in map(self._target, rels) if t is not None} - self._asked)
        for start in range(0, len(targets), 1000):  # far below the limit of a command line
            chunk = targets[start : start + 1000]
            self._tracked.update(git.tracked_files(self.root, chunk))
            self._asked.update(chunk)

    def _target(self, rel: str) -> str | None:
        """rel's real path relative to the root, None unless a regular file inside it."""
        real = os.path.realpath(os.path.join(self.root, rel))
        if not os.path.isfile(real) or not real.startswith(self.top + "/"):
            return None
        return real[len(self.top) + 1 :]

    def refusal(self, rel: str) -> MlvError | None:
        """None when rel may be read for printing (or is absent, or not a regular file: the
        reader says so), else the error naming it. Call workspace.refuse_link_out first:
        links out of the work tree, into .git or .mlv are its to refuse."""
        if not self.active:
            return None
        target = self._target(rel)
        if target is None:
            return None
        if target not in self._asked:
            self.ask([target])
        if target in self._tracked:
            return None
        real = os.path.join(self.top, target)
        if self._recorded(target, real):
            return None
        ignored = bool(git.ignored(self.root, [target]))
        if not ignored:
            fix = f"git add {rpath(target)}"
        elif self._records_of(target):
            fix = "mlv commit"  # an edited output mlv.lock records, or a pointer's data
        else:
            fix = f"git add -f {rpath(target)}"
        how = "ignored" if ignored else "untracked"
        hint = f"if it is yours to version, run `{fix}`"
        if target != rel:
            return MlvError(
                f"{rpath(rel)}: a symbolic link to {rpath(target)}, which git does not track "
                f"({how}) and mlv records no such content: its values are not printed",
                hint,
            )
        return MlvError(
            f"{rpath(rel)}: git does not track it ({how}) and mlv records no such content: "
            "its values are not printed",
            hint,
        )

    def _lock_records(self) -> list[tuple[str, str]]:
        if self._records is None:
            self._records = []
            try:
                lock = lockfile.load(self.root)
            except MlvError:  # a broken or linked mlv.lock vouches for nothing
                return self._records
            for stage in lock.stages.values():
                for rec in (*stage.outs, *stage.metrics):
                    self._records.append((rec.path.rstrip("/"), rec.hash))
        return self._records

    def _records_of(self, target: str) -> list[tuple[str, str]]:
        """(path, hash) of what mlv.lock and the pointers record at or above target."""
        records = [r for r in self._lock_records() if _at_or_in(target, r[0])]
        folder = target
        while folder:
            ptr_file = os.path.join(self.top, pointer.pointer_path_for(folder))
            if os.path.isfile(ptr_file):
                try:
                    ptr = pointer.read(ptr_file)
                except MlvError:
                    ptr = None
                if ptr is not None and ptr.path == os.path.basename(folder):
                    records.append((folder, ptr.hash))
            folder = os.path.dirname(folder)
        return records

    def _recorded(self, target: str, real: str) -> bool:
        """target's bytes are those mlv.lock or a pointer records for it (or for a folder
        above it, through that folder's tree in the cache)."""
        for path, hash_id in self._records_of(target):
            if path == target and _file_hash(real, hash_id) == hash_id:
                return True
            inside = target.startswith(path + "/")
            if inside and _in_tree(self.read_object, hash_id, target[len(path) + 1 :], real):
                return True
        return False


def _at_or_in(target: str, path: str) -> bool:
    return target == path or target.startswith(path + "/")


def _file_hash(real: str, recorded: str) -> str | None:
    algo = recorded.partition(":")[0]
    try:
        return hashing.hash_file(algo, real)[0]
    except (KeyError, OSError):
        return None


def _in_tree(read_object: ObjectReader | None, top_hash: str, rest: str, real: str) -> bool:
    """The folder top_hash's tree (from the cache) holds rest with real's bytes."""
    if read_object is None:
        return False
    hash_id = top_hash
    try:
        is_dir = True
        for part in rest.split("/"):
            if not is_dir:
                return False
            entry = tree.decode(read_object(hash_id), f"tree {hash_id}").by_name().get(part)
            if entry is None:
                return False
            hash_id, is_dir = entry.hash, entry.is_dir
        return not is_dir and _file_hash(real, hash_id) == hash_id
    except (MlvError, OSError):
        return False


def repo_objects(repo: Repo) -> ObjectReader:
    """Reads a folder's tree from repo's cache, opened only when a file inside a recorded
    folder asks (a broken cache config then vouches for nothing)."""

    def read(hash_id: str) -> bytes:
        return repo.cache.read_bytes(hash_id)

    return read
