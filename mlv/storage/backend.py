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
from typing import Protocol

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


class Missing(FileNotFoundError):
    """The key is not on the remote."""


class PermanentError(Exception):
    """A failure that retrying cannot fix: the message says what and what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


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

    def list_keys(self, prefix: str) -> list[str]:
        """Every key below prefix, recursively: a folder ("xxh128/ab/"), or a folder and
        the start of the names in it ("xxh128/a": the keys of shards a0 to af), which lets
        a caller split one long listing of a flat store into listings it runs at once."""
        ...

    def list_sizes(self, prefix: str) -> dict[str, int]:
        """Like list_keys, with each key's size in bytes (from the same listing requests:
        `mlv gc --remote` reports what it deletes)."""
        ...

    def upload(
        self, items: Sequence[tuple[str, str]], jobs: int, done: Done | None = None
    ) -> list[ItemResult]:
        """Write local files to keys, (local path, key) pairs. A key appears complete or
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

    def delete(self, keys: Sequence[str], jobs: int) -> list[ItemResult]:
        """Remove keys; an absent key is not an error."""
        ...

    def close(self) -> None: ...
