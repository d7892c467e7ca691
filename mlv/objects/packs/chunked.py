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
import queue
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from mlv import log
from mlv.objects import hashing
from mlv.objects.packs.catalog import Catalog
from mlv.objects.packs.chunks import Chunker, ChunkList
from mlv.objects.packs.codec import Compressor
from mlv.objects.packs.index import Location, PackRef
from mlv.objects.packs.packed import Packed
from mlv.objects.packs.packfile import CODEC_RAW, KIND_CHUNKS, KIND_FILE, PackFormatError
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


def kept_lists(cache: Cache) -> Iterator[tuple[str, str]]:
    """(object hash id, chunk list file) of every chunk list kept beside the cache, by
    folder; temporaries and stray names are passed over."""
    base = os.path.join(cache.root, CHUNKS_DIR)
    for algo in _entries(base):
        if algo not in hashing.ALGORITHMS:
            continue
        for shard in _entries(os.path.join(base, algo)):
            folder = os.path.join(base, algo, shard)
            for rest in _entries(folder):
                object_id = f"{algo}:{shard}{rest}"
                if rest.startswith(localfs.TMP_MARK) or not hashing.is_hash(object_id):
                    continue  # a temporary or a stray file: not a chunk list of ours
                yield object_id, os.path.join(folder, rest)


def local_chunks(cache: Cache) -> dict[str, tuple[str, int, int]]:
    """chunk hash -> (object file, offset, length) for every chunk that an object in the
    cache holds, by the chunk lists kept beside it (built once per rebuild)."""
    found: dict[str, tuple[str, int, int]] = {}
    for object_id, path in kept_lists(cache):
        obj = cache.object_path(object_id)
        try:
            size = os.stat(obj).st_size
            chunk_list = ChunkList.parse(
                localfs.read_small(path), size, hashing.algorithm_of(object_id)
            )
        except (OSError, ValueError):
            continue  # object gone, or a list that does not fit it: not a source
        for ref, offset in chunk_list.offsets():
            found.setdefault(ref.hash, (obj, offset, ref.length))
    return found


def _entries(folder: str) -> list[str]:
    """The names in folder, sorted; none when it is not a readable folder."""
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


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
    wanted = list(hashes)
    lists: dict[str, bytes] = {}
    lengths: dict[str, int] = {}
    sent: set[str] = set()
    aligns: dict[str, int] = {}  # chunk sent -> its offset in the file it was cut from
    owners: dict[str, set[str]] = {}  # chunk -> objects that need it (failures spread)
    single: set[str] = set()  # objects of one chunk: sent as that chunk, a plain object
    # One compressor for the chunks: it stops trying the chunks of an object that do not
    # compress (a model's weights) until new_object, so raw data costs little to push.
    compressor = Compressor(packs.settings.compression)

    def cut_all(put: Callable[[tuple[str, str, bytes]], bool]) -> None:
        """Cut every object (in a thread of its own, beside the pack writes: the cutter
        releases the GIL), handing ("object", h, b"") then ("chunk", hash, bytes) for each
        chunk to send; the bookkeeping of each object after its last chunk."""
        for h in wanted:
            algo = hashing.algorithm_of(h)
            if not put(("object", h, b"")):
                return
            try:
                chunker = Chunker(cache.object_path(h), algo)
                for ref, offset, data in chunker:
                    owners.setdefault(ref.hash, set()).add(h)
                    if ref.hash in sent or packs.holds_chunk(ref.hash):
                        continue
                    sent.add(ref.hash)
                    aligns[ref.hash] = offset
                    if not put(("chunk", ref.hash, bytes(data))):
                        return
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
            if len(chunk_list.chunks) == 1:
                single.add(h)  # its one chunk is the object itself, stored plain: no list
                continue
            lists[h] = chunk_list.encode()
            lengths[h] = chunk_list.length

    def chunks_to_send() -> Iterator[tuple[str, bytes]]:
        handoff: queue.Queue[tuple[str, str, bytes] | BaseException | None] = queue.Queue(
            maxsize=AHEAD
        )
        stop = threading.Event()

        def put(item: tuple[str, str, bytes] | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    handoff.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce() -> None:
            try:
                cut_all(put)
            except BaseException as e:  # handed to the consumer, raised there
                put(e)
            finally:
                put(None)

        cutter = threading.Thread(target=produce, name="mlv-chunker", daemon=True)
        cutter.start()
        try:
            while True:
                item = handoff.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                what, name, data = item
                if what == "object":
                    compressor.new_object()  # this thread's: the compressor is not shared
                else:
                    yield name, data
        finally:
            stop.set()
            cutter.join()

    written = packs.write(
        chunks_to_send(), KIND_FILE, scratch, compressor=compressor, aligns=aligns
    )
    result.nbytes += written.nbytes
    for chunk, error in written.failed.items():
        for h in owners.get(chunk, ()):
            result.failed.setdefault(h, error)
    for h in sorted(single - set(result.failed)):
        size = os.stat(cache.object_path(h)).st_size
        result.done.append(h)
        result.logical += size
        if done is not None:
            done(size)
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
    """Those of hashes that an index names as a chunk list and as nothing readable whole,
    with the list's location (an object named as a plain packed object too is read so)."""
    out = {}
    for h in hashes:
        locs = catalog.locations(h)
        if locs and all(loc.kind == KIND_CHUNKS for loc in locs):
            out[h] = locs[0]
    return out


GROUP = 32  # objects rebuilt at once (one open temporary each)
AHEAD = 64  # chunks cut ahead of the pack writes (about 9 MiB at 146 KiB each)


def rebuild(
    packs: Packed,
    cache: Cache | None,
    wanted: dict[str, Location],
    into: Callable[[str], str],
    finish: Callable[[str, str], None],
    done: Done | None = None,
    sizes: Mapping[str, int] | None = None,
) -> Result:
    """Rebuild chunked objects, GROUP at a time (see _rebuild_some). cache None (verify):
    every chunk comes from the remote, and no chunk list is kept. sizes: what the pointers
    and trees say each object holds; an index claiming another length is not believed (no
    file of its length is made): the object fails, naming both."""
    result = Result()
    for h, loc in sorted(wanted.items()):
        expected = (sizes or {}).get(h)
        if expected is not None and expected != loc.length:
            result.failed[h] = OSError(
                f"the remote's chunk list is for {loc.length} bytes, where {expected} are expected"
            )
    local = local_chunks(cache) if cache is not None else {}
    order = sorted(h for h in wanted if h not in result.failed)
    for start in range(0, len(order), GROUP):
        some = _rebuild_some(
            packs,
            cache,
            local,
            {h: wanted[h] for h in order[start : start + GROUP]},
            into,
            finish,
            done,
        )
        result.done += some.done
        result.nbytes += some.nbytes
        result.logical += some.logical
        result.failed.update(some.failed)
        result.missing += some.missing
        result.corrupt.update(some.corrupt)
        result.reused += some.reused
    return result


def _read_lists(
    packs: Packed, wanted: dict[str, Location], result: Result
) -> dict[str, tuple[ChunkList, bytes]]:
    """Each object's chunk list (and its bytes, kept as read), from the first of its
    indexed copies that reads and parses; objects none of whose copies does go to result
    (missing, or failed)."""
    catalog = packs.catalog()
    lists: dict[str, tuple[ChunkList, bytes]] = {}
    errors: dict[str, BaseException] = {}
    tried: dict[str, set[PackRef]] = {}
    current = dict(wanted)
    while current:
        following: dict[str, Location] = {}
        for h, data, error in packs.read(current):
            tried.setdefault(h, set()).add(current[h].pack)
            if error is None:
                try:
                    raw = data or b""
                    parsed = ChunkList.parse(raw, current[h].length, hashing.algorithm_of(h))
                    lists[h] = (parsed, raw)
                    continue
                except PackFormatError as e:
                    error = e
            errors.setdefault(h, error)
            others = [
                loc
                for loc in catalog.locations(h)
                if loc.kind == KIND_CHUNKS and loc.pack not in tried[h]
            ]
            if others:
                following[h] = others[0]
        current = following
    for h in wanted:
        if h not in lists:
            error = errors.get(h)
            if error is None or isinstance(error, Missing):
                result.missing.append(h)
            else:
                result.failed[h] = error
    return lists


def _fetch_chunks(
    packs: Packed, places: dict[str, list[tuple[int, int]]], broken: dict[int, BaseException]
) -> int:
    """Download the chunks of places and write each at its (fd, offset) places, each
    checked against its hash first; a missing or damaged copy is passed over for another
    indexed copy. A chunk with no good copy: its damaged bytes are written anyway (the
    whole file then hashes wrong: the object is corrupt), or, with no bytes at all, its
    files are marked broken with the error. The bytes downloaded."""
    catalog = packs.catalog()
    tried: dict[str, set[PackRef]] = {}
    current: dict[str, Location] = {}
    for chunk in places:
        plain = [loc for loc in catalog.locations(chunk) if loc.kind == KIND_FILE]
        if plain:
            current[chunk] = plain[0]
    nbytes = 0
    while current:
        following: dict[str, Location] = {}
        for chunk, data, error in packs.read(current):
            tried.setdefault(chunk, set()).add(current[chunk].pack)
            data = data or b""
            good = error is None and hashing.hash_bytes(hashing.algorithm_of(chunk), data) == chunk
            if error is None:
                nbytes += len(data)
            others = [
                loc
                for loc in catalog.locations(chunk)
                if loc.kind == KIND_FILE and loc.pack not in tried[chunk]
            ]
            if not good and others:
                following[chunk] = others[0]
                continue
            for fd, offset in places[chunk]:
                if error is not None:
                    broken.setdefault(fd, error)
                else:
                    os.pwrite(fd, data, offset)
        current = following
    return nbytes


S = TypeVar("S", bound=Hashable)


@dataclass
class _Run(Generic[S]):
    source: S  # a pack, or a local object's descriptor
    at: int
    length: int
    fd: int  # the file being rebuilt
    offset: int


def _runs(pieces: Iterable[tuple[int, int, S, int, int, str]]) -> list[tuple[_Run[S], list[str]]]:
    """Pieces (file descriptor, offset there, source, offset in the source, length, chunk)
    merged into runs: chunks that follow each other in both the file and the source go
    as one range (push writes a file's chunks in order), with the chunks of each run."""
    out: list[tuple[_Run[S], list[str]]] = []
    for fd, offset, source, at, n, chunk in sorted(pieces, key=lambda p: (p[0], p[1])):
        if out:
            run, members = out[-1]
            if (
                run.fd == fd
                and run.source == source
                and run.at + run.length == at
                and run.offset + run.length == offset
            ):
                run.length += n
                members.append(chunk)
                continue
        out.append((_Run(source, at, n, fd, offset), [chunk]))
    return out


@dataclass
class _Copied:
    """What _copy_all did: chunks copied to every place they go, the bytes copied from the
    remote's packs, and the hash of each file built wholly by copies (read as copied)."""

    chunks: set[str] = field(default_factory=set)
    nbytes: int = 0
    digests: dict[str, str] = field(default_factory=dict)  # object -> what its bytes hash to


def _copy_all(
    packs: Packed,
    fds: dict[str, int],
    local_of: dict[str, list[tuple[str, int, int, int, int]]],
    remote_of: dict[str, list[tuple[str, int]]],
    first: Mapping[str, Location | None],
    copy_remote: bool,
) -> _Copied:
    """Copy the chunks the cache holds from the local objects that hold them, and, on a
    remote whose packs can be copied (a folder; copy_remote), its raw chunks from its
    packs, straight into the files being rebuilt, runs of consecutive chunks as one range,
    unchecked: the caller checks each file's hash, and writes every chunk of a file that
    does not match again, each checked. A file whose every chunk is copied so is copied in
    order through a tap that hashes it (localfs.copy_between), so that it need not be read
    again to be checked; the others by the kernel. A local range that cannot be copied is
    left (the check fails); a pack range that fails leaves its chunks to be downloaded."""
    out = _Copied()
    failed: set[str] = set()
    owners: set[str] = set()
    for h, fd in fds.items():
        # a source: a pack of the remote, or (an int) a local object's descriptor
        pieces: list[tuple[int, int, PackRef | int, int, int, str]] = [
            (fd, offset, src, at, n, c) for c, offset, src, at, n in local_of[h]
        ]
        whole = True  # every chunk of h is copied here: hashed as it is copied
        for chunk, offset in remote_of[h]:
            loc = first.get(chunk)
            if not copy_remote or loc is None or loc.codec != CODEC_RAW:
                whole = False  # compressed, or on no index: read and decoded the slow way
                continue
            pieces.append((fd, offset, loc.pack, loc.offset, loc.stored, chunk))
            owners.add(chunk)
        hasher = hashing.new_hasher(hashing.algorithm_of(h)) if whole else None
        tap = hasher.update if hasher is not None else None
        intact = True
        runs = _runs(pieces)
        i = 0
        while i < len(runs):
            run = runs[i][0]
            if isinstance(run.source, int):
                try:
                    localfs.copy_between(run.source, fd, run.length, run.at, run.offset, tap)
                except OSError as e:  # changed or unreadable since: the check after catches it
                    log.debug(__name__, f"local chunks not copied ({e})")
                    intact = False
                i += 1
                continue
            end = i  # the pack runs from here on, copied in one call
            while end < len(runs) and not isinstance(runs[end][0].source, int):
                end += 1
            batch = runs[i:end]
            items: list[tuple[PackRef, int, int, int, int]] = []
            for r, _ in batch:
                assert isinstance(r.source, PackRef)
                items.append((r.source, r.at, r.length, r.fd, r.offset))
            done = packs.copy(items, [tap] * len(batch) if tap is not None else None)
            for (r, members), ok in zip(batch, done, strict=True):
                if ok:
                    out.nbytes += r.length
                else:
                    failed.update(members)
                    intact = False
            i = end
        if hasher is not None and intact:
            out.digests[h] = f"{hashing.algorithm_of(h)}:{hasher.hexdigest()}"
    out.chunks = owners - failed
    return out


def _rebuild_some(
    packs: Packed,
    cache: Cache | None,
    local: dict[str, tuple[str, int, int]],
    wanted: dict[str, Location],
    into: Callable[[str], str],
    finish: Callable[[str, str], None],
    done: Done | None = None,
) -> Result:
    """Rebuild chunked objects: read their chunk lists, copy every chunk the cache holds
    from the local object that holds it (unchecked), copy (a folder remote) or
    download the others (by ranges, each checked against its hash, another copy tried when
    one is missing or damaged), each at its offsets into the temporary into(hash), then
    check the whole file against the object's hash and hand it to finish(hash, path)
    (which adopts it into the cache, or judges and deletes it). A file that fails the
    check while some of its chunks went unread gets every chunk again, each checked."""
    result = Result()
    lists = _read_lists(packs, wanted, result)
    catalog = packs.catalog()
    first: dict[str, Location | None] = {}  # chunk -> its first plain copy (one lookup each)
    for h, (chunk_list, _) in lists.items():
        lacking = 0
        for ref in chunk_list.chunks:
            if ref.hash in local:
                continue
            if ref.hash not in first:
                plain = [loc for loc in catalog.locations(ref.hash) if loc.kind == KIND_FILE]
                first[ref.hash] = plain[0] if plain else None
            lacking += first[ref.hash] is None
        if lacking:
            log.debug(__name__, f"{h}: {lacking} chunk(s) on no index of the remote")
            result.missing.append(h)
    building = {h: c for h, (c, _) in lists.items() if h not in result.missing}
    if not building:
        return result
    places: dict[str, list[tuple[int, int]]] = {}  # chunk -> [(fd, offset)]
    fds: dict[str, int] = {}
    paths: dict[str, str] = {}
    sources: dict[str, int] = {}  # local objects that chunks are taken from
    remote_of: dict[str, list[tuple[str, int]]] = {h: [] for h in building}
    # chunks taken from local objects: (chunk, offset here, source fd, offset there, length)
    local_of: dict[str, list[tuple[str, int, int, int, int]]] = {h: [] for h in building}
    try:
        for h, chunk_list in building.items():
            paths[h] = into(h)
            fd = os.open(paths[h], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            fds[h] = fd
            os.ftruncate(fd, chunk_list.length)
            for ref, offset in chunk_list.offsets():
                if ref.hash in local:
                    src, at, length = local[ref.hash]
                    try:
                        if src not in sources:  # each local object opened once
                            sources[src] = os.open(src, os.O_RDONLY)
                    except OSError:
                        pass  # gone or unreadable since: the remote's copy serves
                    else:
                        local_of[h].append((ref.hash, offset, sources[src], at, length))
                        continue
                places.setdefault(ref.hash, []).append((fd, offset))
                remote_of[h].append((ref.hash, offset))
            result.reused += sum(p[4] for p in local_of[h])
        broken: dict[int, BaseException] = {}
        copy_remote = cache is not None and packs.can_copy()
        copies = _copy_all(packs, fds, local_of, remote_of, first, copy_remote)
        copied = copies.chunks
        result.nbytes += copies.nbytes
        result.nbytes += _fetch_chunks(
            packs, {c: p for c, p in places.items() if c not in copied}, broken
        )
        for h in building:
            fd = fds.pop(h)
            os.close(fd)
            error = broken.pop(fd, None)  # popped: a later descriptor may reuse the number
            if error is not None:
                if isinstance(error, Missing):
                    result.missing.append(h)
                else:
                    result.failed[h] = error
                continue
            algo = hashing.algorithm_of(h)
            got = copies.digests.get(h)
            if got is None or any(c not in copied for c, _ in remote_of[h]):
                got = hash_path_mmap(algo, paths[h])  # not (all) hashed as it was copied
            if got != h and (local_of[h] or any(c in copied for c, _ in remote_of[h])):
                # Copied unchecked: write every chunk again, each checked against its
                # hash, a local one that fails (or cannot be read) and every remote one
                # downloaded, another copy tried where one is damaged.
                redo = os.open(paths[h], os.O_WRONLY)
                broken.pop(redo, None)  # a closed file's number, reused
                try:
                    again: dict[str, list[tuple[int, int]]] = {}
                    for chunk, offset in remote_of[h]:
                        again.setdefault(chunk, []).append((redo, offset))
                    for chunk, offset, src_fd, at, length in local_of[h]:
                        try:
                            data = os.pread(src_fd, length, at)
                        except OSError:
                            data = b""
                        if hashing.hash_bytes(algo, data) == chunk:
                            os.pwrite(redo, data, offset)
                        else:
                            result.reused -= length
                            again.setdefault(chunk, []).append((redo, offset))
                    result.nbytes += _fetch_chunks(packs, again, broken)
                finally:
                    os.close(redo)
                if redo in broken:
                    result.failed[h] = broken.pop(redo)
                    continue
                got = hash_path_mmap(algo, paths[h])
            if got != h:
                result.corrupt[h] = got
                continue
            finish(h, paths[h])
            if cache is not None:
                keep_list(cache, h, lists[h][1])
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
