"""Differences between two trees, loading only the subtrees whose hashes differ."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mlv.objects.tree import DIR, Entry, Tree, check_depth

TreeLoader = Callable[[str], Tree]


@dataclass(frozen=True, slots=True)
class Change:
    """path (relative to the compared roots) was `old` and is `new` (None: absent).

    Directories present on one side only are reported themselves too, so that a consumer
    can create or remove empty ones: an added directory before its content, a deleted one
    after its content (so it is empty by the time it comes).
    """

    path: str
    old: Entry | None
    new: Entry | None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


def walk(load: TreeLoader, tree_hash: str, prefix: str = "") -> Iterator[tuple[str, Entry]]:
    """Every entry below a tree, depth first, directories before their content."""
    for entry in load(tree_hash).entries:
        path = _join(prefix, entry.name)
        yield path, entry
        if entry.is_dir:
            check_depth(path, tree_hash)
            yield from walk(load, entry.hash, path)


def diff(
    load: TreeLoader, old: str | None, new: str | None, prefix: str = "", whole_new: bool = False
) -> Iterator[Change]:
    """Changes turning tree `old` into tree `new` (either may be None: empty). whole_new:
    a directory that only `new` has is one change, its content left to the consumer."""
    if old == new:
        return
    if prefix:
        check_depth(prefix, new or old or "")
    if not old or not new:  # one side only: its entries, already in name order
        side = new or old
        if not side:
            return
        for entry in load(side).entries:
            path = f"{prefix}/{entry.name}" if prefix else entry.name
            if not new:
                if entry.kind == DIR:
                    yield from diff(load, entry.hash, None, path)
                yield Change(path, entry, None)
            else:
                if entry.kind == DIR:  # before the consumer makes the folder
                    check_depth(path, side)
                yield Change(path, None, entry)
                if entry.kind == DIR and not whole_new:
                    yield from diff(load, None, entry.hash, path)
        return
    old_entries = load(old).by_name() if old else {}
    new_entries = load(new).by_name() if new else {}
    for name in sorted(old_entries.keys() | new_entries.keys()):
        a = old_entries.get(name)
        b = new_entries.get(name)
        path = _join(prefix, name)
        if a is not None and b is not None and a.kind == b.kind:
            if a.hash == b.hash:
                continue
            if a.is_dir:
                yield from diff(load, a.hash, b.hash, path, whole_new)
            else:
                yield Change(path, a, b)
            continue
        if a is not None:
            if a.is_dir:
                yield from diff(load, a.hash, None, path)
            yield Change(path, a, None)
        if b is not None:
            if b.is_dir:
                check_depth(path, new)
                yield Change(path, None, b)
                if not whole_new:
                    yield from diff(load, None, b.hash, path)
            else:
                yield Change(path, None, b)
