"""mlv.objects.store.Cache: object layout, ingest and materialise for every link type,
corruption detection and sparse files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import xxhash

from mlv.errors import ConfigError, ObjectCorruptError, ObjectMissingError
from mlv.objects import hashing
from mlv.objects.state import StateDB
from mlv.objects.store import COPY_BEHIND, OBJECT_MODE, Cache, check_link_types
from mlv.util import localfs

SMALL = 1000
LARGE = hashing.SMALL_FILE + 12345
HUGE = COPY_BEHIND + 12345  # copied by a second thread while the copy is hashed
SIZES = [0, SMALL, hashing.SMALL_FILE, LARGE, HUGE]
KINDS = ["copy", "hardlink", "symlink", "reflink"]


def _data(size: int, salt: bytes = b"") -> bytes:
    seed = xxhash.xxh3_128_digest(salt + str(size).encode())
    return (seed * (size // 16 + 1))[:size]


def _id(data: bytes, algo: str = "xxh128") -> str:
    return hashing.hash_bytes(algo, data)


def _content(path: str | Path) -> str:
    """The content's hash: compared instead of the bytes, which pytest would diff slowly."""
    with open(path, "rb") as fh:
        return _id(fh.read())


def _mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _tmp_leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if localfs.TMP_MARK in p.name]


def _tamper(path: str, same_size: bool = True) -> None:
    """Change an object's bytes in place (as a disk error or a careless edit would)."""
    os.chmod(path, 0o644)
    with open(path, "r+b") as fh:
        first = fh.read(1)
        fh.seek(0)
        if same_size and first:
            fh.write(bytes([first[0] ^ 0xFF]))
        else:
            fh.write(b"tampered!")
    os.chmod(path, OBJECT_MODE)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    d.mkdir()
    return d


def _cache(tmp_path: Path, kind: str = "copy", **kw: object) -> Cache:
    return Cache(str(tmp_path / "cache"), "xxh128", (kind,), **kw)  # type: ignore[arg-type]


# ---- layout ---------------------------------------------------------------------------


def test_object_path_layout(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    hexpart = "ab" + "cdef" * 7 + "01"
    assert cache.object_path(f"xxh128:{hexpart}") == os.path.join(
        cache.root, "xxh128", "ab", hexpart[2:]
    )
    shex = "0f" + "1" * 62
    assert cache.object_path(f"sha256:{shex}") == os.path.join(cache.root, "sha256", "0f", "1" * 62)


@pytest.mark.parametrize("algo", hashing.ALGORITHMS)
def test_put_bytes_layout_and_read_only(tmp_path: Path, algo: str) -> None:
    cache = Cache(str(tmp_path / "cache"), algo)
    data = b"tree object bytes"
    hash_id = cache.put_bytes(data)
    assert hash_id == _id(data, algo)
    _, hexpart = hashing.split(hash_id)
    path = tmp_path / "cache" / algo / hexpart[:2] / hexpart[2:]
    assert path.read_bytes() == data
    assert cache.has(hash_id)
    assert _mode(path) == 0o444
    assert not cache.has(_id(b"other", algo))
    assert cache.read_bytes(hash_id) == data
    assert cache.verify(hash_id)
    # idempotent: a second put neither fails nor rewrites the object
    ino = os.stat(path).st_ino
    assert cache.put_bytes(data) == hash_id
    assert os.stat(path).st_ino == ino
    assert _tmp_leftovers(tmp_path) == []


def test_object_is_what_xxh128sum_would_check(tmp_path: Path) -> None:
    """The file name is the hex of the file's own XXH3-128 (plain tools can check it)."""
    cache = _cache(tmp_path)
    hash_id = cache.put_bytes(b"some content")
    path = cache.object_path(hash_id)
    name = os.path.basename(os.path.dirname(path)) + os.path.basename(path)
    with open(path, "rb") as fh:
        assert xxhash.xxh3_128_hexdigest(fh.read()) == name


def test_read_bytes_missing_and_corrupt(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    with pytest.raises(ObjectMissingError, match="not in the cache"):
        cache.read_bytes(_id(b"absent"))
    hash_id = cache.put_bytes(b"hello world")
    _tamper(cache.object_path(hash_id))
    with pytest.raises(ObjectCorruptError) as info:
        cache.read_bytes(hash_id)
    assert hash_id in str(info.value) and "corrupt" in str(info.value)
    assert not cache.verify(hash_id)
    assert not cache.verify(_id(b"absent"))


def test_check_link_types() -> None:
    assert check_link_types(["hardlink", "copy"]) == ("hardlink", "copy")
    for bad in ([], ["copy", "move"], ["Copy"]):
        with pytest.raises(ConfigError, match=r"cache\.type"):
            check_link_types(bad)


# ---- ingest ---------------------------------------------------------------------------


@pytest.mark.parametrize("told", [0, 1, SMALL - 1, SMALL + 1, hashing.SMALL_FILE])
def test_ingest_of_a_small_file_stores_all_of_it_whatever_size_the_scan_saw(
    tmp_path: Path, ws: Path, told: int
) -> None:
    """The scan's stat gives the size, and the file may grow or shrink before it is read:
    the object holds every byte there is at the read, named by their hash (the size only
    tells how much to ask for at once)."""
    cache = _cache(tmp_path, "copy")
    data = _data(SMALL) + _data(70_000, b"grown")  # past the 64 KiB of one further read
    src = ws / "changing.bin"
    src.write_bytes(data)

    hash_id = cache.ingest(str(src), told)

    assert hash_id == _id(data)
    assert Path(cache.object_path(hash_id)).read_bytes() == data


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_ingest(tmp_path: Path, ws: Path, kind: str, size: int) -> None:
    cache = _cache(tmp_path, kind)
    data = _data(size)
    src = ws / "file name é.bin"
    src.write_bytes(data)
    os.chmod(src, 0o640)
    before = os.stat(src)

    hash_id = cache.ingest(str(src), size)

    assert hash_id == _id(data)
    obj = cache.object_path(hash_id)
    assert _content(Path(obj)) == _id(data)
    assert _mode(obj) == 0o444
    assert not os.path.islink(obj)
    assert _content(src) == _id(data)
    if kind in ("copy", "reflink"):
        # src is left exactly as it was: same inode, still writable by its owner
        after = os.lstat(src)
        assert stat.S_ISREG(after.st_mode)
        assert after.st_ino == before.st_ino
        assert stat.S_IMODE(after.st_mode) == 0o640
        assert os.stat(obj).st_ino != before.st_ino  # an independent copy
    elif kind == "hardlink":
        after = os.lstat(src)
        assert stat.S_ISREG(after.st_mode)
        assert after.st_ino == os.stat(obj).st_ino
        assert stat.S_IMODE(after.st_mode) & 0o222 == 0  # read-only
    else:
        assert os.path.islink(src)
        assert os.readlink(src) == obj
        assert os.path.isabs(os.readlink(src))
        assert _mode(src) & 0o222 == 0  # the target (the object) is read-only
    assert _tmp_leftovers(tmp_path) == []


@pytest.mark.parametrize("size", [SMALL, LARGE])
@pytest.mark.parametrize("kind", KINDS)
def test_ingest_same_content_twice(tmp_path: Path, ws: Path, kind: str, size: int) -> None:
    cache = _cache(tmp_path, kind)
    data = _data(size)
    a, b = ws / "a", ws / "b"
    a.write_bytes(data)
    b.write_bytes(data)
    ha = cache.ingest(str(a), size)
    obj_ino = os.stat(cache.object_path(ha)).st_ino
    hb = cache.ingest(str(b), size)
    assert ha == hb
    assert os.stat(cache.object_path(ha)).st_ino == obj_ino  # the object was not replaced
    assert _content(a) == _content(b) == _id(data)
    if kind == "hardlink":
        assert os.stat(a).st_ino == os.stat(b).st_ino == obj_ino
    if kind == "symlink":
        assert os.readlink(a) == os.readlink(b) == cache.object_path(ha)
    assert _tmp_leftovers(tmp_path) == []


def test_ingest_of_a_large_copy_names_the_bytes_in_the_object(
    tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large file's hash is of the bytes that landed in the object, read back from it,
    never of the source: a copy that went wrong (simulated: the kernel's copy writes
    other bytes) gives an object whose name matches its content, and the trust record
    is of that object."""
    data = _data(HUGE)
    src = ws / "big.bin"
    src.write_bytes(data)
    real = localfs._copy_range

    def bad_copy(src_fd: int, dst_fd: int, offset: int, length: int) -> None:
        real(src_fd, dst_fd, offset, length)
        if offset == 0:
            os.pwrite(dst_fd, b"not the source", 5)

    monkeypatch.setattr(localfs, "_copy_range", bad_copy)
    state = StateDB(str(tmp_path / "state.db"))
    cache = _cache(tmp_path, trust=state)
    hash_id = cache.ingest(str(src), HUGE)
    assert hash_id != _id(data)
    obj = cache.object_path(hash_id)
    assert _content(obj) == hash_id
    assert cache.verify(hash_id)
    state.flush()
    assert state.object_trusted(hash_id, os.stat(obj))
    assert _tmp_leftovers(tmp_path) == []


def test_ingest_of_a_large_copy_that_fails_leaves_no_temporary(
    tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that fails midway (a full disk, say) raises, and neither an object nor a
    half-written temporary is left in the cache."""
    src = ws / "big.bin"
    src.write_bytes(_data(HUGE))
    real = localfs._copy_range

    def failing_copy(src_fd: int, dst_fd: int, offset: int, length: int) -> None:
        if offset >= COPY_BEHIND // 2:
            raise OSError(28, "No space left on device")
        real(src_fd, dst_fd, offset, length)

    monkeypatch.setattr(localfs, "_copy_range", failing_copy)
    cache = _cache(tmp_path)
    with pytest.raises(OSError, match="No space"):
        cache.ingest(str(src), HUGE)
    assert _tmp_leftovers(tmp_path) == []
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("size", [SMALL, LARGE])
def test_ingest_with_another_algorithm(tmp_path: Path, ws: Path, size: int) -> None:
    cache = _cache(tmp_path)
    data = _data(size)
    src = ws / "f"
    src.write_bytes(data)
    hash_id = cache.ingest(str(src), size, "sha256")
    assert hash_id == _id(data, "sha256")
    assert _content(Path(cache.object_path(hash_id))) == _id(data)
    assert "/sha256/" in cache.object_path(hash_id)


@pytest.mark.parametrize("size", [SMALL, LARGE])
@pytest.mark.parametrize("kind", KINDS)
def test_ingest_follow_stores_the_target_and_leaves_it_alone(
    tmp_path: Path, ws: Path, kind: str, size: int
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "target.bin"
    data = _data(size, b"target")
    target.write_bytes(data)
    os.chmod(target, 0o644)
    link = ws / "link"
    link.symlink_to(target)
    cache = _cache(tmp_path, kind)
    hash_id = cache.ingest(str(link), size, follow=True)
    assert hash_id == _id(data)
    obj = cache.object_path(hash_id)
    assert _content(Path(obj)) == _id(data)
    assert not os.path.islink(obj)
    # the link's target is not taken into the cache: not linked, not made read-only
    tst = os.stat(target)
    assert tst.st_nlink == 1
    assert tst.st_ino != os.stat(obj).st_ino
    assert stat.S_IMODE(tst.st_mode) == 0o644
    assert _content(target) == _id(data)


def _ingest_over_corrupt_object(tmp_path: Path, ws: Path, kind: str, size: int):
    cache = _cache(tmp_path, kind)
    data = _data(size)
    hash_id = cache.put_bytes(data)
    _tamper(cache.object_path(hash_id))
    src = ws / "good.bin"
    src.write_bytes(data)
    assert cache.ingest(str(src), size) == hash_id
    return cache, hash_id, src, data


@pytest.mark.parametrize("size", [SMALL, LARGE])
@pytest.mark.parametrize("kind", KINDS)
def test_ingest_over_a_corrupt_object_never_loses_the_data(
    tmp_path: Path, ws: Path, kind: str, size: int
) -> None:
    """The cache holds a damaged object under the name of the user's file: ingesting the
    file must not swap it for a link to the damaged bytes."""
    _, _, src, data = _ingest_over_corrupt_object(tmp_path, ws, kind, size)
    assert _content(src) == _id(data)


@pytest.mark.parametrize("size", [SMALL, LARGE])
@pytest.mark.parametrize("kind", KINDS)
def test_ingest_repairs_a_corrupt_object(tmp_path: Path, ws: Path, kind: str, size: int) -> None:
    """The corrupt-object message says "delete it ... or re-add the data": re-adding must
    put good bytes back under the object's name."""
    cache, hash_id, _, _ = _ingest_over_corrupt_object(tmp_path, ws, kind, size)
    assert cache.verify(hash_id)


# ---- materialize ----------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_materialize(tmp_path: Path, ws: Path, kind: str, size: int) -> None:
    cache = _cache(tmp_path, kind)
    data = _data(size)
    hash_id = cache.put_bytes(data)
    obj = cache.object_path(hash_id)
    dst = ws / "out.bin"
    dst.write_bytes(b"previous content, replaced")
    st = cache.materialize(hash_id, str(dst), size)
    assert _content(dst) == _id(data)
    if kind in ("copy", "reflink"):
        assert stat.S_ISREG(os.lstat(dst).st_mode)
        assert os.stat(dst).st_ino != os.stat(obj).st_ino
        assert _mode(dst) & 0o200  # an independent, writable copy
    elif kind == "hardlink":
        assert os.stat(dst).st_ino == os.stat(obj).st_ino
    else:
        assert os.readlink(dst) == obj
    assert (st.st_ino, st.st_size) == (os.stat(dst).st_ino, size)
    assert _mode(obj) == 0o444
    assert _content(Path(obj)) == _id(data)
    assert _tmp_leftovers(tmp_path) == []


@pytest.mark.parametrize("same_size", [True, False])
@pytest.mark.parametrize("size", [SMALL, LARGE])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dst_exists", [False, True])
def test_materialize_refuses_a_tampered_object(
    tmp_path: Path, ws: Path, kind: str, size: int, same_size: bool, dst_exists: bool
) -> None:
    cache = _cache(tmp_path, kind)
    hash_id = cache.put_bytes(_data(size))
    _tamper(cache.object_path(hash_id), same_size)
    dst = ws / "out.bin"
    if dst_exists:
        dst.write_bytes(b"user data that must survive")
    with pytest.raises(ObjectCorruptError) as info:
        cache.materialize(hash_id, str(dst), size)
    assert hash_id in str(info.value)
    if dst_exists:
        assert not dst.is_symlink()
        assert dst.read_bytes() == b"user data that must survive"
    else:
        assert not os.path.lexists(dst)
    assert _tmp_leftovers(tmp_path) == []


@pytest.mark.parametrize("size", [SMALL, LARGE])
@pytest.mark.parametrize("kind", KINDS)
def test_materialize_with_trust_still_catches_tampering(
    tmp_path: Path, ws: Path, kind: str, size: int
) -> None:
    """With the state db's trust records: an object checked once is not re-read, but one
    whose file changed since must be checked again."""
    state = StateDB(str(tmp_path / "state" / "state.db"))
    try:
        cache = _cache(tmp_path, kind, trust=state)
        data = _data(size)
        src = ws / "src"
        src.write_bytes(data)
        hash_id = cache.ingest(str(src), size)
        first = ws / "first"
        cache.materialize(hash_id, str(first), size)
        state.flush()
        assert _content(first) == _id(data)
        obj = cache.object_path(hash_id)
        before = os.stat(obj)
        _tamper(obj)
        # make sure the mtime moved even on a coarse clock
        os.utime(obj, ns=(before.st_atime_ns, before.st_mtime_ns - 10**9))
        dst = ws / "second"
        with pytest.raises(ObjectCorruptError):
            cache.materialize(hash_id, str(dst), size)
        assert not os.path.lexists(dst)
    finally:
        state.close()


@pytest.mark.parametrize("kind", KINDS)
def test_materialize_missing_object(tmp_path: Path, ws: Path, kind: str) -> None:
    cache = _cache(tmp_path, kind)
    dst = ws / "out"
    dst.write_bytes(b"keep")
    for size in (SMALL, LARGE):
        with pytest.raises(ObjectMissingError, match="not in the cache"):
            cache.materialize(_id(b"absent"), str(dst), size)
        assert dst.read_bytes() == b"keep"


# ---- sparse files ---------------------------------------------------------------------

SPARSE_SIZE = 64 << 20
SPARSE_DATA = [(0, b"head" * 1024), (20 << 20, b"middle" * 2000), (SPARSE_SIZE - 4096, b"t" * 4096)]


def _make_sparse(path: Path, size: int = SPARSE_SIZE) -> None:
    with open(path, "wb") as fh:
        for offset, chunk in SPARSE_DATA:
            if offset + len(chunk) <= size:
                fh.seek(offset)
                fh.write(chunk)
        fh.truncate(size)


def _sparse_hash(size: int = SPARSE_SIZE) -> str:
    buf = bytearray(size)
    for offset, chunk in SPARSE_DATA:
        if offset + len(chunk) <= size:
            buf[offset : offset + len(chunk)] = chunk
    return _id(bytes(buf))


@pytest.mark.parametrize("kind", ["copy", "reflink"])
def test_sparse_file_stays_sparse_through_ingest_and_materialize(
    tmp_path: Path, ws: Path, kind: str
) -> None:
    src = ws / "sparse.img"
    _make_sparse(src)
    src_blocks = os.stat(src).st_blocks
    assert src_blocks * 512 < SPARSE_SIZE // 8, "the test filesystem does not keep holes"
    cache = _cache(tmp_path, kind)
    hash_id = cache.ingest(str(src), SPARSE_SIZE)
    assert hash_id == _sparse_hash()
    obj = cache.object_path(hash_id)
    assert os.stat(obj).st_size == SPARSE_SIZE
    assert os.stat(obj).st_blocks <= src_blocks + 64  # a little slack for metadata
    dst = ws / "restored.img"
    cache.materialize(hash_id, str(dst), SPARSE_SIZE)
    assert os.stat(dst).st_size == SPARSE_SIZE
    assert os.stat(dst).st_blocks <= src_blocks + 64
    assert hashing.hash_file("xxh128", dst) == (hash_id, SPARSE_SIZE)


def test_generation_changes_when_an_object_comes_or_goes(tmp_path: Path) -> None:
    """status trusts a 'tree complete' memo only while this digest is unchanged."""
    cache = _cache(tmp_path)
    empty = cache.generation("xxh128")
    h = cache.put_bytes(b"first object")
    after_put = cache.generation("xxh128")
    assert after_put != empty
    assert cache.generation("xxh128") == after_put  # stable while nothing changes
    # a later second on the folder mtime, as a hand deletion some time later would give
    folder = os.path.dirname(cache.object_path(h))
    os.unlink(cache.object_path(h))
    st = os.stat(folder)
    os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert cache.generation("xxh128") not in (after_put, empty)
