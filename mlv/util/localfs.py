"""Local file operations that never leave a half-written file under a final name.

Every write goes to a temporary name in the destination's folder and is renamed into place,
so a killed process leaves at most a stray temporary (cleaned up later), never a truncated
file that looks complete. Copies keep holes of sparse files and use the kernel's
copy_file_range; reflinks use the FICLONE ioctl where the filesystem has it.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import stat as stat_mod
import threading
from collections.abc import Callable, Iterator

TMP_MARK = ".mlvtmp-"
_FICLONE = 0x40049409
_counter = itertools.count()
# copy_fd with a tap: every byte passes through one reused buffer per thread, 128 KiB at a
# time. Measured on this project's VM (ext4): as fast as copy_file_range alone, with the
# same CPU time; with 1-4 MiB writes the kernel spent 4-5x more system time copying into
# fresh page-cache folios (docs/performance.md).
TAP_CHUNK = 128 << 10
_ZEROS = bytes(1 << 20)
_local = threading.local()

Tap = Callable[[memoryview], None]  # sees every byte copied, in order


class LinkUnsupported(OSError):
    """The filesystem cannot make this kind of link here; try the next link type."""


SMALL_FILE_LIMIT = 64 << 20  # the most mlv reads of a file it parses (read_small)


def read_small(path: str, limit: int = SMALL_FILE_LIMIT) -> bytes:
    """The bytes of a file that mlv parses (pointer, config, mlv.yaml, mlv.lock, params,
    metrics, ignore rules), which a clone may have committed as a symbolic link: anything
    but a regular file (a link to /dev/zero, /dev/urandom or a FIFO, which would never end
    or never answer) and more than limit bytes are refused with an OSError naming path,
    before anything is read. A folder raises IsADirectoryError, as open() does."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not block
    with os.fdopen(fd, "rb") as fh:
        mode = os.fstat(fd).st_mode
        if stat_mod.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
        if not stat_mod.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit >> 20} MiB, not read", path)
    return data


def read_whole(path: str, size: int) -> bytes:
    """Every byte of a small file whose size a stat just gave, in as few system calls as
    that allows: open, read(size + 1), the read that finds the end, close. A buffered
    open() adds an fstat, two lseeks and an isatty ioctl, ~4 us of the ~9 a 1 KiB file
    cost (`mlv add` reads each small file whole: docs/performance.md, issue 17). The
    size is a hint: a file that grew or shrank since is read to its end all the same."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        data = os.read(fd, size + 1)
        if not data:
            return data
        more = os.read(fd, max(size, 1 << 16))
        if not more:
            return data
        parts = [data, more]
        while more := os.read(fd, 1 << 16):
            parts.append(more)
        return b"".join(parts)
    finally:
        os.close(fd)


def write_bytes_atomic(
    dst: str, data: bytes, mode: int = 0o666, fsync: bool = False
) -> os.stat_result:
    """Write data to dst via a temporary file and rename (dst replaced if present);
    returns the file's stat."""
    tmp = tmp_name(dst)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            n = os.write(fd, data)
            if n < len(data):
                view = memoryview(data)[n:]
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
            if fsync:
                os.fsync(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        os.replace(tmp, dst)
        return st
    except BaseException:
        _unlink_quiet(tmp)
        raise


def write_text_atomic(dst: str, text: str) -> None:
    write_bytes_atomic(dst, text.encode("utf-8"))


def tmp_name(dst: str) -> str:
    """A temporary sibling of dst that no other process or thread will pick."""
    cut = dst.rfind("/") + 1
    return f"{dst[:cut]}{TMP_MARK}{os.getpid()}-{next(_counter)}-{dst[cut : cut + 40]}"


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _copy_range(src_fd: int, dst_fd: int, offset: int, length: int) -> None:
    end = offset + length
    while offset < end:
        try:
            n = os.copy_file_range(src_fd, dst_fd, end - offset, offset, offset)
        except OSError as e:  # pragma: no cover - very old kernels or odd filesystems
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            _copy_range_plain(src_fd, dst_fd, offset, end - offset)
            return
        if n == 0:
            break  # the source shrank while copying; the caller's hash check notices
        offset += n


FOLIO = 64 << 10  # copy_between starts its long copies on this boundary of the file written


class ShortSource(OSError):
    """A copy's source holds fewer bytes than the range asked for."""


def copy_between(
    src_fd: int, dst_fd: int, length: int, at: int, to: int, tap: Tap | None = None
) -> None:
    """Copy length bytes from offset at of src_fd to offset to of dst_fd, by the kernel
    (copy_file_range); ShortSource when src_fd holds fewer bytes. The first call ends where
    `to` is a multiple of FOLIO and the rest go from there: the page cache then fills
    whole large folios (a long copy starting mid-folio measured 1.4x slower here); a copy
    whose source sits at the same offset modulo the page size moves whole pages.

    tap: called with every byte copied, in order (to hash while copying): the bytes then
    pass through one reused buffer, TAP_STEP at a time, each write ending on a multiple of
    TAP_STEP of the file written (docs/performance.md, issue 16: as fast as the kernel's
    copy, and no pass to read the file again)."""
    if tap is not None:
        _copy_between_tapped(src_fd, dst_fd, length, at, to, tap)
        return
    while length:
        step = min(length, -to % FOLIO) or length
        n = os.copy_file_range(src_fd, dst_fd, step, at, to)
        if n == 0:
            raise ShortSource(f"source ends {length} bytes short of the copy")
        at, to, length = at + n, to + n, length - n


TAP_STEP = 256 << 10  # copy_between's reads and writes through a tap


def _copy_between_tapped(src_fd: int, dst_fd: int, length: int, at: int, to: int, tap: Tap) -> None:
    buf = _step_buffer()
    while length:
        want = min(length, -to % TAP_STEP or TAP_STEP)
        n = os.preadv(src_fd, [buf[:want]], at)
        if n == 0:
            raise ShortSource(f"source ends {length} bytes short of the copy")
        chunk = buf[:n]
        tap(chunk)
        written = 0
        while written < n:
            written += os.pwrite(dst_fd, chunk[written:], to + written)
        at, to, length = at + n, to + n, length - n


def _step_buffer() -> memoryview:
    buf = getattr(_local, "step", None)
    if buf is None:
        buf = _local.step = memoryview(bytearray(TAP_STEP))
    return buf


def _copy_range_plain(src_fd: int, dst_fd: int, offset: int, length: int) -> None:
    end = offset + length
    while offset < end:
        chunk = os.pread(src_fd, min(4 << 20, end - offset), offset)
        if not chunk:
            break
        os.pwrite(dst_fd, chunk, offset)
        offset += len(chunk)


def _tap_buffer() -> memoryview:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = memoryview(bytearray(TAP_CHUNK))
    return buf


def _copy_range_tapped(src_fd: int, dst_fd: int, offset: int, length: int, tap: Tap) -> None:
    """Copy through a buffer that tap sees: the bytes are read once, by us."""
    buf = _tap_buffer()
    end = offset + length
    while offset < end:
        n = os.preadv(src_fd, [buf[: min(TAP_CHUNK, end - offset)]], offset)
        if n == 0:
            break  # the source shrank while copying; what tap saw tells the caller
        chunk = buf[:n]
        tap(chunk)
        written = 0
        while written < n:
            written += os.pwrite(dst_fd, chunk[written:], offset + written)
        offset += n


def _tap_zeros(tap: Tap, length: int) -> None:
    """A hole reads as zeros: tap sees them, nothing is written."""
    zeros = memoryview(_ZEROS)
    while length > 0:
        n = min(length, len(zeros))
        tap(zeros[:n])
        length -= n


def copy_fd(src_fd: int, dst_fd: int, size: int, tap: Tap | None = None) -> None:
    """Copy size bytes, skipping holes so that sparse files stay sparse. tap: called with
    every byte of the source in order (holes as zeros), e.g. to hash while copying; the
    copy then reads the bytes itself instead of leaving them to copy_file_range."""

    def copy(offset: int, length: int) -> None:
        if tap is None:
            _copy_range(src_fd, dst_fd, offset, length)
        else:
            _copy_range_tapped(src_fd, dst_fd, offset, length, tap)

    offset = 0
    try:
        while offset < size:
            data = os.lseek(src_fd, offset, os.SEEK_DATA)
            if tap is not None:
                _tap_zeros(tap, min(data, size) - offset)
            hole = os.lseek(src_fd, data, os.SEEK_HOLE)
            copy(data, min(hole, size) - data)
            offset = hole
    except OSError as e:
        if e.errno == errno.ENXIO:  # no more data after offset: the rest is a hole
            if tap is not None:
                _tap_zeros(tap, size - offset)
        elif e.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # no SEEK_DATA support
            copy(offset, size - offset)
        else:
            raise
    os.ftruncate(dst_fd, size)


BEHIND_STEP = 8 << 20  # copy_fd_behind's steps: ~3 ms of kernel copy each here


def _data_ranges(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The (start, end) ranges of fd's first size bytes that hold data, in order; holes
    are left out (a filesystem without SEEK_DATA: one range, all of it)."""
    offset = 0
    while offset < size:
        try:
            data = os.lseek(fd, offset, os.SEEK_DATA)
            hole = os.lseek(fd, data, os.SEEK_HOLE)
        except OSError as e:
            if e.errno == errno.ENXIO:  # no data after offset: the rest is a hole
                return
            if e.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # no SEEK_DATA support
                yield offset, size
                return
            raise
        if data >= size:
            return
        yield data, min(hole, size)
        offset = hole


def copy_fd_behind(
    src_fd: int,
    dst_fd: int,
    size: int,
    behind: Callable[[int, int], None],
    step: int = BEHIND_STEP,
) -> None:
    """copy_fd of size bytes (holes kept), made by a second thread in steps while this
    thread calls behind(start, end), in order, for each range of dst that is final: to
    hash the bytes that landed in the copy as the next step is being copied (a kernel
    copy and a hash of the same large file take a core each; measured on this project's
    VM, 512 MiB: 0.17 s instead of 0.21 s one after the other, docs/performance.md).

    dst is given its size first, so holes and whatever a shrinking source leaves out read
    as zeros from the start; steps end on multiples of step. Memory: none of ours (the
    kernel copies). An error of the copy is raised here; an exception in behind (or an
    interrupt) stops the copy after its current step, before this returns."""
    os.ftruncate(dst_fd, size)
    cond = threading.Condition()
    state = {"done": 0, "over": False, "stop": False}
    failure: list[BaseException] = []

    def copier() -> None:
        try:
            for start, end in _data_ranges(src_fd, size):
                while start < end:
                    if state["stop"]:
                        return
                    n = min(end - start, step - start % step)
                    _copy_range(src_fd, dst_fd, start, n)  # a short source: zeros remain
                    start += n
                    with cond:
                        state["done"] = start
                        cond.notify()
        except BaseException as e:  # handed to the caller's thread
            failure.append(e)
        finally:
            with cond:
                state["over"] = True
                cond.notify()

    worker = threading.Thread(target=copier, name="mlv-copy", daemon=True)
    worker.start()
    try:
        pos = 0
        while pos < size:
            with cond:
                while state["done"] <= pos and not state["over"]:
                    cond.wait()
                upto = size if state["over"] and not failure else state["done"]
            if failure:
                break
            if upto > pos:
                behind(pos, upto)
                pos = upto
    finally:
        state["stop"] = True
        worker.join()
    if failure:
        raise failure[0]


def clone_fd(src_fd: int, dst_fd: int) -> None:
    """Reflink (copy-on-write clone); raises LinkUnsupported where the filesystem lacks it."""
    try:
        fcntl.ioctl(dst_fd, _FICLONE, src_fd)
    except OSError as e:
        raise LinkUnsupported(e.errno, f"reflink not supported: {e.strerror}") from None


def copy_to_new(src: str, dst: str, mode: int, reflink: bool, tap: Tap | None = None) -> None:
    """Create dst (which must not exist) as a copy or reflink of src. tap (copies only):
    sees every byte copied, see copy_fd."""
    assert not (reflink and tap), "a reflink reads nothing that a tap could see"
    src_fd = os.open(src, os.O_RDONLY)
    try:
        size = os.fstat(src_fd).st_size
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            if reflink:
                clone_fd(src_fd, dst_fd)
            else:
                copy_fd(src_fd, dst_fd, size, tap)
        except BaseException:
            os.close(dst_fd)
            _unlink_quiet(dst)
            raise
        os.close(dst_fd)
    finally:
        os.close(src_fd)


LINK_UNSUPPORTED = (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP)


def hardlink(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError as e:
        if e.errno in LINK_UNSUPPORTED:
            raise LinkUnsupported(e.errno, f"hardlink not possible: {e.strerror}") from None
        raise


def symlink(src: str, dst: str) -> None:
    try:
        os.symlink(src, dst)
    except OSError as e:
        if e.errno in (errno.EPERM, errno.EOPNOTSUPP):
            raise LinkUnsupported(e.errno, f"symlink not possible: {e.strerror}") from None
        raise


STALE_TMP_AGE = 3600.0  # seconds: a temporary untouched this long lost its writer


def remove_stale_tmp(folder: str, older_than_s: float = STALE_TMP_AGE) -> int:
    """Delete temporaries a killed mlv left behind in folder (not recursive): those not
    changed for older_than_s. Age decides, not the pid in the name: a shared cache or a
    folder remote on NFS is written from other hosts, whose pids mean nothing here, and a
    writer touches its temporary as it writes. A temporary with other hard links is a
    workspace file being stored, whose mtime is the file's, however old: the link's own
    time (ctime) counts for it too."""
    import time

    removed = 0
    limit = time.time() - older_than_s
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.startswith(TMP_MARK):
            try:
                st = entry.stat(follow_symlinks=False)
                changed = max(st.st_mtime, st.st_ctime) if st.st_nlink > 1 else st.st_mtime
                if changed < limit:
                    os.unlink(entry.path)
                    removed += 1
            except OSError:
                pass
    return removed
