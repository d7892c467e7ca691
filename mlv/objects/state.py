"""The state database: (path, inode, mtime_ns, size) -> hash, so unchanged files are never
hashed twice.

Rows are grouped by folder (relative to the repository root) so that a scan loads one
folder's rows with one query. A row is trusted only when the file's mtime is older than the
moment the row was recorded by more than the filesystem's timestamp granularity: a file
rewritten within the same clock tick after it was hashed would otherwise look unchanged
(git's "racy" case). Such rows are re-hashed once and then recorded again. The window is
RACY_NS (2 s) for whole-second timestamps (ext3, HFS+, FAT, some network filesystems) and
FINE_RACY_NS (20 ms, twice the coarsest kernel tick) for filesystems with sub-second ones.

Files mlv writes itself (checkout) are recorded the moment they are written, so by that rule
every one of them would look racy and the next `status` would re-read them all. Their rows
are instead stamped with the time flush() commits them, as git judges entries against the
index file's own mtime: only files written in the last window before the flush get another
look. Like git, this trusts a file that someone else rewrote, keeping its size, within the
same timestamp tick as mlv's own write and before the flush; rows of files mlv hashed (a
scan) keep the stricter per-row stamp.

Each folder also gets one snapshot row: a digest of its files' (name, inode, mtime, size)
and their tree rows. When a folder's listing digests the same, its files' hashes come from
that one row without a per-file look-up; that is what makes `status` of an unchanged
dataset cost little more than the stat calls.

It also remembers cache objects whose content was checked (by inode, size and mtime), so
that linking or copying them out does not re-read them, and trees whose every object is
known to be in the cache. It is only a cache: deleting .mlv/tmp/state.db loses speed, not
data; `mlv verify` re-reads everything regardless.
"""

from __future__ import annotations

import marshal
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from mlv import log

T = TypeVar("T")
RACY_NS = 2_000_000_000
FINE_RACY_NS = 20_000_000
_NOT_AHEAD = (-1, -1, -1)  # object_trusted: no record read ahead for this object


def trusted_after(mtime_ns: int, recorded_ns: int) -> bool:
    """May a hash recorded at recorded_ns be trusted for a file last written at mtime_ns?"""
    window = RACY_NS if mtime_ns % 1_000_000_000 == 0 else FINE_RACY_NS
    return recorded_ns - mtime_ns > window


SCHEMA_VERSION = 4  # bump on any change below: an older db is dropped (it is only a cache)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    dir TEXT NOT NULL, name TEXT NOT NULL, ino INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL, hash TEXT NOT NULL, recorded_ns INTEGER NOT NULL,
    PRIMARY KEY (dir, name)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS objects (
    hash TEXT PRIMARY KEY, ino INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS complete (hash TEXT PRIMARY KEY, gen BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tree_trust (hash TEXT PRIMARY KEY, stats BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS folders (
    dir TEXT PRIMARY KEY, sig BLOB NOT NULL, max_mtime_ns INTEGER NOT NULL,
    recorded_ns INTEGER NOT NULL, rows BLOB NOT NULL) WITHOUT ROWID;
"""

FileRow = tuple[str, int, int, int, str]  # name, ino, mtime_ns, size, hash


class StateDB:
    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._pending: list[tuple[str, str, int, int, int, str, int]] = []
        # rows of files mlv wrote (checkout), without recorded_ns: flush() gives its own
        self._pending_written: list[tuple[str, str, int, int, int, str]] = []
        self._pending_folders: list[tuple[str, bytes, int, int, bytes]] = []
        self._pending_objects: list[tuple[str, int, int, int]] = []
        self._pending_trees: list[tuple[str, bytes]] = []
        # trust records read ahead for a batch of objects (prefetch_objects): hash ->
        # (ino, mtime_ns, size), or None for an object with no record
        self._objects_ahead: dict[str, tuple[int, int, int] | None] = {}
        self._lock = threading.RLock()

    def _open(self) -> sqlite3.Connection:
        # One connection, used under self._lock from any thread (large checkouts copy in two).
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] not in (0, SCHEMA_VERSION):
                raise sqlite3.DatabaseError("state db from another mlv version")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=OFF")
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _discard(self, why: object) -> None:
        """A damaged or outdated state db only costs re-hashing: start a new one."""
        log.debug(__name__, f"starting a new state db ({why})")
        if self._db is not None:
            try:
                self._db.close()
            except sqlite3.Error:
                pass
            self._db = None
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(self.path + suffix)
            except FileNotFoundError:
                pass

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as e:
                self._discard(e)
                self._db = self._open()
        return self._db

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run work on the connection; damage found in any page (not only at open) drops
        the db and runs work again on a fresh one. A busy db is not damage."""
        with self._lock:
            try:
                return work(self._conn())
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError as e:
                self._discard(e)
                return work(self._conn())

    def folder(self, rel_dir: str) -> dict[str, tuple[int, int, int, str]]:
        """Trusted rows of one folder: name -> (ino, mtime_ns, size, hash)."""

        def work(db: sqlite3.Connection) -> dict[str, tuple[int, int, int, str]]:
            rows = db.execute(
                "SELECT name, ino, mtime_ns, size, hash, recorded_ns FROM files WHERE dir = ?",
                (rel_dir,),
            )
            return {
                name: (ino, mtime, size, hash_id)
                for name, ino, mtime, size, hash_id, recorded in rows
                if trusted_after(mtime, recorded)
            }

        return self._run(work)

    def file(
        self, rel_dir: str, name: str, trusted: bool = True
    ) -> tuple[int, int, int, str] | None:
        """The row of one file, (ino, mtime_ns, size, hash): a single look-up, for callers
        that hash one file of a large folder (a pipeline's deps and outs). trusted=False
        also returns a row too recent to vouch for its content (it still says which hash
        mlv last saw at that inode)."""
        row = self._one(
            "SELECT ino, mtime_ns, size, hash, recorded_ns FROM files WHERE dir = ? AND name = ?",
            (rel_dir, name),
        )
        if row is None or (trusted and not trusted_after(row[1], row[4])):
            return None
        return row[0], row[1], row[2], row[3]

    def record(
        self, rel_dir: str, name: str, st: os.stat_result, hash_id: str, written: bool = False
    ) -> None:
        """Queue a row; written by flush() in one transaction. written: mlv wrote this
        content itself (a checkout): the row's time is the flush's, not this moment's."""
        self.record_many([(rel_dir, name, st.st_ino, st.st_mtime_ns, st.st_size, hash_id)], written)

    def record_many(
        self, rows: Iterable[tuple[str, str, int, int, int, str]], written: bool = False
    ) -> None:
        """record() of many (rel_dir, name, ino, mtime_ns, size, hash id) at once."""
        if written:
            self._pending_written.extend(rows)
        else:
            recorded = time.time_ns()
            self._pending.extend([(*row, recorded) for row in rows])
        if len(self._pending) + len(self._pending_written) >= 50_000:
            self.flush()

    def unrecord(self, rel_dir: str, name: str) -> None:
        """Drop the rows queued for one file (rare: a scan that must not vouch for it)."""
        self._pending = [r for r in self._pending if (r[0], r[1]) != (rel_dir, name)]
        self._pending_written = [
            r for r in self._pending_written if (r[0], r[1]) != (rel_dir, name)
        ]

    def snapshot(self, rel_dir: str) -> tuple[bytes, bytes] | None:
        """(digest, rows blob) of a folder's last scan, if trustworthy (not racy)."""
        row = self._one(
            "SELECT sig, max_mtime_ns, recorded_ns, rows FROM folders WHERE dir = ?", (rel_dir,)
        )
        if row is None or not trusted_after(row[1], row[2]):
            return None
        return row[0], row[3]

    def record_snapshot(self, rel_dir: str, sig: bytes, max_mtime_ns: int, rows: bytes) -> None:
        self._pending_folders.append((rel_dir, sig, max_mtime_ns, time.time_ns(), rows))

    def forget_folder_tree(self, rel_dir: str) -> None:
        """Drop rows of rel_dir and everything below it (after rm or mv)."""

        def work(db: sqlite3.Connection) -> None:
            for table in ("files", "folders"):
                db.execute(
                    f"DELETE FROM {table} WHERE dir = ? OR dir LIKE ? ESCAPE '\\'",
                    (rel_dir, _like_prefix(rel_dir)),
                )

        self._run(work)

    def flush(self) -> None:
        if not (
            self._pending
            or self._pending_written
            or self._pending_folders
            or self._pending_objects
            or self._pending_trees
        ):
            return

        now = time.time_ns()  # every file of a written row was written before this
        # Trust records come in the order objects were written: random keys. In key order
        # each page of the objects table is read and dirtied once a flush, not once per
        # record while SQLite's page cache keeps spilling: the state rows and trust
        # records of a 1,000,000-file add cost 8.7-9.0 us of CPU a file, 6.1-6.5 sorted
        # (20,000 files: 5.1-5.5 either way; docs/performance.md, issue 17).
        # Sorted by hash alone and stably: of two records of one object the later wins.
        self._pending_objects.sort(key=_hash_of)

        def work(db: sqlite3.Connection) -> None:
            if db.in_transaction:
                db.execute("ROLLBACK")
            db.execute("BEGIN")
            # written rows first: a row from a scan of the same file later on is newer
            db.executemany(
                f"INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,{int(now)})",
                self._pending_written,
            )
            db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", self._pending)
            db.executemany(
                "INSERT OR REPLACE INTO folders VALUES (?,?,?,?,?)", self._pending_folders
            )
            db.executemany("INSERT OR REPLACE INTO objects VALUES (?,?,?,?)", self._pending_objects)
            db.executemany("INSERT OR REPLACE INTO tree_trust VALUES (?,?)", self._pending_trees)
            db.execute("COMMIT")

        self._run(work)
        self._pending_objects.clear()
        self._pending_trees.clear()
        self._pending.clear()
        self._pending_written.clear()
        self._pending_folders.clear()

    # ---- cache objects ---------------------------------------------------------------

    def object_trusted(self, hash_id: str, st: os.stat_result) -> bool:
        """Was this cache object checked, and has its file not changed since? Inode, size
        and mtime must match (not ctime: every hardlink made in a checkout changes it).
        Damage that leaves all three alone (bit rot) is found where the bytes are read
        anyway (a copy checkout, a push) and by `mlv verify`."""
        return self.object_record(hash_id) == (st.st_ino, st.st_mtime_ns, st.st_size)

    def object_record(self, hash_id: str) -> tuple[int, int, int] | None:
        """The trust record of an object, (ino, mtime_ns, size), None if it has none: read
        ahead by prefetch_objects, else one query."""
        known = self._objects_ahead.get(hash_id, _NOT_AHEAD)  # one read: another thread
        if known is _NOT_AHEAD:  # may replace the dict meanwhile
            row = self._one("SELECT ino, mtime_ns, size FROM objects WHERE hash = ?", (hash_id,))
            known = None if row is None else (row[0], row[1], row[2])
        return known

    def prefetch_objects(self, hashes: Iterable[str]) -> None:
        """Read the trust records of a batch of objects in a few queries, for the
        object_trusted calls that follow (a checkout asks for every file's object: one
        query each cost more than the link). Replaces the previous batch: memory stays
        that of one batch."""
        wanted = list(dict.fromkeys(hashes))
        ahead: dict[str, tuple[int, int, int] | None] = dict.fromkeys(wanted)

        def rows(part: list[str]) -> list[Any]:
            query = "SELECT hash, ino, mtime_ns, size FROM objects WHERE hash IN (%s)"
            return self._run(
                lambda db: db.execute(query % ",".join("?" * len(part)), part).fetchall()
            )

        for start in range(0, len(wanted), 500):
            for h, ino, mtime, size in rows(wanted[start : start + 500]):
                ahead[h] = (ino, mtime, size)
        self._objects_ahead = ahead

    def trust_objects(self, rows: Iterable[tuple[str, os.stat_result]]) -> None:
        """Queue trust records; written by flush() with the other rows."""
        for h, st in rows:
            self._pending_objects.append((h, st.st_ino, st.st_mtime_ns, st.st_size))
            if h in self._objects_ahead:
                self._objects_ahead[h] = (st.st_ino, st.st_mtime_ns, st.st_size)

    def distrust_object(self, hash_id: str) -> None:
        """Drop the trust record of an object found damaged (queued ones too), at once."""
        with self._lock:
            if hash_id in self._objects_ahead:
                self._objects_ahead[hash_id] = None
            self._pending_objects[:] = [r for r in self._pending_objects if r[0] != hash_id]
            self._run(lambda db: db.execute("DELETE FROM objects WHERE hash = ?", (hash_id,)))
            self.forget_tree_trust()  # which trees name it is not known: none vouches now

    def tree_trust(self, tree_hash: str) -> list[tuple[int, int, int] | None] | None:
        """The trust records of a tree's files, in the tree's order (None for a folder
        entry or an object with no record), as they were when a checkout last read them
        one by one: one query for a folder's objects instead of one look-up each. A record
        here vouches exactly as one in the objects table: only for an object file whose
        (ino, mtime_ns, size) still equal it."""
        row = self._one("SELECT stats FROM tree_trust WHERE hash = ?", (tree_hash,))
        if row is None:
            return None
        try:
            stats = marshal.loads(row[0])
        except (EOFError, ValueError, TypeError):
            return None
        if not isinstance(stats, list) or not all(
            t is None or (type(t) is tuple and len(t) == 3) for t in stats
        ):
            return None
        return stats

    def record_tree_trust(self, tree_hash: str, stats: list[tuple[int, int, int] | None]) -> None:
        """Queue tree_trust() of a tree (written by flush())."""
        self._pending_trees.append((tree_hash, marshal.dumps(stats)))

    def forget_tree_trust(self) -> None:
        """Drop every tree's trust records (an object was found damaged, or a record no
        longer matched its object): checkouts read the objects' own records again."""
        with self._lock:
            self._pending_trees.clear()
            self._run(lambda db: db.execute("DELETE FROM tree_trust"))

    def is_complete(self, tree_hash: str, generation: bytes) -> bool:
        """Was every object below tree_hash in the cache when the cache's folders were last
        in this state (`generation`)? Deleting any object changes its folder's mtime, and
        with it the generation, so a hand-deleted object is never vouched for."""
        row = self._one("SELECT gen FROM complete WHERE hash = ?", (tree_hash,))
        return row is not None and row[0] == generation

    def mark_complete(self, tree_hash: str, generation: bytes) -> None:
        self._run(
            lambda db: db.execute(
                "INSERT OR REPLACE INTO complete VALUES (?, ?)", (tree_hash, generation)
            )
        )

    def forget_completeness(self) -> None:
        """Called when objects are deleted from the cache (gc)."""
        self._run(lambda db: db.execute("DELETE FROM complete"))

    def _one(self, sql: str, args: tuple[object, ...]) -> Any:
        return self._run(lambda db: db.execute(sql, args).fetchone())

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None


def _hash_of(row: tuple[str, int, int, int]) -> str:
    return row[0]


def _like_prefix(rel_dir: str) -> str:
    escaped = rel_dir.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}/%" if rel_dir else "%"
