"""mlv.objects.packs.chunks: chunk lists as docs/formats.md specifies them, the chunker's
guarantees (the chunks rebuild the file, boundaries follow content), and refusing every chunk
list that breaks the format."""

from __future__ import annotations

import os
import random
import struct
import time
from pathlib import Path

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.objects import hashing
from mlv.objects.packs.chunks import (
    DEFAULT,
    MAX_CHUNKS,
    Chunker,
    Chunking,
    ChunkList,
    ChunkRef,
)
from mlv.objects.packs.packfile import PackFormatError
from mlv.util import localfs

# The layout written out here from the specification, not imported from the module under test.
HEADER = "<8sHBBIIIIIQ"  # magic, version, algo, chunking, reserved, min, avg, max, N, length
MIN, AVG, MAX = DEFAULT.min_size, DEFAULT.avg_size, DEFAULT.max_size


def random_bytes(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def chunk_file(
    path: Path, algo: str = "xxh128"
) -> tuple[Chunker, list[tuple[ChunkRef, int, bytes]]]:
    chunker = Chunker(str(path), algo)
    return chunker, [(ref, offset, bytes(data)) for ref, offset, data in chunker]


def raw_list(
    rows: list[tuple[bytes, int]],
    length: int | None = None,
    *,
    magic: bytes = b"\x89MLVCHNK",
    version: int = 1,
    code: int = 1,
    chunking: tuple[int, int, int, int] = (1, MIN, AVG, MAX),
    reserved: int = 0,
    count: int | None = None,
) -> bytes:
    """A chunk list built from the format's description, checksum included."""
    total = sum(n for _, n in rows) if length is None else length
    head = struct.pack(
        HEADER,
        magic,
        version,
        code,
        chunking[0],
        reserved,
        *chunking[1:],
        len(rows) if count is None else count,
        total,
    )
    body = head + b"".join(raw + struct.pack("<I", n) for raw, n in rows)
    return body + xxhash.xxh3_128_digest(body)


ROWS = [(bytes([i]) * 16, n) for i, n in enumerate([MIN, 70000, 5])]
TOTAL = sum(n for _, n in ROWS)


def test_encoding_follows_the_specification_and_round_trips() -> None:
    chunks = tuple(ChunkRef(f"xxh128:{raw.hex()}", n) for raw, n in ROWS)
    listed = ChunkList("xxh128", TOTAL, DEFAULT, chunks)
    data = listed.encode()
    assert data == raw_list(ROWS)
    assert len(data) == 40 + 20 * len(ROWS) + 16
    assert ChunkList.parse(data, TOTAL, "xxh128") == listed
    assert list(listed.offsets()) == [(chunks[0], 0), (chunks[1], MIN), (chunks[2], MIN + 70000)]
    sha = ChunkList(
        "sha256", 3, Chunking(1, 1, 2, 4), (ChunkRef(hashing.hash_bytes("sha256", b"abc"), 3),)
    )
    assert len(sha.encode()) == 40 + 36 + 16
    assert ChunkList.parse(sha.encode(), 3, "sha256") == sha
    empty = ChunkList("xxh128", 0, DEFAULT, ())
    assert ChunkList.parse(empty.encode(), 0, "xxh128") == empty


def test_encode_refuses_a_list_that_parse_would_refuse() -> None:
    ref = ChunkRef(hashing.hash_bytes("xxh128", b"x"), 1)
    with pytest.raises(ValueError, match="add up"):
        ChunkList("xxh128", 2, DEFAULT, (ref,)).encode()
    with pytest.raises(ValueError, match="out of range"):
        ChunkList("xxh128", 0, DEFAULT, (ChunkRef(ref.hash, 0),)).encode()
    with pytest.raises(ValueError):
        ChunkList("xxh128", 1, DEFAULT, (ChunkRef(hashing.hash_bytes("sha256", b"x"), 1),)).encode()
    with pytest.raises(ValueError, match="order"):
        ChunkList("xxh128", 1, Chunking(1, 8, 4, 16), (ref,)).encode()


@pytest.mark.parametrize(
    "size",
    [0, 1, MIN - 1, MIN, MIN + 1, AVG, MAX - 1, MAX, MAX + 1, 3 * MAX, (5 << 20) + 12345],
)
def test_the_chunks_rebuild_the_file_and_its_hash(tmp_path: Path, size: int) -> None:
    data = random_bytes(size, seed=size)
    path = tmp_path / "f"
    path.write_bytes(data)
    chunker, chunks = chunk_file(path)
    assert b"".join(d for _, _, d in chunks) == data
    assert chunker.whole_hash == hashing.hash_bytes("xxh128", data)
    listed = chunker.chunk_list()
    assert listed.length == size
    assert [(r, o) for r, o, _ in chunks] == list(listed.offsets())
    for ref, _, piece in chunks:
        assert ref == ChunkRef(hashing.hash_bytes("xxh128", piece), len(piece))
        assert 1 <= ref.length <= MAX
    assert all(r.length >= MIN for r, _, _ in chunks[:-1])
    if size == 0:
        assert chunks == []
    elif size <= MIN:
        assert len(chunks) == 1
    elif size > MAX:
        assert len(chunks) >= 2
    assert ChunkList.parse(listed.encode(), size, "xxh128") == listed


def test_sha256_objects_get_sha256_chunks(tmp_path: Path) -> None:
    data = random_bytes(MAX + 1000)
    (tmp_path / "f").write_bytes(data)
    chunker, chunks = chunk_file(tmp_path / "f", "sha256")
    assert chunker.whole_hash == hashing.hash_bytes("sha256", data)
    assert all(r.hash == hashing.hash_bytes("sha256", d) for r, _, d in chunks)
    assert ChunkList.parse(chunker.chunk_list().encode(), len(data), "sha256").chunks == tuple(
        r for r, _, _ in chunks
    )


def test_boundaries_are_algorithm_1_exactly(tmp_path: Path) -> None:
    """Pinned cut points: a pyfastcdc release that cuts otherwise would make new chunks share
    nothing with the remote's old ones, so it must be noticed (and be another algorithm)."""
    (tmp_path / "f").write_bytes(random.Random(16).randbytes(3 << 20))
    _, chunks = chunk_file(tmp_path / "f")
    assert [r.length for r, _, _ in chunks] == [
        140836, 94381, 161183, 89358, 131533, 144563, 145225, 149133, 138046, 38839, 154037,
        49740, 161201, 141344, 162182, 47622, 182157, 139871, 216375, 139435, 61528, 148062,
        201796, 107281,
    ]  # fmt: skip


def test_chunking_is_deterministic(tmp_path: Path) -> None:
    data = random_bytes(4 << 20)
    (tmp_path / "a").write_bytes(data)
    (tmp_path / "b").write_bytes(data)
    first = Chunker(str(tmp_path / "a"), "xxh128")
    again = list(first)
    assert [(r, o) for r, o, _ in again] == [(r, o) for r, o, _ in first]
    other = Chunker(str(tmp_path / "b"), "xxh128")
    list(other)
    assert other.chunk_list() == first.chunk_list()
    assert other.chunk_list().encode() == first.chunk_list().encode()


def test_an_insert_or_an_edit_changes_only_the_chunks_around_it(tmp_path: Path) -> None:
    data = random_bytes(6 << 20)
    mid = len(data) // 2
    inserted = data[:mid] + random_bytes(10000, seed=2) + data[mid:]
    edited = bytearray(data)
    edited[1 << 20 : (1 << 20) + 4096] = random_bytes(4096, seed=3)
    lists = {}
    for name, content in (("v1", data), ("ins", inserted), ("edit", bytes(edited))):
        (tmp_path / name).write_bytes(content)
        chunker, _ = chunk_file(tmp_path / name)
        lists[name] = chunker.chunk_list()
    old = set(lists["v1"].chunks)
    for name in ("ins", "edit"):
        new = [c for c in lists[name].chunks if c not in old]
        assert 1 <= len(new) <= 3, (name, len(new), len(lists[name].chunks))
        assert sum(c.length for c in new) <= 3 * MAX


def test_results_before_the_end_are_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(random_bytes(MAX * 2))
    chunker = Chunker(str(tmp_path / "f"), "xxh128")
    with pytest.raises(RuntimeError):
        chunker.whole_hash  # noqa: B018
    it = iter(chunker)
    next(it)
    with pytest.raises(RuntimeError):
        chunker.chunk_list()
    it.close()  # type: ignore[attr-defined]


# ---- the copies that rebuild a chunked file: hashed on the way -------------------------


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(0, 3 * localfs.TAP_STEP),
    at=st.integers(0, localfs.TAP_STEP + 7),
    to=st.integers(0, 2 * localfs.TAP_STEP + 5),
)
def test_a_tapped_copy_writes_and_shows_every_byte_in_order(
    tmp_path_factory: pytest.TempPathFactory, length: int, at: int, to: int
) -> None:
    """copy_between with a tap: the bytes land where the kernel's copy puts them, the tap
    sees each of them once and in order, and no write crosses a TAP_STEP boundary of the
    file written (each ends on one, but the last)."""
    folder = tmp_path_factory.mktemp("tap")
    data = random_bytes(at + length + 100, seed=length)
    (folder / "src").write_bytes(data)
    seen: list[bytes] = []
    writes: list[tuple[int, int]] = []
    real_pwrite = os.pwrite

    def pwrite(fd: int, buf: bytes | memoryview, offset: int) -> int:
        writes.append((offset, len(buf)))
        return real_pwrite(fd, buf, offset)

    src = os.open(folder / "src", os.O_RDONLY)
    dst = os.open(folder / "dst", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(os, "pwrite", pwrite)
            localfs.copy_between(src, dst, length, at, to, lambda b: seen.append(bytes(b)))
    finally:
        os.close(src)
        os.close(dst)
    assert b"".join(seen) == data[at : at + length]
    assert (folder / "dst").read_bytes()[to:] == data[at : at + length]
    step = localfs.TAP_STEP
    for offset, n in writes:
        assert offset // step == (offset + n - 1) // step
    assert all((offset + n) % step == 0 for offset, n in writes[:-1])


def test_a_tapped_copy_from_a_short_source_says_so(tmp_path: Path) -> None:
    (tmp_path / "src").write_bytes(b"x" * 1000)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with pytest.raises(localfs.ShortSource):
            localfs.copy_between(src, dst, 2000, 0, 0, lambda b: None)
    finally:
        os.close(src)
        os.close(dst)


VALID = raw_list(ROWS)


def refused(data: bytes, match: str, length: int = TOTAL, algo: str = "xxh128") -> None:
    with pytest.raises(PackFormatError, match=match):
        ChunkList.parse(data, length, algo)


def test_every_truncation_is_refused() -> None:
    for end in range(len(VALID)):
        with pytest.raises(PackFormatError):
            ChunkList.parse(VALID[:end], TOTAL, "xxh128")


def test_wrong_header_fields_are_refused() -> None:
    refused(raw_list(ROWS, magic=b"\x89MLVPACK"), "magic")
    refused(raw_list(ROWS, version=2), "version 2")
    refused(raw_list(ROWS, code=9), "algorithm code 9")
    refused(raw_list(ROWS, code=2), "sha256")  # a sha256 list for an xxh128 object
    refused(raw_list(ROWS, reserved=1), "reserved")
    refused(raw_list(ROWS, chunking=(1, AVG, MIN, MAX)), "order")
    refused(raw_list(ROWS, chunking=(1, MIN, AVG, (64 << 20) + 1)), "64 MiB")
    refused(raw_list(ROWS, chunking=(0, MIN, AVG, MAX)), "algorithm 0")


def test_a_huge_claimed_count_fails_by_arithmetic_at_once() -> None:
    start = time.perf_counter()
    refused(raw_list(ROWS, count=2**31), "more than")
    refused(raw_list(ROWS, count=MAX_CHUNKS), "size")
    refused(raw_list(ROWS, count=len(ROWS) + 1), "size")
    assert time.perf_counter() - start < 0.5


def test_lengths_that_do_not_rebuild_the_object_are_refused() -> None:
    refused(VALID, "rebuilds", length=TOTAL + 1)  # the entry's length differs from the list's
    refused(raw_list(ROWS, length=TOTAL + 1), "add up", length=TOTAL + 1)
    zero = [ROWS[0], (b"\x07" * 16, 0), ROWS[1], ROWS[2]]
    refused(raw_list(zero), "chunk length 0")
    big = [(b"\x01" * 16, MAX + 1)]
    refused(raw_list(big), "out of range", length=MAX + 1)


def test_bad_checksum_and_trailing_bytes_are_refused() -> None:
    damaged = bytearray(VALID)
    damaged[-1] ^= 0x40
    refused(bytes(damaged), "checksum")
    body = bytearray(VALID)
    body[45] ^= 1  # a chunk hash byte
    refused(bytes(body), "checksum")
    refused(VALID + b"\0", "size")
    refused(VALID + VALID[40:60], "size")
    refused(b"\0" * ((64 << 20) + 1), "64 MiB")


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(VALID) - 1), st.integers(1, 255))
def test_flipping_any_byte_is_refused_or_changes_nothing(pos: int, xor: int) -> None:
    data = bytearray(VALID)
    data[pos] ^= xor
    try:
        parsed = ChunkList.parse(bytes(data), TOTAL, "xxh128")
    except PackFormatError:
        return
    assert parsed == ChunkList.parse(VALID, TOTAL, "xxh128")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_only_ever_raises_the_format_error(data: bytes) -> None:
    with pytest.raises(PackFormatError):
        ChunkList.parse(VALID[:40] + data, TOTAL, "xxh128")
