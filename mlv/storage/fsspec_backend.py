"""Any remote fsspec can open: S3 and compatible servers, GCS, Azure, SFTP, HTTP, ...

Filesystems with an async implementation (s3fs, gcsfs, adlfs, sshfs) run a whole batch as
coroutines on fsspec's event loop, `jobs` at a time; the others run in a thread pool. Flat
object stores get each object in one PUT, which is atomic; hierarchical ones (SFTP) get a
temporary name in the final folder and a rename.

No remote can make mlv wait forever. Besides the connect and read timeouts each library gets
(registry.py), every request of an async filesystem runs under a watchdog (`_guard`): it is
given up after `timeout` seconds, plus one second for every FLOOR bytes it moves or has to
move, so a slow link is fine and a server that trickles a byte a minute is not. A request
given up while the remote made no progress at all since it started stops the operation with
one line ("no answer for 60 s"); otherwise it is retried like any transient failure.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fsspec.callbacks import Callback

from mlv.storage import retry
from mlv.storage.backend import (
    Done,
    ItemResult,
    KeyInfo,
    Missing,
    PermanentError,
    sort_ranges,
    too_long,
)

# Protocols whose keys are flat (no folders to create) and whose PUT is atomic.
FLAT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2"}
SFTP = {"ssh", "sftp"}
# Stores whose keys live in a bucket (an Azure container) that a 404 may mean is missing.
AZURE = {"az", "abfs", "abfss"}
BUCKETS = {"s3", "s3a", "gs", "gcs"} | AZURE
# How S3, GCS and Azure say that the bucket or container itself is missing.
NO_BUCKET_WORDS = (
    "nosuchbucket",
    "specified bucket does not exist",
    "containernotfound",
    "specified container does not exist",
    "no such container",
)
# Azure's error codes (ErrorCode:...) for a wrong key, token or SAS, or too few rights.
AZURE_DENIED = ("authenticationfailed", "authorizationfailure", "authorizationpermissionmismatch")
# Stores whose _cat_file reads a byte range (start, end) with one ranged request.
RANGED = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "http", "https"}

# A transfer slower than this (bytes per second, per request) counts as no progress. Low on
# purpose: 32 requests at once share a link, so 16 KiB/s each is a 4 Mbit/s uplink.
FLOOR = 16 * 1024
LISTED_KEY_BYTES = 256  # what one key of a listing counts for (an S3 listing entry's size)
T = TypeVar("T")


class Stalled(TimeoutError):
    """The watchdog gave a request up: no answer, or too little progress, in time."""


class _Meter(Callback):  # type: ignore[misc]
    """Bytes a request has moved so far (`value`): the callback that get_file and put_file
    update as they go, read by the watchdog."""


_METER: contextvars.ContextVar[_Meter | None] = contextvars.ContextVar("mlv_meter", default=None)


def _callback() -> dict[str, Any]:
    """callback=meter for get_file/put_file inside a watched request ({} outside one)."""
    meter = _METER.get()
    return {"callback": meter} if meter is not None else {}


class FsspecBackend:
    def __init__(
        self,
        fs: Any,
        root: str,
        url: str,
        protocol: str,
        policy: retry.Policy = retry.DEFAULT,
        timeout: float = 60.0,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self._progress_at = time.monotonic()  # the last request that finished
        self.fs = fs
        self.root = root.rstrip("/")
        self.url = url
        self.protocol = protocol
        self.flat = protocol in FLAT
        self.read_only = protocol in ("http", "https")
        self.listing_page: int | None = 1000 if self.flat else None
        self.is_async = bool(getattr(fs, "async_impl", False))
        self.default_jobs = 32 if self.is_async else 8
        self._made: set[str] = set()
        self._making: dict[str, asyncio.Lock] = {}
        self._stop = threading.Event()
        self._bucket_ok = False

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    # ---- running batches ----------------------------------------------------------------

    def _batch(
        self,
        items: Sequence[tuple[str, str]],
        jobs: int,
        key_of: Callable[[tuple[str, str]], str],
        one_async: Callable[[str, str], Awaitable[int]] | None,
        one_sync: Callable[[str, str], int],
        done: Done | None,
        size_of: Callable[[tuple[str, str]], int] | None = None,
    ) -> list[ItemResult]:
        """Run one operation over items; a permanent failure stops the items not started.
        size_of: the bytes an item is known to move (uploads), for the watchdog."""
        self._stop.clear()
        jobs = max(1, jobs)

        def finish(key: str, size: int) -> ItemResult:
            self._progress_at = time.monotonic()
            if done is not None:
                done(size)
            return ItemResult(key, size)

        def fail(key: str, e: BaseException) -> ItemResult:
            error = self._classify(e)
            if isinstance(error, PermanentError):
                self._stop.set()
            return ItemResult(key, 0, error)

        stopped = PermanentError(f"remote {self.url}: stopped after a permanent failure")

        if self.is_async and one_async is not None:
            run_one = one_async

            async def run_all() -> list[ItemResult]:
                gate = asyncio.Semaphore(jobs)

                async def item(pair: tuple[str, str]) -> ItemResult:
                    key = key_of(pair)
                    async with gate:
                        if self._stop.is_set():
                            return ItemResult(key, 0, stopped)
                        known = size_of(pair) if size_of is not None else 0
                        try:
                            size = await retry.acall(
                                lambda: self._watched(lambda: run_one(*pair), known),
                                self.policy,
                                what=key,
                            )
                        except Exception as e:
                            return fail(key, e)
                        return finish(key, size)

                return list(await asyncio.gather(*(item(p) for p in items)))

            results: list[ItemResult] = self._sync(run_all)
            return results

        def item_sync(pair: tuple[str, str]) -> ItemResult:
            key = key_of(pair)
            if self._stop.is_set():
                return ItemResult(key, 0, stopped)
            try:
                size = retry.call(lambda: one_sync(*pair), self.policy, what=key)
            except Exception as e:
                return fail(key, e)
            return finish(key, size)

        if jobs == 1 or len(items) < 2:
            return [item_sync(p) for p in items]
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(item_sync, items))

    def _sync(self, coro_fn: Callable[[], Awaitable[Any]]) -> Any:
        from fsspec.asyn import sync

        return sync(self.fs.loop, coro_fn)

    # ---- the watchdog -------------------------------------------------------------------

    async def _watched(self, make: Callable[[], Awaitable[T]], known: int = 0) -> T:
        """One attempt of a request under the watchdog. Given up with no progress on the
        whole remote since it started, it stops the operation (PermanentError: the server
        does not answer); given up while other requests got through, it is retried (a
        stuck connection)."""
        started = time.monotonic()
        try:
            return await self._guard(make, known)
        except Exception as e:
            if retry.is_timeout(e) and self._progress_at <= started:
                raise self._no_answer(e) from None
            raise

    async def _guard(self, make: Callable[[], Awaitable[T]], known: int = 0) -> T:
        """Run make() until it is done, or until it has taken `timeout` seconds plus one
        second per FLOOR bytes known to move (known) or reported moved (the meter that
        get_file/put_file update): then cancel it and raise Stalled."""
        loop = asyncio.get_running_loop()
        meter = _Meter()
        token = _METER.set(meter)
        try:
            task: asyncio.Future[T] = asyncio.ensure_future(make())
        finally:
            _METER.reset(token)
        task.add_done_callback(_retrieve)
        deadline = loop.time() + self.timeout + known / FLOOR
        seen = 0
        try:
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    break
                await asyncio.wait({task}, timeout=min(left, 0.5))
                if task.done():
                    return task.result()
                moved = int(meter.value or 0)
                if moved > seen:
                    deadline += (moved - seen) / FLOOR
                    seen = moved
        finally:
            if not task.done():
                task.cancel()  # not awaited: its clean-up may wait on the same dead server
        raise Stalled(f"no answer for {self.timeout:g} s")

    def _no_answer(self, e: BaseException) -> PermanentError:
        names = {t.__name__ for t in type(e).__mro__}
        if names & {"ConnectTimeoutError", "ConnectionTimeoutError"}:  # botocore, aiohttp
            what = "cannot connect: the connection timed out"
        else:  # the watchdog, or the library's read timeout (also `timeout` seconds)
            what = f"no answer for {self.timeout:g} s"
        return PermanentError(
            f"remote {self.url}: {what}",
            "check that the server is up and reachable; on a slow link raise "
            "`mlv remote modify NAME timeout SECONDS`",
        )

    def _classify(self, e: BaseException) -> BaseException:
        if isinstance(e, PermanentError | Missing):
            return e
        text = str(e).lower()
        if any(word in text for word in NO_BUCKET_WORDS):
            return self._no_bucket()
        if isinstance(e, FileNotFoundError):
            return Missing(str(e))
        if _denied(e):
            return PermanentError(
                f"remote {self.url}: access denied ({_short(e)})",
                "check the credentials and permissions for this remote",
            )
        if retry.is_unreachable(e):
            return PermanentError(
                f"remote {self.url}: cannot connect ({_short(e)})",
                "check the URL or endpoint_url, and that the server is up",
            )
        if retry.is_permanent(e):
            return PermanentError(
                f"remote {self.url}: access denied ({_short(e)})",
                "check the credentials and permissions for this remote",
            )
        return e

    # ---- Backend ------------------------------------------------------------------------

    def exists(self, keys: Sequence[str], jobs: int) -> set[str]:
        present: set[str] = set()
        pairs = [(k, k) for k in keys]

        async def head(key: str, _: str) -> int:
            try:
                await self._head(self._path(key))
            except FileNotFoundError:
                return 0
            present.add(key)
            return 0

        def head_sync(key: str, _: str) -> int:
            if self.fs.exists(self._path(key)):
                present.add(key)
            return 0

        results = self._batch(pairs, jobs, lambda p: p[0], head, head_sync, None)
        self._raise_first(results)
        if len(present) < len(keys):
            self._check_bucket()
        return present

    def _check_bucket(self) -> None:
        """On S3, GCS and Azure a request answers 404 alike for a missing key and a missing
        bucket (or container), and a listing of a missing one can be empty: before calling
        keys absent, make sure the bucket is there (one request per run)."""
        if self._bucket_ok or self.protocol not in BUCKETS:
            return
        bucket = self.fs.split_path(self.root)[0]

        async def head_bucket() -> None:
            if self.protocol in ("s3", "s3a"):
                await self.fs._call_s3("head_bucket", self.fs.kwargs, Bucket=bucket)
            else:  # gcsfs: GET b/BUCKET; adlfs: the container's properties
                await self.fs._info(bucket)

        try:
            self._sync(lambda: self._watched(head_bucket))
        except FileNotFoundError:
            raise self._no_bucket() from None
        except Exception as e:
            raise self._classify(e) from None
        self._bucket_ok = True

    def _no_bucket(self) -> PermanentError:
        what = "container" if self.protocol in AZURE else "bucket"
        return PermanentError(
            f"remote {self.url}: the {what} does not exist",
            "create it, or fix the remote's url (`mlv remote modify NAME url ...`)",
        )

    async def _head(self, path: str) -> None:
        if self.protocol in ("s3", "s3a"):
            # One HEAD; s3fs's own _info adds a LIST for every absent key (folder check).
            bucket, key, _ = self.fs.split_path(path)
            await self.fs._call_s3("head_object", self.fs.kwargs, Bucket=bucket, Key=key)
        else:
            await self.fs._info(path)

    def list_keys(self, prefix: str, limit: int | None = None) -> list[str]:
        if limit is not None and limit <= 0:
            return []
        return [key for key, _ in self._listing(prefix, limit)]

    def list_sizes(self, prefix: str) -> dict[str, int]:
        return {key: info.size for key, info in self._listing(prefix)}

    def list_info(self, prefix: str) -> dict[str, KeyInfo]:
        return dict(self._listing(prefix))

    def _listing(self, prefix: str, limit: int | None = None) -> list[tuple[str, KeyInfo]]:
        """(key, size and mtime) of every key below prefix, temporaries left out; at most
        limit of them. A prefix that does not end in "/" is a folder and the start of the
        names in it."""
        if prefix and not prefix.endswith("/") and self.protocol not in ("s3", "s3a"):
            folder = prefix.rpartition("/")[0] + "/"
            inside = [(k, i) for k, i in self._listing(folder) if k.startswith(prefix)]
            return inside[:limit] if limit is not None else inside
        base = self._path(prefix.rstrip("/"))
        start = "" if not prefix or prefix.endswith("/") else prefix.rpartition("/")[2]

        def find() -> list[tuple[str, KeyInfo]]:
            if self.protocol in ("s3", "s3a"):
                listed: list[tuple[str, KeyInfo]] = self._sync(
                    lambda: self._watched(lambda: self._s3_list(base, start, limit))
                )
                return listed
            try:
                if self.is_async:
                    found = self._sync(
                        lambda: self._watched(lambda: self.fs._find(base, detail=True))
                    )
                else:
                    found = self.fs.find(base, detail=True)
            except FileNotFoundError:
                return []
            return [(p, _info(info)) for p, info in found.items()]

        try:
            paths = retry.call(find, self.policy, what=f"listing {prefix}")
        except Exception as e:
            raise self._classify(e) from None
        if not paths and self.protocol not in ("s3", "s3a"):
            self._check_bucket()  # gcsfs and adlfs list a missing bucket as empty
        cut = len(self.root) + 1 if self.root else 0
        named = [(self.fs._strip_protocol(p)[cut:], info) for p, info in paths]
        kept = [(n, info) for n, info in named if ".mlvtmp-" not in n]
        return kept[:limit] if limit is not None else kept

    async def _s3_list(
        self, base: str, start: str = "", limit: int | None = None
    ) -> list[tuple[str, KeyInfo]]:
        """Keys below base (whose names begin with start) with their sizes and times:
        ListObjectsV2 pages and nothing else (s3fs's find adds a HEAD and a folder probe
        when a prefix is empty, as it is on a new remote). With a limit, no page after the
        one that reaches it (temporaries do not count towards it)."""
        bucket, key, _ = self.fs.split_path(base if not start else base.rpartition("/")[0])
        prefix = key.rstrip("/") + "/" + start if key else start
        found: list[tuple[str, KeyInfo]] = []
        kept = 0
        meter = _METER.get()  # a listing that keeps coming is progress
        pages = self.fs._iterdir(bucket, delimiter="", prefix=prefix)
        try:
            async for item in pages:
                found.append((item["name"], _info(item)))
                if ".mlvtmp-" not in item["name"]:
                    kept += 1
                if meter is not None:
                    meter.relative_update(LISTED_KEY_BYTES)
                if limit is not None and kept >= limit:
                    break
        finally:
            await pages.aclose()
        return found

    def upload(
        self,
        items: Sequence[tuple[str, str]],
        jobs: int,
        done: Done | None = None,
        move: bool = False,  # bytes cross the network anyway: nothing to save by moving
    ) -> list[ItemResult]:
        return self._batch(items, jobs, lambda p: p[1], self._aput, self._put, done, _local_size)

    async def _aput(self, local: str, key: str) -> int:
        await self._aplace(key, local=local)
        return os.path.getsize(local)

    async def _aplace(self, key: str, local: str | None = None, data: bytes | None = None) -> None:
        """Write key from a local file or from data, atomically: one PUT on a flat store,
        else a temporary in the final folder renamed into place."""
        path = self._path(key)
        if self.flat:
            try:
                if local is not None:
                    await self.fs._put_file(local, path, **_callback())
                else:
                    await self.fs._pipe_file(path, data)
            except FileNotFoundError:
                raise self._no_bucket() from None  # a PUT finds no key: only the bucket
            return
        parent = path.rpartition("/")[0]
        await self._afolder(parent)
        tmp = f"{parent}/.mlvtmp-{uuid.uuid4().hex}"
        try:
            await self._new_file(tmp, local=local, data=data)
            await self.fs._mv(tmp, path)
        except BaseException:
            try:
                await self.fs._rm_file(tmp)
            except Exception:
                pass
            raise

    def _place(self, key: str, local: str | None = None, data: bytes | None = None) -> None:
        """_aplace for filesystems without an async implementation."""
        path = self._path(key)

        def write(dst: str) -> None:
            if local is not None:
                self.fs.put_file(local, dst)
            else:
                self.fs.pipe_file(dst, data)

        if self.flat:
            write(path)
            return
        parent = path.rpartition("/")[0]
        if parent and parent not in self._made:
            self.fs.makedirs(parent, exist_ok=True)
            self._made.add(parent)
        tmp = f"{parent}/.mlvtmp-{uuid.uuid4().hex}"
        try:
            write(tmp)
            self.fs.mv(tmp, path)
        except BaseException:
            try:
                self.fs.rm_file(tmp)
            except Exception:
                pass
            raise

    async def _afolder(self, parent: str) -> None:
        """Make sure the folder exists, once per run and folder (concurrent writers into
        it wait for the first). On SFTP, folders from the remote's root down, each with
        one MKDIR, or a STAT where it was there already: sshfs's makedirs costs a MKDIR
        and a STAT per component of the whole path."""
        if not parent or parent in self._made:
            return
        up = parent.rpartition("/")[0]
        if self.protocol in SFTP and up and len(up) >= len(self.root):
            await self._afolder(up)
        async with self._making.setdefault(parent, asyncio.Lock()):
            if parent in self._made:
                return
            if self.protocol in SFTP and await self._sftp_mkdir(parent):
                self._made.add(parent)
                return
            await self.fs._makedirs(parent, exist_ok=True)
            self._made.add(parent)

    async def _sftp_mkdir(self, folder: str) -> bool:
        """True when folder is there after one MKDIR, or one STAT if the MKDIR failed."""
        try:
            await self.fs._mkdir(folder, create_parents=False)
            return True
        except Exception:
            pass
        try:
            return bool(await self.fs._isdir(folder))
        except Exception:
            return False

    async def _new_file(
        self, path: str, local: str | None = None, data: bytes | None = None
    ) -> None:
        """Write a file (from local, or data) in a folder that exists.

        sshfs's _put_file and _pipe_file first run makedirs on the folder: a MKDIR and a
        STAT for every component of its path before each object (2,000 small objects:
        30,688 MKDIR and as many STAT, 39 s; with this and _afolder: 296 of each, 8 s).
        An SFTP channel of sshfs's pool writes the file alone; on any failure, sshfs's own
        call (which recreates a folder removed meanwhile and maps SFTP errors to OSError)
        decides.
        """
        pool = getattr(self.fs, "_pool", None) if self.protocol in SFTP else None
        if pool is not None:
            try:
                async with pool.get() as channel:
                    if local is not None:
                        await channel.put(local, path)
                    else:
                        async with channel.open(path, "wb") as f:
                            await f.write(data)
                return
            except Exception:
                pass
        if local is not None:
            await self.fs._put_file(local, path)
        else:
            await self.fs._pipe_file(path, data)

    def write(
        self, items: Sequence[tuple[bytes, str]], jobs: int, done: Done | None = None
    ) -> list[ItemResult]:
        by_key = {key: data for data, key in items}

        async def pipe(key: str, _: str) -> int:
            await self._aplace(key, data=by_key[key])
            return len(by_key[key])

        def pipe_sync(key: str, _: str) -> int:
            self._place(key, data=by_key[key])
            return len(by_key[key])

        pairs = [(key, key) for _, key in items]
        return self._batch(
            pairs, jobs, lambda p: p[0], pipe, pipe_sync, done, lambda p: len(by_key[p[0]])
        )

    def _put(self, local: str, key: str) -> int:
        self._place(key, local=local)
        return os.path.getsize(local)

    def download(
        self, items: Sequence[tuple[str, str]], jobs: int, done: Done | None = None
    ) -> list[ItemResult]:
        return self._batch(items, jobs, lambda p: p[0], self._aget, self._get, done)

    async def _aget(self, key: str, local: str) -> int:
        _unlink_quiet(local)
        await self.fs._get_file(self._path(key), local, **_callback())
        return os.path.getsize(local)

    def _get(self, key: str, local: str) -> int:
        _unlink_quiet(local)
        self.fs.get_file(self._path(key), local)
        return os.path.getsize(local)

    def read(self, keys: Sequence[str], jobs: int, done: Done | None = None) -> list[ItemResult]:
        found: dict[str, bytes] = {}

        # s3fs asks for the size first (one HEAD per object) unless told not to split
        extra = {"max_concurrency": 1} if self.protocol in ("s3", "s3a") else {}

        async def cat(key: str, _: str) -> int:
            data = await self.fs._cat_file(self._path(key), **extra)
            found[key] = data
            return len(data)

        def cat_sync(key: str, _: str) -> int:
            data = self.fs.cat_file(self._path(key))
            found[key] = data
            return len(data)

        results = self._batch([(k, k) for k in keys], jobs, lambda p: p[0], cat, cat_sync, done)
        return [
            ItemResult(r.key, r.nbytes, r.error, found.get(r.key)) if r.ok else r for r in results
        ]

    def read_head(self, keys: Sequence[str], nbytes: int, jobs: int) -> list[ItemResult]:
        found: dict[str, bytes] = {}
        ranged = self.protocol in RANGED
        s3 = self.protocol in ("s3", "s3a")

        async def cat(key: str, _: str) -> int:
            # read_ranges' helpers: an empty object (416) gives b"", and no more than
            # nbytes are read from a server that ignores Range
            if nbytes <= 0:
                data = b""
            elif s3:
                data = await self._s3_range(key, 0, nbytes)
            else:
                data = await self._cat_range(key, 0, nbytes)
            found[key] = data
            return len(data)

        def head_sync(key: str, _: str) -> int:
            with self.fs.open(self._path(key), "rb") as fh:
                data = fh.read(nbytes)
            found[key] = data
            return len(data)

        results = self._batch(
            [(k, k) for k in keys], jobs, lambda p: p[0], cat if ranged else None, head_sync, None
        )
        return [
            ItemResult(r.key, r.nbytes, r.error, found.get(r.key)) if r.ok else r for r in results
        ]

    def read_ranges(
        self, items: Sequence[tuple[str, int, int]], jobs: int, done: Done | None = None
    ) -> list[ItemResult]:
        """S3: one ranged GetObject per range, its body read in pieces up to the asked
        length. GCS, Azure, HTTP: one ranged _cat_file per range. SFTP: each key opened
        once on a channel of sshfs's pool, each range one read at an offset. Others
        (memory): each key opened once, seek and read."""
        out, wanted = sort_ranges(items)
        got: dict[int, bytes] = {}
        s3 = self.protocol in ("s3", "s3a")
        per_range = self.is_async and (s3 or self.protocol in RANGED)

        if per_range:  # a batch item per range: pairs (key, position in items)
            pairs = [(k, str(i)) for k, where in wanted.items() for i in where]

            async def one_range(key: str, pos: str) -> int:
                _, start, length = items[int(pos)]
                if s3:
                    data = await self._s3_range(key, start, length)
                else:
                    data = await self._cat_range(key, start, length)
                got[int(pos)] = data
                return len(data)

            def unused(key: str, pos: str) -> int:
                raise AssertionError("async only")

            results = self._batch(
                pairs,
                jobs,
                lambda p: p[0],
                one_range,
                unused,
                done,
                # S3 meters the bytes it reads (each extends the deadline); the others
                # get the time the asked length needs
                lambda p: 0 if s3 else items[int(p[1])][2],
            )
            for (_, pos), r in zip(pairs, results, strict=True):
                i = int(pos)
                out[i] = ItemResult(r.key, len(got[i]), data=got[i]) if r.ok else r
            return [r for r in out if r is not None]

        # a batch item per key: pairs (key, key)
        def collect(key: str, datas: list[bytes]) -> int:
            for i, data in zip(wanted[key], datas, strict=True):
                got[i] = data
            return sum(len(d) for d in datas)

        def spans(key: str, size: int) -> list[tuple[int, int]]:
            """(offset, bytes to read) of each range of key: never past the end."""
            return [
                (items[i][1], min(items[i][2], max(0, size - items[i][1]))) for i in wanted[key]
            ]

        async def sftp_key(key: str, _: str) -> int:
            return collect(key, await self._sftp_ranges(key, spans))

        def sync_key(key: str, _: str) -> int:
            datas = []
            with self.fs.open(self._path(key), "rb") as fh:
                size = int(fh.size)
                for start, n in spans(key, size):
                    fh.seek(start)
                    data = fh.read(n) if n else b""
                    if len(data) > n:
                        raise too_long(key, n)
                    datas.append(data)
            return collect(key, datas)

        sftp = self.is_async and self.protocol in SFTP and getattr(self.fs, "_pool", None)
        pairs = [(k, k) for k in wanted]
        results = self._batch(
            pairs,
            jobs,
            lambda p: p[0],
            sftp_key if sftp else None,
            sync_key,
            done,
            lambda p: sum(items[i][2] for i in wanted[p[0]]),
        )
        for r in results:
            for i in wanted[r.key]:
                out[i] = ItemResult(r.key, len(got[i]), data=got[i]) if r.ok else r
        return [r for r in out if r is not None]

    async def _s3_range(self, key: str, start: int, length: int) -> bytes:
        """One GetObject with Range; at most length bytes are read from its body (a server
        that ignores Range and sends the whole object is an error after length + 1)."""
        bucket, name, version = self.fs.split_path(self._path(key))
        extra = {"VersionId": version} if version else {}
        try:
            resp = await self.fs._call_s3(
                "get_object",
                self.fs.kwargs,
                Bucket=bucket,
                Key=name,
                Range=f"bytes={start}-{start + length - 1}",
                **extra,
            )
        except Exception as e:
            if _unsatisfiable(e):
                return b""  # start at or past the end (416)
            raise
        body = resp["Body"]
        try:
            chunks: list[bytes] = []
            have = 0
            while have <= length:
                chunk = await body.read(min(1 << 20, length + 1 - have))
                if not chunk:
                    break
                chunks.append(chunk)
                have += len(chunk)
                meter = _METER.get()
                if meter is not None:
                    meter.relative_update(len(chunk))
            if have > length:
                raise too_long(key, length)
            return b"".join(chunks)
        finally:
            body.close()

    async def _cat_range(self, key: str, start: int, length: int) -> bytes:
        try:
            data: bytes = await self.fs._cat_file(self._path(key), start=start, end=start + length)
        except Exception as e:
            if _unsatisfiable(e):
                return b""
            raise
        if len(data) > length:
            raise too_long(key, length)
        return data

    async def _sftp_ranges(
        self, key: str, spans: Callable[[str, int], list[tuple[int, int]]]
    ) -> list[bytes]:
        """Open key once on a pooled SFTP channel; read each span at its offset."""
        path = self._path(key)
        try:
            async with self.fs._pool.get() as channel, channel.open(path, "rb") as f:
                size = int((await f.stat()).size or 0)
                datas = []
                for start, n in spans(key, size):
                    parts: list[bytes] = []
                    have = 0
                    while have < n:
                        part = await f.read(n - have, start + have)
                        if not part:
                            break  # shrunk meanwhile: short data
                        parts.append(part)
                        have += len(part)
                    if have > n:
                        raise too_long(key, n)
                    datas.append(b"".join(parts))
                return datas
        except Exception as e:
            if type(e).__name__ == "SFTPNoSuchFile":
                raise Missing(key) from None
            raise

    def delete(self, keys: Sequence[str], jobs: int) -> list[ItemResult]:
        async def rm(key: str, _: str) -> int:
            try:
                await self.fs._rm_file(self._path(key))
            except FileNotFoundError as e:
                if isinstance(self._classify(e), PermanentError):
                    raise  # no such bucket: not "already gone"
            return 0

        def rm_sync(key: str, _: str) -> int:
            try:
                self.fs.rm_file(self._path(key))
            except FileNotFoundError as e:
                if isinstance(self._classify(e), PermanentError):
                    raise
            return 0

        return self._batch([(k, k) for k in keys], jobs, lambda p: p[0], rm, rm_sync, None)

    def close(self) -> None:
        pass

    @staticmethod
    def _raise_first(results: list[ItemResult]) -> None:
        for r in results:
            if r.error is not None:
                raise r.error


def _info(info: dict[str, Any]) -> KeyInfo:
    """Size and modification time from a listing entry of any fsspec filesystem: s3fs
    (LastModified), sshfs (mtime), gcsfs (updated), adlfs (last_modified), memory
    (created); 0.0 where the store gives none."""
    when: Any = None
    for name in ("LastModified", "mtime", "last_modified", "updated", "modified", "created"):
        if info.get(name) is not None:
            when = info[name]
            break
    return KeyInfo(int(info.get("size") or 0), _seconds(when))


def _seconds(when: Any) -> float:
    from datetime import datetime, timezone

    if isinstance(when, datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return float(when.timestamp())
    if isinstance(when, (int, float)):
        return float(when)
    if isinstance(when, str):
        try:
            return _seconds(datetime.fromisoformat(when.replace("Z", "+00:00")))
        except ValueError:
            return 0.0
    return 0.0


def _denied(e: BaseException) -> bool:
    """Credentials refused, as azure-core (status_code 401/403, or Azure's error codes) and
    gcsfs (HttpError code 401/403) say it: every other request would fail the same way."""
    for attr in ("status_code", "code", "status"):
        if getattr(e, attr, None) in (401, 403):
            return True
    text = str(e).lower()
    return any(word in text for word in AZURE_DENIED)


def _unsatisfiable(e: BaseException) -> bool:
    """A ranged GET that starts at or past the end of the object (HTTP 416)."""
    if isinstance(e, FileNotFoundError):
        return False
    if getattr(e, "status", None) == 416 or getattr(e, "code", None) == 416:
        return True
    text = f" {e} {getattr(e, 'args', '')}".lower()
    return "invalidrange" in text or "not satisfiable" in text


def _local_size(pair: tuple[str, str]) -> int:
    try:
        return os.path.getsize(pair[0])
    except OSError:
        return 0


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Collect the outcome of a task given up on, so asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:160] or type(e).__name__


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
