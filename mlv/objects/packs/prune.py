"""The packed part of `mlv gc -r`: drop packed objects that nothing kept names.

docs/design/packs.md, "gc -r: repacking". An object leaves a packed remote when the last
index naming it is deleted, and a pack may go only when no index names it. So gc, under the
remote's exclusive lock: writes new packs of the kept objects of mostly-dead or small packs
(each checked against its hash on the way), writes one merged index for the packs it keeps
as they are, deletes the old indexes, then (after the loose part) lists index/ again and
deletes the packs no index names. Killed at any moment, every index still names complete
packs and every kept object stays named by at least one index.

Chunk lists (kind 2, issue 16) name their chunks: a kept chunk list keeps every chunk it
names, so gc reads every indexed copy of each kept list from the remote (by range) before
it decides anything, and deletes no pack when one cannot be read or parsed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from mlv import log
from mlv.objects import hashing
from mlv.objects.packs import layout
from mlv.objects.packs.chunks import ChunkList
from mlv.objects.packs.index import (
    FIXED_SIZE,
    MAX_INDEX_BYTES,
    PACK_ROW,
    Location,
    PackIndex,
    PackRef,
    encode,
)
from mlv.objects.packs.index import index_name as name_of_index
from mlv.objects.packs.locks import RemoteLock, acquire
from mlv.objects.packs.packed import DECODED, Packed
from mlv.objects.packs.packfile import (
    FOOTER_SIZE,
    HEADER_SIZE,
    KIND_CHUNKS,
    KIND_FILE,
    KIND_TREE,
    Entry,
    PackFormatError,
    entry_size,
    footer_span,
    parse_trailer,
)
from mlv.objects.store import Cache
from mlv.storage.backend import KeyInfo, Missing

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
    newer: int = 0  # entries of a kind newer than chunk lists (a newer mlv's): no pruning
    # kept chunk lists that could not be read or parsed (hash -> why): the chunks they name
    # are unknown, so gc deletes no pack and no index
    unknown: dict[str, str] = field(default_factory=dict)
    chunks: set[str] = field(default_factory=set)  # chunks the kept chunk lists name
    dead: list[PackRef] = field(default_factory=list)  # no kept object in them
    rewrite: list[PackRef] = field(default_factory=list)  # kept objects copied out
    copy: dict[str, Location] = field(default_factory=dict)  # kept objects to copy
    replace: list[PackIndex] = field(default_factory=list)  # old indexes to delete
    keep: list[PackRef] = field(default_factory=list)  # packs a new merged index names
    live: dict[str, dict[str, Location]] = field(default_factory=dict)  # pack -> entries
    doomed: dict[str, int] = field(default_factory=dict)  # packed objects dropped: length
    orphans: list[Orphan] = field(default_factory=list)  # older than the grace period
    young: int = 0  # unindexed packs younger than the grace period: left alone
    # packs an index names that packs/ lists not at all or at another size: their objects
    # are not on the remote (never read, copied or named again)
    lost: dict[str, str] = field(default_factory=dict)  # pack name -> why
    missing: dict[str, str] = field(default_factory=dict)  # kept hash -> its lost pack
    tree_indexes: set[str] = field(default_factory=set)  # of replace: naming doomed trees

    @property
    def freed(self) -> int:
        """Bytes the remote frees, about: packs deleted less the kept bytes copied."""
        gone = sum(p.size for p in self.dead + self.rewrite) + sum(o.size for o in self.orphans)
        return max(0, gone - sum(loc.stored for loc in self.copy.values()))

    @property
    def work(self) -> bool:
        return bool(self.dead or self.rewrite or self.replace or self.orphans)

    @property
    def blocked(self) -> bool:
        """Does this plan delete nothing (an unusable index, a newer kind, an unreadable
        kept chunk list)?"""
        return bool(self.invalid or self.newer or self.unknown)

    def listed(self, loc: Location) -> bool:
        """Is loc in a pack that packs/ lists whole (a copy worth reading)?"""
        return loc.pack.name not in self.lost


@dataclass
class PruneResult:
    removed: int = 0  # packed objects no index names any more
    gone: set[str] = field(default_factory=set)  # those objects
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
    return (loc.codec, loc.kind) not in DECODED


def _index_bytes(index: PackIndex) -> int:
    return FIXED_SIZE + PACK_ROW.size * len(index.packs) + entry_size(index.algo) * len(index)


def plan(
    packed: Packed, kept: set[str], lock_mtime: float | None = None, cache: Cache | None = None
) -> PrunePlan:
    """Decide what to rewrite and drop, from one fresh listing of index/ and one of packs/.
    kept grows by the chunks of every indexed copy of every kept chunk list (read from the
    remote)."""
    catalog = packed.catalog(refresh=True)
    out = PrunePlan(invalid=dict(catalog.invalid))
    if out.invalid:
        return out
    listed = packed.list_packs(refresh=True)
    by_pack: dict[str, dict[str, Location]] = {}
    refs: dict[str, PackRef] = {}
    lost: dict[str, dict[str, Location]] = {}
    for index in catalog.indexes:
        for p in index.packs:
            size = listed[p.name].size if p.name in listed else None
            if size != p.size:
                out.lost[p.name] = (
                    "not in packs/" if size is None else f"{size} bytes, its index says {p.size}"
                )
        for h, loc in index.items():
            if loc.pack.name in out.lost:
                lost.setdefault(loc.pack.name, {}).setdefault(h, loc)
                continue
            by_pack.setdefault(loc.pack.name, {}).setdefault(h, loc)
            refs[loc.pack.name] = loc.pack
    out.packs = len(refs)
    naming = sum(1 for e in by_pack.values() for loc in e.values() if loc.kind > KIND_CHUNKS)
    if naming:
        # A newer kind may name other objects in ways this mlv cannot follow: dropping
        # anything could drop what they name.
        out.newer = naming
        return out
    out.hashes = {h for entries in by_pack.values() for h in entries}
    _read_lists(packed, kept, by_pack, out)
    if out.unknown:
        return out
    kept = kept | out.chunks
    for name, entries in sorted(lost.items()):
        for h in entries:
            if h in kept and h not in out.hashes:
                out.missing.setdefault(h, name)
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
        # kept bytes: their stored bytes and trailer rows (and the pack's fixed frame), so
        # a small pack of compressed objects is not taken for one mostly dead
        algo = hashing.split(next(iter(live[name])))[0]
        kept_bytes = (
            HEADER_SIZE
            + FOOTER_SIZE
            + sum(loc.stored + entry_size(algo) for loc in live[name].values())
        )
        if kept_bytes < LIVE_SHARE * ref.size:
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
    # Deletion order: indexes naming trees or chunk lists that are not kept first
    # (docs/design/packs.md): nothing outlives what it names.
    out.tree_indexes = {
        i.name
        for i in replace.values()
        if any(loc.kind in (KIND_TREE, KIND_CHUNKS) and h not in kept for h, loc in i.items())
    }
    out.replace = sorted(replace.values(), key=lambda i: (i.name not in out.tree_indexes, i.name))
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
    _plan_orphans(listed, set(refs) | set(out.lost), out, lock_mtime)
    return out


def _read_lists(
    packed: Packed,
    kept: set[str],
    by_pack: dict[str, dict[str, Location]],
    out: PrunePlan,
) -> None:
    """Read and parse every kept chunk list into out.lists, its chunks into out.chunks;
    those that cannot be read or parsed go to out.unknown. Every indexed copy of a kept
    chunk list is read from the remote (by range), never from the cache's copy: two
    clones may have cut the same object with other parameters, and every copy that stays
    indexed must keep the chunks it names."""
    copies: dict[str, list[Location]] = {}
    for entries in by_pack.values():
        for h, loc in entries.items():
            if loc.kind == KIND_CHUNKS and h in kept:
                copies.setdefault(h, []).append(loc)
    round_no = 0
    while True:
        remote = {h: locs[round_no] for h, locs in copies.items() if len(locs) > round_no}
        if not remote:
            break
        round_no += 1
        for h, data, error in packed.read(remote):
            if error is not None or data is None:
                out.unknown[h] = f"cannot read it from pack {remote[h].pack.name}: {error}"
                continue
            try:
                parsed = ChunkList.parse(data, remote[h].length, hashing.algorithm_of(h))
            except PackFormatError as e:
                out.unknown[h] = f"its chunk list in pack {remote[h].pack.name} is not valid: {e}"
                continue
            out.chunks |= {r.hash for r in parsed.chunks}


def _plan_orphans(
    listed: dict[str, KeyInfo], named: set[str], out: PrunePlan, lock_mtime: float | None
) -> None:
    if not listed:
        return
    # Ages by the server's clock: against the newest key listed, or this gc's own lock.
    now = max([info.mtime for info in listed.values()] + ([lock_mtime] if lock_mtime else []))
    for name, info in sorted(listed.items()):
        if name in named:
            continue
        age = now - info.mtime
        if age > GRACE:
            out.orphans.append(Orphan(name, info.size, age))
        else:
            out.young += 1


def rewrite(packed: Packed, plan: PrunePlan, scratch: str, result: PruneResult) -> None:
    """Phase one (before the loose part): new packs and indexes, then the old indexes go.
    Nothing is deleted unless every kept object of the packs going away is named again."""
    if plan.blocked:
        return
    corrupt: dict[str, str] = {}
    failed = False
    # Chunks (kind 0) before the chunk lists naming them, files before the trees naming
    # them: each kind's packs are indexed after those of the kinds before it.
    for kind in (KIND_FILE, KIND_CHUNKS, KIND_TREE):
        wanted = {h: loc for h, loc in plan.copy.items() if loc.kind == kind}
        if not wanted:
            continue

        def checked(wanted: dict[str, Location] = wanted) -> Iterator[tuple[str, bytes]]:
            nonlocal failed
            bad: dict[str, str] = {}  # hash -> why its first copy did not serve
            for h, data, error in packed.read(wanted):
                if error is not None or data is None:
                    bad[h] = f"cannot read it from pack {wanted[h].pack.name}: {error}"
                elif not _sound(h, data, wanted[h], plan):
                    bad[h] = ""
                else:
                    yield h, data
            # Another copy may be sound: every other indexed one, then a loose one.
            for h, data in _other_copies(packed, plan, wanted, dict(bad)):
                del bad[h]
                yield h, data
            for h, why in bad.items():
                if why:
                    result.failed[h] = why
                    failed = True
                else:
                    corrupt[h] = wanted[h].pack.name  # what names it stays (below)

        lengths = {h: loc.length for h, loc in wanted.items()} if kind == KIND_CHUNKS else None
        written = packed.write(checked(), kind, scratch, lengths=lengths)
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
    wrote: set[str] = set()
    for algo, packs in sorted(by_algo.items()):
        for group in _groups(algo, packs):
            wrote.add(_write_index(packed, encode(algo, group)))
            result.indexes_written += 1
    # An index this run just wrote may have the very bytes (so the name) of one it replaces
    # (the same packs and entries): it stays.
    # A kept object with no sound copy anywhere: every index naming it stays, and so do its
    # packs (drop_packs deletes none that an index names), rotten copy and all.
    stuck = {i.name for i in plan.replace if corrupt and any(h in corrupt for h, _ in i.items())}
    if stuck:
        result.warnings.append(
            f"{len(stuck)} index(es) naming kept objects found corrupt are kept, with their "
            "packs: nothing of those objects is deleted"
        )
    old = [i.name for i in plan.replace if i.name not in wrote and i.name not in stuck]
    deleted = 0
    for step in (
        [n for n in old if n in plan.tree_indexes],
        [n for n in old if n not in plan.tree_indexes],
    ):
        keys = [layout.index_key(n) for n in step]
        done = _delete(packed, keys, result)
        deleted += len(done)
        if len(done) < len(keys):
            break  # an index naming a doomed tree stays: what it names stays too
    result.indexes_deleted = deleted
    # Every old index gone: the packs only they named may go once index/ is listed again.
    result.complete = deleted == len(old)


def _loose_key(hash_id: str) -> str:
    algo, hexpart = hashing.split(hash_id)
    return f"{algo}/{hexpart[:2]}/{hexpart[2:]}"


def _other_copies(
    packed: Packed, plan: PrunePlan, tried: dict[str, Location], bad: dict[str, str]
) -> Iterator[tuple[str, bytes]]:
    """Sound copies of the objects in bad, from the other packs the indexes name (packs
    listed whole only), then from loose copies; each checked against its hash."""
    if not bad:
        return
    catalog = packed.catalog()
    others = {
        h: [
            loc
            for loc in catalog.locations(h)
            if plan.listed(loc)
            and loc.pack != tried[h].pack
            and loc.kind == tried[h].kind
            and not _pinned(loc)
        ]
        for h in bad
    }
    found: set[str] = set()
    while True:
        wanted = {h: locs.pop(0) for h, locs in others.items() if locs and h not in found}
        if not wanted:
            break
        for h, data, error in packed.read(wanted):
            if error is None and data is not None and _sound(h, data, tried[h], plan):
                found.add(h)
                yield h, data
    # A loose copy is a whole object, never a chunk list.
    loose = [h for h in bad if h not in found and tried[h].kind != KIND_CHUNKS]
    if not loose:
        return
    try:
        results = packed.backend.read([_loose_key(h) for h in loose], packed.jobs)
    except Exception as e:
        raise packed.failure(e) from e
    by_key = {_loose_key(h): h for h in loose}
    for r in results:
        h = by_key.get(r.key, "")
        if h and r.error is None and r.data is not None and _hashes_to(h, r.data):
            yield h, r.data


def _hashes_to(hash_id: str, data: bytes) -> bool:
    return hashing.hash_bytes(hashing.algorithm_of(hash_id), data) == hash_id


def _sound(hash_id: str, data: bytes, loc: Location, plan: PrunePlan) -> bool:
    """A copy worth writing: an object that hashes to its name; a chunk list (whose name is
    the whole object's) that parses with the entry's length and names only chunks gc keeps."""
    if loc.kind != KIND_CHUNKS:
        return _hashes_to(hash_id, data)
    try:
        chunk_list = ChunkList.parse(data, loc.length, hashing.algorithm_of(hash_id))
    except PackFormatError:
        return False
    return all(r.hash in plan.chunks for r in chunk_list.chunks)


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


def _write_index(packed: Packed, data: bytes) -> str:
    """Write an index, and keep it in the local index cache (the next command reads it from
    there, not from the remote). Its name comes back."""
    name = name_of_index(data)
    try:
        results = packed.backend.write([(data, layout.index_key(name))], 1)
    except Exception as e:
        raise packed.failure(e) from e
    if results[0].error is not None:
        raise packed.failure(results[0].error)
    packed.keep_index(name, data)
    return name


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
    if plan.blocked:
        return
    kept = kept | plan.chunks
    catalog = packed.catalog(refresh=True)
    if catalog.invalid:
        result.warnings.append("no pack deleted: an index became unusable meanwhile; run gc again")
        return
    named = set(catalog.packs())
    if result.complete:
        result.gone = set(plan.doomed) - catalog.holds(plan.doomed)
        result.removed = len(result.gone)
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
    except PackFormatError as e:
        log.debug(__name__, f"{key}: {e}")
        entries = ()  # not a pack this mlv can read: nothing in it is named, nothing kept
    except OSError as e:
        # It may hold the only copy of kept objects: kept until its trailer can be read.
        result.warnings.append(f"pack {key} that no index names is kept: {e}; run gc again")
        return
    named = holds(e.hash for e in entries)
    wanted = {
        e.hash: Location(ref, e.offset, e.stored, e.length, e.codec, e.kind)
        for e in entries
        if e.hash in kept
        and e.hash not in named
        and (e.codec, e.kind) in DECODED
        and e.kind in (KIND_FILE, KIND_TREE)
    }
    good: list[Entry] = []
    unread = 0  # kept objects that could not be read (as opposed to read and found rotten)
    if wanted:
        by_hash = {e.hash: e for e in entries}
        for h, data, error in packed.read(wanted):
            if error is not None or data is None:
                unread += 1
            elif _hashes_to(h, data):
                good.append(by_hash[h])
    if good:
        algo = hashing.split(good[0].hash)[0]
        _write_index(packed, encode(algo, [(ref, sorted(good, key=lambda e: e.hash))]))
        result.reindexed += 1
        result.indexes_written += 1
        return
    if unread:
        result.warnings.append(
            f"pack {key} that no index names is kept: {unread} kept object(s) in it could "
            "not be read; run gc again"
        )
        return
    if _delete(packed, [key], result):
        result.packs_deleted += 1
        result.freed += orphan.size


def _trailer(packed: Packed, key: str, size: int) -> tuple[Entry, ...]:
    """A pack's entries from its header, footer and trailer (three ranged reads), every
    field checked as for an index. OSError: it could not be read (or is too big to)."""
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
    if length > MAX_INDEX_BYTES:  # a hostile footer would have it read into memory
        raise OSError(f"its trailer is {length} bytes, more than the {MAX_INDEX_BYTES} read")
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
