"""mlv.objects.packs.catalog: the union of a remote's indexes answers the same whether an
index is in the lookup table or searched in place (large indexes, or past the table's
budget), so memory stays bounded by the indexes' bytes (review finding F6)."""

from __future__ import annotations

import pytest

from mlv.objects.packs import catalog as catalog_mod
from mlv.objects.packs.catalog import Catalog
from mlv.objects.packs.index import PackIndex, PackRef, encode, index_name
from mlv.objects.packs.packfile import Entry


def _index(pack: str, hashes: list[str]) -> PackIndex:
    entries = [Entry(h, 32 + 10 * i, 10, 10) for i, h in enumerate(hashes)]
    data = encode("xxh128", [(PackRef(pack * 16, 100_000), entries)])
    return PackIndex.parse(index_name(data), data)


def _answers(indexes: list[PackIndex], asked: list[str]) -> tuple[object, ...]:
    c = Catalog(indexes)
    return (
        [c.lookup(h) for h in asked],
        [c.locations(h) for h in asked],
        c.holds(asked),
        list(c.items()),
    )


@pytest.mark.parametrize(("big", "room"), [(2, 1 << 19), (1 << 16, 3), (1, 0)])
def test_searched_indexes_answer_as_the_table_does(
    monkeypatch: pytest.MonkeyPatch, big: int, room: int
) -> None:
    h = [f"xxh128:{i:032x}" for i in range(1, 9)]
    indexes = [
        _index("aa", [h[0], h[1], h[2]]),
        _index("bb", [h[1]]),  # a second copy of h[1]
        _index("cc", [h[1], h[3], h[4], h[5]]),  # a third
        _index("dd", [h[6]]),
    ]
    asked = [*h, "xxh128:zz", "sha256:" + "0" * 64]
    expected = _answers(indexes, asked)
    monkeypatch.setattr(catalog_mod, "BIG_INDEX", big)
    monkeypatch.setattr(catalog_mod, "TABLE_ENTRIES", room)
    assert Catalog(indexes)._searched  # the case under test
    assert _answers(indexes, asked) == expected
    _lookup, locations, holds, items = expected
    assert [loc.pack.name[:2] for loc in locations[1]] == ["aa", "bb", "cc"]  # type: ignore[index]
    assert holds == set(h[:7])
    assert [k for k, _ in items] == sorted(h[:7])  # type: ignore[attr-defined]
