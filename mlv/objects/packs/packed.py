"""The packed side of one remote: its indexes, its marker, writing packs, reading ranges.

RemoteStore (mlv/objects/remote.py) asks this for everything about packs and keeps the
loose-object road itself; commands never see either. The rules (docs/formats.md, remote
format version 1): a pack is written whole before the index that names it; an index is
downloaded once, checked against its name and kept in the local index cache; which indexes
apply is one listing of index/ per command, never remembered between commands.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from mlv import log
from mlv.errors import RemoteError
from mlv.objects import hashing
from mlv.objects.packs import codec, layout, ranges
from mlv.objects.packs.catalog import Catalog
from mlv.objects.packs.codec import Compressor
from mlv.objects.packs.index import (
    MAX_INDEX_BYTES,
    Location,
    PackIndex,
    PackRef,
    encode,
    index_name,
)
from mlv.objects.packs.layout import Marker, MarkerError
from mlv.objects.packs.packfile import (
    CODEC_RAW,
    CODEC_ZSTD,
    CONTENTS_DATA,
    CONTENTS_TREES,
    FOOTER_SIZE,
    KIND_CHUNKS,
    KIND_FILE,
    KIND_TREE,
    MAX_PACK_WRITE,
    PAGE,
    Pack,
    PackFormatError,
    PackWriter,
    entry_size,
)
from mlv.storage.backend import Backend, KeyInfo, Missing, PermanentError, TooLong
from mlv.util import localfs

Done = Callable[[int], None]

# Defaults decided by measurement (docs/performance.md, "Packed remotes"); per remote:
# `pack_threshold` and `pack_size`.
THRESHOLD = 4 << 20
PACK_SIZE = 32 << 20
IN_FLIGHT = 4  # packs built ahead of the uploads (scratch space: IN_FLIGHT x PACK_SIZE)
READ_BATCH = 96 << 20  # bytes of ranges asked for at once (memory)
MAX_WHOLE_READ = 256 << 20  # a pack read whole (a server without Range) is at most this
INDEX_BATCH = 256 << 20  # bytes of indexes downloaded at once (memory)
# The indexes one command loads, in all (each is also at most MAX_INDEX_BYTES): ~26M xxh128
# entries. A command holds their bytes (catalog.py keeps a bounded table beside them); the
# indexes a listing names beyond this count as not usable, with one warning.
MAX_TOTAL_INDEX_BYTES = 1 << 30


@dataclass(frozen=True)
class Settings:
    """How push packs: objects smaller than threshold go into packs of about size bytes
    (threshold 0: nothing is packed, every object is loose as in mlv 0.1)."""

    threshold: int = THRESHOLD
    size: int = PACK_SIZE
    chunking: bool = True  # objects at or above threshold are cut into chunks (chunked.py)
    compression: bool = True  # packed objects and chunks stored zstd when it saves >= 10%

    def packs(self, size: int | None) -> bool:
        return size is not None and size < self.threshold

    def chunks(self, size: int | None) -> bool:
        """Is an object of this size cut into chunks (the rest of those not packed)?"""
        return self.chunking and self.threshold > 0 and size is not None and size >= self.threshold


@dataclass
class Written:
    """What a pack write did: objects now named by an index, and failures by hash."""

    done: list[str] = field(default_factory=list)
    nbytes: int = 0
    failed: dict[str, BaseException] = field(default_factory=dict)
    packs: int = 0  # packs written and indexed

    @property
    def requests(self) -> int:  # the old name, until its callers move to `packs`
        return self.packs


def _mib(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


def _batches(sizes: dict[str, int], limit: int) -> Iterator[dict[str, int]]:
    """sizes cut into runs of at most limit bytes (a size of 0, unknown, counts as the
    largest an index may be)."""
    batch: dict[str, int] = {}
    total = 0
    for name, size in sizes.items():
        size_or_max = size or MAX_INDEX_BYTES
        if batch and total + size_or_max > limit:
            yield batch
            batch, total = {}, 0
        batch[name] = size
        total += size_or_max
    if batch:
        yield batch


# (codec, kind) pairs this mlv reads; chunk lists are only raw (their hashes do not compress)
DECODED = {
    (CODEC_RAW, KIND_FILE),
    (CODEC_RAW, KIND_TREE),
    (CODEC_RAW, KIND_CHUNKS),
    (CODEC_ZSTD, KIND_FILE),
    (CODEC_ZSTD, KIND_TREE),
}


class NewerFormat(Exception):
    """An object stored with a codec or kind that a newer mlv wrote."""


class Packed:
    def __init__(
        self,
        backend: Backend,
        jobs: int,
        settings: Settings,
        failure: Callable[[BaseException], RemoteError],
        index_dir: str | None = None,
    ) -> None:
        self.backend = backend
        self.jobs = jobs
        self.settings = settings
        self.failure = failure
        self.index_dir = index_dir
        self.warnings: list[str] = []
        # False (verify, push --verify): read every index from the remote again instead of
        # the local copy, so an index damaged on the remote is found by this clone too.
        self.trust_cached = True
        self._fresh: set[str] = set()  # indexes this command read from the remote or wrote
        self._packs_listed: dict[str, KeyInfo] | None = None  # packs/, once (list_packs)
        self._catalog: Catalog | None = None
        self._marker: Marker | None = None
        self._marker_read = False
        self._loose_small: bool | None = None

    # ---- what the remote holds -----------------------------------------------------------

    def catalog(self, refresh: bool = False) -> Catalog:
        """The union of the indexes one listing of index/ names (asked once per command,
        again with refresh)."""
        if self._catalog is not None and not refresh:
            return self._catalog
        try:
            listed = self.backend.list_info(layout.INDEXES)
        except Missing:
            listed = {}
        except Exception as e:
            if self.backend.read_only:  # an HTTP server without listings: loose only
                log.debug(__name__, f"cannot list {layout.INDEXES}: {e}")
                listed = {}
            else:
                raise self.failure(e) from e
        known = {
            i.name: i
            for i in (self._catalog.indexes if self._catalog else [])
            if self.trust_cached or i.name in self._fresh
        }
        indexes: list[PackIndex] = []
        invalid: dict[str, str] = {}
        fetch: dict[str, int] = {}
        beyond: list[str] = []  # indexes past MAX_TOTAL_INDEX_BYTES
        room = MAX_TOTAL_INDEX_BYTES

        def fits(name: str, size: int) -> bool:
            nonlocal room
            if size > room:
                beyond.append(name)
                return False
            room -= size
            return True

        for key, info in sorted(listed.items()):
            name = layout.index_name_of(key)
            if name is None:
                continue
            if name in known:
                if fits(name, known[name].nbytes):
                    indexes.append(known[name])
                continue
            if info.size > MAX_INDEX_BYTES:
                invalid[name] = f"{info.size} bytes, more than the {MAX_INDEX_BYTES} allowed"
                continue
            local = self._cached_index(name) if info.size <= room else None
            if local is not None:
                if fits(name, local.nbytes):
                    indexes.append(local)
            elif fits(name, info.size):  # a listing without sizes (0): counted when read
                fetch[name] = info.size
        for batch in _batches(fetch, INDEX_BATCH):
            # size + 1: a server that sends more than its listing said is caught. A listing
            # without sizes (an HTTP server's directory page) says 0: read up to the limit.
            items = [
                (layout.index_key(n), 0, size + 1 if size else MAX_INDEX_BYTES)
                for n, size in batch.items()
            ]
            try:
                results = self.backend.read_ranges(items, self.jobs)
            except Exception as e:
                raise self.failure(e) from e
            for (name, size), r in zip(batch.items(), results, strict=True):
                if r.error is not None:
                    if not isinstance(r.error, Missing):  # a read that kept failing
                        raise self.failure(r.error)
                    continue  # gone meanwhile (a gc replaced it): not an index any more
                data = r.data or b""
                if size and len(data) != size:
                    invalid[name] = f"{len(data)} bytes where the listing said {size}"
                    continue
                if not size and not fits(name, len(data)):
                    continue
                try:
                    index = PackIndex.parse(name, data)
                except PackFormatError as e:
                    invalid[name] = str(e)
                    continue
                self.keep_index(name, data)
                self._fresh.add(name)
                indexes.append(index)
        for name, why in invalid.items():
            note = (
                f"index {layout.index_key(name)} is not usable ({why}): its objects count as absent"
            )
            if note not in self.warnings:
                self.warnings.append(note)
        if beyond:
            note = (
                f"{len(beyond)} of the remote's indexes (first: {layout.index_key(beyond[0])}) "
                f"are not used: its indexes add up to more than the {_mib(MAX_TOTAL_INDEX_BYTES)} "
                "mlv loads; their objects count as absent"
            )
            if note not in self.warnings:
                self.warnings.append(note)
            for name in beyond:
                invalid[name] = f"beyond the {_mib(MAX_TOTAL_INDEX_BYTES)} of indexes loaded"
        self._catalog = Catalog(indexes, invalid)
        return self._catalog

    def _cached_index(self, name: str) -> PackIndex | None:
        if self.index_dir is None or not self.trust_cached:
            return None
        path = os.path.join(self.index_dir, name + ".idx")
        try:
            data = localfs.read_small(path, MAX_INDEX_BYTES)
            index = PackIndex.parse(name, data)
        except (OSError, PackFormatError, ValueError):
            return None  # absent or damaged: downloaded again
        with contextlib.suppress(OSError):
            os.utime(path)  # named by a listing: kept by the local gc's expiry
        return index

    def keep_index(self, name: str, data: bytes) -> None:
        """Keep an index this command read or wrote in the local index cache (by name)."""
        if self.index_dir is None:
            return
        try:
            os.makedirs(self.index_dir, exist_ok=True)
            localfs.write_bytes_atomic(os.path.join(self.index_dir, name + ".idx"), data, 0o444)
        except OSError as e:  # a cache we cannot write only costs a download next time
            log.debug(__name__, f"cannot keep index {name}: {e}")

    def prove(self, hashes: set[str]) -> set[str]:
        """Those of hashes that an index names in a pack that one listing of packs/ shows
        with the size the index records (verify, push --verify)."""
        catalog = self.catalog()
        self.list_packs()  # listed even when none is named: push --verify's chunks are
        named = catalog.holds(hashes)  # judged by it (holds_chunk)
        if not named:
            return set()
        out = set()
        for h in named:
            if any(self._pack_listed_whole(loc) for loc in catalog.locations(h)):
                out.add(h)
        return out

    def list_packs(self, refresh: bool = False) -> dict[str, KeyInfo]:
        """pack name -> what one listing of packs/ says of it (size, the server's mtime).
        Listed once per command and kept (a proof is of one moment, and push --verify asks
        level by level); refresh lists again (gc)."""
        if self._packs_listed is None or refresh:
            try:
                listed = self.backend.list_info(layout.PACKS)
            except Missing:
                listed = {}
            except Exception as e:
                raise self.failure(e) from e
            self._packs_listed = {
                name: info
                for key, info in listed.items()
                if (name := layout.pack_name_of(key)) is not None
            }
        return self._packs_listed

    def _pack_listed_whole(self, loc: Location) -> bool:
        """Does the packs/ listing show loc's pack at the size its index records?"""
        assert self._packs_listed is not None
        info = self._packs_listed.get(loc.pack.name)
        return info is not None and info.size == loc.pack.size

    def holds_chunk(self, hash_id: str) -> bool:
        """May a push take this chunk as being on the remote? An index names it as a plain
        object; and once this command has listed packs/ (push --verify), in a pack listed at
        the size its index records, so that a lost pack's chunks are sent again."""
        plain = [loc for loc in self.catalog().locations(hash_id) if loc.kind == KIND_FILE]
        if self._packs_listed is None:
            return bool(plain)
        return any(self._pack_listed_whole(loc) for loc in plain)

    # ---- the marker -------------------------------------------------------------------------

    def marker(self) -> Marker | None:
        """The remote's mlv-remote.json; None on a remote that has none (new, or 0.1)."""
        if self._marker_read:
            return self._marker
        try:
            results = self.backend.read_ranges([(layout.MARKER_KEY, 0, 4097)], 1)
        except Exception as e:
            raise self.failure(e) from e
        r = results[0]
        if r.error is not None:
            if not isinstance(r.error, Missing):
                raise self.failure(r.error)
            self._marker = None
        else:
            try:
                self._marker = Marker.parse(r.data or b"")
            except MarkerError as e:
                raise RemoteError(
                    f"{self.backend.url}: {e}",
                    "upgrade mlv"
                    if "newer" in str(e)
                    else f"look at {layout.MARKER_KEY} on the remote",
                ) from None
        self._marker_read = True
        return self._marker

    def loose_small(self) -> bool:
        """May small objects be loose on this remote? From the marker; on a remote without
        one, whether it holds any loose object (one listing of one key per algorithm)."""
        if self._loose_small is None:
            marker = self.marker()
            if marker is not None:
                self._loose_small = marker.loose_small
            else:
                try:
                    self._loose_small = any(
                        self.backend.list_keys(algo + "/", limit=1) for algo in hashing.ALGORITHMS
                    )
                except Exception as e:
                    raise self.failure(e) from e
        return self._loose_small

    def _ensure_marker(self) -> None:
        if self.marker() is not None:
            return
        marker = Marker(loose_small=self.loose_small())
        try:
            results = self.backend.write([(marker.encode(), layout.MARKER_KEY)], 1)
        except Exception as e:
            raise self.failure(e) from e
        if results[0].error is not None:
            raise self.failure(results[0].error)
        self._marker = marker

    # ---- writing ----------------------------------------------------------------------------

    def write(
        self,
        objects: Iterator[tuple[str, bytes]],
        kind: int,
        scratch: str,
        done: Done | None = None,
        lengths: Mapping[str, int] | None = None,
        compressor: Compressor | None = None,
        aligns: Mapping[str, int] | None = None,
    ) -> Written:
        """Pack (hash id, bytes) pairs, already checked against their hashes, and send them.

        Files: one index per pack, each right after its pack, so a killed push keeps every
        pack whose index made it. Trees (kind KIND_TREE): every tree pack first, then one
        index naming them all, so the trees of one push appear at once (a tree never
        appears before a tree it names); if any tree pack fails, no index is written and
        every tree of the call fails (a tree must not be named while one it names is not).
        Packs are built in scratch, at most IN_FLIGHT of them waiting for their upload.
        Each object is stored zstd when that saves at least 10% (codec.py): by `compressor`
        when given (chunked.py's, which knows where each large object starts), else each
        object on its own; chunk lists (kind 2, hashes: they do not compress) stay raw.
        aligns: chunks' offsets in their files, for PackWriter.add's alignment of raw ones
        (read as each chunk arrives: the cutter fills it as it goes)."""
        self._ensure_marker()
        trees = kind == KIND_TREE
        written = Written()
        shipped: list[Pack] = []  # trees: uploaded, waiting for their one index
        pending: deque[tuple[Future[None], Pack, str]] = deque()
        writers: dict[str, tuple[PackWriter, str]] = {}
        contents = CONTENTS_TREES if trees else CONTENTS_DATA
        target = min(self.settings.size, MAX_PACK_WRITE)
        os.makedirs(scratch, exist_ok=True)
        pool = ThreadPoolExecutor(max_workers=max(1, min(IN_FLIGHT, self.jobs)))
        own = Compressor(self.settings.compression)

        def book(pack: Pack) -> None:
            written.packs += 1
            for entry in pack.entries:
                written.done.append(entry.hash)
                written.nbytes += entry.length
                if done is not None:
                    done(entry.length)

        def fail(pack: Pack, error: BaseException) -> None:
            for entry in pack.entries:
                written.failed[entry.hash] = error

        def ship(pack: Pack, path: str) -> None:
            results = self.backend.upload([(path, layout.pack_key(pack.name))], 1, move=True)
            if results[0].error is not None:
                raise results[0].error
            if not trees:
                self._send_index([pack])

        def settle() -> None:
            future, pack, path = pending.popleft()
            try:
                future.result()
            except PermanentError as e:
                raise self.failure(e) from e
            except Exception as e:
                fail(pack, e)
            else:
                if trees:
                    shipped.append(pack)
                else:
                    book(pack)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

        def close(algo: str) -> None:
            writer, path = writers.pop(algo)
            pack = writer.finish()
            while len(pending) >= IN_FLIGHT:
                settle()
            pending.append((pool.submit(ship, pack, path), pack, path))

        try:
            for h, data in objects:
                algo = hashing.split(h)[0]
                if algo in writers:
                    writer = writers[algo][0]
                    after = writer.size + PAGE + len(data) + (writer.count + 1) * entry_size(algo)
                    if after + FOOTER_SIZE > MAX_PACK_WRITE:
                        close(algo)  # the trailer counts toward the hard maximum too
                if algo not in writers:
                    path = localfs.tmp_name(os.path.join(scratch, "pack"))
                    writers[algo] = (PackWriter(path, algo, contents), path)
                writer = writers[algo][0]
                if kind == KIND_CHUNKS:
                    writer.add(h, data, kind, lengths.get(h) if lengths else None)
                else:
                    if compressor is None:
                        own.new_object()
                    used, stored = (compressor or own).encode(data)
                    at = aligns.get(h) if aligns is not None else None
                    writer.add(h, stored, kind, len(data), used, at)
                if writer.size >= target:
                    close(algo)
            for algo in sorted(writers):
                close(algo)
            while pending:
                settle()
            if shipped and written.failed:
                why = OSError("not indexed: another tree pack of this push failed")
                for pack in shipped:
                    fail(pack, why)
            elif shipped:
                try:
                    self._send_index(shipped)
                except PermanentError as e:
                    raise self.failure(e) from e
                except Exception as e:
                    for pack in shipped:
                        fail(pack, e)
                else:
                    for pack in shipped:
                        book(pack)
        finally:
            for writer, _ in writers.values():
                writer.abort()
            pool.shutdown(wait=True)
            for _, _, path in pending:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        return written

    def _send_index(self, packs: Sequence[Pack]) -> None:
        algo = packs[0].algo
        data = encode(algo, [(PackRef(p.name, p.size), p.entries) for p in packs])
        name = index_name(data)
        results = self.backend.write([(data, layout.index_key(name))], 1)
        if results[0].error is not None:
            raise results[0].error
        self.keep_index(name, data)
        self._fresh.add(name)
        index = PackIndex.parse(name, data)
        if self._catalog is not None:  # this command's own view grows with what it wrote
            self._catalog = Catalog([*self._catalog.indexes, index], self._catalog.invalid)

    # ---- reading ----------------------------------------------------------------------------

    def can_copy(self) -> bool:
        """Can raw entries be copied into local files without passing through Python (a
        folder remote: copy_file_range)?"""
        return callable(getattr(self.backend, "copy_ranges", None)) and hasattr(
            os, "copy_file_range"
        )

    def copy(
        self,
        items: Sequence[tuple[PackRef, int, int, int, int]],
        taps: Sequence[localfs.Tap | None] | None = None,
    ) -> list[bool]:
        """Copy byte ranges of packs into open local files, (pack, start, length, fd,
        offset): one bool each, True when its bytes were copied. Nothing is checked here:
        the caller hashes what it built (can_copy must be true). taps: one per item, None
        or called with every byte of it copied, in order (to hash the file being built)."""
        copy_ranges = self.backend.copy_ranges  # type: ignore[attr-defined]
        keys = [
            (layout.pack_key(pack.name), start, length, fd, offset)
            for pack, start, length, fd, offset in items
        ]
        try:
            results = copy_ranges(keys, taps) if taps else copy_ranges(keys)
        except Exception as e:
            raise self.failure(e) from e
        return [r.error is None for r in results]

    def _read_whole(
        self, wanted: dict[PackRef, list[ranges.Span]], arrived: Done | None = None
    ) -> list[tuple[PackRef, ranges.Span, bytes | None, BaseException | None]]:
        """The spans of packs on a server that answered a ranged read with the whole pack
        (an HTTP server without Range support): each pack read once, whole (at most its
        indexed size), and cut here."""
        packs = sorted(wanted, key=lambda p: p.name)
        log.debug(__name__, f"{len(packs)} pack(s) read whole: the server ignores Range")
        out: list[tuple[PackRef, ranges.Span, bytes | None, BaseException | None]] = []
        for pack in packs:  # one at a time: at most one whole pack in memory
            try:
                key = layout.pack_key(pack.name)
                r = self.backend.read_ranges([(key, 0, pack.size)], 1, arrived)[0]
            except Exception as e:
                raise self.failure(e) from e
            for span in wanted[pack]:
                if r.error is not None:
                    out.append((pack, span, None, r.error))
                else:
                    data = (r.data or b"")[span.start : span.start + span.length]
                    out.append((pack, span, data, None))
        return out

    def read(
        self, wanted: dict[str, Location], arrived: Done | None = None
    ) -> Iterator[tuple[str, bytes | None, BaseException | None]]:
        """(hash id, stored bytes decoded, None) or (hash id, None, error) for every wanted
        object, read by ranges (neighbours merged, most of a pack read whole); arrived(n):
        the bytes of ranges as they come, before the objects in them are given. A zstd entry
        is decoded with its length as the output limit (codec.decode); one that does not
        decode to exactly that many bytes is given as stored, which cannot hash right, so
        it is a damaged copy for the caller. The bytes are not checked against the hash
        here: the caller does, before using them."""
        spans: list[tuple[PackRef, ranges.Span]] = []
        encoded: dict[str, int] = {}  # zstd entries: hash -> the object's length
        by_pack: dict[PackRef, list[tuple[str, int, int]]] = {}
        for h, loc in wanted.items():
            if (loc.codec, loc.kind) not in DECODED:
                # a newer mlv's: refused before a byte of it is read
                yield h, None, NewerFormat(f"codec {loc.codec}, kind {loc.kind}: needs a newer mlv")
                continue
            by_pack.setdefault(loc.pack, []).append((h, loc.offset, loc.stored))
            if loc.codec == CODEC_ZSTD:
                encoded[h] = loc.length
        for pack, members in sorted(by_pack.items(), key=lambda kv: kv[0].name):
            spans += [(pack, s) for s in ranges.plan(members, pack.size)]
        start = 0
        while start < len(spans):
            batch: list[tuple[PackRef, ranges.Span]] = []
            nbytes = 0
            while start < len(spans) and (
                not batch or nbytes + spans[start][1].length <= READ_BATCH
            ):
                batch.append(spans[start])
                nbytes += spans[start][1].length
                start += 1
            items = [(layout.pack_key(p.name), s.start, s.length) for p, s in batch]
            try:
                results = self.backend.read_ranges(items, self.jobs, arrived)
            except Exception as e:
                raise self.failure(e) from e
            whole: dict[PackRef, list[ranges.Span]] = {}
            answers: list[tuple[PackRef, ranges.Span, bytes | None, BaseException | None]] = []
            for (pack, span), r in zip(batch, results, strict=True):
                if isinstance(r.error, TooLong) and pack.size <= MAX_WHOLE_READ:
                    whole.setdefault(pack, []).append(span)  # a server that ignores Range
                else:
                    answers.append((pack, span, r.data, r.error))
            if whole:
                answers += self._read_whole(whole, arrived)
            for pack, span, data, error in answers:
                if error is not None:
                    if isinstance(error, PermanentError):
                        raise self.failure(error)
                    for h, _, _ in span.members:
                        yield h, None, error
                    continue
                pieces = ranges.cut(span, data or b"")
                for h, _, _ in span.members:
                    data = pieces.get(h)
                    if data is None:
                        yield h, None, OSError(f"pack {pack.name} is shorter than its index says")
                    elif h in encoded:
                        try:
                            yield h, codec.decode(CODEC_ZSTD, data, encoded[h]), None
                        except codec.CodecError as e:
                            # Given as stored: bytes that do not hash to h, so the caller
                            # finds the copy damaged (next copy, else corrupt), as for raw.
                            log.debug(__name__, f"{h} in pack {pack.name}: {e}")
                            yield h, data, None
                    else:
                        yield h, data, None
