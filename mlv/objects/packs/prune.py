"""The packed part of `mlv gc -r`: drop packed objects that nothing kept names.

docs/design/packs.md, "gc -r: repacking". An object leaves a packed remote when the last
index naming it is deleted, and a pack may go only when no index names it. So gc, under the
remote's exclusive lock: writes new packs of the kept objects of mostly-dead or small packs
(each checked against its hash on the way), writes one merged index for the packs it keeps
as they are, deletes the old indexes, then (after the loose part) lists index/ again and
deletes the packs no index names. Killed at any moment, every index still names complete
packs and every kept object stays named by at least one index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from mlv import log
from mlv.objects import hashing
from mlv.objects.packs import layout
from mlv.objects.packs.index import FIXED_SIZE, PACK_ROW, Location, PackIndex, PackRef, encode
from mlv.objects.packs.index import index_name as name_of_index
from mlv.objects.packs.locks import RemoteLock, acquire
from mlv.objects.packs.packed import Packed
from mlv.objects.packs.packfile import (
    CODEC_RAW,
    FOOTER_SIZE,
    HEADER_SIZE,
    KIND_FILE,
    KIND_TREE,
    Entry,
    PackFormatError,
    entry_size,
    footer_span,
    parse_trailer,
)
from mlv.storage.backend import Missing

LIVE_SHARE = 0.7  # a pack whose kept bytes are below this share of its size is rewritten
SMALL_PACK = 8 << 20  # packs below this size are merged when there are several
SMALL_INDEX = 4 << 20  # indexes below this size are merged into one
MERGED_INDEX = 8 << 20  # a merged index names at most about this many bytes of entries
GRACE = 24 * 3600  # seconds: an unindexed pack younger than this may be a push's


@dataclass
class Orphan:
    """A pack that no index names, as the listing of packs/ shows it."""

    name: str
    size: int
    age: float  # seconds, by the server's clock


@dataclass
class PrunePlan:
    """What the packed part of gc will do. `invalid`: indexes that failed their checks
    (name -> why); while there are any, gc deletes no pack and no index."""

    packs: int = 0  # packs the indexes name
    hashes: set[str] = field(default_factory=set)  # every object the indexes name
    invalid: dict[str, str] = field(default_factory=dict)
    newer: int = 0  # entries of a kind that names other objects (a newer mlv's): no pruning
    dead: list[PackRef] = field(default_factory=list)  # no kept object in them
    rewrite: list[PackRef] = field(default_factory=list)  # kept objects copied out
    copy: dict[str, Location] = field(default_factory=dict)  # kept objects to copy
    replace: list[PackIndex] = field(default_factory=list)  # old indexes to delete
    keep: list[PackRef] = field(default_factory=list)  # packs a new merged index names
    live: dict[str, dict[str, Location]] = field(default_factory=dict)  # pack -> entries
    doomed: dict[str, int] = field(default_factory=dict)  # packed objects dropped: length
    orphans: list[Orphan] = field(default_factory=list)  # older than the grace period
    young: int = 0  # unindexed packs younger than the grace period: left alone

    @property
    def freed(self) -> int:
        """Bytes the remote frees, about: packs deleted less the kept bytes copied."""
        gone = sum(p.size for p in self.dead + self.rewrite) + sum(o.size for o in self.orphans)
        return max(0, gone - sum(loc.stored for loc in self.copy.values()))

    @property
    def work(self) -> bool:
        return bool(self.dead or self.rewrite or self.replace or self.orphans)


@dataclass
class PruneResult:
    removed: int = 0  # packed objects no index names any more
    freed: int = 0  # bytes of packs deleted, less the bytes of new packs
    packs_written: int = 0
    packs_deleted: int = 0
    indexes_written: int = 0
    indexes_deleted: int = 0
    reindexed: int = 0  # unindexed packs given an index again
    failed: dict[str, str] = field(default_factory=dict)  # hash or key -> reason
    corrupt: dict[str, str] = field(default_factory=dict)  # kept hash -> its pack: dropped
    warnings: list[str] = field(default_factory=list)
    complete: bool = False  # every old index replaced: the second phase may delete packs


def _pinned(loc: Location) -> bool:
    """An entry a newer mlv wrote (codec or kind unknown here): gc keeps its pack as it is."""
    return loc.codec != CODEC_RAW or loc.kind not in (KIND_FILE, KIND_TREE)


def _index_bytes(index: PackIndex) -> int:
    return FIXED_SIZE + PACK_ROW.size * len(index.packs) + entry_size(index.algo) * len(index)


def plan(packed: Packed, kept: set[str], lock_mtime: float | None = None) -> PrunePlan:
    """Decide what to rewrite and drop, from one fresh listing of index/ and one of packs/."""
    catalog = packed.catalog(refresh=True)
    out = PrunePlan(invalid=dict(catalog.invalid))
    if out.invalid:
        return out
    by_pack: dict[str, dict[str, Location]] = {}
    refs: dict[str, PackRef] = {}
    for index in catalog.indexes:
        for h, loc in index.items():
            by_pack.setdefault(loc.pack.name, {}).setdefault(h, loc)
            refs[loc.pack.name] = loc.pack
    out.packs = len(refs)
    naming = sum(1 for e in by_pack.values() for loc in e.values() if loc.kind > KIND_TREE)
    if naming:
        # Chunk lists (issue 16) or a newer kind name other objects in ways this mlv cannot
        # follow: dropping anything could drop what they name.
        out.newer = naming
        return out
    out.hashes = {h for entries in by_pack.values() for h in entries}
    pinned = {name for name, entries in by_pack.items() if any(map(_pinned, entries.values()))}
    live: dict[str, dict[str, Location]] = {
        name: {h: loc for h, loc in entries.items() if h in kept or name in pinned}
        for name, entries in by_pack.items()
    }
    rewrite: set[str] = set()
    small: dict[tuple[str, bool], list[str]] = {}
    for name, ref in sorted(refs.items()):
        if not live[name]:
            out.dead.append(ref)
            continue
        if name in pinned:
            continue
        if sum(loc.stored for loc in live[name].values()) < LIVE_SHARE * ref.size:
            rewrite.add(name)
        if ref.size < SMALL_PACK:
            trees = any(loc.kind == KIND_TREE for loc in live[name].values())
            algo = hashing.split(next(iter(live[name])))[0]
            small.setdefault((algo, trees), []).append(name)
    for names in small.values():
        if len(names) >= 2:
            rewrite |= set(names)
    out.rewrite = [refs[n] for n in sorted(rewrite)]
    stay = {n for n in refs if n not in rewrite and live[n]}
    staying = {h for n in stay for h in live[n]}
    for name in sorted(rewrite):
        for h, loc in live[name].items():
            if h not in staying:
                out.copy.setdefault(h, loc)
    # Indexes: replace those that name a pack going away or an object not kept, and merge
    # the small ones when there are several of one algorithm.
    smalls: dict[str, list[PackIndex]] = {}
    replace: dict[str, PackIndex] = {}
    for index in catalog.indexes:
        if any(p.name not in stay for p in index.packs) or any(
            h not in kept and loc.pack.name not in pinned for h, loc in index.items()
        ):
            replace[index.name] = index
        elif _index_bytes(index) < SMALL_INDEX:
            smalls.setdefault(index.algo, []).append(index)
    for group in smalls.values():
        if len(group) >= 2:
            replace.update((i.name, i) for i in group)
    # Deletion order: indexes naming trees that are not kept first (docs/design/packs.md).
    out.replace = sorted(
        replace.values(),
        key=lambda i: (
            not any(loc.kind == KIND_TREE and h not in kept for h, loc in i.items()),
            i.name,
        ),
    )
    remaining = [i for i in catalog.indexes if i.name not in replace]
    named_after = {h for i in remaining for h, _ in i.items()}
    keep = sorted({p.name for i in out.replace for p in i.packs if p.name in stay})
    out.keep = [refs[n] for n in keep]
    out.live = {n: live[n] for n in keep}
    for n in keep:
        named_after |= set(live[n])
    named_after |= set(out.copy)
    for entries in by_pack.values():
        for h, loc in entries.items():
            if h not in named_after:
                out.doomed.setdefault(h, loc.length)
    _plan_orphans(packed, set(refs), out, lock_mtime)
    return out


def _plan_orphans(
    packed: Packed, named: set[str], out: PrunePlan, lock_mtime: float | None
) -> None:
    try:
        listed = packed.backend.list_info(layout.PACKS)
    except Missing:
        listed = {}
    except Exception as e:
        raise packed.failure(e) from e
    if not listed:
        return
    # Ages by the server's clock: against the newest key listed, or this gc's own lock.
    now = max([info.mtime for info in listed.values()] + ([lock_mtime] if lock_mtime else []))
    for key, info in sorted(listed.items()):
        name = layout.pack_name_of(key)
        if name is None or name in named:
            continue
        age = now - info.mtime
        if age > GRACE:
            out.orphans.append(Orphan(name, info.size, age))
        else:
            out.young += 1


def rewrite(packed: Packed, plan: PrunePlan, scratch: str, result: PruneResult) -> None:
    """Phase one (before the loose part): new packs and indexes, then the old indexes go.
    Nothing is deleted unless every kept object of the packs going away is named again."""
    if plan.invalid or plan.newer:
        return
    corrupt: dict[str, str] = {}
    failed = False
    for kind in (KIND_FILE, KIND_TREE):
        wanted = {h: loc for h, loc in plan.copy.items() if loc.kind == kind}
        if not wanted:
            continue

        def checked(wanted: dict[str, Location] = wanted) -> Iterator[tuple[str, bytes]]:
            nonlocal failed
            for h, data, error in packed.read(wanted):
                if error is not None or data is None:
                    result.failed[h] = f"cannot read it from pack {wanted[h].pack.name}: {error}"
                    failed = True
                    continue
                if hashing.hash_bytes(hashing.algorithm_of(h), data) != h:
                    corrupt[h] = wanted[h].pack.name
                    continue
                yield h, data

        written = packed.write(checked(), kind, scratch)
        result.packs_written += written.requests
        result.freed -= written.nbytes
        for h, e in written.failed.items():
            result.failed[h] = f"cannot write it into a new pack: {type(e).__name__}: {e}"
            failed = True
    result.corrupt.update(corrupt)
    if failed:
        result.warnings.append(
            "no index or pack deleted: some kept objects could not be copied into new packs; "
            "run gc again"
        )
        return
    by_algo: dict[str, list[tuple[PackRef, list[Entry]]]] = {}
    for ref in plan.keep:
        entries = [
            Entry(h, loc.offset, loc.stored, loc.length, loc.codec, loc.kind)
            for h, loc in sorted(plan.live[ref.name].items())
        ]
        algo = hashing.split(entries[0].hash)[0]
        by_algo.setdefault(algo, []).append((ref, entries))
    for algo, packs in sorted(by_algo.items()):
        for group in _groups(algo, packs):
            _write_index(packed, encode(algo, group))
            result.indexes_written += 1
    keys = [layout.index_key(i.name) for i in plan.replace]
    done = _delete(packed, keys, result)
    result.indexes_deleted = len(done)
    # Every old index gone: the packs only they named may go once index/ is listed again.
    result.complete = len(done) == len(keys)


def _groups(
    algo: str, packs: list[tuple[PackRef, list[Entry]]]
) -> Iterator[list[tuple[PackRef, list[Entry]]]]:
    """Packs cut into merged indexes of at most about MERGED_INDEX bytes."""
    group: list[tuple[PackRef, list[Entry]]] = []
    nbytes = 0
    for item in packs:
        size = PACK_ROW.size + entry_size(algo) * len(item[1])
        if group and nbytes + size > MERGED_INDEX:
            yield group
            group, nbytes = [], 0
        group.append(item)
        nbytes += size
    if group:
        yield group


def _write_index(packed: Packed, data: bytes) -> None:
    """Write an index, and keep it in the local index cache (the next command reads it from
    there, not from the remote)."""
    name = name_of_index(data)
    try:
        results = packed.backend.write([(data, layout.index_key(name))], 1)
    except Exception as e:
        raise packed.failure(e) from e
    if results[0].error is not None:
        raise packed.failure(results[0].error)
    packed.keep_index(name, data)


def _delete(packed: Packed, keys: list[str], result: PruneResult) -> list[str]:
    """Delete keys in order; those deleted (or absent already) come back."""
    if not keys:
        return []
    try:
        results = packed.backend.delete(keys, packed.jobs)
    except Exception as e:
        raise packed.failure(e) from e
    done = []
    for r in results:
        if r.error is None or isinstance(r.error, Missing):
            done.append(r.key)
        else:
            result.failed[r.key] = f"cannot delete it: {type(r.error).__name__}: {r.error}"
    return done


def drop_packs(packed: Packed, plan: PrunePlan, kept: set[str], result: PruneResult) -> None:
    """Phase two (after the loose part): list index/ again and delete the packs that no
    index of that listing names; then unindexed packs past the grace period are indexed
    again from their trailer when they hold kept objects no index names, else deleted."""
    if plan.invalid or plan.newer:
        return
    catalog = packed.catalog(refresh=True)
    if catalog.invalid:
        result.warnings.append("no pack deleted: an index became unusable meanwhile; run gc again")
        return
    named = set(catalog.packs())
    if result.complete:
        result.removed = len(plan.doomed)
        going = [p for p in plan.dead + plan.rewrite if p.name not in named]
        done = set(_delete(packed, [layout.pack_key(p.name) for p in going], result))
        for p in going:
            if layout.pack_key(p.name) in done:
                result.packs_deleted += 1
                result.freed += p.size
    for orphan in plan.orphans:
        if orphan.name in named:
            continue
        _orphan(packed, orphan, catalog.holds, kept, result)


def _orphan(
    packed: Packed,
    orphan: Orphan,
    holds: Callable[[Iterable[str]], set[str]],
    kept: set[str],
    result: PruneResult,
) -> None:
    key = layout.pack_key(orphan.name)
    ref = PackRef(orphan.name, orphan.size)
    try:
        entries = _trailer(packed, key, orphan.size)
    except (PackFormatError, OSError) as e:
        log.debug(__name__, f"{key}: {e}")
        entries = ()  # not a pack this mlv can read: nothing in it is named, nothing kept
    named = holds(e.hash for e in entries)
    wanted = {
        e.hash: Location(ref, e.offset, e.stored, e.length, e.codec, e.kind)
        for e in entries
        if e.hash in kept
        and e.hash not in named
        and e.codec == CODEC_RAW
        and e.kind in (KIND_FILE, KIND_TREE)
    }
    good: list[Entry] = []
    if wanted:
        by_hash = {e.hash: e for e in entries}
        for h, data, error in packed.read(wanted):
            ok = error is None and data is not None
            if ok and data is not None and hashing.hash_bytes(hashing.algorithm_of(h), data) == h:
                good.append(by_hash[h])
    if good:
        algo = hashing.split(good[0].hash)[0]
        _write_index(packed, encode(algo, [(ref, sorted(good, key=lambda e: e.hash))]))
        result.reindexed += 1
        result.indexes_written += 1
        return
    if _delete(packed, [key], result):
        result.packs_deleted += 1
        result.freed += orphan.size


def _trailer(packed: Packed, key: str, size: int) -> tuple[Entry, ...]:
    """A pack's entries from its header, footer and trailer (three ranged reads), every
    field checked as for an index."""
    head = [(key, 0, HEADER_SIZE), (key, max(0, size - FOOTER_SIZE), FOOTER_SIZE)]
    try:
        results = packed.backend.read_ranges(head, 1)
    except Exception as e:
        raise packed.failure(e) from e
    for r in results:
        if r.error is not None:
            raise OSError(f"cannot read it: {r.error}")
    header, footer = results[0].data or b"", results[1].data or b""
    algo, trailer_offset, count = footer_span(header, footer, size)
    length = size - FOOTER_SIZE - trailer_offset
    try:
        r = packed.backend.read_ranges([(key, trailer_offset, length)], 1)[0]
    except Exception as e:
        raise packed.failure(e) from e
    if r.error is not None:
        raise OSError(f"cannot read its trailer: {r.error}")
    return parse_trailer(algo, r.data or b"", trailer_offset, count, footer[16:32])


def lock(packed: Packed, command: str) -> RemoteLock:
    """Take the remote's exclusive gc lock for command (RemoteError naming the holder)."""
    return acquire(packed.backend, "gc", command, packed.failure)
