"""Large objects stored as content-defined chunks: push only the chunks a remote lacks,
rebuild from the chunks the cache already holds (docs/formats.md, chunk lists).

An object at or above the packing threshold is cut into chunks (chunks.Chunker); each
chunk is a small object of its own, packed like any other; the object itself becomes a
chunk list (kind 2) named by the object's own hash, indexed only after every chunk it
names is. Rebuilding writes the chunks at their offsets into a temporary in the cache and
checks the whole file against its hash before it takes its name: a chunk list or a chunk
can lie, the object's name cannot.

The cache keeps each chunked object's chunk list (<cache>/chunks/ALGO/XX/REST), so that the
next version of a file is rebuilt from the chunks of the versions already here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from mlv import log
from mlv.objects import hashing
from mlv.objects.packs.catalog import Catalog
from mlv.objects.packs.chunks import Chunker, ChunkList
from mlv.objects.packs.codec import Compressor
from mlv.objects.packs.index import Location
from mlv.objects.packs.packed import Packed
from mlv.objects.packs.packfile import KIND_CHUNKS, KIND_FILE, PackFormatError
from mlv.objects.store import Cache, hash_path_mmap
from mlv.storage.backend import Missing
from mlv.util import localfs

Done = Callable[[int], None]
CHUNKS_DIR = "chunks"


@dataclass
class Result:
    """What happened to each object of a chunked push or rebuild, by hash id."""

    done: list[str] = field(default_factory=list)
    nbytes: int = 0  # bytes moved over the network (chunks sent or downloaded)
    logical: int = 0  # bytes of the objects done
    failed: dict[str, BaseException] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    corrupt: dict[str, str] = field(default_factory=dict)  # hash -> what the bytes hash to
    reused: int = 0  # bytes taken from objects already in the cache


# ---- the cache's chunk lists -------------------------------------------------------------


def list_path(cache: Cache, hash_id: str) -> str:
    algo, hexpart = hashing.split(hash_id)
    return os.path.join(cache.root, CHUNKS_DIR, algo, hexpart[:2], hexpart[2:])


def keep_list(cache: Cache, hash_id: str, data: bytes) -> None:
    """Keep an object's chunk list beside the cache (a failure only costs reuse later)."""
    path = list_path(cache, hash_id)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        localfs.write_bytes_atomic(path, data, 0o444)
    except OSError as e:
        log.debug(__name__, f"cannot keep the chunk list of {hash_id}: {e}")


def local_chunks(cache: Cache, wanted: set[str]) -> dict[str, tuple[str, int, int]]:
    """chunk hash -> (object file, offset, length) for those of wanted that some object in
    the cache holds, by the chunk lists kept beside it."""
    found: dict[str, tuple[str, int, int]] = {}
    base = os.path.join(cache.root, CHUNKS_DIR)
    if not wanted or not os.path.isdir(base):
        return found
    for algo in sorted(os.listdir(base)):
        if algo not in hashing.ALGORITHMS:
            continue
        for shard in sorted(os.listdir(os.path.join(base, algo))):
            folder = os.path.join(base, algo, shard)
            for rest in sorted(os.listdir(folder)):
                if rest.startswith(localfs.TMP_MARK):
                    continue
                object_id = f"{algo}:{shard}{rest}"
                obj = cache.object_path(object_id)
                try:
                    size = os.stat(obj).st_size
                    chunk_list = ChunkList.parse(
                        localfs.read_small(os.path.join(folder, rest)), size, algo
                    )
                except (OSError, ValueError):
                    continue  # object gone, or a list that does not fit it: not a source
                for ref, offset in chunk_list.offsets():
                    if ref.hash in wanted and ref.hash not in found:
                        found[ref.hash] = (obj, offset, ref.length)
                if len(found) == len(wanted):
                    return found
    return found


# ---- push ------------------------------------------------------------------------------------


def push(
    packs: Packed,
    cache: Cache,
    hashes: Iterable[str],
    scratch: str,
    done: Done | None = None,
) -> Result:
    """Send large objects as chunks: only the chunks no index of the remote names, in data
    packs with their indexes, then every object's chunk list in one pack under one index.
    Each object is hashed whole as it is cut: one whose bytes no longer match its name is
    reported corrupt and gets no chunk list."""
    result = Result()
    catalog = packs.catalog()
    lists: dict[str, bytes] = {}
    lengths: dict[str, int] = {}
    sent: set[str] = set()
    owners: dict[str, set[str]] = {}  # chunk -> objects that need it (failures spread)
    # One compressor for the chunks: it stops trying the chunks of an object that do not
    # compress (a model's weights) until new_object, so raw data costs little to push.
    compressor = Compressor(packs.settings.compression)

    def chunks_to_send() -> Iterator[tuple[str, bytes]]:
        for h in hashes:
            algo = hashing.algorithm_of(h)
            compressor.new_object()
            try:
                chunker = Chunker(cache.object_path(h), algo)
                for ref, _, data in chunker:
                    owners.setdefault(ref.hash, set()).add(h)
                    if ref.hash in sent or catalog.lookup(ref.hash) is not None:
                        continue
                    sent.add(ref.hash)
                    yield ref.hash, bytes(data)
            except FileNotFoundError:
                result.missing.append(h)
                continue
            except OSError as e:
                result.failed[h] = e
                continue
            if chunker.whole_hash != h:
                cache.distrust(h)
                result.corrupt[h] = chunker.whole_hash
                continue
            chunk_list = chunker.chunk_list()
            lists[h] = chunk_list.encode()
            lengths[h] = chunk_list.length

    written = packs.write(chunks_to_send(), KIND_FILE, scratch, compressor=compressor)
    result.nbytes += written.nbytes
    for chunk, error in written.failed.items():
        for h in owners.get(chunk, ()):
            result.failed.setdefault(h, error)
    ready = {h: data for h, data in lists.items() if h not in result.failed}
    if not ready:
        return result
    listed = packs.write(iter(sorted(ready.items())), KIND_CHUNKS, scratch, lengths=lengths)
    for h, error in listed.failed.items():
        result.failed[h] = error
    for h in listed.done:
        keep_list(cache, h, ready[h])
        result.done.append(h)
        result.logical += lengths[h]
        result.nbytes += len(ready[h])
        if done is not None:
            done(lengths[h])
    return result


# ---- rebuild ---------------------------------------------------------------------------------


def chunked_locations(catalog: Catalog, hashes: Iterable[str]) -> dict[str, Location]:
    """Those of hashes that an index names as a chunk list, with its location."""
    out = {}
    for h in hashes:
        loc = catalog.lookup(h)
        if loc is not None and loc.kind == KIND_CHUNKS:
            out[h] = loc
    return out


GROUP = 32  # objects rebuilt at once (one open temporary each)


def rebuild(
    packs: Packed,
    cache: Cache | None,
    wanted: dict[str, Location],
    into: Callable[[str], str],
    finish: Callable[[str, str], None],
    done: Done | None = None,
) -> Result:
    """Rebuild chunked objects, GROUP at a time (see _rebuild_some). cache None (verify):
    every chunk comes from the remote, and no chunk list is kept."""
    result = Result()
    order = sorted(wanted)
    for start in range(0, len(order), GROUP):
        some = _rebuild_some(
            packs, cache, {h: wanted[h] for h in order[start : start + GROUP]}, into, finish, done
        )
        result.done += some.done
        result.nbytes += some.nbytes
        result.logical += some.logical
        result.failed.update(some.failed)
        result.missing += some.missing
        result.corrupt.update(some.corrupt)
        result.reused += some.reused
    return result


def _rebuild_some(
    packs: Packed,
    cache: Cache | None,
    wanted: dict[str, Location],
    into: Callable[[str], str],
    finish: Callable[[str, str], None],
    done: Done | None = None,
) -> Result:
    """Rebuild chunked objects: read their chunk lists, take every chunk the cache holds
    from the local object that holds it, download the others (by ranges, each checked
    against its hash), write each at its offsets into the temporary into(hash), then check
    the whole file against the object's hash and hand it to finish(hash, path) (which
    adopts it into the cache, or judges and deletes it)."""
    result = Result()
    lists: dict[str, ChunkList] = {}
    for h, data, error in packs.read(wanted):
        if error is not None:
            if isinstance(error, Missing):
                result.missing.append(h)
            else:
                result.failed[h] = error
            continue
        try:
            lists[h] = ChunkList.parse(data or b"", wanted[h].length, hashing.algorithm_of(h))
        except PackFormatError as e:
            result.failed[h] = e
    every = {ref.hash for chunk_list in lists.values() for ref in chunk_list.chunks}
    local = local_chunks(cache, every) if cache is not None else {}
    catalog = packs.catalog()
    remote: dict[str, Location] = {}
    for chunk in every - set(local):
        loc = catalog.lookup(chunk)
        if loc is not None and loc.kind == KIND_FILE:
            remote[chunk] = loc
    for h, chunk_list in lists.items():
        lacking = [
            r.hash for r in chunk_list.chunks if r.hash not in local and r.hash not in remote
        ]
        if lacking:
            log.debug(__name__, f"{h}: {len(lacking)} chunk(s) on no index of the remote")
            result.missing.append(h)
    building = {h: c for h, c in lists.items() if h not in result.missing}
    if not building:
        return result
    places: dict[str, list[tuple[int, int]]] = {}  # chunk -> [(fd, offset)]
    fds: dict[str, int] = {}
    paths: dict[str, str] = {}
    sources: dict[str, int] = {}  # local objects that chunks are taken from
    try:
        for h, chunk_list in building.items():
            paths[h] = into(h)
            fd = os.open(paths[h], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fds[h] = fd
            os.ftruncate(fd, chunk_list.length)
            for ref, offset in chunk_list.offsets():
                if ref.hash in local:
                    src, at, length = local[ref.hash]
                    if src not in sources:  # each local object opened once
                        sources[src] = os.open(src, os.O_RDONLY)
                    data = os.pread(sources[src], length, at)
                    if hashing.hash_bytes(chunk_list.algo, data) == ref.hash:
                        os.pwrite(fd, data, offset)
                        result.reused += length
                        continue
                    loc = catalog.lookup(ref.hash)  # the local copy changed: ask the remote
                    if loc is None:
                        result.missing.append(h)
                        break
                    remote[ref.hash] = loc
                places.setdefault(ref.hash, []).append((fd, offset))
        needed = {c: remote[c] for c in places if c in remote}
        broken: dict[int, BaseException] = {}
        for chunk, data, error in packs.read(needed):
            # A chunk's bytes go in as they came: a damaged one makes the whole file hash
            # to something else, which is how the object is then reported (corrupt).
            for fd, offset in places[chunk]:
                if error is not None:
                    broken.setdefault(fd, error)
                else:
                    os.pwrite(fd, data or b"", offset)
            if error is None:
                result.nbytes += len(data or b"")
        for h in building:
            if h in result.missing:
                continue
            fd = fds.pop(h)
            os.close(fd)
            if fd in broken:
                result.failed[h] = broken[fd]
                continue
            got = hash_path_mmap(hashing.algorithm_of(h), paths[h])
            if got != h:
                result.corrupt[h] = got
                continue
            finish(h, paths[h])
            if cache is not None:
                keep_list(cache, h, building[h].encode())
            result.done.append(h)
            result.logical += building[h].length
            if done is not None:
                done(building[h].length)
    finally:
        for fd in [*fds.values(), *sources.values()]:
            with contextlib.suppress(OSError):
                os.close(fd)
        for path in paths.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return result
