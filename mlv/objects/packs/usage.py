"""What a remote holds and what it costs, from its indexes (`mlv du --remote`).

Logical bytes are what the objects the remote names would take whole; stored bytes are
what their entries take in packs (after chunk deduplication and zstd), plus loose objects.
Only the indexes are read (one listing of index/, the local index cache for those already
seen), and one listing per hash algorithm of the loose objects. Which packed entries are
chunks rather than objects only the chunk lists say: each is taken from the local cache's
copy when it is there and fits, else read by range from the remote (a chunk list is about
1/6000 of the object it describes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlv.objects import hashing
from mlv.objects.packs import chunked
from mlv.objects.packs.chunks import ChunkList
from mlv.objects.packs.index import Location
from mlv.objects.packs.packfile import (
    CODEC_ZSTD,
    KIND_CHUNKS,
    KIND_FILE,
    KIND_TREE,
    PackFormatError,
)
from mlv.objects.remote import RemoteStore
from mlv.objects.store import Cache
from mlv.util import localfs


@dataclass
class Usage:
    """A remote's objects and bytes. stored counts each object once (the copy its first
    index names); pack_bytes is the packs' whole size (headers, trailers, copies and the
    garbage gc has not removed yet)."""

    objects: int = 0  # files and trees the remote names (a chunked file counts once)
    chunked: int = 0  # of those, files stored as chunks
    chunks: int = 0  # distinct chunks those files are made of
    loose: int = 0  # objects stored loose (one key each), not in packs
    logical: int = 0  # bytes of the objects, whole
    stored: int = 0  # bytes of their entries in packs and of loose objects
    compressed: int = 0  # entries stored zstd
    pack_bytes: int = 0
    packs: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def saved(self) -> int:
        return self.logical - self.stored

    @property
    def ratio(self) -> float:
        """stored / logical (1.0 for an empty remote)."""
        return self.stored / self.logical if self.logical else 1.0


def usage(store: RemoteStore, cache: Cache | None = None) -> Usage:
    """Count what store's indexes name (and its loose objects); cache: where kept chunk
    lists are looked for first."""
    out = Usage()
    catalog = store.packs.catalog()
    entries: dict[str, Location] = dict(catalog.items())
    lists = {h: loc for h, loc in entries.items() if loc.kind == KIND_CHUNKS}
    chunks: set[str] = set()
    for chunk_list in _chunk_lists(store, cache, lists, out).values():
        chunks.update(ref.hash for ref in chunk_list.chunks)
    for h, loc in entries.items():
        if loc.kind not in (KIND_FILE, KIND_TREE, KIND_CHUNKS):
            out.warnings.append(f"{h}: kind {loc.kind} of a newer mlv, not counted")
            continue
        out.stored += loc.stored
        out.compressed += loc.codec == CODEC_ZSTD
        if h in chunks:
            out.chunks += 1
            continue
        out.objects += 1
        out.chunked += loc.kind == KIND_CHUNKS
        out.logical += loc.length
    for h, size in store.inventory().items():
        out.stored += size
        out.loose += 1
        if h not in entries:  # a copy in a pack too is counted once, above
            out.objects += 1
            out.logical += size
    packs = catalog.packs()
    out.packs = len(packs)
    out.pack_bytes = sum(p.size for p in packs.values())
    out.warnings += store.warnings
    return out


def _chunk_lists(
    store: RemoteStore, cache: Cache | None, wanted: dict[str, Location], out: Usage
) -> dict[str, ChunkList]:
    """The chunk lists of wanted: the cache's copy where it parses for that object, the
    others read from the remote. One that cannot be read leaves its chunks counted as
    objects, with a warning."""
    found: dict[str, ChunkList] = {}
    remote: dict[str, Location] = {}
    for h, loc in wanted.items():
        local = _kept_list(cache, h, loc) if cache is not None else None
        if local is not None and all(store.packs.catalog().lookup(r.hash) for r in local.chunks):
            found[h] = local
        else:
            remote[h] = loc
    for h, data, error in store.packs.read(remote):
        if error is not None:
            out.warnings.append(f"chunk list of {h} not read ({error}): its chunks count as files")
            continue
        try:
            found[h] = ChunkList.parse(data or b"", remote[h].length, hashing.algorithm_of(h))
        except (PackFormatError, ValueError) as e:
            out.warnings.append(f"chunk list of {h} is damaged ({e}): its chunks count as files")
    return found


def _kept_list(cache: Cache, h: str, loc: Location) -> ChunkList | None:
    """The cache's copy of h's chunk list when it could be the remote's: same length as the
    remote's entry (a list of other chunking parameters is refused by its chunks too)."""
    try:
        data = localfs.read_small(chunked.list_path(cache, h))
        if len(data) != loc.stored:
            return None
        return ChunkList.parse(data, loc.length, hashing.algorithm_of(h))
    except (OSError, ValueError):
        return None  # absent, or not a list of this object
