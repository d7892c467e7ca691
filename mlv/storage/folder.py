"""A remote that is a folder: a local disk, an NFS or SMB mount.

Plain os calls rather than fsspec's LocalFileSystem: per object that saves most of the
Python overhead, which is what bounds a push of many small files. Objects are copied
to a temporary name in their final folder and renamed, so a reader never sees half of one.
Work runs in a small thread pool: the copies happen in the kernel, outside the GIL.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from mlv.storage import retry
from mlv.storage.backend import (
    Done,
    ItemResult,
    KeyInfo,
    Missing,
    PermanentError,
    sort_ranges,
)
from mlv.util import localfs

T = TypeVar("T")
SMALL = 1 << 20  # read whole and write at once below this


class FolderBackend:
    listing_page: int | None = None
    read_only = False
    default_jobs = 1  # measured: on 2 cores, threads slow small-file copies down (GIL, contention)

    def __init__(
        self, root: str, url: str | None = None, policy: retry.Policy = retry.DEFAULT
    ) -> None:
        self.policy = policy
        self.root = os.path.abspath(os.path.expanduser(root))
        self.url = url or self.root
        self._dirs: set[str] = set()

    def _path(self, key: str) -> str:
        return os.path.join(self.root, key)

    def _each(
        self,
        items: Sequence[T],
        jobs: int,
        key_of: Callable[[T], str],
        op: Callable[[T], tuple[int, bytes | None]],
        done: Done | None,
    ) -> list[ItemResult]:
        """Run op (retried) on every item; (size, data) or the classified error each."""

        def one(item: T) -> ItemResult:
            key = key_of(item)
            try:
                size, data = retry.call(lambda: op(item), self.policy, what=key)
            except Exception as e:
                return ItemResult(key, 0, _classify(e, self.url))
            if done is not None:
                done(size)
            return ItemResult(key, size, data=data)

        if jobs <= 1 or len(items) < 8:
            return [one(item) for item in items]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(one, items))

    # ---- Backend ------------------------------------------------------------------------

    def exists(self, keys: Sequence[str], jobs: int) -> set[str]:
        return {k for k in keys if os.path.exists(self._path(k))}

    def list_keys(self, prefix: str, limit: int | None = None) -> list[str]:
        if limit is not None and limit <= 0:
            return []
        start = ""
        if prefix and not prefix.endswith("/"):  # a folder and the start of names
            prefix, _, start = prefix.rpartition("/")
            prefix += "/"
        return self._keys(prefix, start, limit)

    def _keys(self, prefix: str, start: str, limit: int | None) -> list[str]:
        base = self._path(prefix)
        found: list[str] = []
        top = True
        for folder, dirs, files in os.walk(base):
            rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
            if top and start:  # only the names of base that begin with start
                dirs[:] = [d for d in dirs if d.startswith(start)]
                files = [f for f in files if f.startswith(start)]
            top = False
            dirs.sort()
            found.extend(f"{rel}/{f}" for f in files if not f.startswith(localfs.TMP_MARK))
            if limit is not None and len(found) >= limit:
                return found[:limit]
        return found

    def list_sizes(self, prefix: str) -> dict[str, int]:
        return {k: info.size for k, info in self.list_info(prefix).items()}

    def list_info(self, prefix: str) -> dict[str, KeyInfo]:
        if prefix and not prefix.endswith("/"):  # a folder and the start of names
            folder = prefix.rpartition("/")[0] + "/"
            return {k: i for k, i in self._infos(folder).items() if k.startswith(prefix)}
        return self._infos(prefix)

    def _infos(self, prefix: str) -> dict[str, KeyInfo]:
        found: dict[str, KeyInfo] = {}
        pending = [self._path(prefix)]
        while pending:
            folder = pending.pop()
            rel = os.path.relpath(folder, self.root).replace(os.sep, "/")
            try:
                with os.scandir(folder) as it:
                    for entry in it:
                        if entry.is_dir(follow_symlinks=False):
                            pending.append(entry.path)
                        elif not entry.name.startswith(localfs.TMP_MARK):
                            try:
                                st = entry.stat()
                            except FileNotFoundError:
                                continue  # deleted meanwhile
                            found[f"{rel}/{entry.name}"] = KeyInfo(st.st_size, st.st_mtime)
            except (FileNotFoundError, NotADirectoryError):
                continue
        return found

    def upload(
        self,
        items: Sequence[tuple[str, str]],
        jobs: int,
        done: Done | None = None,
        move: bool = False,
    ) -> list[ItemResult]:
        return self._each(
            items, jobs, lambda p: p[1], lambda p: (self._put(*p, move=move), None), done
        )

    def write(
        self, items: Sequence[tuple[bytes, str]], jobs: int, done: Done | None = None
    ) -> list[ItemResult]:
        def put(pair: tuple[bytes, str]) -> tuple[int, None]:
            self._put_bytes(*pair)
            return len(pair[0]), None

        return self._each(items, jobs, lambda p: p[1], put, done)

    def _folder_for(self, key: str) -> str:
        dst = self._path(key)
        folder = os.path.dirname(dst)
        if folder not in self._dirs:
            try:
                os.makedirs(folder, exist_ok=True)
            except PermissionError:
                raise
            except OSError as e:
                if e.errno == 28:  # ENOSPC: classified with the others
                    raise
                raise PermanentError(
                    f"remote {self.url}: cannot create the folder {folder} ({e.strerror})",
                    "fix the remote's url (`mlv remote modify NAME url ...`) or create the "
                    "folder's parent",
                ) from None
            localfs.remove_stale_tmp(folder)  # left by killed writers: once per folder
            self._dirs.add(folder)
        return dst

    def _put_bytes(self, data: bytes, key: str) -> None:
        localfs.write_bytes_atomic(self._folder_for(key), data, 0o444)

    def _put(self, local: str, key: str, move: bool = False) -> int:
        size = os.path.getsize(local)
        if size <= SMALL:
            with open(local, "rb") as fh:
                self._put_bytes(fh.read(), key)
            return size
        dst = self._folder_for(key)
        tmp = localfs.tmp_name(dst)
        try:
            try:
                if not move:
                    raise localfs.LinkUnsupported(0, "a copy was asked for")
                localfs.hardlink(local, tmp)  # a temporary given away: no byte copied
                os.chmod(tmp, 0o444)
            except localfs.LinkUnsupported:  # another filesystem, or not a temporary
                localfs.copy_to_new(local, tmp, 0o444, reflink=False)
            os.replace(tmp, dst)
        except BaseException:
            _unlink_quiet(tmp)
            raise
        return size

    def download(
        self, items: Sequence[tuple[str, str]], jobs: int, done: Done | None = None
    ) -> list[ItemResult]:
        return self._each(items, jobs, lambda p: p[0], lambda p: (self._get(*p), None), done)

    def _open(self, key: str) -> tuple[int, int]:
        """(a read-only descriptor, the size) of key's file; Missing when there is none.
        Only a regular file (links followed): a FIFO in the remote's folder would block an
        open or a read forever, a device (/dev/zero) never end; O_NONBLOCK lets the open of
        a FIFO return, and anything else but a folder (that item's failure, IsADirectoryError,
        as an open of it gave) is one PermanentError naming it."""
        path = self._path(key)
        try:
            fd = os.open(path, os.O_RDONLY | _NONBLOCK)
        except (FileNotFoundError, NotADirectoryError):  # a file where a folder would be
            raise Missing(key) from None
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        if stat.S_ISDIR(st.st_mode):  # this item fails, as before; the others go on
            os.close(fd)
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise PermanentError(
                f"remote {self.url}: {key} is not a regular file but {_kind(st.st_mode)}",
                f"remove it from the remote's folder: `rm {path}`",
            )
        return fd, st.st_size

    def _get(self, key: str, local: str) -> int:
        fd, size = self._open(key)
        try:
            _unlink_quiet(local)  # a retry starts afresh
            dst = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                localfs.copy_fd(fd, dst, size)
            except BaseException:
                os.close(dst)
                _unlink_quiet(local)
                raise
            os.close(dst)
        finally:
            os.close(fd)
        return size

    def read(self, keys: Sequence[str], jobs: int, done: Done | None = None) -> list[ItemResult]:
        def get(key: str) -> tuple[int, bytes]:
            data = self._read(key)
            return len(data), data

        return self._each(keys, jobs, lambda k: k, get, done)

    def _read(self, key: str) -> bytes:
        fd, size = self._open(key)
        try:  # os calls, not open(): no isatty/seek probes, a third fewer syscalls
            chunks = [os.read(fd, size + 1)]
            while chunks[-1]:
                chunks.append(os.read(fd, 1 << 20))
            return b"".join(chunks)
        finally:
            os.close(fd)

    def read_head(self, keys: Sequence[str], nbytes: int, jobs: int) -> list[ItemResult]:
        def get(key: str) -> tuple[int, bytes]:
            fd, _ = self._open(key)
            try:
                data = os.read(fd, nbytes)
            finally:
                os.close(fd)
            return len(data), data

        return self._each(keys, jobs, lambda k: k, get, None)

    def copy_ranges(
        self,
        items: Sequence[tuple[str, int, int, int, int]],
        taps: Sequence[localfs.Tap | None] | None = None,
    ) -> list[ItemResult]:
        """Copy byte ranges of keys straight into open local files, (key, start, length,
        file descriptor, offset there): the kernel moves the bytes (copy_file_range), none
        pass through Python. A folder remote's own capability, beside the contract: a
        caller checks what it copied (by the whole file's hash) and has read_ranges.
        taps: one per item, None or called with every byte of that range as it is copied
        (localfs.copy_between), in order."""
        out: list[ItemResult] = []
        opened: dict[str, int] = {}
        try:
            for i, (key, start, length, fd, offset) in enumerate(items):
                try:
                    if key not in opened:
                        opened[key] = self._open(key)[0]
                    try:
                        localfs.copy_between(
                            opened[key], fd, length, start, offset, taps[i] if taps else None
                        )
                    except localfs.ShortSource:
                        raise OSError(f"{key}: shorter than {start + length} bytes") from None
                    out.append(ItemResult(key, length))
                except (FileNotFoundError, NotADirectoryError, Missing):
                    out.append(ItemResult(key, 0, Missing(key)))
                except PermanentError as e:
                    out.append(ItemResult(key, 0, e))
                except OSError as e:
                    out.append(ItemResult(key, 0, _classify(e, self.url)))
        finally:
            for src in opened.values():
                os.close(src)
        return out

    def read_ranges(
        self, items: Sequence[tuple[str, int, int]], jobs: int, done: Done | None = None
    ) -> list[ItemResult]:
        """Each key opened once, each range one pread of at most the bytes the file holds
        from start (so an absurd length allocates nothing)."""
        out, wanted = sort_ranges(items)

        def ranges_of(key: str) -> list[bytes]:
            fd, size = self._open(key)
            try:
                got = []
                for i in wanted[key]:
                    _, start, length = items[i]
                    n = min(length, max(0, size - start))
                    got.append(os.pread(fd, n, start) if n else b"")
                return got
            finally:
                os.close(fd)

        def one(key: str) -> None:
            try:
                got = retry.call(lambda: ranges_of(key), self.policy, what=key)
            except Exception as e:
                error = _classify(e, self.url)
                for i in wanted[key]:
                    out[i] = ItemResult(key, 0, error)
                return
            for i, data in zip(wanted[key], got, strict=True):
                out[i] = ItemResult(key, len(data), data=data)
            if done is not None:
                done(sum(len(data) for data in got))

        if jobs <= 1 or len(wanted) < 8:
            for key in wanted:
                one(key)
        else:
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                list(pool.map(one, wanted))
        return [r for r in out if r is not None]

    def delete(self, keys: Sequence[str], jobs: int) -> list[ItemResult]:
        results = []
        for key in keys:
            try:
                os.unlink(self._path(key))
                results.append(ItemResult(key))
            except FileNotFoundError:
                results.append(ItemResult(key))
            except OSError as e:
                results.append(ItemResult(key, 0, _classify(e, self.url)))
        return results

    def remove_stale_tmp(self) -> int:
        """Delete the temporaries killed writers left anywhere on the remote (see
        localfs.remove_stale_tmp); how many. A write already cleans the folder it writes
        into; `mlv gc --remote` cleans them all."""
        removed = 0
        for folder, dirs, _ in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(localfs.TMP_MARK)]
            removed += localfs.remove_stale_tmp(folder)
        return removed

    def close(self) -> None:
        pass


_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # Windows has no FIFOs to block on


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a file"


def _classify(e: BaseException, url: str) -> BaseException:
    if isinstance(e, PermissionError):
        return PermanentError(
            f"remote {url}: permission denied ({e.filename or e})",
            "check the folder's permissions",
        )
    if isinstance(e, OSError) and e.errno == 28:  # ENOSPC
        return PermanentError(f"remote {url}: no space left on the device")
    return e


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
