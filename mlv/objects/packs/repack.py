"""`mlv remote repack`: pack the loose objects below the threshold of an existing remote.

docs/design/packs.md, "gc -r: repacking" (last paragraph). A remote written by mlv 0.1, or
pushed with `pack_threshold 0`, holds every object loose. Repack, under the remote's
exclusive gc lock: reads the small loose objects that no index names (each checked against
its hash; a corrupt one is reported and left alone), writes them into packs with indexes
(files first, then every tree in one call, so no index names a tree before the indexes of
what it names), deletes the loose copies now indexed, and, only when no small loose object
remains, rewrites the marker with `loose-small` false. Killed at any moment, every object
is loose, packed, or both: the remote stays valid and a re-run completes the work.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from mlv.errors import RemoteError
from mlv.objects import hashing
from mlv.objects.packs import layout
from mlv.objects.packs.layout import Marker
from mlv.objects.packs.locks import UNSURE, RemoteLock, acquire
from mlv.objects.packs.packfile import KIND_FILE, KIND_TREE
from mlv.objects.remote import RemoteStore
from mlv.objects.tree import MARK
from mlv.util import localfs

READ_BYTES = 64 << 20  # loose objects read into memory at once, about

Done = Callable[[int], None]


@dataclass
class RepackPlan:
    """What repack will do, from one listing of the loose objects and one of index/."""

    pack: dict[str, int] = field(default_factory=dict)  # small, loose, unindexed: hash -> size
    # small loose objects an index already names in a listed pack (a killed repack's):
    # only their loose copies go
    packed: dict[str, int] = field(default_factory=dict)
    large: int = 0  # loose objects at or above the threshold: they stay loose
    marker_loose_small: bool = True  # what the marker says now (True without a marker)

    @property
    def nbytes(self) -> int:
        return sum(self.pack.values())

    def estimated_packs(self, pack_size: int) -> int:
        """Packs the write would make, about (per algorithm, pack_size bytes each)."""
        by_algo: dict[str, int] = {}
        for h, size in self.pack.items():
            algo = hashing.split(h)[0]
            by_algo[algo] = by_algo.get(algo, 0) + size
        return sum(max(1, -(-total // max(1, pack_size))) for total in by_algo.values())


@dataclass
class RepackResult:
    packed: int = 0  # objects written into packs (named by an index)
    nbytes: int = 0
    packs: int = 0  # packs written
    deleted: int = 0  # loose copies deleted
    corrupt: dict[str, str] = field(default_factory=dict)  # hash -> what its bytes hash to
    failed: dict[str, str] = field(default_factory=dict)  # hash -> reason
    remaining: int = 0  # small loose objects still on the remote afterwards
    marker_written: bool = False  # loose-small turned false


def plan(store: RemoteStore) -> RepackPlan:
    """List the loose objects with sizes and index/; sort the small loose ones into those
    to pack and those packed already (proven: in a pack listed with its indexed size)."""
    threshold = store.packing.threshold
    loose = store.inventory()
    small = {h: size for h, size in loose.items() if size < threshold}
    out = RepackPlan(large=len(loose) - len(small))
    packs = store.packs
    indexed = packs.catalog(refresh=True).holds(small)
    proven = packs.prove(indexed) if indexed else set()
    for h, size in sorted(small.items()):
        if h not in indexed:
            out.pack[h] = size
        elif h in proven:
            out.packed[h] = size
        # named by an index whose pack is not listed whole: left loose (verify names it)
    marker = packs.marker()
    out.marker_loose_small = marker is None or marker.loose_small
    return out


def lock(store: RemoteStore, command: str) -> RemoteLock:
    """The remote's exclusive gc lock (no push and no gc meanwhile)."""
    return acquire(store.backend, "gc", command, store.failure)


def run(
    store: RemoteStore,
    todo: RepackPlan,
    scratch: str,
    held: RemoteLock | None = None,
    done: Done | None = None,
) -> RepackResult:
    """Pack, delete the loose copies, then the marker: in that order, so a kill at any
    point leaves every object loose, packed, or both. scratch: a private folder for packs
    being built and the trees set aside until the files are packed."""
    result = RepackResult()
    trees_dir = os.path.join(scratch, "trees")
    os.makedirs(trees_dir, exist_ok=True)
    trees: list[str] = []

    def files() -> Iterator[tuple[str, bytes]]:
        wanted = list(todo.pack)
        got: list[tuple[str, bytes]] = []  # what check() read and found intact, per chunk
        start = 0
        while start < len(wanted):
            chunk: list[str] = []
            nbytes = 0
            while start < len(wanted) and (not chunk or nbytes < READ_BYTES):
                chunk.append(wanted[start])
                nbytes += todo.pack[wanted[start]]
                start += 1
            got.clear()
            outcome = store.check(chunk, scratch, keep=lambda h, data: got.append((h, data)))
            result.corrupt.update(outcome.got)
            for h in outcome.corrupt:
                result.corrupt.setdefault(h, "?")
            result.failed.update(outcome.failed)
            for h in outcome.missing:
                result.failed[h] = "gone from the remote meanwhile"
            for h, data in got:
                if data.startswith(MARK):
                    # Trees wait on disk until every file is indexed (the order rule).
                    localfs.write_bytes_atomic(os.path.join(trees_dir, _file_name(h)), data)
                    trees.append(h)
                else:
                    yield h, data

    def tree_objects() -> Iterator[tuple[str, bytes]]:
        for h in trees:
            path = os.path.join(trees_dir, _file_name(h))
            with open(path, "rb") as fh:
                data = fh.read()
            if hashing.hash_bytes(hashing.algorithm_of(h), data) == h:
                yield h, data
            else:
                result.failed[h] = "its copy set aside on this machine changed: run repack again"

    newly: dict[int, list[str]] = {}
    try:
        for kind, objects in ((KIND_FILE, files), (KIND_TREE, tree_objects)):
            if not todo.pack:
                break
            written = store.packs.write(objects(), kind, scratch, done)
            result.packs += written.requests
            result.packed += len(written.done)
            result.nbytes += written.nbytes
            newly[kind] = list(written.done)
            for h, e in written.failed.items():
                result.failed[h] = f"cannot write it into a pack: {store.reason(e)}"
    finally:
        for h in trees:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(trees_dir, _file_name(h)))
        with contextlib.suppress(OSError):
            os.rmdir(trees_dir)
    # Loose copies now indexed: trees first, so a 0.1 reader's "a tree there means all it
    # names is there" holds as long as possible.
    tree_copies = newly.get(KIND_TREE, [])
    file_copies = newly.get(KIND_FILE, [])
    # A packed copy is proven by its bytes, not by its pack's listed size, before the loose
    # copy goes: a rotten pack (or a hostile index) must not cost the only good copy.
    packed_before = sorted(_sound_packed(store, todo.packed, result))
    _still_locked(store, held)
    for group in (tree_copies, file_copies + packed_before):
        if not group:
            continue
        outcome = store.delete(group)
        result.deleted += len(outcome.done)
        for h, reason in outcome.failed.items():
            result.failed[h] = f"cannot delete its loose copy: {reason}"
    # The marker's one change, only once no small loose object remains (listed again).
    threshold = store.packing.threshold
    result.remaining = sum(1 for size in store.inventory().values() if size < threshold)
    if result.remaining == 0 and todo.marker_loose_small:
        _still_locked(store, held)
        _write_marker(store, Marker(loose_small=False))
        result.marker_written = True
    return result


def _sound_packed(store: RemoteStore, hashes: Iterable[str], result: RepackResult) -> set[str]:
    """Those of hashes with a packed copy that hashes right (every indexed copy tried, read
    by ranges); the others keep their loose copy and are reported."""
    catalog = store.packs.catalog()
    todo = {h: catalog.locations(h) for h in hashes}
    sound: set[str] = set()
    why: dict[str, str] = {}
    while True:
        wanted = {h: locs.pop(0) for h, locs in todo.items() if locs and h not in sound}
        if not wanted:
            break
        for h, data, error in store.packs.read(wanted):
            if error is not None or data is None:
                why.setdefault(h, f"cannot read it from pack {wanted[h].pack.name}: {error}")
            elif hashing.hash_bytes(hashing.algorithm_of(h), data) == h:
                sound.add(h)
            else:
                why[h] = f"its copy in pack {wanted[h].pack.name} is corrupt"
    for h in todo:
        if h not in sound:
            result.failed[h] = f"loose copy kept: {why.get(h, 'no index names it any more')}"
    return sound


def _file_name(h: str) -> str:
    algo, hexpart = hashing.split(h)
    return f"{algo}-{hexpart}"


def _still_locked(store: RemoteStore, held: RemoteLock | None) -> None:
    """Stop before deleting when the lock could not be refreshed for long."""
    if held is not None and not held.held:
        raise RemoteError(
            f"remote '{store.name}' ({store.url}): repack could not refresh its lock for "
            f"{UNSURE // 60} min, so another command may be running: nothing deleted",
            "run `mlv remote repack` again",
        )


def _write_marker(store: RemoteStore, marker: Marker) -> None:
    try:
        results = store.backend.write([(marker.encode(), layout.MARKER_KEY)], 1)
    except Exception as e:
        raise store.failure(e) from e
    if results[0].error is not None:
        raise store.failure(results[0].error)
