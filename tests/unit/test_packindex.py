"""mlv.objects.packs.index: indexes as docs/formats.md specifies them, lookups, and refusing
every index that a hostile remote could send."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.objects import hashing
from mlv.objects.packs.index import (
    MAX_INDEX_BYTES,
    Location,
    PackIndex,
    PackRef,
    encode,
    index_name,
)
from mlv.objects.packs.packfile import (
    KIND_CHUNKS,
    KIND_TREE,
    MAX_PACKED_OBJECT,
    Entry,
    PackFormatError,
    PackWriter,
    read_pack_file,
)

# The layout written out here from the specification, not imported from the module under test.
ROW = {"xxh128": "<16sIIIBBHQ", "sha256": "<32sIIIBBHQ"}
ESIZE = {"xxh128": 40, "sha256": 56}
Row = tuple[bytes, int, int, int, int, int, int, int]


def objects(prefix: str, n: int) -> list[bytes]:
    return [f"{prefix} object {i}".encode() * (i % 5 + 1) for i in range(n)]


def pack_of(
    tmp_path: Path, name: str, algo: str, datas: list[bytes]
) -> tuple[PackRef, list[Entry]]:
    with PackWriter(str(tmp_path / name), algo) as writer:
        for data in datas:
            writer.add(hashing.hash_bytes(algo, data), data)
        pack = writer.finish()
    return PackRef(pack.name, pack.size), list(pack.entries)


def parse(data: bytes) -> PackIndex:
    return PackIndex.parse(xxhash.xxh3_128_hexdigest(data), data)


@pytest.mark.parametrize("algo", ["xxh128", "sha256"])
def test_round_trip_from_real_packs(tmp_path: Path, algo: str) -> None:
    ref, entries = pack_of(tmp_path, "a.pack", algo, objects("a", 60))
    data = encode(algo, [(ref, entries)])
    assert len(data) == 1056 + 24 + ESIZE[algo] * len(entries)
    assert index_name(data) == xxhash.xxh3_128_hexdigest(data)
    index = parse(data)
    assert (index.algo, index.packs, len(index)) == (algo, (ref,), 60)
    expected = {
        e.hash: Location(ref, e.offset, e.stored, e.length, e.codec, e.kind) for e in entries
    }
    assert dict(index.items()) == expected
    assert [h for h, _ in index.items()] == sorted(expected)
    for hash_id, location in expected.items():
        assert index.lookup(hash_id) == location
    assert {f"{algo}:{raw.hex()}": index.location(row) for raw, row in index.rows()} == expected
    assert index.lookup(hashing.hash_bytes(algo, b"not packed")) is None
    other = "sha256" if algo == "xxh128" else "xxh128"
    assert index.lookup(hashing.hash_bytes(other, b"a object 0")) is None
    # each location is the object's bytes in the pack file
    pack_bytes = (tmp_path / "a.pack").read_bytes()
    for hash_id, loc in index.items():
        assert hashing.hash_bytes(algo, pack_bytes[loc.offset : loc.offset + loc.stored]) == hash_id


def test_many_packs_first_pack_wins_and_empty_packs_are_left_out(tmp_path: Path) -> None:
    shared = objects("shared", 5)
    ref_a, entries_a = pack_of(tmp_path, "a.pack", "xxh128", objects("a", 10) + shared)
    ref_b, entries_b = pack_of(tmp_path, "b.pack", "xxh128", shared)  # all already in a
    ref_c, entries_c = pack_of(tmp_path, "c.pack", "xxh128", shared + objects("c", 7))
    index = parse(encode("xxh128", [(ref_a, entries_a), (ref_b, entries_b), (ref_c, entries_c)]))
    assert index.packs == (ref_a, ref_c)
    assert len(index) == 22
    for entry in entries_a:
        location = index.lookup(entry.hash)
        assert location is not None and location.pack == ref_a and location.offset == entry.offset
    in_a = {e.hash for e in entries_a}
    for entry in entries_c:
        if entry.hash in in_a:
            continue
        location = index.lookup(entry.hash)
        assert location is not None and location.pack == ref_c


def test_empty_index_and_wrong_algorithm() -> None:
    data = encode("xxh128", [])
    assert len(data) == 1056 and len(parse(data)) == 0
    entry = Entry(hashing.hash_bytes("sha256", b"x"), 32, 1, 1)
    with pytest.raises(ValueError):
        encode("xxh128", [(PackRef("ab" * 16, 1000), [entry])])


def test_a_pack_index_parses_from_a_pack_read_back(tmp_path: Path) -> None:
    ref, _ = pack_of(tmp_path, "a.pack", "xxh128", objects("a", 3))
    pack = read_pack_file(tmp_path / "a.pack")  # gc's way: re-indexing a pack from its trailer
    index = parse(encode("xxh128", [(PackRef(pack.name, pack.size), pack.entries)]))
    assert index.packs == (ref,)


# --- hostile indexes -------------------------------------------------------------------

HASHES = sorted(bytes([b]) + bytes(15) for b in (0x01, 0x10, 0x10 + 1, 0x80, 0xFE))


def build(
    rows: list[Row] | None = None,
    packs: list[tuple[bytes, int]] | None = None,
    *,
    magic: bytes = b"\x89MLVINDX",
    version: int = 1,
    algo: int = 1,
    hsize: int = 16,
    npacks: int | None = None,
    nentries: int | None = None,
    reserved: bytes = bytes(12),
    fanout: list[int] | None = None,
) -> bytes:
    """An xxh128 index written field by field from the specification."""
    if rows is None:
        rows = [(h, 0, 32 + 10 * i, 10, 0, 0, 0, 10) for i, h in enumerate(HASHES)]
    if packs is None:
        packs = [(b"\x11" * 16, 32 + 10 * len(rows) + 40 * len(rows) + 40)]
    if fanout is None:
        fanout = [sum(1 for r in rows if r[0][0] <= b) for b in range(256)]
    header = magic + struct.pack(
        "<HBBII",
        version,
        algo,
        hsize,
        len(packs) if npacks is None else npacks,
        len(rows) if nentries is None else nentries,
    )
    return (
        header
        + reserved
        + b"".join(struct.pack("<16sQ", *p) for p in packs)
        + struct.pack("<256I", *fanout)
        + b"".join(struct.pack(ROW["xxh128"], *r) for r in rows)
    )


def refused(data: bytes, name: str | None = None) -> str:
    with pytest.raises(PackFormatError) as caught:
        PackIndex.parse(name or xxhash.xxh3_128_hexdigest(data), data)
    return str(caught.value)


def with_row(i: int, **fields: int | bytes) -> list[Row]:
    names = ["hash", "pack", "offset", "stored", "codec", "kind", "reserved", "length"]
    rows = [list(r) for r in struct.iter_unpack(ROW["xxh128"], build()[1056 + 24 :])]
    for key, value in fields.items():
        rows[i][names.index(key)] = value
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_the_handwritten_index_is_valid() -> None:
    index = parse(build())
    assert len(index) == 5 and index.packs[0].name == "11" * 16
    assert index.lookup("xxh128:" + HASHES[2].hex()) == Location(index.packs[0], 52, 10, 10, 0, 0)


def test_refuses_broken_headers() -> None:
    data = build()
    assert "truncated" in refused(data[:1000])
    assert "size" in refused(data[:-1])
    assert "size" in refused(data + b"\x00")
    assert "magic" in refused(build(magic=b"\x89MLVPACK"))
    assert "version 2" in refused(build(version=2))
    assert "algorithm" in refused(build(algo=3))
    assert "hash size" in refused(build(hsize=32))
    assert "hash size" in refused(build(algo=2))  # sha256 with H = 16
    assert "reserved" in refused(build(reserved=b"\x00" * 11 + b"\x01"))
    assert "more packs" in refused(build(rows=[], packs=[(b"\x11" * 16, 1000)], fanout=[0] * 256))


def test_name_mismatch_and_malformed_names() -> None:
    data = build()
    assert "name" in refused(data, "0" * 32)
    assert "name" in refused(data, xxhash.xxh3_128_hexdigest(data).upper())
    assert "name" in refused(data, "../" + "0" * 29)


def test_billions_of_entries_fail_by_arithmetic_fast() -> None:
    data = build(nentries=2**32 - 1)
    start = time.perf_counter()
    assert "size" in refused(data)
    assert time.perf_counter() - start < 0.05
    assert "size" in refused(build(npacks=2**32 - 1))


def test_too_large_an_index_is_refused_before_it_is_hashed() -> None:
    class Huge(bytes):
        def __len__(self) -> int:
            return MAX_INDEX_BYTES + 1

    assert "256 MiB" in refused(Huge(build()), "0" * 32)


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        (with_row(1, hash=HASHES[3]), "increasing"),  # unsorted
        (with_row(1, hash=HASHES[0]), "increasing"),  # duplicate
        (with_row(2, pack=1), "pack number"),
        (with_row(2, offset=31), "header"),
        (with_row(4, stored=10**4, length=10**4), "past"),  # beyond size - 40
        (with_row(4, offset=322 - 40 - 10 + 1), "past"),  # one byte into the footer
        (with_row(2, offset=50), "overlapping"),
        (with_row(2, stored=9), "stored length"),
        (with_row(2, reserved=1), "reserved"),
        (with_row(2, length=MAX_PACKED_OBJECT + 1, codec=1), "64 MiB"),
        (with_row(2, kind=KIND_TREE, length=MAX_PACKED_OBJECT + 1, codec=1), "64 MiB"),
    ],
)
def test_refuses_hostile_entries(rows: list[Row], words: str) -> None:
    assert words in refused(build(rows))


def test_refuses_hostile_pack_tables_and_fanouts() -> None:
    two_packs = [(b"\x11" * 16, 10**6), (b"\x22" * 16, 10**6)]
    assert "not named" in refused(build(packs=two_packs))
    assert "twice" in refused(build(with_row(0, pack=1), packs=[two_packs[0], two_packs[0]]))
    assert "4 GiB" in refused(build(packs=[(b"\x11" * 16, 2**32 + 1)]))
    fanout = [sum(1 for h in HASHES if h[0] <= b) for b in range(256)]
    decreasing = list(fanout)
    decreasing[0x50] = 1
    assert "decreasing" in refused(build(fanout=decreasing))
    assert "entry count" in refused(build(fanout=[*fanout[:255], 6]))
    shifted = list(fanout)
    shifted[0x10] = 1  # says no entry begins with 0x10, so the next two are out of bucket
    assert "bucket" in refused(build(fanout=shifted))


def test_unknown_codec_and_kind_values_are_allowed() -> None:
    for rows in (
        with_row(2, codec=9),
        with_row(2, kind=7, stored=2, length=10**12),
        with_row(2, kind=KIND_CHUNKS, length=10**12),
        with_row(2, codec=1, length=10**6),
    ):
        index = parse(build(rows))
        location = index.lookup("xxh128:" + HASHES[2].hex())
        assert location is not None and location.offset == 52 and len(index) == 5
    big = with_row(4, kind=KIND_CHUNKS, stored=MAX_PACKED_OBJECT + 1, length=10**12)
    assert "64 MiB" in refused(build(big, packs=[(b"\x11" * 16, 10**9)]))


# --- any single flipped byte -----------------------------------------------------------


def _valid_index() -> bytes:
    def entry(i: int, pack: int) -> Entry:
        data = f"object {i}".encode()
        return Entry(hashing.hash_bytes("xxh128", data), 32 + 100 * pack + 10 * i, 10, 10)

    packs = [
        (PackRef("a1" * 16, 5000), [entry(i, 0) for i in range(6)]),
        (PackRef("b2" * 16, 5000), [entry(i, 1) for i in range(6, 10)]),
    ]
    return encode("xxh128", packs)


VALID = _valid_index()
ENTRIES_AT = 1056 + 2 * 24


@settings(max_examples=200, deadline=None, database=None)
@given(
    position=st.one_of(
        st.integers(0, ENTRIES_AT - 1),  # header, pack table, fanout
        st.builds(lambda i, at: ENTRIES_AT + 40 * i + at, st.integers(0, 9), st.integers(0, 39)),
    ),
    flip=st.integers(1, 255),
)
def test_a_flipped_byte_is_refused_or_changes_only_its_own_field(position: int, flip: int) -> None:
    damaged = bytearray(VALID)
    damaged[position] ^= flip
    data = bytes(damaged)
    # downloaded under the original name, any change is refused
    with pytest.raises(PackFormatError):
        PackIndex.parse(index_name(VALID), data)
    # even named by its new bytes, it is refused or means just what the flipped field says
    try:
        index = parse(data)
    except PackFormatError:
        return
    original = dict(parse(VALID).items())
    found = dict(index.items())
    assert len(found) == len(original)
    in_hash = position >= ENTRIES_AT and (position - ENTRIES_AT) % 40 < 16
    if not in_hash:
        assert found.keys() == original.keys()
    else:
        assert len(found.keys() - original.keys()) == 1
    # what was accepted is canonical: encoding what it says gives back the very same bytes
    by_pack: dict[PackRef, list[Entry]] = {ref: [] for ref in index.packs}
    for hash_id, loc in found.items():
        by_pack[loc.pack].append(
            Entry(hash_id, loc.offset, loc.stored, loc.length, loc.codec, loc.kind)
        )
    assert encode("xxh128", list(by_pack.items())) == data
