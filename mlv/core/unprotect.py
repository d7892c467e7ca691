"""`mlv unprotect`: swap linked workspace files (hardlink/symlink into the cache, read-only)
for writable copies, so they can be edited without touching the cache.

A symbolic link is replaced only when it is one of mlv's own (cache type `symlink`): a link
whose target, resolved fully, is an object file of this cache. It is replaced by a copy of
that object, checked against its hash while it is copied; never by a copy of whatever a link
points to. A link that git tracks and that leads out of the work tree (or into .git or .mlv)
is refused, as add, commit and status refuse it (docs/security.md): a clone's
`data/model.bin -> ~/.ssh/id_rsa` must not become a regular file that `mlv commit` records
and `mlv push` sends. Any other link (one the user made to a file of theirs) is left as it
is: an edit through it never reaches the cache.

The files walked are those the scanner tracks: `.mlvignore` rules, mlv's temporaries and
anything git takes for `.git` are skipped.
"""

from __future__ import annotations

import os
import shlex
import stat as stat_mod

from mlv.core import safepaths, targets, workspace
from mlv.core.repo import Repo
from mlv.errors import ObjectCorruptError, ObjectMissingError, rpath
from mlv.objects import hashing
from mlv.objects.ignore import IgnoreRules
from mlv.objects.names import is_git_name
from mlv.util import localfs


class _Unprotector:
    """Unprotects the files of one command, remembering what every link check needs."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.root = os.path.realpath(repo.root)
        self.cache_root = os.path.realpath(repo.cache.root)
        self.folders: set[str] = set()  # real folders met while resolving links
        self.done: list[str] = []
        self.left: list[str] = []  # links that do not lead to a cache object: kept

    def path(self, rel: str) -> None:
        """Unprotect every file at or below rel."""
        safepaths.check_data(self.repo.root, rel)  # never a copy written through a link
        top = self.repo.abs(rel)
        if os.path.isdir(top) and not os.path.islink(top):
            self._walk(top, rel)
        elif os.path.lexists(top):
            self._file(top, rel, False)

    def _walk(self, top: str, rel: str) -> None:
        rules_above = workspace.ignore_rules_above(self.repo, rel)
        rules: dict[str, IgnoreRules] = {}
        for folder, dirs, files in os.walk(top):
            folder_rel = self.repo.rel(folder)
            parent = folder_rel.rpartition("/")[0] if folder_rel != rel else None
            base = rules_above if parent is None else rules[parent]
            here = rules[folder_rel] = workspace.with_ignore_file(self.repo.root, base, folder_rel)
            prefix = folder_rel + "/"
            kept = []
            for name in sorted(dirs):
                if self._skipped(name) or (here and here.is_ignored(prefix + name, True)):
                    continue
                if os.path.islink(os.path.join(folder, name)):  # never walked; not a clone's
                    self._check_link(prefix + name, True)  # way out either
                    continue
                kept.append(name)
            dirs[:] = kept
            for name in sorted(files):
                if self._skipped(name) or (here and here.is_ignored(prefix + name, False)):
                    continue
                self._file(os.path.join(folder, name), prefix + name, True)

    @staticmethod
    def _skipped(name: str) -> bool:
        """Names the scanner never tracks: mlv's temporaries and what git takes for .git."""
        return name.startswith(localfs.TMP_MARK) or is_git_name(name)

    def _check_link(self, rel: str, inside_dir: bool) -> str:
        """Refuse rel (a symbolic link) when a link that git tracks leads it out of the work
        tree or into .git or .mlv; returns its real path."""
        real, links = workspace.resolve(self.root, rel, self.folders)
        if links:
            workspace.refuse_tracked_link_out(self.root, rel, real, links, inside_dir)
        return real

    def _file(self, path: str, rel: str, inside_dir: bool) -> None:
        st = os.lstat(path)
        if stat_mod.S_ISLNK(st.st_mode):
            real = self._check_link(rel, inside_dir)
            hash_id = self._object_of(real)
            if hash_id is None:
                self.left.append(rel)
                return
            self._copy_object(hash_id, path, rel)
        elif stat_mod.S_ISREG(st.st_mode) and (
            st.st_nlink > 1 or not st.st_mode & stat_mod.S_IWUSR
        ):
            _replace_by_copy(path, path, None)
        else:
            return
        self.done.append(rel)

    def _object_of(self, real: str) -> str | None:
        """The hash id of the cache object at real path real, None when real is none."""
        prefix = self.cache_root + "/"
        if not real.startswith(prefix):
            return None
        parts = real[len(prefix) :].split("/")
        if len(parts) != 3 or len(parts[1]) != 2:
            return None
        hash_id = f"{parts[0]}:{parts[1]}{parts[2]}"
        return hash_id if hashing.is_hash(hash_id) else None

    def _copy_object(self, hash_id: str, path: str, rel: str) -> None:
        cache = self.repo.cache
        obj = cache.object_path(hash_id)
        again = f"`mlv pull {rpath(rel)}`, which fetches"
        if not os.path.isfile(obj):
            raise ObjectMissingError(
                f"{rpath(rel)}: links to cache object {hash_id}, which is not in the cache: "
                "not copied",
                f"run {again} it",
            )
        if not _replace_by_copy(obj, path, hash_id):
            cache.distrust(hash_id)
            raise ObjectCorruptError(
                f"{rpath(rel)}: links to cache object {hash_id}, which is damaged ({obj}): "
                "not copied",
                f"delete it (`rm {shlex.quote(obj)}`) and run {again} a good copy",
            )


def _replace_by_copy(src: str, path: str, hash_id: str | None) -> bool:
    """Replace path by a private writable copy of src. hash_id: what src's bytes must hash
    to (hashed as they are copied); False, and path left as it was, when they do not."""
    tmp = localfs.tmp_name(path)
    try:
        if hash_id is None:
            localfs.copy_to_new(src, tmp, 0o666, reflink=False)
        else:
            algo = hashing.algorithm_of(hash_id)
            hasher = hashing.new_hasher(algo)
            localfs.copy_to_new(src, tmp, 0o666, reflink=False, tap=hasher.update)
            if f"{algo}:{hasher.hexdigest()}" != hash_id:
                os.unlink(tmp)
                return False
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return True


def unprotect_path(repo: Repo, rel: str) -> list[str]:
    """Unprotect every file at or below rel (the caller holds the lock); returns those
    that were replaced by copies."""
    work = _Unprotector(repo)
    work.path(rel)
    return work.done


def unprotect(repo: Repo, paths: list[str]) -> tuple[list[str], list[str]]:
    """Unprotect the targets paths name; returns (the files replaced by copies, the symbolic
    links left as they are because they do not lead to a cache object)."""
    with repo.lock():
        chosen = targets.resolve(repo, paths)
        work = _Unprotector(repo)
        for t in chosen:
            work.path(t.rel)
        return work.done, work.left
