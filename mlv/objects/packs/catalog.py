"""What the indexes of a remote say it holds: one lookup table over all of them.

Built once per command from the indexes that one listing of index/ named (their bytes come
from the local index cache, or are downloaded and checked against their name). An object
named by several indexes is found in the first; any copy that hashes right serves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mlv.objects import hashing
from mlv.objects.packs.index import Location, PackIndex, PackRef


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
        for number, index in enumerate(self.indexes):
            for raw, row in index.rows():
                if raw in self._table:
                    self._more.setdefault(raw, []).append((number, row))
                else:
                    self._table[raw] = (number, row)

    @property
    def names(self) -> set[str]:
        return {i.name for i in self.indexes}

    def __len__(self) -> int:
        return len(self._table)

    def lookup(self, hash_id: str) -> Location | None:
        try:
            found = self._table.get(raw_hash(hash_id))
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
        found = self._table.get(raw)
        if found is None:
            return []
        algo = hashing.split(hash_id)[0]
        out = []
        for number, row in [found, *self._more.get(raw, [])]:
            index = self.indexes[number]
            if index.algo == algo:
                out.append(index.location(row))
        return out

    def holds(self, hashes: Iterable[str]) -> set[str]:
        """Those of hashes that some index names."""
        out = set()
        for h in hashes:
            try:
                if raw_hash(h) in self._table:
                    out.add(h)
            except ValueError:
                continue
        return out

    def packs(self) -> dict[str, PackRef]:
        """Every pack some index names, by name."""
        return {p.name: p for index in self.indexes for p in index.packs}

    def items(self) -> Iterator[tuple[str, Location]]:
        """(hash id, location) of every object, each once."""
        seen: set[str] = set()
        for index in self.indexes:
            for h, loc in index.items():
                if h not in seen:
                    seen.add(h)
                    yield h, loc
