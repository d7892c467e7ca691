"""Index files, version 1: which objects are in which packs, at which byte ranges.

An index is a header, a pack table, a 256-entry fanout and sorted fixed-size entries
(docs/formats.md). `PackIndex.parse` checks everything a hostile remote could get wrong
in one pass over the entries, without building an object per entry; lookups then read the
bytes directly (fanout, then a binary search), as git does with its `.idx` files.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from operator import itemgetter

from mlv.objects import hashing
from mlv.objects.packs.packfile import (
    ALGO_BY_CODE,
    ALGO_CODES,
    ENTRY_STRUCTS,
    FOOTER_SIZE,
    HASH_SIZES,
    MAX_PACK_READ,
    Entry,
    PackFormatError,
    check_entry_rows,
    entry_size,
    pack_entry,
    raw_hash,
)

MAGIC = b"\x89MLVINDX"
VERSION = 1
MAX_INDEX_BYTES = 256 << 20

HEADER = struct.Struct("<8sHBBII12s")  # magic, version, algo, H, P, N, reserved
PACK_ROW = struct.Struct("<16sQ")  # pack name (raw XXH3-128), pack size
FANOUT = struct.Struct("<256I")
HEADER_SIZE = 32
FIXED_SIZE = HEADER_SIZE + FANOUT.size  # 1056: the size of an index of nothing
_NAME_CHARS = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class PackRef:
    name: str  # 32 hex
    size: int


@dataclass(frozen=True, slots=True)
class Location:
    pack: PackRef
    offset: int
    stored: int
    length: int
    codec: int
    kind: int


def index_name(data: bytes) -> str:
    """An index's name: the XXH3-128 of its bytes, in hex."""
    return hashing.fingerprint(data).hex()


def encode(algo: str, packs: Sequence[tuple[PackRef, Sequence[Entry]]]) -> bytes:
    """One index naming the entries of one or more packs (push: one pack; gc: many).

    A hash in several packs keeps its first pack's entry; a pack left with no entry is left
    out of the pack table. ValueError for an entry of another algorithm.
    """
    if algo not in ALGO_CODES:
        raise ValueError(f"unknown hash algorithm {algo!r}")
    chosen: dict[bytes, tuple[int, Entry]] = {}
    for number, (_ref, entries) in enumerate(packs):
        for entry in entries:
            chosen.setdefault(raw_hash(algo, entry.hash), (number, entry))
    used = sorted({number for number, _ in chosen.values()})
    renumber = {old: new for new, old in enumerate(used)}
    names = [packs[old][0].name for old in used]
    if len(set(names)) != len(names):
        raise ValueError("a pack is given twice")
    rows = sorted(chosen.items())
    fanout = [0] * 256
    for raw, _ in rows:
        fanout[raw[0]] += 1
    total = 0
    for b in range(256):
        total += fanout[b]
        fanout[b] = total
    parts = [
        HEADER.pack(MAGIC, VERSION, ALGO_CODES[algo], HASH_SIZES[algo], len(used), len(rows), b"")
    ]
    for old in used:
        ref = packs[old][0]
        parts.append(PACK_ROW.pack(bytes.fromhex(ref.name), ref.size))
    parts.append(FANOUT.pack(*fanout))
    parts.extend(pack_entry(algo, raw, renumber[number], entry) for raw, (number, entry) in rows)
    return b"".join(parts)


class PackIndex:
    """A checked index, read in place: lookups touch its bytes, not a Python object per entry."""

    name: str
    algo: str
    packs: tuple[PackRef, ...]

    def __init__(
        self, name: str, algo: str, packs: tuple[PackRef, ...], data: bytes, fanout: Sequence[int]
    ) -> None:
        self.name = name
        self.algo = algo
        self.packs = packs
        self._data = data
        self._fanout = tuple(fanout)
        self._base = FIXED_SIZE + PACK_ROW.size * len(packs)
        self._hsize = HASH_SIZES[algo]
        self._esize = entry_size(algo)
        self._entry = ENTRY_STRUCTS[algo]
        self._count = self._fanout[255]

    @classmethod
    def parse(cls, name: str, data: bytes) -> PackIndex:
        """Check an index downloaded under `name` (docs/design/packs.md, "Hostile remotes").

        The size equation is checked by arithmetic before anything is allocated; then the
        pack table, the fanout and every entry (order, pack numbers, reserved bytes, ranges
        inside their pack and not overlapping, length rules). Unknown codec and kind values
        are allowed: a newer mlv's, the reader decides. PackFormatError names what failed.
        """
        if len(data) > MAX_INDEX_BYTES:
            raise PackFormatError("index larger than 256 MiB")
        if len(name) != 32 or not _NAME_CHARS.issuperset(name):
            raise PackFormatError(f"index name {name!r} is not 32 hex digits")
        if index_name(data) != name:
            raise PackFormatError("index bytes do not hash to its name")
        if len(data) < FIXED_SIZE:
            raise PackFormatError("truncated index")
        magic, version, code, hsize, npacks, nentries, reserved = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise PackFormatError("not an index (wrong magic)")
        if version != VERSION:
            raise PackFormatError(f"index format version {version} is not supported")
        algo = ALGO_BY_CODE.get(code)
        if algo is None:
            raise PackFormatError(f"unknown hash algorithm code {code}")
        if hsize != HASH_SIZES[algo]:
            raise PackFormatError(f"hash size {hsize} does not match {algo}")
        if any(reserved):
            raise PackFormatError("reserved header bytes not zero")
        base = FIXED_SIZE + PACK_ROW.size * npacks
        if base + entry_size(algo) * nentries != len(data):
            raise PackFormatError("index size disagrees with its pack and entry counts")
        if npacks > nentries:
            raise PackFormatError("more packs than entries")
        refs: list[PackRef] = []
        ends: list[int] = []
        for raw_name, size in PACK_ROW.iter_unpack(data[HEADER_SIZE : base - FANOUT.size]):
            if size > MAX_PACK_READ:
                raise PackFormatError("pack larger than 4 GiB")
            refs.append(PackRef(raw_name.hex(), size))
            ends.append(size - FOOTER_SIZE)
        if len({ref.name for ref in refs}) != len(refs):
            raise PackFormatError("a pack is named twice in the pack table")
        fanout = FANOUT.unpack_from(data, base - FANOUT.size)
        previous = 0
        for value in fanout:
            if value < previous:
                raise PackFormatError("fanout decreasing")
            previous = value
        if fanout[255] != nentries:
            raise PackFormatError("fanout does not end at the entry count")
        counts = [0] * 256
        check_entry_rows(algo, memoryview(data)[base:], ends, counts)
        total = 0
        for b in range(256):
            total += counts[b]
            if fanout[b] != total:
                raise PackFormatError("entry outside its fanout bucket")
        return cls(name, algo, tuple(refs), data, fanout)

    def __len__(self) -> int:
        return self._count

    def lookup(self, hash_id: str) -> Location | None:
        """Where an object is, or None when this index does not name it."""
        algo, hexpart = hashing.split(hash_id)
        if algo != self.algo or len(hexpart) != 2 * self._hsize:
            return None
        try:
            raw = bytes.fromhex(hexpart)
        except ValueError:
            return None
        row = self.find(raw)
        return None if row is None else self.location(row)

    def find(self, raw: bytes) -> int | None:
        """The row of the entry whose raw hash is raw, or None: the fanout, then a binary
        search of the entries' bytes (a few microseconds, nothing allocated per entry)."""
        if len(raw) != self._hsize:
            return None
        first = raw[0]
        lo = self._fanout[first - 1] if first else 0
        hi = self._fanout[first]
        data, base, esize, hsize = self._data, self._base, self._esize, self._hsize
        while lo < hi:
            mid = (lo + hi) // 2
            start = base + mid * esize
            found = data[start : start + hsize]
            if found < raw:
                lo = mid + 1
            elif found > raw:
                hi = mid
            else:
                return mid
        return None

    @property
    def nbytes(self) -> int:
        """The index's size in bytes (what holding it costs)."""
        return len(self._data)

    def rows(self) -> Iterator[tuple[bytes, int]]:
        """(raw hash bytes, row number) for every entry, in hash order."""
        skip = struct.Struct(f"<{self._hsize}s{self._esize - self._hsize}x")
        hashes = map(itemgetter(0), skip.iter_unpack(memoryview(self._data)[self._base :]))
        return zip(hashes, count())

    def location(self, row: int) -> Location:
        """The entry at a row (from `rows`)."""
        if not 0 <= row < self._count:
            raise IndexError(row)
        _raw, p, offset, stored, codec, kind, _r, length = self._entry.unpack_from(
            self._data, self._base + row * self._esize
        )
        return Location(self.packs[p], offset, stored, length, codec, kind)

    def items(self) -> Iterator[tuple[str, Location]]:
        """(hash id, location) for every entry, in hash order."""
        packs, algo = self.packs, self.algo
        for raw, p, offset, stored, codec, kind, _r, length in self._entry.iter_unpack(
            memoryview(self._data)[self._base :]
        ):
            yield f"{algo}:{raw.hex()}", Location(packs[p], offset, stored, length, codec, kind)
