"""mlv.util.localfs: atomic writes, hole-preserving copies, temporaries' clean-up."""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

import pytest
import xxhash

from mlv.util import localfs
from mlv.util.localfs import TMP_MARK

MiB = 1 << 20


def _temps(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(TMP_MARK)]


@pytest.fixture
def d(tmp_path: Path) -> Path:
    folder = tmp_path / "d"
    folder.mkdir()
    return folder


# ---- write_bytes_atomic ---------------------------------------------------------------


def test_write_bytes_atomic_creates_and_replaces(d: Path) -> None:
    dst = d / "f"
    st = localfs.write_bytes_atomic(str(dst), b"one", 0o640)
    assert dst.read_bytes() == b"one"
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o640 & ~_umask()
    assert st.st_ino == os.stat(dst).st_ino and st.st_size == 3
    old_ino = os.stat(dst).st_ino
    localfs.write_bytes_atomic(str(dst), b"two, longer")
    assert dst.read_bytes() == b"two, longer"
    assert os.stat(dst).st_ino != old_ino  # a new file renamed over, not rewritten in place
    localfs.write_text_atomic(str(dst), "thrée")
    assert dst.read_bytes() == "thrée".encode()
    assert _temps(d) == []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_write_bytes_atomic_large(d: Path) -> None:
    data = os.urandom(3 * MiB + 5)
    localfs.write_bytes_atomic(str(d / "big"), data)
    assert (d / "big").read_bytes() == data


def test_failed_write_leaves_no_temporary_and_keeps_old_content(
    d: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = d / "f"
    dst.write_bytes(b"old content")
    real_write = os.write

    def disk_full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(localfs.os, "write", disk_full)
    with pytest.raises(OSError) as info:
        localfs.write_bytes_atomic(str(dst), b"new content")
    monkeypatch.setattr(localfs.os, "write", real_write)
    assert info.value.errno == errno.ENOSPC
    assert dst.read_bytes() == b"old content"
    assert _temps(d) == []


def test_partial_writes_are_completed(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def short_write(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data)[:7])

    monkeypatch.setattr(localfs.os, "write", short_write)
    data = bytes(range(256)) * 10
    localfs.write_bytes_atomic(str(d / "f"), data)
    monkeypatch.undo()
    assert (d / "f").read_bytes() == data


def test_failed_fsync_leaves_no_temporary(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(localfs.os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        localfs.write_bytes_atomic(str(d / "f"), b"x", fsync=True)
    assert not (d / "f").exists()
    assert _temps(d) == []


def test_failed_rename_leaves_no_temporary(d: Path) -> None:
    target = d / "a-directory"
    target.mkdir()
    (target / "inside").write_bytes(b"x")
    with pytest.raises(OSError):
        localfs.write_bytes_atomic(str(target), b"data")
    assert (target / "inside").read_bytes() == b"x"
    assert _temps(d) == []


def test_interrupted_write_leaves_no_temporary(d: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(fd: int, data: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(localfs.os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        localfs.write_bytes_atomic(str(d / "f"), b"data")
    monkeypatch.undo()
    assert list(d.iterdir()) == []


@pytest.mark.parametrize("size", [0, 1, 1000, 65_536, 200_000])
@pytest.mark.parametrize("hint", ["exact", "smaller", "larger", "zero"])
def test_read_whole_reads_every_byte_whatever_the_size_hint(d: Path, size: int, hint: str) -> None:
    data = os.urandom(size)
    f = d / "f.bin"
    f.write_bytes(data)
    told = {"exact": size, "smaller": size // 3, "larger": size * 2 + 5, "zero": 0}[hint]
    assert localfs.read_whole(str(f), told) == data


def test_read_whole_of_a_folder_or_a_missing_file_raises_as_open_does(d: Path) -> None:
    open_fds = len(os.listdir("/proc/self/fd"))
    with pytest.raises(IsADirectoryError):  # os.open opens a folder; its read fails
        localfs.read_whole(str(d), 10)
    with pytest.raises(FileNotFoundError):
        localfs.read_whole(str(d / "nope"), 10)
    assert len(os.listdir("/proc/self/fd")) == open_fds  # no descriptor left behind


def test_tmp_names_are_unique_siblings(d: Path) -> None:
    dst = str(d / ("x" * 200))
    names = {localfs.tmp_name(dst) for _ in range(1000)}
    assert len(names) == 1000
    for name in names:
        head, tail = os.path.split(name)
        assert head == str(d)
        assert tail.startswith(f"{TMP_MARK}{os.getpid()}-")
        assert len(tail.encode()) < 255
    assert os.path.dirname(localfs.tmp_name("relative")) == ""


# ---- copy_fd / copy_to_new ------------------------------------------------------------

# (offset, length) of data regions; everything else is a hole
LAYOUTS = {
    "data-hole-data": (16 * MiB, [(0, 4096), (8 * MiB, 12345)]),
    "hole-first": (16 * MiB, [(5 * MiB, 100), (9 * MiB + 17, 3 * 4096)]),
    "hole-at-end": (32 * MiB, [(0, MiB)]),
    "all-hole": (16 * MiB, []),
    "dense": (2 * MiB + 3, [(0, 2 * MiB + 3)]),
    "empty": (0, []),
}


def _make(path: Path, size: int, regions: list[tuple[int, int]]) -> bytes:
    """Write the file and return its expected content."""
    content = bytearray(size)
    with open(path, "wb") as fh:
        for i, (offset, length) in enumerate(regions):
            chunk = bytes((i * 31 + j) % 251 + 1 for j in range(min(length, 4096)))
            chunk = (chunk * (length // len(chunk) + 1))[:length]
            fh.seek(offset)
            fh.write(chunk)
            content[offset : offset + length] = chunk
        fh.truncate(size)
    return bytes(content)


def _same(path: Path, expected: bytes) -> bool:
    return path.read_bytes() == expected  # a bool: pytest must not diff megabytes


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_copy_fd_keeps_content_and_holes(d: Path, layout: str) -> None:
    size, regions = LAYOUTS[layout]
    src = d / "src"
    expected = _make(src, size, regions)
    dst = d / "dst"
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        localfs.copy_fd(sfd, dfd, size)
    finally:
        os.close(sfd)
        os.close(dfd)
    assert os.stat(dst).st_size == size
    assert _same(dst, expected)
    src_blocks = os.stat(src).st_blocks
    assert os.stat(dst).st_blocks <= src_blocks + 16, (os.stat(dst).st_blocks, src_blocks)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_copy_fd_with_tap_sees_every_byte_and_keeps_holes(d: Path, layout: str) -> None:
    """A tapped copy (hashing while copying) gives the same file, holes included, and the
    tap sees exactly the source's bytes in order, holes as zeros."""
    size, regions = LAYOUTS[layout]
    src = d / "src"
    expected = _make(src, size, regions)
    dst = d / "dst"
    seen = xxhash.xxh3_128()
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        localfs.copy_fd(sfd, dfd, size, tap=seen.update)
    finally:
        os.close(sfd)
        os.close(dfd)
    assert seen.hexdigest() == xxhash.xxh3_128(expected).hexdigest()
    assert _same(dst, expected)
    src_blocks = os.stat(src).st_blocks
    assert os.stat(dst).st_blocks <= src_blocks + 16, (os.stat(dst).st_blocks, src_blocks)


def test_copy_fd_copies_only_size_bytes(d: Path) -> None:
    src = d / "src"
    expected = _make(src, 8 * MiB, [(0, 100), (4 * MiB, 5000)])
    dst = d / "dst"
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        localfs.copy_fd(sfd, dfd, 4 * MiB + 10)
    finally:
        os.close(sfd)
        os.close(dfd)
    assert _same(dst, expected[: 4 * MiB + 10])


def _copy_behind(src: Path, dst: Path, size: int, step: int) -> tuple[str, list[tuple[int, int]]]:
    """copy_fd_behind, hashing dst's bytes in the ranges it hands over: (hash, ranges)."""
    hasher = xxhash.xxh3_128()
    ranges: list[tuple[int, int]] = []

    def behind(start: int, end: int) -> None:
        ranges.append((start, end))
        hasher.update(os.pread(dfd, end - start, start))

    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        localfs.copy_fd_behind(sfd, dfd, size, behind, step=step)
    finally:
        os.close(sfd)
        os.close(dfd)
    return hasher.hexdigest(), ranges


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_copy_fd_behind_hands_over_every_byte_of_the_copy_in_order(d: Path, layout: str) -> None:
    """The copy made by the second thread is the source, holes kept; the ranges handed
    over cover the copy once, in order, and read (from the copy) exactly its bytes."""
    size, regions = LAYOUTS[layout]
    src = d / "src"
    expected = _make(src, size, regions)
    dst = d / "dst"
    digest, ranges = _copy_behind(src, dst, size, step=MiB)
    assert digest == xxhash.xxh3_128(expected).hexdigest()
    assert _same(dst, expected)
    if size:
        assert [r[0] for r in ranges] == [0] + [r[1] for r in ranges[:-1]]
        assert ranges[-1][1] == size
    else:
        assert ranges == []
    assert all(start < end for start, end in ranges)
    src_blocks = os.stat(src).st_blocks
    assert os.stat(dst).st_blocks <= src_blocks + 16, (os.stat(dst).st_blocks, src_blocks)


def test_copy_fd_behind_of_a_shorter_source_leaves_zeros(d: Path) -> None:
    """A source that holds fewer bytes than asked (it shrank): the copy still has size
    bytes, the missing ones zeros, and the bytes handed over are the copy's."""
    src = d / "src"
    src.write_bytes(b"x" * (3 * MiB))
    dst = d / "dst"
    digest, _ = _copy_behind(src, dst, 5 * MiB, step=MiB)
    expected = b"x" * (3 * MiB) + bytes(2 * MiB)
    assert _same(dst, expected)
    assert digest == xxhash.xxh3_128(expected).hexdigest()


def test_copy_fd_behind_stops_the_copy_when_the_reader_fails(d: Path) -> None:
    """An error while hashing stops the copying thread after its step and is raised; no
    thread is left writing to the file (its size stays what copy_fd_behind set)."""
    src = d / "src"
    src.write_bytes(os.urandom(8 * MiB))
    dst = d / "dst"
    calls = []

    def behind(start: int, end: int) -> None:
        calls.append(start)
        raise KeyboardInterrupt

    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with pytest.raises(KeyboardInterrupt):
            localfs.copy_fd_behind(sfd, dfd, 8 * MiB, behind, step=MiB)
        blocks = os.fstat(dfd).st_blocks
        time.sleep(0.05)
        assert os.fstat(dfd).st_blocks == blocks  # nothing copies after it returned
    finally:
        os.close(sfd)
        os.close(dfd)
    assert calls == [0]
    assert os.stat(dst).st_size == 8 * MiB


def test_copy_fd_behind_raises_the_copy_error(d: Path) -> None:
    """The copying thread's error reaches the caller (here: the source's descriptor is
    open for writing only, so the kernel refuses to read it)."""
    src = d / "src"
    src.write_bytes(b"y" * MiB)
    dst = d / "dst"
    sfd = os.open(src, os.O_WRONLY)
    dfd = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with pytest.raises(OSError) as info:
            localfs.copy_fd_behind(sfd, dfd, MiB, lambda a, b: None)
    finally:
        os.close(sfd)
        os.close(dfd)
    assert info.value.errno == errno.EBADF


@pytest.mark.parametrize("layout", ["data-hole-data", "dense", "empty"])
def test_copy_to_new(d: Path, layout: str) -> None:
    size, regions = LAYOUTS[layout]
    src = d / "src"
    expected = _make(src, size, regions)
    dst = d / "dst"
    localfs.copy_to_new(str(src), str(dst), 0o444, reflink=False)
    assert _same(dst, expected)
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o444
    with pytest.raises(FileExistsError):
        localfs.copy_to_new(str(src), str(dst), 0o444, reflink=False)


def test_reflink_unsupported_raises_link_unsupported_and_cleans_up(d: Path) -> None:
    """On ext4 (this machine) FICLONE fails: the caller must get LinkUnsupported (to fall
    back to a copy) and no half-made destination."""
    src = d / "src"
    src.write_bytes(b"x" * 10000)
    dst = d / "dst"
    try:
        localfs.copy_to_new(str(src), str(dst), 0o444, reflink=True)
    except localfs.LinkUnsupported:
        assert not dst.exists()
    else:  # a filesystem with reflinks (btrfs, xfs): then it must be a correct clone
        assert dst.read_bytes() == src.read_bytes()


def test_hardlink_and_symlink(d: Path) -> None:
    src = d / "src"
    src.write_bytes(b"x")
    localfs.hardlink(str(src), str(d / "hl"))
    assert os.stat(d / "hl").st_ino == os.stat(src).st_ino
    localfs.symlink(str(src), str(d / "sl"))
    assert os.readlink(d / "sl") == str(src)
    with pytest.raises(FileExistsError):
        localfs.hardlink(str(src), str(d / "hl"))
    with pytest.raises(FileExistsError):
        localfs.symlink(str(src), str(d / "sl"))


def test_hardlink_of_a_missing_source_is_an_error_not_unsupported(d: Path) -> None:
    with pytest.raises(OSError) as info:
        localfs.hardlink(str(d / "missing"), str(d / "x"))
    assert not isinstance(info.value, localfs.LinkUnsupported)


# ---- remove_stale_tmp -----------------------------------------------------------------


def test_remove_stale_tmp(d: Path) -> None:
    old = time.time() - 2 * 3600
    stale = d / f"{TMP_MARK}123-0-obj"
    fresh = d / f"{TMP_MARK}123-1-obj"
    other_old = d / "not-a-temporary"
    for p in (stale, fresh, other_old):
        p.write_bytes(b"x")
    os.utime(stale, (old, old))
    os.utime(other_old, (old, old))
    stale_link = d / f"{TMP_MARK}9-9-link"
    stale_link.symlink_to(other_old)
    os.utime(stale_link, (old, old), follow_symlinks=False)
    sub = d / "sub"
    sub.mkdir()
    nested = sub / f"{TMP_MARK}1-1-x"
    nested.write_bytes(b"x")
    os.utime(nested, (old, old))

    assert localfs.remove_stale_tmp(str(d)) == 2
    assert not stale.exists()
    assert not os.path.lexists(stale_link)
    assert fresh.exists()
    assert other_old.exists()  # the link's target is untouched
    assert nested.exists()  # not recursive
    assert localfs.remove_stale_tmp(str(d)) == 0
    assert localfs.remove_stale_tmp(str(d), older_than_s=0) == 1
    assert not fresh.exists()


def test_remove_stale_tmp_missing_folder(tmp_path: Path) -> None:
    assert localfs.remove_stale_tmp(str(tmp_path / "nope")) == 0


def test_remove_stale_tmp_keeps_a_fresh_hard_link_to_an_old_file(d: Path) -> None:
    """A workspace file being stored is hard-linked to a temporary first: its mtime is the
    file's (days old), but the link is new (its ctime), so the temporary stays."""
    old = time.time() - 3 * 86400
    workspace_file = d / "data.bin"
    workspace_file.write_bytes(b"x")
    os.utime(workspace_file, (old, old))
    tmp = d / f"{TMP_MARK}5-0-obj"
    os.link(workspace_file, tmp)
    assert localfs.remove_stale_tmp(str(d)) == 0
    assert tmp.exists()
    workspace_file.unlink()  # left alone with its old mtime: a killed writer's
    assert localfs.remove_stale_tmp(str(d)) == 1
