"""mlv.objects.packs.packfile: pack files as docs/formats.md specifies them, and refusing
every pack that breaks the format."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import xxhash

from mlv.objects import hashing
from mlv.objects.packs.packfile import (
    CODEC_ZSTD,
    CONTENTS_TREES,
    KIND_CHUNKS,
    KIND_TREE,
    MAX_PACKED_OBJECT,
    Entry,
    Pack,
    PackFormatError,
    PackWriter,
    entry_size,
    footer_span,
    parse_trailer,
    read_pack_file,
)

# The layout written out here from the specification, not imported from the module under test.
ROW = {"xxh128": "<16sIIIBBHQ", "sha256": "<32sIIIBBHQ"}
OBJECTS = [b"alpha", b"", b"a somewhat longer object " * 40, bytes(range(256)), b"z"]


def write_pack(
    path: Path, algo: str, objects: list[bytes], contents: int = 0
) -> tuple[Pack, dict[str, bytes]]:
    by_hash: dict[str, bytes] = {}
    with PackWriter(str(path), algo, contents) as writer:
        for data in objects:
            hash_id = hashing.hash_bytes(algo, data)
            writer.add(hash_id, data)
            by_hash[hash_id] = data
        pack = writer.finish()
    return pack, by_hash


@pytest.mark.parametrize("algo", ["xxh128", "sha256"])
def test_round_trip_and_ranges_are_the_objects(tmp_path: Path, algo: str) -> None:
    path = tmp_path / "p.pack"
    pack, by_hash = write_pack(path, algo, OBJECTS)
    data = path.read_bytes()
    assert pack.size == len(data)
    assert pack.name == xxhash.xxh3_128_hexdigest(data)  # what xxh128sum prints
    assert read_pack_file(path) == pack
    assert read_pack_file(path, pack.name) == pack
    assert [e.hash for e in pack.entries] == sorted(by_hash)
    for entry in pack.entries:
        assert data[entry.offset : entry.offset + entry.stored] == by_hash[entry.hash]
        assert entry.length == entry.stored == len(by_hash[entry.hash])
    # the bodies are back to back from byte 32, the trailer right after them
    assert data[32 : 32 + sum(map(len, OBJECTS))] == b"".join(OBJECTS)
    n, t, checksum, end = struct.unpack("<QQ16s8s", data[-40:])
    assert (n, t, end) == (len(OBJECTS), 32 + sum(map(len, OBJECTS)), b"\x89MLVPEND")
    assert checksum == xxhash.xxh3_128_digest(data[t:-40])
    assert len(data) == t + entry_size(algo) * n + 40
    assert data[:12] == b"\x89MLVPACK" + struct.pack("<HBB", 1, {"xxh128": 1, "sha256": 2}[algo], 0)


def test_a_chunk_asked_to_align_sits_at_its_file_offset_modulo_a_page(tmp_path: Path) -> None:
    """Raw chunks of one file: zeros before the first so its pack offset matches its file
    offset modulo 4096, none between the chunks that follow it in the file; a compressed
    chunk is never padded; the padded pack reads back whole."""
    path = tmp_path / "a.pack"
    chunks = [os.urandom(n) for n in (5000, 7001, 300)]
    at = 123_456_789  # where the first chunk sits in its file
    with PackWriter(str(path), "xxh128") as writer:
        entries = []
        for data in chunks:
            entries.append(writer.add(hashing.hash_bytes("xxh128", data), data, align=at))
            at += len(data)
        squeezed = writer.add("xxh128:" + "ab" * 16, b"z", length=100, codec=CODEC_ZSTD, align=7)
        pack = writer.finish()
    data = path.read_bytes()
    assert entries[0].offset % 4096 == 123_456_789 % 4096
    assert data[32 : entries[0].offset] == bytes(entries[0].offset - 32)
    assert [e.offset for e in entries[1:]] == [entries[0].offset + 5000, entries[0].offset + 12_001]
    assert squeezed.offset == entries[2].offset + 300  # not padded
    assert read_pack_file(path, pack.name) == pack
    for entry, chunk in zip(entries, chunks, strict=True):
        assert data[entry.offset : entry.offset + entry.stored] == chunk


def test_two_packs_of_the_same_objects_have_different_names(tmp_path: Path) -> None:
    first, _ = write_pack(tmp_path / "a.pack", "xxh128", OBJECTS)
    second, _ = write_pack(tmp_path / "b.pack", "xxh128", OBJECTS)
    assert first.entries == second.entries
    assert first.name != second.name
    a, b = (tmp_path / "a.pack").read_bytes(), (tmp_path / "b.pack").read_bytes()
    assert a[16:32] != b[16:32] and a[32:] == b[32:]  # only the nonce differs


def test_writer_dedups_counts_and_records_contents_and_kind(tmp_path: Path) -> None:
    path = tmp_path / "t.pack"
    with PackWriter(str(path), "xxh128", CONTENTS_TREES) as writer:
        hash_id = hashing.hash_bytes("xxh128", b"tree")
        first = writer.add(hash_id, b"tree", KIND_TREE)
        assert writer.add(hash_id, b"tree", KIND_TREE) is first
        assert (writer.count, writer.size) == (1, 36)
        pack = writer.finish()
    assert pack.contents == CONTENTS_TREES and pack.entries == (first,)
    assert first == Entry(hash_id, 32, 4, 4, 0, KIND_TREE)
    assert read_pack_file(path) == pack


def test_writer_refuses_another_algorithm_and_too_long_objects(tmp_path: Path) -> None:
    with PackWriter(str(tmp_path / "p.pack"), "xxh128") as writer:
        with pytest.raises(ValueError):
            writer.add(hashing.hash_bytes("sha256", b"x"), b"x")
        with pytest.raises(ValueError):
            writer.add("xxh128:not-hex", b"x")
        big = bytes(MAX_PACKED_OBJECT + 1)
        with pytest.raises(ValueError):
            writer.add(hashing.hash_bytes("xxh128", big), big)
        assert writer.count == 0


def test_abort_and_an_exception_delete_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.pack"
    writer = PackWriter(str(path), "xxh128")
    writer.add(hashing.hash_bytes("xxh128", b"x"), b"x")
    writer.abort()
    assert not path.exists()
    with pytest.raises(RuntimeError), PackWriter(str(path), "xxh128") as writer:
        writer.add(hashing.hash_bytes("xxh128", b"x"), b"x")
        raise RuntimeError("push interrupted")
    assert not path.exists()


def test_empty_pack_is_valid(tmp_path: Path) -> None:
    pack, _ = write_pack(tmp_path / "e.pack", "sha256", [])
    assert pack.size == 72 and pack.entries == ()
    assert read_pack_file(tmp_path / "e.pack") == pack


# --- hostile packs ---------------------------------------------------------------------


def valid_pack(tmp_path: Path) -> bytes:
    write_pack(tmp_path / "v.pack", "xxh128", OBJECTS)
    return (tmp_path / "v.pack").read_bytes()


def rewrite_trailer(data: bytes, mutate: Callable[[list[list[object]]], None]) -> bytes:
    """The pack with its trailer rows changed and its checksum recomputed to match."""
    _n, t, _checksum, end = struct.unpack("<QQ16s8s", data[-40:])
    rows = [list(r) for r in struct.iter_unpack(ROW["xxh128"], data[t:-40])]
    mutate(rows)
    trailer = b"".join(struct.pack(ROW["xxh128"], *r) for r in rows)
    footer = struct.pack("<QQ16s8s", len(rows), t, xxhash.xxh3_128_digest(trailer), end)
    return data[:t] + trailer + footer


def refused(tmp_path: Path, data: bytes) -> str:
    path = tmp_path / "bad.pack"
    path.write_bytes(data)
    with pytest.raises(PackFormatError) as caught:
        read_pack_file(path)
    return str(caught.value)


def patch(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new) :]


def test_refuses_broken_headers_and_footers(tmp_path: Path) -> None:
    data = valid_pack(tmp_path)
    assert "truncated" in refused(tmp_path, data[:50])
    assert "size" in refused(tmp_path, data[:-41] + data[-40:])  # a trailer byte missing
    assert "magic" in refused(tmp_path, patch(data, 0, b"\x89MLVPACX"))
    assert "magic" in refused(tmp_path, patch(data, len(data) - 8, b"\x89MLVPENX"))
    assert "version 2" in refused(tmp_path, patch(data, 8, struct.pack("<H", 2)))
    assert "algorithm" in refused(tmp_path, patch(data, 10, b"\x03"))
    assert "reserved" in refused(tmp_path, patch(data, 12, b"\x01"))
    assert "checksum" in refused(tmp_path, patch(data, len(data) - 24, b"\x00" * 16))
    t = struct.unpack("<Q", data[-32:-24])[0]
    assert "header" in refused(tmp_path, patch(data, len(data) - 32, struct.pack("<Q", 8)))
    assert "size" in refused(tmp_path, patch(data, len(data) - 32, struct.pack("<Q", t + 1)))


def test_a_count_of_billions_fails_by_arithmetic() -> None:
    header = b"\x89MLVPACK" + struct.pack("<HBBI16s", 1, 1, 0, 0, bytes(16))
    footer = struct.pack("<QQ16s8s", 2**32 - 1, 32, bytes(16), b"\x89MLVPEND")
    start = time.perf_counter()
    with pytest.raises(PackFormatError, match="size"):
        footer_span(header, footer, 4096)
    with pytest.raises(PackFormatError, match="4 GiB"):
        footer_span(header, footer, 32 + 40 * (2**32 - 1) + 40)
    assert time.perf_counter() - start < 0.1
    assert footer_span(header, struct.pack("<QQ16s8s", 2, 32, bytes(16), b"\x89MLVPEND"), 152) == (
        "xxh128",
        32,
        2,
    )


def swap_first_two(rows: list[list[object]]) -> None:
    rows[0], rows[1] = rows[1], rows[0]


def duplicate_first(rows: list[list[object]]) -> None:
    rows[1][0] = rows[0][0]


def set_field(field: int, value: object, row: int = 0) -> Callable[[list[list[object]]], None]:
    def mutate(rows: list[list[object]]) -> None:
        rows[row][field] = value

    return mutate


def overlap(rows: list[list[object]]) -> None:
    # the first row takes a range that starts inside another row's bytes
    other = next(r for r in rows[1:] if isinstance(r[3], int) and r[3] > 2)
    assert isinstance(other[2], int)
    rows[0][2], rows[0][3], rows[0][7] = other[2] + 1, 1, 1


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (swap_first_two, "increasing"),
        (duplicate_first, "increasing"),
        (set_field(1, 1), "pack number"),
        (set_field(6, 1), "reserved"),
        (set_field(2, 8), "header"),
        (set_field(3, 10**6), "past"),
        (overlap, "overlapping"),
        (set_field(7, 4), "stored length"),
        (set_field(7, MAX_PACKED_OBJECT + 1), "64 MiB"),
    ],
)
def test_refuses_hostile_trailers(
    tmp_path: Path, mutate: Callable[[list[list[object]]], None], words: str
) -> None:
    assert words in refused(tmp_path, rewrite_trailer(valid_pack(tmp_path), mutate))


def test_unknown_codec_and_kind_are_a_newer_mlvs_and_pass(tmp_path: Path) -> None:
    data = valid_pack(tmp_path)
    for mutate in (set_field(4, 7), set_field(5, 9), set_field(5, KIND_CHUNKS)):
        path = tmp_path / "newer.pack"
        path.write_bytes(rewrite_trailer(data, mutate))
        assert len(read_pack_file(path).entries) == len(OBJECTS)


def test_name_mismatch_is_refused(tmp_path: Path) -> None:
    pack, _ = write_pack(tmp_path / "p.pack", "xxh128", OBJECTS)
    with pytest.raises(PackFormatError, match="name"):
        read_pack_file(tmp_path / "p.pack", "0" * 32)
    data = (tmp_path / "p.pack").read_bytes()
    # a flipped body byte leaves the pack parseable but no longer the one named
    (tmp_path / "p.pack").write_bytes(patch(data, 33, bytes([data[33] ^ 1])))
    with pytest.raises(PackFormatError, match="name"):
        read_pack_file(tmp_path / "p.pack", pack.name)


def test_parse_trailer_checks_its_length_against_the_count(tmp_path: Path) -> None:
    data = valid_pack(tmp_path)
    algo, t, n = footer_span(data[:32], data[-40:], len(data))
    entries = parse_trailer(algo, data[t:-40], t, n, data[-24:-8])
    assert len(entries) == n
    with pytest.raises(PackFormatError):
        parse_trailer(algo, data[t:-40], t, n + 1, data[-24:-8])
