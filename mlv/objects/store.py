"""The content-addressed object store: the local cache.

Object ALGO:HEX lives at <root>/ALGO/HEX[:2]/HEX[2:], read-only, written under a temporary
name and renamed into place, so an object that exists is complete. The store also puts
objects into the workspace ("materialise") with the configured link type, and checks every
object it copies out against its name: a corrupted object is reported, never copied.
"""

from __future__ import annotations

import errno
import mmap
import os
import stat as stat_mod
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from mlv import log
from mlv.errors import (
    CacheError,
    ConfigError,
    MlvError,
    ObjectCorruptError,
    ObjectMissingError,
)
from mlv.objects import hashing
from mlv.objects import writer as writer_mod
from mlv.util import localfs

LINK_TYPES = ("reflink", "copy", "hardlink", "symlink")
DEFAULT_LINK_TYPES = ("reflink", "copy")
OBJECT_MODE = 0o444
# ingest copies files this large while hashing the copy (Cache._copy_hashed)
COPY_BEHIND = 2 * localfs.BEHIND_STEP
# inside Cache.writing(), new small objects beyond this many go to a write helper (starting
# it costs ~20 ms: an add of a few files never does)
WRITER_AFTER = 500
TRUST_EVERY = 10_000  # objects the helper confirmed whose trust records are then recorded
SWEEP_EVERY = 86400.0  # seconds between sweeps of the object folders by ordinary commands


def hash_path_mmap(algo: str, path: str) -> str:
    """Hash a file we own (a fresh temporary) through mmap: the fastest way to read it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size < hashing.SMALL_FILE:
            return hashing.hash_fd(algo, fd)[0]
        hasher = hashing.new_hasher(algo)
        with mmap.mmap(fd, 0, access=mmap.ACCESS_READ) as view:
            hasher.update(view)  # type: ignore[arg-type]
        return f"{algo}:{hasher.hexdigest()}"
    finally:
        os.close(fd)


def check_link_types(value: Sequence[str]) -> tuple[str, ...]:
    types = tuple(value)
    if not types or any(t not in LINK_TYPES for t in types):
        raise ConfigError(
            f"cache.type: invalid value {list(types)!r}",
            f"use one of {', '.join(LINK_TYPES)}, or a list of them tried in order",
        )
    return types


class ObjectTrust(Protocol):
    """Remembers objects whose content was checked (the state database implements it)."""

    def object_trusted(self, hash_id: str, st: os.stat_result) -> bool: ...
    def trust_objects(self, rows: Iterable[tuple[str, os.stat_result]]) -> None: ...
    def distrust_object(self, hash_id: str) -> None: ...


@dataclass
class Cache:
    """A local object store rooted at `root`, writing new objects with algorithm `algo`."""

    root: str
    algo: str
    link_types: tuple[str, ...] = DEFAULT_LINK_TYPES
    trust: ObjectTrust | None = None
    fsync: bool = False  # core.fsync: flush each object to disk before it gets its name
    _dirs: set[str] = field(default_factory=set, repr=False)
    _broken: set[str] = field(default_factory=set, repr=False)
    # inside writing(): small objects may go to a helper process, trees wait for them
    _writing: bool = field(default=False, repr=False)
    _writer: writer_mod.WriteHelper | None = field(default=None, repr=False)
    _written_here: int = field(default=0, repr=False)
    _held_trees: list[tuple[bytes, str]] = field(default_factory=list, repr=False)

    @property
    def tmp_dir(self) -> str:
        return os.path.join(self.root, "tmp")

    def object_path(self, hash_id: str) -> str:
        algo, _, hexpart = hash_id.partition(":")  # one call per file in a checkout: no join
        return f"{self.root}/{algo}/{hexpart[:2]}/{hexpart[2:]}"

    def has(self, hash_id: str) -> bool:
        return os.path.exists(self.object_path(hash_id))

    def _ensure_dir(self, path: str) -> None:
        folder = os.path.dirname(path)
        if folder not in self._dirs:
            os.makedirs(folder, exist_ok=True)
            self._dirs.add(folder)

    def new_tmp(self) -> str:
        """A fresh temporary path inside the cache (same filesystem as the objects)."""
        return self._new_tmp()

    def adopt(self, tmp: str, hash_id: str) -> None:
        """Give a temporary whose content was checked to be hash_id its final name."""
        self._commit_tmp(tmp, hash_id)

    def _new_tmp(self) -> str:
        if self.tmp_dir not in self._dirs:
            os.makedirs(self.tmp_dir, exist_ok=True)
            self._dirs.add(self.tmp_dir)
        return localfs.tmp_name(os.path.join(self.tmp_dir, "obj"))

    def _give_up(self, kind: str, why: object) -> None:
        if kind not in self._broken:
            log.debug(__name__, f"link type {kind} not possible here ({why}); trying the next")
            self._broken.add(kind)

    @property
    def link_type(self) -> str:
        """The first configured link type that has not failed on this filesystem."""
        for kind in self.link_types:
            if kind not in self._broken:
                return kind
        return "copy"

    # ---- writing objects -------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Many new small objects are coming (`mlv add` of a folder): after the first
        WRITER_AFTER of them, a helper process writes some of them while this one reads
        and hashes the next files (objects/writer.py). Trees put meanwhile are held back
        and written at the end, after every object: a tree never names an object that is
        not yet in the cache. After an error nothing held back is written (what the
        helper had been given is still written whole, or not at all)."""
        self._writing, self._written_here, self._held_trees = True, 0, []
        try:
            yield
            self._end_writing()
        finally:
            self._writing = False
            helper, self._writer = self._writer, None
            if helper is not None:
                helper.close()
            self._held_trees = []

    def _end_writing(self) -> None:
        helper = self._writer
        if helper is not None:
            helper.finish()
            for hash_id, dst, data in helper.left:  # the helper failed: written here,
                st = localfs.write_bytes_atomic(dst, data, OBJECT_MODE)  # errors raised
                if self.trust is not None:
                    self.trust.trust_objects([(hash_id, st)])
            self._trust_written(helper)
        held, self._held_trees = self._held_trees, []
        self._writing = False
        for data, hash_id in held:
            self.put_bytes(data, hash_id)

    def _hand_over(self, dst: str, hash_id: str, data: bytes) -> bool:
        """Give a new small object to the write helper (started after WRITER_AFTER objects
        were written here); False: the caller writes it."""
        helper = self._writer
        if helper is None:
            self._written_here += 1
            if self._written_here <= WRITER_AFTER or self.fsync:
                return False
            helper = self._writer = writer_mod.start()
            if helper is None:
                self._writing = False  # no helper here: write everything in-process
                return False
        if len(helper.written) >= TRUST_EVERY:
            self._trust_written(helper)
        return helper.offer(localfs.tmp_name(dst), dst, hash_id, data)

    def _trust_written(self, helper: writer_mod.WriteHelper) -> None:
        """Record the trust records of what the helper confirmed so far, and let them go:
        kept to the end, a million objects' records held ~250 MB (the million-file add
        peaked at 447 MB against 55 MB before the helper)."""
        written, helper.written = helper.written, []
        if self.trust is not None:
            self.trust.trust_objects(
                (h, writer_mod.stat_of(ino, mtime, size)) for h, ino, mtime, size in written
            )

    def put_bytes(self, data: bytes, hash_id: str | None = None, repair: bool = False) -> str:
        """Store data (e.g. a tree object); returns its hash id. repair: data was checked
        to be hash_id, and replaces a damaged copy already in the cache. Inside
        writing(), a new object waits for the end of it (trees name the small objects)."""
        hash_id = hash_id or hashing.hash_bytes(self.algo, data)
        if self._writing and not repair:
            self._held_trees.append((data, hash_id))
            return hash_id
        dst = self.object_path(hash_id)
        if not os.path.exists(dst) or (repair and not self.verify(hash_id)):
            self._ensure_dir(dst)
            localfs.write_bytes_atomic(dst, data, OBJECT_MODE, fsync=self.fsync)
        return hash_id

    def _commit_tmp(self, tmp: str, hash_id: str) -> str:
        dst = self.object_path(hash_id)
        if os.path.exists(dst) and self.is_intact(hash_id):
            os.unlink(tmp)
        else:  # new, or a damaged copy that these good bytes repair
            self._ensure_dir(dst)
            if self.fsync:
                fd = os.open(tmp, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            os.chmod(tmp, OBJECT_MODE)
            os.replace(tmp, dst)
        return dst

    def ingest(self, src: str, size: int, algo: str | None = None, follow: bool = False) -> str:
        """Store the content of workspace file src; returns its hash id.

        With link type hardlink or symlink, src is then replaced by a link to the object
        (read-only, so an edit in place cannot corrupt the cache). With copy or reflink,
        src is left as it is. follow: src is a symbolic link (its target's bytes are stored,
        never the link itself).
        """
        kind = self.link_type
        algo = algo or self.algo
        if size <= hashing.SMALL_FILE and kind in ("copy", "reflink", "hardlink"):
            data = localfs.read_whole(src, size)
            hash_id = hashing.hash_bytes(algo, data)
            dst = self.object_path(hash_id)
            helper = self._writer
            if helper is not None and kind != "hardlink" and dst in helper.pending:
                return hash_id  # the same bytes, on their way into the cache
            if os.path.exists(dst):
                if self.is_intact(hash_id):
                    if kind == "hardlink":
                        self.link_workspace(hash_id, src, "hardlink")
                    return hash_id
                # A damaged object under this name: these bytes repair it, and the
                # workspace file is never linked to the damaged one.
                log.debug(__name__, f"repairing damaged cache object {hash_id}")
                os.unlink(dst)
            self._ensure_dir(dst)
            if kind == "hardlink" and not follow:
                try:
                    localfs.hardlink(src, dst)
                    os.chmod(dst, OBJECT_MODE)
                    return hash_id
                except localfs.LinkUnsupported:
                    self._give_up("hardlink", "unsupported")
            elif kind != "hardlink" and self._writing and self._hand_over(dst, hash_id, data):
                return hash_id  # trusted when the helper confirms it (writing())
            st = localfs.write_bytes_atomic(dst, data, OBJECT_MODE, fsync=self.fsync)
            if self.trust is not None:  # these very bytes were hashed: a later link
                self.trust.trust_objects([(hash_id, st)])  # checkout need not re-read them
            if kind == "hardlink":
                self.link_workspace(hash_id, src, "hardlink")
            return hash_id
        tmp = self._new_tmp()
        try:
            hashed = self._fill_tmp(
                src, tmp, "copy" if follow and kind == "hardlink" else kind, algo
            )
            hash_id = hashed or hash_path_mmap(algo, tmp)
            dst = self._commit_tmp(tmp, hash_id)
        except BaseException:
            _unlink_quiet(tmp)
            raise
        if self.trust is not None:
            self.trust.trust_objects([(hash_id, os.stat(dst))])
        if kind in ("hardlink", "symlink"):
            self.link_workspace(hash_id, src, kind)
        return hash_id

    def _fill_tmp(self, src: str, tmp: str, kind: str, algo: str) -> str | None:
        """Get src's bytes into the cache's temporary tmp as cheaply as the filesystem
        allows. Returns the hash id of tmp's bytes when the copy hashed them as they
        landed, else None (the caller hashes tmp)."""
        if kind in ("hardlink", "symlink") and not os.path.islink(src):
            try:
                localfs.hardlink(src, tmp)
                os.chmod(tmp, OBJECT_MODE)
                return None
            except localfs.LinkUnsupported:
                if kind == "hardlink":
                    self._give_up("hardlink", "unsupported")
        if kind == "reflink" and "reflink" not in self._broken:
            try:
                localfs.copy_to_new(src, tmp, OBJECT_MODE, reflink=True)
                return None
            except localfs.LinkUnsupported:
                self._give_up("reflink", "unsupported")
        return self._copy_hashed(src, tmp, algo)

    def _copy_hashed(self, src: str, tmp: str, algo: str) -> str | None:
        """Copy src into the new temporary tmp. A large file (COPY_BEHIND or more) is
        copied by the kernel in steps by a second thread while this one hashes each step
        of tmp already written (localfs.copy_fd_behind): the hash is of the bytes that
        are in the object, read back from it, never of the source, and the copy and the
        hash overlap. Returns that hash id; None for a smaller file (copied whole, the
        caller hashes it: a thread per file would cost more than it saves)."""
        src_fd = os.open(src, os.O_RDONLY)
        try:
            size = os.fstat(src_fd).st_size
            dst_fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, OBJECT_MODE)
            try:
                if size < COPY_BEHIND:
                    localfs.copy_fd(src_fd, dst_fd, size)
                    return None
                hasher = hashing.new_hasher(algo)

                def hash_written(start: int, end: int) -> None:
                    hashing.update_range(hasher, dst_fd, start, end)

                localfs.copy_fd_behind(src_fd, dst_fd, size, hash_written)
                return f"{algo}:{hasher.hexdigest()}"
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)

    def link_workspace(self, hash_id: str, dst: str, kind: str) -> None:
        """Replace dst by a hard or symbolic link to the object, atomically."""
        obj = self.object_path(hash_id)
        try:
            st = os.lstat(dst)
        except FileNotFoundError:
            pass
        else:
            if kind == "hardlink" and st.st_ino == os.stat(obj).st_ino:
                return
            if kind == "symlink" and stat_mod.S_ISLNK(st.st_mode) and os.readlink(dst) == obj:
                return
        make = localfs.hardlink if kind == "hardlink" else localfs.symlink
        try:
            make(obj, dst)  # the usual case in a checkout: nothing there yet
            return
        except FileExistsError:
            pass
        except localfs.LinkUnsupported:
            self._give_up(kind, "unsupported")
            return
        tmp = localfs.tmp_name(dst)
        try:
            make(obj, tmp)
            os.replace(tmp, dst)
        except localfs.LinkUnsupported:
            self._give_up(kind, "unsupported")
        except BaseException:
            _unlink_quiet(tmp)
            raise

    # ---- reading objects -------------------------------------------------------------

    def read_bytes(self, hash_id: str) -> bytes:
        """An object's content, checked against its name."""
        path = self.object_path(hash_id)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            raise ObjectMissingError(
                f"object {hash_id} is not in the cache",
                "re-add the data with `mlv add`, or copy the object from another cache",
            ) from None
        algo = hashing.algorithm_of(hash_id)
        if hashing.hash_bytes(algo, data) != hash_id:
            self.distrust(hash_id)
            raise self.corrupt(hash_id)
        return data

    def corrupt(self, hash_id: str) -> ObjectCorruptError:
        return ObjectCorruptError(
            f"cache object {hash_id} is corrupt ({self.object_path(hash_id)})",
            "delete it and re-add the data with `mlv add` (that repairs it)",
        )

    def generation(self, algo: str) -> bytes:
        """A digest of the mtimes of the object folders of one algorithm: it changes
        whenever an object is added or removed, by mlv or by hand. ~256 stat calls."""
        base = os.path.join(self.root, algo)
        try:
            with os.scandir(base) as it:
                items = sorted((e.name, e.stat(follow_symlinks=False).st_mtime_ns) for e in it)
        except FileNotFoundError:
            items = []
        return hashing.hash_bytes("xxh128", repr(items).encode()).encode()

    def is_intact(self, hash_id: str) -> bool:
        """verify(), skipped when the object was checked before and its file is unchanged."""
        try:
            st = os.stat(self.object_path(hash_id))
        except FileNotFoundError:
            return False
        return self._intact_at(hash_id, st)

    def _intact_at(self, hash_id: str, st: os.stat_result) -> bool:
        """is_intact() for an object whose file's stat is st."""
        if self.trust is not None and self.trust.object_trusted(hash_id, st):
            return True
        if not self.verify(hash_id):
            return False
        if self.trust is not None:
            self.trust.trust_objects([(hash_id, st)])
        return True

    def verify(self, hash_id: str) -> bool:
        """True when the object exists and its content matches its name (every byte read,
        whatever the trust record says; a damaged object loses its trust record)."""
        path = self.object_path(hash_id)
        try:
            intact = hash_path_mmap(hashing.algorithm_of(hash_id), path) == hash_id
        except FileNotFoundError:
            return False
        if not intact:
            self.distrust(hash_id)
        return intact

    def distrust(self, hash_id: str) -> None:
        """Forget that the object was checked (its bytes were found damaged): later checks
        read it again, and a good copy (`mlv pull`, `mlv add`) may replace it."""
        if self.trust is not None:
            self.trust.distrust_object(hash_id)

    def materialize(self, hash_id: str, dst: str, size: int) -> os.stat_result:
        """Make workspace file dst hold the object's content, replacing dst atomically;
        returns the new file's stat (for the state database).

        Every object is checked against its name before it reaches the workspace: small
        ones as their bytes pass through, large copies by hashing the bytes while they
        are copied (the copy reads them anyway: bit rot that keeps inode, size and mtime
        is caught too). Reflinks read nothing, so they are checked by hashing the new
        file unless the trust record says this very object file was checked before and
        has not changed.
        """
        kind = self.link_type
        if kind in ("hardlink", "symlink"):
            obj = self.object_path(hash_id)
            try:
                obj_st = os.stat(obj)
            except FileNotFoundError:
                raise self.missing(hash_id, dst) from None
            if not self._intact_at(hash_id, obj_st):
                raise self.corrupt(hash_id)
            if kind == "hardlink":
                try:  # the usual case in a checkout: nothing there yet
                    os.link(obj, dst)
                    return obj_st  # the same inode: its ino, size and mtime are dst's
                except FileExistsError:
                    pass
                except OSError as e:
                    if e.errno not in localfs.LINK_UNSUPPORTED:
                        raise
            self.link_workspace(hash_id, dst, kind)
            if kind not in self._broken:
                return os.stat(dst)
            kind = self.link_type
        if size <= hashing.SMALL_FILE and kind != "reflink":
            try:
                data = self.read_bytes(hash_id)
            except ObjectMissingError:
                raise self.missing(hash_id, dst) from None
            return localfs.write_bytes_atomic(dst, data)
        obj = self.object_path(hash_id)
        try:
            obj_st = os.stat(obj)
        except FileNotFoundError:
            raise self.missing(hash_id, dst) from None
        trusted = self.trust is not None and self.trust.object_trusted(hash_id, obj_st)
        tmp = localfs.tmp_name(dst)
        algo = hashing.algorithm_of(hash_id)
        try:
            copied = kind != "reflink"
            if not copied:
                try:
                    localfs.copy_to_new(obj, tmp, 0o666, reflink=True)
                except localfs.LinkUnsupported:
                    self._give_up("reflink", "unsupported")
                    copied = True
            if copied:
                hasher = hashing.new_hasher(algo)
                localfs.copy_to_new(obj, tmp, 0o666, reflink=False, tap=hasher.update)
                intact = f"{algo}:{hasher.hexdigest()}" == hash_id
            else:
                intact = trusted or hash_path_mmap(algo, tmp) == hash_id
            if not intact:
                self.distrust(hash_id)
                raise self.corrupt(hash_id)
            if not trusted and self.trust is not None:
                self.trust.trust_objects([(hash_id, obj_st)])
            st = os.stat(tmp)
            os.replace(tmp, dst)
            return st
        except BaseException:
            _unlink_quiet(tmp)
            raise

    def link_many(
        self, items: Sequence[tuple[str, str, int]]
    ) -> list[os.stat_result | MlvError | OSError]:
        """materialize() of many (hash id, dst, size) at once, for a caller that books them
        in bulk: each file's outcome in order, its stat or the error materialize() raised.
        With hardlinks, that is one stat of the object (its trust record read ahead by the
        caller) and one link per file."""
        return [self._materialized(hash_id, dst, size) for hash_id, dst, size in items]

    def _materialized(
        self, hash_id: str, dst: str, size: int
    ) -> os.stat_result | MlvError | OSError:
        try:
            return self.materialize(hash_id, dst, size)
        except (MlvError, OSError) as e:
            return e

    def write_refused(self, e: OSError, shown: Callable[[str], str] = str) -> CacheError | None:
        """A CacheError naming the cache folder that could not be written when e (permission
        denied, a read-only file system) is about a file or folder inside this cache; None
        when it is about something else (say the workspace file being read). shown: how to
        print a path (relative to the repository, say)."""
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            return None
        root = os.path.abspath(self.root)
        for name in (e.filename, e.filename2):
            if not isinstance(name, str):
                continue
            path = os.path.abspath(name)
            if path != root and not path.startswith(root + os.sep):
                continue
            folder = path if os.path.isdir(path) else os.path.dirname(path)
            reason = (e.strerror or "permission denied").lower()
            return CacheError(
                f"cannot write to the cache folder {shown(folder)}: {reason}",
                f"fix its permissions (`chmod u+w {folder}`), or set another cache with "
                "`mlv cache dir PATH`",
            )
        return None

    def missing(self, hash_id: str, dst: str) -> ObjectMissingError:
        return ObjectMissingError(
            f"object {hash_id} for {dst} is not in the cache",
            "re-add the data where it exists, or copy the object from another cache",
        )

    def remove_stale_tmp(self, stamp: str | None = None, everywhere: bool = False) -> int:
        """Delete the temporaries killed writers left (see localfs.remove_stale_tmp); how
        many. Always in the cache's tmp/ (one folder). In the object folders (small
        objects and trees are written there) at most once a day, which the file stamp
        remembers (in the repository's .mlv/tmp/), so that ordinary commands never walk a
        large cache; in all of them now with everywhere (`mlv gc`, which lists the whole
        cache anyway); never without either."""
        removed = localfs.remove_stale_tmp(self.tmp_dir)
        if not everywhere:
            if stamp is None:
                return removed
            try:
                if time.time() - os.stat(stamp).st_mtime < SWEEP_EVERY:
                    return removed
            except FileNotFoundError:
                pass
            except OSError:
                return removed
        for algo in hashing.ALGORITHMS:
            try:
                with os.scandir(os.path.join(self.root, algo)) as it:
                    shards = [e.path for e in it if e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
            for shard in shards:
                removed += localfs.remove_stale_tmp(shard)
        if stamp is not None:
            try:
                with open(stamp, "w"):
                    pass
                os.utime(stamp)
            except OSError:
                pass  # swept again next time
        if removed:
            log.debug(__name__, f"removed {removed} stale temporaries from the cache")
        return removed


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as e:
        if e.errno != errno.ENOENT:
            pass
