"""The contract every remote backend keeps: bytes by key, nothing about hashes.

A key is a relative posix path below the remote's root ("xxh128/ab/cdef..."). Backends work
in batches because that is where remotes are fast: an object store answers hundreds of
requests at once, a folder copies in parallel threads. Each item of a batch succeeds or
fails on its own; transient failures are retried inside the backend (see retry.py), so what
comes back as an error is final for this run.

Errors, item by item:
- `Missing`: the key is not there (a download or a delete of an absent object).
- `PermanentError`: retrying cannot help (no such bucket, no permission, bad credentials);
  the caller stops the whole transfer with one line.
- anything else that survived the retries: a transient failure that did not go away; the
  caller reports the item as failed and goes on with the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

Done = Callable[[int], None]  # called with a finished item's bytes (progress); any thread


@dataclass(frozen=True)
class ItemResult:
    key: str
    nbytes: int = 0
    error: BaseException | None = None
    data: bytes | None = None  # read(): the object's bytes

    @property
    def ok(self) -> bool:
        return self.error is None


class KeyInfo(NamedTuple):
    """What a listing says of one key (list_info)."""

    size: int  # bytes
    mtime: float  # last modification, POSIX seconds (UTC), by the remote's clock


# The most bytes one range of read_ranges may ask for: a pack is at most 4 GiB (its offsets
# are u32), and nothing mlv reads by range is bigger. A longer range is refused, not read.
MAX_RANGE = 1 << 32


class Missing(FileNotFoundError):
    """The key is not on the remote."""


class PermanentError(Exception):
    """A failure that retrying cannot fix: the message says what and what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def check_range(start: int, length: int) -> None:
    """ValueError for a range no backend reads (read_ranges)."""
    if start < 0 or length < 0:
        raise ValueError(f"invalid byte range: start {start}, length {length}")
    if length > MAX_RANGE:
        raise ValueError(f"byte range of {length} bytes is longer than {MAX_RANGE} allowed")


def sort_ranges(
    items: Sequence[tuple[str, int, int]],
) -> tuple[list[ItemResult | None], dict[str, list[int]]]:
    """read_ranges' first step: the results already known (an invalid range's ValueError,
    empty data for length 0) by position in items, the rest None; and the positions left
    to read, grouped by key."""
    out: list[ItemResult | None] = [None] * len(items)
    wanted: dict[str, list[int]] = {}
    for i, (key, start, length) in enumerate(items):
        try:
            check_range(start, length)
        except ValueError as e:
            out[i] = ItemResult(key, 0, e)
            continue
        if length == 0:
            out[i] = ItemResult(key, 0, data=b"")
            continue
        wanted.setdefault(key, []).append(i)
    return out, wanted


class TooLong(OSError):
    """A ranged read got more bytes than it asked for: a server that ignores Range and
    answers with the whole object (the caller may ask for the whole object instead)."""


def too_long(key: str, length: int) -> OSError:
    """The error for a ranged read that got more bytes than it asked for."""
    return TooLong(f"{key}: the remote sent more than the {length} bytes asked for")


class Backend(Protocol):
    """One remote location. `url` is safe to print (credentials redacted)."""

    url: str
    default_jobs: int
    read_only: bool  # HTTP: objects can be fetched, never written
    # Keys returned by one listing request on a flat object store (S3: 1000); None where a
    # listing costs one request per folder whatever its size (a disk, SFTP).
    listing_page: int | None

    def exists(self, keys: Sequence[str], jobs: int) -> set[str]:
        """Those of keys that are on the remote (one existence check each)."""
        ...

    def list_keys(self, prefix: str, limit: int | None = None) -> list[str]:
        """Every key below prefix, recursively: a folder ("xxh128/ab/"), or a folder and
        the start of the names in it ("xxh128/a": the keys of shards a0 to af), which lets
        a caller split one long listing of a flat store into listings it runs at once.

        limit: stop after that many keys (at most limit come back; which ones is the
        listing's order, unspecified). On S3 a limit up to 1000 costs one request whatever
        the prefix holds; a folder stops walking; other stores may list whole and cut.
        `limit=1` answers "does anything live below prefix". 0 gives []."""
        ...

    def list_sizes(self, prefix: str) -> dict[str, int]:
        """Like list_keys, with each key's size in bytes (from the same listing requests:
        `mlv gc --remote` reports what it deletes). A view of list_info."""
        ...

    def list_info(self, prefix: str) -> dict[str, KeyInfo]:
        """Like list_sizes, with each key's modification time as well, from the same
        listing requests (no request per key): the server's clock, so that ages compared
        between keys or against a listing's newest key do not depend on the writers'
        clocks. Temporaries are left out, as in list_keys; an absent prefix gives {}."""
        ...

    def upload(
        self,
        items: Sequence[tuple[str, str]],
        jobs: int,
        done: Done | None = None,
        move: bool = False,
    ) -> list[ItemResult]:
        """Write local files to keys, (local path, key) pairs. move: the local files are
        temporaries the caller gives away (a pack built for this upload): a backend may
        move them into place (a folder: a hard link on the same filesystem) instead of
        copying their bytes; the caller deletes its name afterwards. A key appears complete or
        not at all (a single PUT, or a temporary name renamed into place)."""
        ...

    def write(
        self, items: Sequence[tuple[bytes, str]], jobs: int, done: Done | None = None
    ) -> list[ItemResult]:
        """Like upload, from bytes in memory, (data, key) pairs: small objects that the
        caller has just read and checked go out without being read again."""
        ...

    def download(
        self, items: Sequence[tuple[str, str]], jobs: int, done: Done | None = None
    ) -> list[ItemResult]:
        """Fetch keys into local files, (key, local path) pairs. The local path is a
        temporary of the caller's; a failed item may leave it partly written."""
        ...

    def read(self, keys: Sequence[str], jobs: int, done: Done | None = None) -> list[ItemResult]:
        """Fetch small objects into memory (ItemResult.data): one request each and no
        temporary file, which is what makes pulling many small files fast."""
        ...

    def read_head(self, keys: Sequence[str], nbytes: int, jobs: int) -> list[ItemResult]:
        """The first nbytes of each key (fewer if it is shorter) in ItemResult.data: a
        ranged read where the store has one, never the whole of a large object. `mlv gc
        --remote` tells trees from files this way before it deletes."""
        ...

    def read_ranges(
        self, items: Sequence[tuple[str, int, int]], jobs: int, done: Done | None = None
    ) -> list[ItemResult]:
        """Byte ranges of keys, (key, start, length) triples: one ItemResult per item, in
        the items' order (a key may appear many times), with the bytes in data and their
        count in nbytes. done: called as they arrive, with the bytes of a key's ranges
        (a progress bar's bytes move while a large batch is in flight).

        Requests: S3, GCS, Azure and HTTP one ranged GET per range (none of them answers
        several ranges in one request); a folder opens each key once and preads its ranges;
        SFTP opens each key once and reads its ranges on that handle (a round trip each).
        Merging neighbouring ranges is the caller's choice (the gap bytes are its to
        spend), never the backend's.

        Per item:
        - `Missing`: the key is not there (every range of it fails so).
        - A range that runs past the end of the object gives the bytes up to the end (short
          data, possibly b""); a range that starts at or past the end gives b"". The
          caller, which knows the length it expects, decides whether short is an error.
        - length 0 gives b"" without a request, whether the key exists or not.
        - start or length negative, or length above MAX_RANGE: ValueError, without a
          request.
        - A server that sends more bytes than asked (one that ignores Range and answers
          with the whole object) is an error, not a bigger buffer: no item ever holds more
          than min(length, the object's size - start) bytes, and on a folder, SFTP and S3
          no more than that is ever read into memory.
        """
        ...

    def delete(self, keys: Sequence[str], jobs: int) -> list[ItemResult]:
        """Remove keys; an absent key is not an error."""
        ...

    def close(self) -> None: ...
