"""Objects on a remote: where each one lives, which ones are there, and moving them.

A loose object ALGO:HEX is the key ALGO/HEX[:2]/HEX[2:], as in the cache; objects smaller
than the remote's pack_threshold live in packs (remote format version 1, docs/formats.md),
which mlv/objects/packs/packed.py reads and writes for this module. Commands see neither:
they ask RemoteStore for objects by hash id.

Which objects are there: one existence check each, or listings, whichever costs fewer
requests (the rule is in `present`). Downloads land in a temporary inside the cache and get
their final name only after their content hashed to their name.

This is the one road from the commands (mlv/core) to a remote: they ask for objects by hash
id (present, upload, download, check, read_heads, delete, inventory) and for the few plain
files kept beside them (the run cache's runs/: list_files, read_files, write_files), never
for keys of the backend. What a backend's error means is decided here once (`_book`,
`failure`): an absent key, a failure of the whole remote (PermanentError: one line, the
command stops), or a failure of one item (its reason, shortened and scrubbed of secrets by
`reason`).
"""

from __future__ import annotations

import math
import os
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mlv import log
from mlv.errors import RemoteError
from mlv.objects import hashing
from mlv.objects.packs import chunked, layout, locks
from mlv.objects.packs.chunks import ChunkList
from mlv.objects.packs.index import Location, PackRef
from mlv.objects.packs.packed import Packed, Settings
from mlv.objects.packs.packfile import KIND_FILE, KIND_TREE
from mlv.objects.store import Cache, hash_path_mmap
from mlv.storage import registry
from mlv.storage.backend import Backend, ItemResult, Missing, PermanentError
from mlv.util.urls import redact, scrub

# Up to this many objects, existence checks are always the cheaper way to ask.
FEW = 16
# A whole listing estimated at this many pages or more is split into 16 listed at once.
SPLIT_PAGES = 8
HEX = "0123456789abcdef"
# Objects moved per batch: a killed transfer keeps what earlier batches completed.
BATCH = 2000
LARGE_BATCH = 64
BATCH_BYTES = 64 << 20  # small objects held in memory at once
# Objects up to this size are downloaded into memory, checked there and written once.
IN_MEMORY = 1 << 20
# check(): bytes of large objects on local disk at once, about (deleted once hashed).
CHECK_BYTES = 1 << 30

Progress = Callable[[int], None]  # bytes of one finished object


def key_of(hash_id: str) -> str:
    algo, hexpart = hashing.split(hash_id)
    return f"{algo}/{hexpart[:2]}/{hexpart[2:]}"


def hash_of_key(key: str) -> str | None:
    parts = key.split("/")
    if len(parts) != 3 or len(parts[1]) != 2:
        return None
    candidate = f"{parts[0]}:{parts[1]}{parts[2]}"
    return candidate if hashing.is_hash(candidate) else None


@dataclass
class Outcome:
    """What happened to the objects of one transfer."""

    done: list[str] = field(default_factory=list)
    nbytes: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # hash -> reason
    missing: list[str] = field(default_factory=list)  # not where they should come from
    corrupt: list[str] = field(default_factory=list)  # downloaded bytes did not match
    got: dict[str, str] = field(default_factory=dict)  # check(): hash of the corrupt bytes
    data: dict[str, bytes] = field(default_factory=dict)  # read_heads(), read_files(): bytes
    kinds: dict[str, str] = field(default_factory=dict)  # failed: the error's type name

    def merge(self, other: Outcome) -> None:
        self.done += other.done
        self.nbytes += other.nbytes
        self.failed.update(other.failed)
        self.missing += other.missing
        self.corrupt += other.corrupt
        self.got.update(other.got)
        self.data.update(other.data)
        self.kinds.update(other.kinds)


class Mismatch(Exception):
    """Downloaded bytes that do not hash to the object's name (got: what they hash to)."""

    def __init__(self, got: str, data: bytes) -> None:
        super().__init__(f"corrupt: the bytes hash to {got}")
        self.got = got
        self.data = data


@dataclass
class PresenceStats:
    """How `present` asked: for the request-count tests and -v output."""

    checks: int = 0
    listings: int = 0


class RemoteStore:
    def __init__(
        self,
        backend: Backend,
        name: str,
        jobs: int | None = None,
        secrets: list[str] | None = None,
        packing: Settings | None = None,
    ) -> None:
        self.secrets = [s for s in secrets or [] if len(s) >= 3]  # never printed
        self.backend = backend
        self.name = name
        self.jobs = jobs or backend.default_jobs
        self.stats = PresenceStats()
        self.packing = packing or Settings()
        self.packs = Packed(backend, self.jobs, self.packing, self.failure)
        self._lock: locks.RemoteLock | None = None

    def use_index_cache(self, folder: str) -> None:
        """Keep downloaded indexes in folder (the cache's index/), named by their hash."""
        self.packs.index_dir = folder

    @property
    def warnings(self) -> list[str]:
        """What the user should hear about the remote (an index that failed its checks)."""
        return self.packs.warnings

    @property
    def url(self) -> str:
        return self.backend.url

    @property
    def read_only(self) -> bool:
        """HTTP: objects can be fetched, never written or deleted."""
        return self.backend.read_only

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self.backend.close()

    def _begin_write(self) -> None:
        """Before this command's first write: take a shared push lock (so no `gc -r` runs
        meanwhile), then list index/ again; if an index this command planned with has gone
        (a gc ran since), what it took as present may be gone too: stop, and let the user
        run the push again."""
        if self._lock is not None:
            if self._lock.held:
                return
            # Could not refresh it for long (a suspended laptop): it may have gone stale and
            # a gc may have run. Take it again and check the indexes again before writing.
            self._lock.release()
        self._lock = locks.acquire(self.backend, "push", "mlv push", self.failure)
        before = self.packs.catalog().names
        after = self.packs.catalog(refresh=True).names
        if before - after:
            raise RemoteError(
                f"remote '{self.name}' ({self.url}): a gc rewrote its packs while this "
                "command was planning",
                "run the same command again",
            )

    def remove_stale_tmp(self) -> None:
        """Temporaries that killed writers left anywhere on the remote (a folder remote
        only: object stores write with a single PUT)."""
        sweep = getattr(self.backend, "remove_stale_tmp", None)
        if callable(sweep):
            sweep()

    # ---- which objects are there ------------------------------------------------------

    def present(self, hashes: Collection[str], sizes: Mapping[str, int] | None = None) -> set[str]:
        """Those of hashes that the remote holds: named by one of its indexes (answered
        locally), else loose.

        sizes (push): on a remote born packed, an object that push would pack and that no
        index names is absent without asking, since small objects are never loose there.

        Loose objects, rule: with few objects (FEW), one existence check each. Otherwise
        list one shard folder the objects fall in, estimate the remote's size from it, and
        compare the requests each way would cost: existence checks (one per object), listing the
        shards the objects fall in, or (flat stores, where a listing request returns up to
        `listing_page` keys) listing the whole ALGO/ prefix. The cheapest wins, so pushing
        three files never lists a remote of millions, and a full push never sends a
        million existence checks. A long whole listing runs as 16 listings at once
        (`_list_whole`).
        """
        wanted = set(hashes)
        if not wanted:
            return set()
        indexed = self.packs.catalog().holds(wanted)
        wanted -= indexed
        if sizes is not None and not self.read_only:
            packable = {h for h in wanted if self.packing.packs(sizes.get(h))}
            if packable and not self.packs.loose_small():
                wanted -= packable
        return indexed | self._present_loose(wanted)

    def packed_at(self, hash_id: str) -> str | None:
        """Where an index places the object: "KEY, bytes START-END", or None."""
        loc = self.packs.catalog().lookup(hash_id)
        if loc is None:
            return None
        end = loc.offset + loc.stored - 1
        return f"{layout.pack_key(loc.pack.name)}, bytes {loc.offset}-{end}"

    def packs_all(self, sizes: Iterable[int]) -> bool:
        """Would upload() put every object of these sizes into packs?"""
        return not self.read_only and all(self.packing.packs(size) for size in sizes)

    def indexed(self, hashes: Collection[str]) -> set[str]:
        """Those of hashes that an index of the remote names (no request but the one
        listing of index/ per command)."""
        return self.packs.catalog().holds(hashes)

    def prove(self, hashes: Collection[str]) -> set[str]:
        """Those of hashes that the remote holds, packed objects counted only when their
        pack is listed with the size its index records (one listing of packs/), by indexes
        read from the remote itself (not the local copies: one of them may have rotten
        there)."""
        wanted = set(hashes)
        if self.packs.trust_cached:
            self.packs.trust_cached = False
            self.packs.catalog(refresh=True)
        proven = self.packs.prove(wanted)
        proven -= self._unproven_chunked(proven)
        return proven | self._present_loose(wanted - proven)

    def _unproven_chunked(self, proven: set[str]) -> set[str]:
        """Those of the chunked objects among proven whose chunk list cannot be read, or
        names a chunk that is not proven (a ranged read of each chunk list)."""
        lists = chunked.chunked_locations(self.packs.catalog(), proven)
        if not lists:
            return set()
        bad: set[str] = set()
        named: dict[str, list[str]] = {}
        for h, data, error in self.packs.read(lists):
            try:
                if error is not None:
                    raise error
                chunk_list = ChunkList.parse(data or b"", lists[h].length, hashing.algorithm_of(h))
            except Exception as e:  # unreadable, absent, damaged, a newer format
                log.debug(__name__, f"{self.name}: chunk list of {h}: {e}")
                bad.add(h)
                continue
            named[h] = [ref.hash for ref in chunk_list.chunks]
        chunks = {c for refs in named.values() for c in refs}
        there = self.packs.prove(chunks)
        return bad | {h for h, refs in named.items() if not set(refs) <= there}

    def _present_loose(self, wanted: set[str]) -> set[str]:
        if not wanted:
            return set()
        if len(wanted) <= FEW:
            return self._check(wanted)
        shards: dict[str, set[str]] = defaultdict(set)
        for h in wanted:
            shards[key_of(h)[: -len(hashing.split(h)[1]) + 2]].add(h)
        found: set[str] = set()
        first = min(shards)
        sample = self._list(first)
        found |= shards.pop(first) & sample
        if not shards:
            return found
        rest = sum(len(v) for v in shards.values())
        per_shard = len(sample)
        page = self.backend.listing_page
        cost_checks = rest
        if page is None:
            cost_shards = len(shards)
            cost_whole = math.inf
        else:
            cost_shards = len(shards) * max(1, math.ceil(per_shard / page))
            cost_whole = max(1, math.ceil(per_shard * 256 / page)) * len(
                {s.split("/")[0] for s in shards}
            )
        best = min(cost_checks, cost_shards, cost_whole)
        log.debug(
            __name__,
            f"presence of {len(wanted)} objects: ~{per_shard} per shard; requests: "
            f"checks {cost_checks}, shard listings {cost_shards}, whole listing {cost_whole}",
        )
        if best == cost_checks:
            return found | self._check(set().union(*shards.values()))
        if best == cost_whole:
            assert page is not None
            whole_pages = math.ceil(per_shard * 256 / page)
            listed: set[str] = set()
            for algo in sorted({s.split("/")[0] for s in shards}):
                listed |= self._list_whole(algo, whole_pages)
            return found | (set().union(*shards.values()) & listed)
        for shard, members in sorted(shards.items()):
            found |= members & self._list(shard)
        return found

    def _list_whole(self, algo: str, pages: int) -> set[str]:
        """Every object of ALGO/ on a flat store. A listing is a chain of pages, each request
        waiting for the one before (the next page starts where the last ended); a long one
        (SPLIT_PAGES or more, estimated) is cut into the 16 prefixes ALGO/0 .. ALGO/f that
        every object key begins with, listed at once, jobs permitting. Same keys, a few
        more requests, a fraction of the waiting."""
        width = min(len(HEX), self.jobs)
        if pages < SPLIT_PAGES or width < 2:
            return self._list(algo + "/")
        listed: set[str] = set()
        self.stats.listings += len(HEX)
        with ThreadPoolExecutor(max_workers=width) as pool:
            for part in pool.map(lambda p: self._list(p, False), [f"{algo}/{c}" for c in HEX]):
                listed |= part
        return listed

    def _check(self, hashes: set[str]) -> set[str]:
        self.stats.checks += len(hashes)
        by_key = {key_of(h): h for h in hashes}
        try:
            found = self.backend.exists(sorted(by_key), self.jobs)
        except Exception as e:
            raise self.failure(e) from e
        return {by_key[k] for k in found}

    def failure(self, e: BaseException) -> RemoteError:
        """A failure of the whole remote (not one object) as one line for the user."""
        where = f"remote '{self.name}' ({self.url})"
        if isinstance(e, PermanentError):
            message = e.message
            if self.url in message:
                message = message.replace(f"remote {self.url}", where)
            else:
                message = f"{where}: {message}"
            hint = e.hint.replace(" NAME ", f" {self.name} ") if e.hint else e.hint
            return RemoteError(scrub(message, self.secrets), hint)
        return RemoteError(f"{where}: {self.reason(e)}", _hint(e, self.url))

    def reason(self, e: BaseException) -> str:
        """Why one item failed, in one line: the error's type and its first 200
        characters, secrets scrubbed."""
        return scrub(_reason(e), self.secrets)

    def _list(self, prefix: str, counted: bool = True) -> set[str]:
        if counted:  # False: counted by the caller (listings in threads)
            self.stats.listings += 1
        out = set()
        try:
            keys = self.backend.list_keys(prefix)
        except Exception as e:
            raise self.failure(e) from e
        for key in keys:
            h = hash_of_key(key)
            if h is not None:
                out.add(h)
        return out

    # ---- moving objects ---------------------------------------------------------------

    def upload(
        self,
        cache: Cache,
        hashes: Iterable[str],
        done: Progress | None = None,
        trees: bool = False,
    ) -> Outcome:
        """Send objects from the cache: those below the packing threshold in packs, the
        rest loose. trees: tree objects, packed apart from files and all named by one
        index written after their packs (Packed.write), so that the trees of one call
        appear on the remote at once, in any order of levels."""
        outcome = Outcome()
        loose: list[str] = []
        packable: list[str] = []
        chunkable: list[str] = []
        hashes = list(hashes)
        if hashes:
            self._begin_write()
        for h in hashes:
            try:
                size = os.stat(cache.object_path(h)).st_size
            except FileNotFoundError:
                outcome.missing.append(h)
                continue
            if not self.read_only and self.packing.packs(size):
                packable.append(h)
            elif not self.read_only and self.packing.chunks(size):
                chunkable.append(h)
            else:
                loose.append(h)
        if packable:

            def checked() -> Iterator[tuple[str, bytes]]:
                for h in packable:
                    data = _read_checked(cache, h, outcome)
                    if data is not None:
                        yield h, data

            kind = KIND_TREE if trees else KIND_FILE
            written = self.packs.write(checked(), kind, cache.tmp_dir, done)
            outcome.done += written.done
            outcome.nbytes += written.nbytes
            for h, e in written.failed.items():
                outcome.failed[h] = self.reason(e)
                outcome.kinds[h] = type(e).__name__
        if chunkable:
            self._book_chunked(
                chunked.push(self.packs, cache, chunkable, cache.tmp_dir, done), outcome
            )
        if loose:
            outcome.merge(self._upload_loose(cache, loose, done))
        return outcome

    def _book_chunked(self, result: chunked.Result, outcome: Outcome) -> None:
        outcome.done += result.done
        outcome.nbytes += result.nbytes
        outcome.missing += result.missing
        outcome.corrupt += list(result.corrupt)
        outcome.got.update(result.corrupt)
        for h, e in result.failed.items():
            self._book_error(h, e, outcome)

    def _upload_loose(
        self, cache: Cache, hashes: Iterable[str], done: Progress | None = None
    ) -> Outcome:
        """Send objects from the cache. Objects the cache lacks are reported missing,
        damaged ones corrupt, unreadable ones failed (with the reason); the rest go out.

        Every object is hashed right before it is sent, whatever the trust record says: a
        push reads every byte anyway, so bit rot that keeps inode, size and mtime never
        reaches the remote (xxh3 costs little next to the copy). Small objects are read
        once, checked in memory and sent from there; large ones are checked a batch at a
        time (about CHECK_BYTES, so the upload finds them in the page cache) and streamed
        from their file."""
        outcome = Outcome()
        small: list[tuple[bytes, str]] = []
        small_bytes = 0
        large: list[tuple[str, int]] = []
        for h in hashes:
            path = cache.object_path(h)
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                outcome.missing.append(h)
                continue
            if size > IN_MEMORY:
                large.append((h, size))
                continue
            data = _read_checked(cache, h, outcome)
            if data is None:
                continue
            small.append((data, key_of(h)))
            small_bytes += len(data)
            if len(small) >= BATCH or small_bytes >= BATCH_BYTES:
                self._book(self.backend.write(small, self.jobs, done), outcome)
                small, small_bytes = [], 0
        if small:
            self._book(self.backend.write(small, self.jobs, done), outcome)
        batch: list[str] = []
        batch_bytes = 0
        for i, (h, size) in enumerate(large):
            batch.append(h)
            batch_bytes += size
            full = len(batch) >= LARGE_BATCH or (
                batch_bytes >= CHECK_BYTES and len(batch) >= self.jobs
            )
            if i + 1 < len(large) and not full:
                continue
            ready: list[tuple[str, str]] = []
            for oid in batch:
                path = cache.object_path(oid)
                try:
                    intact = cache.verify(oid)
                except OSError as e:
                    outcome.failed[oid] = unreadable(path, e)
                    continue
                if intact:
                    ready.append((path, key_of(oid)))
                elif os.path.exists(path):
                    outcome.corrupt.append(oid)
                else:
                    outcome.missing.append(oid)  # deleted meanwhile
            if ready:
                self._book(self.backend.upload(ready, self.jobs, done), outcome)
            batch, batch_bytes = [], 0
        return outcome

    def download(
        self,
        cache: Cache,
        hashes: Iterable[str],
        done: Progress | None = None,
        sizes: Mapping[str, int] | None = None,
        arrived: Progress | None = None,
    ) -> Outcome:
        """Fetch objects into the cache, each checked against its hash first.

        Small objects (and trees, whose size is not known ahead) come into memory, are
        hashed there and written once; large ones stream into a temporary file in the
        cache, are hashed, and are renamed into place. arrived: the bytes read from packs
        as they come (a batch of ranges takes seconds on a slow link); with it, done() of
        a packed object carries 0 bytes, its bytes counted already.
        """
        outcome = Outcome()
        sizes = sizes or {}
        asked = set(hashes)
        rebuilt = chunked.chunked_locations(self.packs.catalog(), asked)
        if rebuilt:

            def adopt(h: str, path: str) -> None:
                cache.adopt(path, h)

            result = chunked.rebuild(
                self.packs, cache, rebuilt, lambda h: cache.new_tmp(), adopt, done, sizes
            )
            self._book_chunked(result, outcome)
        wanted: list[str] = []
        for h, data, error in self._packed(sorted(asked - set(rebuilt)), wanted, arrived):
            if isinstance(error, Mismatch):
                outcome.corrupt.append(h)
            elif error is not None:
                self._book_error(h, error, outcome)
            else:
                cache.put_bytes(data, h, repair=True)
                outcome.done.append(h)
                outcome.nbytes += len(data)
                if done is not None:
                    done(0 if arrived is not None else len(data))
        small = [h for h in wanted if sizes.get(h, 0) <= IN_MEMORY]
        large = [h for h in wanted if sizes.get(h, 0) > IN_MEMORY]
        for start in range(0, len(small), BATCH):
            chunk = small[start : start + BATCH]
            results = self.backend.read([key_of(h) for h in chunk], self.jobs, done)
            good: list[ItemResult] = []
            for r in results:
                h = hash_of_key(r.key) or r.key
                if r.error is None:
                    assert r.data is not None
                    if hashing.hash_bytes(hashing.algorithm_of(h), r.data) != h:
                        log.debug(__name__, f"{self.name}: object {h} is corrupt")
                        outcome.corrupt.append(h)
                        continue
                    cache.put_bytes(r.data, h, repair=True)
                good.append(r)
            self._book(good, outcome)
        for start in range(0, len(large), LARGE_BATCH):
            chunk = large[start : start + LARGE_BATCH]
            tmps = {h: cache.new_tmp() for h in chunk}
            try:
                results = self.backend.download(
                    [(key_of(h), tmps[h]) for h in chunk], self.jobs, done
                )
                good = []
                for r in results:
                    h = hash_of_key(r.key) or r.key
                    if r.error is None:
                        if hash_path_mmap(hashing.algorithm_of(h), tmps[h]) != h:
                            log.debug(__name__, f"{self.name}: object {h} is corrupt")
                            outcome.corrupt.append(h)
                            continue
                        cache.adopt(tmps[h], h)
                    good.append(r)
                self._book(good, outcome)
            finally:
                for tmp in tmps.values():
                    try:
                        os.unlink(tmp)
                    except FileNotFoundError:
                        pass
        return outcome

    def check(
        self,
        hashes: Iterable[str],
        scratch: str,
        sizes: Mapping[str, int] | None = None,
        done: Progress | None = None,
        keep: Callable[[str, bytes], None] | None = None,
    ) -> Outcome:
        """Download objects and hash them, keeping nothing (`mlv verify`): outcome.done
        lists the intact ones, outcome.corrupt the others (outcome.got: what their bytes
        hash to), outcome.nbytes the bytes downloaded. Small objects (and those of unknown
        size) are read into memory, where keep(hash, bytes) may take the intact ones
        (trees); large ones stream into temporaries in the folder scratch, a few at a time,
        deleted once hashed."""
        outcome = Outcome()
        sizes = sizes or {}

        def judge(h: str, actual: str, data: bytes | None) -> bool:
            if actual == h:
                if keep is not None and data is not None:
                    keep(h, data)
                return True
            outcome.corrupt.append(h)
            outcome.got[h] = actual
            outcome.nbytes += len(data) if data is not None else 0
            return False

        asked = set(hashes)
        rebuilt = chunked.chunked_locations(self.packs.catalog(), asked)
        if rebuilt:
            result = chunked.rebuild(
                self.packs,
                None,  # every chunk from the remote: it is the remote being checked
                rebuilt,
                lambda h: os.path.join(scratch, f"rebuilt-{hashing.split(h)[1]}"),
                lambda h, path: None,  # judged by its hash already; deleted after
                done,
                sizes,
            )
            outcome.done += result.done
            outcome.nbytes += result.nbytes
            outcome.missing += result.missing
            for h, got in result.corrupt.items():
                judge(h, got, None)
            for h, e in result.failed.items():
                self._book_error(h, e, outcome)
        wanted: list[str] = []
        for h, data, error in self._packed(sorted(asked - set(rebuilt)), wanted):
            if isinstance(error, Mismatch):
                judge(h, error.got, error.data)
            elif error is not None:
                self._book_error(h, error, outcome)
            elif judge(h, h, data):
                outcome.done.append(h)
                outcome.nbytes += len(data)
                if done is not None:
                    done(len(data))
        small = [h for h in wanted if sizes.get(h, 0) <= IN_MEMORY]
        large = [h for h in wanted if sizes.get(h, 0) > IN_MEMORY]

        for start in range(0, len(small), BATCH):
            chunk = small[start : start + BATCH]
            try:
                results = self.backend.read([key_of(h) for h in chunk], self.jobs, done)
            except Exception as e:
                raise self.failure(e) from e
            good: list[ItemResult] = []
            for r in results:
                h = hash_of_key(r.key) or r.key
                if r.error is None:
                    data = r.data or b""
                    if not judge(h, hashing.hash_bytes(hashing.algorithm_of(h), data), data):
                        continue
                good.append(r)
            self._book(good, outcome)
        batch: list[str] = []
        batch_bytes = 0
        for i, h in enumerate(large):
            batch.append(h)
            batch_bytes += sizes[h]
            if i + 1 < len(large) and len(batch) < LARGE_BATCH and batch_bytes < CHECK_BYTES:
                continue
            tmps = {h: os.path.join(scratch, f"obj-{n}") for n, h in enumerate(batch)}
            try:
                try:
                    results = self.backend.download(
                        [(key_of(h), tmps[h]) for h in batch], self.jobs, done
                    )
                except Exception as e:
                    raise self.failure(e) from e
                good = []
                for r in results:
                    oid = hash_of_key(r.key) or r.key
                    if r.error is None:
                        actual = hash_path_mmap(hashing.algorithm_of(oid), tmps[oid])
                        if not judge(oid, actual, None):
                            outcome.nbytes += r.nbytes
                            continue
                    good.append(r)
                self._book(good, outcome)
            finally:
                for tmp in tmps.values():
                    try:
                        os.unlink(tmp)
                    except FileNotFoundError:
                        pass
            batch, batch_bytes = [], 0
        return outcome

    def _packed(
        self, hashes: list[str], loose: list[str], arrived: Progress | None = None
    ) -> Iterator[tuple[str, bytes, BaseException | None]]:
        """Read the objects of hashes that an index names, by ranges, each checked against
        its hash: (hash, bytes, None), or (hash, b"", error), a Mismatch when no copy hashes
        right. An object named by several indexes (re-sent after its pack was lost or
        damaged) is read from the next copy when one is missing or damaged. Those no index
        names go to loose, and so do those whose every indexed copy is gone and that a fresh
        listing of index/ (once: a gc may have run since) does not place elsewhere."""
        catalog = self.packs.catalog()
        wanted: dict[str, Location] = {}
        for h in hashes:
            loc = catalog.lookup(h)
            if loc is None:
                loose.append(h)
            else:
                wanted[h] = loc
        tried: dict[str, set[PackRef]] = {}
        damaged: dict[str, Mismatch] = {}
        refreshed = False
        while wanted:
            retry: list[str] = []
            gone: list[str] = []
            for h, data, error in self.packs.read(wanted, arrived):
                tried.setdefault(h, set()).add(wanted[h].pack)
                if isinstance(error, Missing):
                    gone.append(h)
                elif error is not None:
                    yield h, b"", error
                else:
                    data = data or b""
                    got = hashing.hash_bytes(hashing.algorithm_of(h), data)
                    if got == h:
                        yield h, data, None
                    else:
                        log.debug(__name__, f"{self.name}: a packed copy of {h} is corrupt")
                        damaged.setdefault(h, Mismatch(got, data))
                        retry.append(h)
            if gone and not refreshed:
                log.debug(
                    __name__, f"{self.name}: {len(gone)} packed object(s) gone: listing again"
                )
                catalog = self.packs.catalog(refresh=True)
                refreshed = True
            wanted = {}
            for h in retry + gone:
                others = [loc for loc in catalog.locations(h) if loc.pack not in tried[h]]
                if others:
                    wanted[h] = others[0]
                elif h in damaged:
                    yield h, b"", damaged[h]
                else:
                    loose.append(h)  # no other copy is indexed: maybe a loose one

    def _book_error(self, h: str, error: BaseException, outcome: Outcome) -> None:
        outcome.failed[h] = self.reason(error)
        outcome.kinds[h] = type(error).__name__

    def _book(
        self,
        results: list[ItemResult],
        outcome: Outcome,
        absent: str = "missing",
        name: Callable[[str], str] | None = None,
    ) -> None:
        """Sort a batch's results into outcome, by hash id (or by name(key)). An absent key
        goes to outcome.missing, or with absent="done" counts as done (a deletion), with
        absent="failed" as failed (a write). A PermanentError stops the command once the
        batch is booked: RemoteError via failure()."""
        permanent: PermanentError | None = None
        for r in results:
            h = name(r.key) if name is not None else hash_of_key(r.key) or r.key
            if r.error is None or (absent == "done" and isinstance(r.error, Missing)):
                outcome.done.append(h)
                outcome.nbytes += r.nbytes
                if r.data is not None and name is not None:
                    outcome.data[h] = r.data
            elif isinstance(r.error, Missing) and absent == "missing":
                outcome.missing.append(h)
            else:
                if isinstance(r.error, PermanentError) and permanent is None:
                    permanent = r.error
                outcome.failed[h] = self.reason(r.error)
                outcome.kinds[h] = type(r.error).__name__
        if permanent is not None:
            raise self.failure(permanent)

    def _call(self, request: Callable[..., list[ItemResult]], *args: object) -> list[ItemResult]:
        """One batch request: an exception out of it is a failure of the whole remote."""
        try:
            return request(*args)
        except Exception as e:
            raise self.failure(e) from e

    # ---- what gc asks -------------------------------------------------------------------

    def inventory(self) -> dict[str, int]:
        """hash -> size of every object on the remote (keys of the object form only)."""
        found: dict[str, int] = {}
        for algo in hashing.ALGORITHMS:
            try:
                listed = self.backend.list_sizes(algo + "/")
            except Exception as e:
                raise self.failure(e) from e
            for key, size in listed.items():
                h = hash_of_key(key)
                if h is not None:
                    found[h] = size
        return found

    def read_heads(self, hashes: Iterable[str], nbytes: int) -> Outcome:
        """The first nbytes of each object (a ranged read where the store has one) in
        outcome.data; outcome.done lists those read, outcome.missing the absent ones."""
        outcome = Outcome()
        wanted = list(hashes)
        for start in range(0, len(wanted), BATCH):
            keys = [key_of(h) for h in wanted[start : start + BATCH]]
            results = self._call(self.backend.read_head, keys, nbytes, self.jobs)
            chunk = Outcome()
            self._book(results, chunk)
            for r in results:
                if r.error is None:
                    chunk.data[hash_of_key(r.key) or r.key] = r.data or b""
            outcome.merge(chunk)
        return outcome

    def delete(self, hashes: Iterable[str]) -> Outcome:
        """Delete objects, in batches, in the order given; an object absent already counts
        as deleted. Ordering across calls (trees before what they name) is the caller's."""
        outcome = Outcome()
        wanted = list(hashes)
        for start in range(0, len(wanted), BATCH):
            keys = [key_of(h) for h in wanted[start : start + BATCH]]
            self._book(self._call(self.backend.delete, keys, self.jobs), outcome, "done")
        return outcome

    # ---- plain files beside the objects (the run cache's runs/) ------------------------

    def list_files(self, prefix: str) -> list[str]:
        """Every key below prefix ("runs/")."""
        try:
            return self.backend.list_keys(prefix)
        except Exception as e:
            raise self.failure(e) from e

    def read_files(self, keys: Iterable[str]) -> Outcome:
        """Small files into memory (outcome.data by key); absent ones in outcome.missing."""
        outcome = Outcome()
        wanted = list(keys)
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            results = self._call(self.backend.read, chunk, self.jobs)
            self._book(results, outcome, name=str)
        return outcome

    def write_files(self, items: list[tuple[bytes, str]]) -> Outcome:
        """Write (data, key) pairs, each complete or not at all; outcome by key."""
        outcome = Outcome()
        if items:
            self._begin_write()
        for start in range(0, len(items), BATCH):
            chunk = items[start : start + BATCH]
            results = self._call(self.backend.write, chunk, self.jobs)
            self._book(results, outcome, "failed", name=str)
        return outcome


def known_scheme(url: str) -> bool:
    """Is url a folder, or of a scheme a backend exists for (installed or not)?"""
    return registry.known_scheme(url)


def timeout_seconds(name: str, value: object) -> float:
    """A `timeout` or `connect_timeout` option as the backends read it: seconds, or a
    ValueError with the message to show."""
    return registry.seconds(name, value)


def open_store(
    name: str,
    url: str,
    options: Mapping[str, object],
    jobs: int | None,
    secrets: list[str],
    packing: Settings | None = None,
) -> RemoteStore:
    """Open remote `name` at url (a folder URL already absolute) with its options; a
    failure to open it is one RemoteError naming 'NAME' (URL), secrets scrubbed."""
    shown = redact(url)
    try:
        backend = registry.open_backend(url, options)
    except PermanentError as e:
        message = scrub(e.message, secrets)
        if message.startswith(f"remote {shown}: "):  # name the remote once: 'NAME' (URL)
            message = message[len(f"remote {shown}: ") :]
        hint = e.hint.replace(" NAME ", f" {name} ") if e.hint else e.hint
        raise RemoteError(f"remote '{name}' ({shown}): {message}", hint) from None
    except Exception as e:  # connecting (sshfs connects here): refused, host key, auth...
        raise RemoteError(
            f"remote '{name}' ({shown}): cannot connect ({scrub(_reason(e), secrets)})",
            "check the URL, credentials and host keys (ssh: ~/.ssh/config, known_hosts)",
        ) from e
    return RemoteStore(backend, name, jobs, secrets, packing)


_CREDENTIAL_WORDS = ("credential", "invalidaccesskeyid", "signaturedoesnotmatch", "expiredtoken")


def _hint(e: BaseException, url: str) -> str:
    """What to do about a failure of the whole remote, by what the error says."""
    text = f"{type(e).__name__} {e}".lower()
    if any(word in text for word in _CREDENTIAL_WORDS):
        scheme = url.partition("://")[0].lower() if "://" in url else ""
        if scheme in ("s3", "s3a"):
            return (
                "give credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
                "~/.aws/credentials, or `mlv remote modify --local NAME key/secret ...`"
            )
        return "give the remote's credentials (see docs/remotes.md, Credentials)"
    if isinstance(e, PermissionError) or "accessdenied" in text or "forbidden" in text:
        return "check that these credentials may read and write there"
    if isinstance(e, FileNotFoundError | NotADirectoryError):
        return "check the remote's url (`mlv remote list`) and that its folder can be created"
    return "check the URL, the network and the server, then run again"


def _read_checked(cache: Cache, hash_id: str, outcome: Outcome) -> bytes | None:
    """A small cache object's bytes, checked against its hash before they are sent; None
    (and the reason in outcome: missing, failed, corrupt) otherwise. A damaged object is
    never spread: its trust record is dropped so that `mlv pull` replaces it."""
    path = cache.object_path(hash_id)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        outcome.missing.append(hash_id)
        return None
    except OSError as e:
        outcome.failed[hash_id] = unreadable(path, e)
        return None
    if hashing.hash_bytes(hashing.algorithm_of(hash_id), data) != hash_id:
        cache.distrust(hash_id)
        outcome.corrupt.append(hash_id)
        return None
    return data


def unreadable(path: str, e: OSError) -> str:
    """Why a cache object could not be read, naming its file."""
    why = (e.strerror or type(e).__name__).lower()
    fix = " (make it readable: chmod a+r FILE)" if isinstance(e, PermissionError) else ""
    return f"cannot read the cache object {path}: {why}{fix}"


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:200]}" if text else type(e).__name__
