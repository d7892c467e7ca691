"""What the indexes of a remote say it holds: one lookup table over all of them.

Built once per command from the indexes that one listing of index/ named (their bytes come
from the local index cache, or are downloaded and checked against their name). An object
named by several indexes is found in the first; any copy that hashes right serves.

Memory is bounded by the indexes' own bytes, not by their entry count: a lookup table (a
dict, ~175 bytes of Python objects per entry, 4.4 times an xxh128 entry's 40 bytes) is
built for small indexes only, up to TABLE_ENTRIES entries in all; a large index (a merged
one, or a hostile remote's), and any index beyond that budget, is searched in place, as
git searches its .idx files (fanout, then a binary search of the bytes: a few
microseconds). Before, three 40 MB indexes of 1M entries each made `mlv fetch` hold 835 MB.
What a command loads in all is bounded by packed.MAX_TOTAL_INDEX_BYTES.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mlv.objects import hashing
from mlv.objects.packs.index import Location, PackIndex, PackRef

# An index of at least BIG_INDEX entries is searched in place; smaller ones go into the
# table until it holds TABLE_ENTRIES entries (~90 MB at most), later ones are searched.
BIG_INDEX = 1 << 16
TABLE_ENTRIES = 1 << 19


def raw_hash(hash_id: str) -> bytes:
    return bytes.fromhex(hashing.split(hash_id)[1])


@dataclass
class Catalog:
    """The union of a remote's valid indexes. `invalid` names those that failed a check
    (index name -> why): their objects count as absent."""

    indexes: list[PackIndex] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._table: dict[bytes, tuple[int, int]] = {}
        self._more: dict[bytes, list[tuple[int, int]]] = {}  # second and later copies
        self._searched: list[int] = []  # indexes not in the table, by number (ascending)
        room = TABLE_ENTRIES
        for number, index in enumerate(self.indexes):
            if len(index) >= BIG_INDEX or len(index) > room:
                self._searched.append(number)
                continue
            room -= len(index)
            for raw, row in index.rows():
                if raw in self._table:
                    self._more.setdefault(raw, []).append((number, row))
                else:
                    self._table[raw] = (number, row)

    @property
    def names(self) -> set[str]:
        return {i.name for i in self.indexes}

    def _first(self, raw: bytes) -> tuple[int, int] | None:
        """(index number, row) of the first index naming raw, or None."""
        found = self._table.get(raw)
        for number in self._searched:
            if found is not None and number > found[0]:
                break
            row = self.indexes[number].find(raw)
            if row is not None:
                return number, row
        return found

    def _all(self, raw: bytes) -> list[tuple[int, int]]:
        """(index number, row) of every index naming raw, in index order."""
        found = self._table.get(raw)
        out = [] if found is None else [found, *self._more.get(raw, [])]
        for number in self._searched:
            row = self.indexes[number].find(raw)
            if row is not None:
                out.append((number, row))
        return sorted(out) if self._searched and found is not None else out

    def lookup(self, hash_id: str) -> Location | None:
        try:
            found = self._first(raw_hash(hash_id))
        except ValueError:
            return None
        if found is None:
            return None
        index = self.indexes[found[0]]
        if index.algo != hashing.split(hash_id)[0]:
            return None
        return index.location(found[1])

    def locations(self, hash_id: str) -> list[Location]:
        """Every copy the indexes name (an object re-sent after its pack was lost is named
        by the old index and the new one), first the one lookup gives."""
        try:
            raw = raw_hash(hash_id)
        except ValueError:
            return []
        algo = hashing.split(hash_id)[0]
        out = []
        for number, row in self._all(raw):
            index = self.indexes[number]
            if index.algo == algo:
                out.append(index.location(row))
        return out

    def holds(self, hashes: Iterable[str]) -> set[str]:
        """Those of hashes that some index names."""
        out = set()
        for h in hashes:
            try:
                if self._first(raw_hash(h)) is not None:
                    out.add(h)
            except ValueError:
                continue
        return out

    def packs(self) -> dict[str, PackRef]:
        """Every pack some index names, by name."""
        return {p.name: p for index in self.indexes for p in index.packs}

    def items(self) -> Iterator[tuple[str, Location]]:
        """(hash id, location) of every object, each once (from the first index naming it)."""
        for number, index in enumerate(self.indexes):
            for (raw, _row), (h, loc) in zip(index.rows(), index.items(), strict=True):
                first = self._table.get(raw) if not self._searched else self._first(raw)
                if first is not None and first[0] == number:
                    yield h, loc
