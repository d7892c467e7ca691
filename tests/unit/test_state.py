"""mlv.objects.state: the (path, inode, mtime, size) -> hash cache and the object trust memo."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlv.objects import state as state_mod
from mlv.objects.state import RACY_NS, StateDB

H1 = "xxh128:" + "1" * 32
H2 = "xxh128:" + "2" * 32
OLD_NS = time.time_ns() - 3600 * 10**9  # an hour ago: well outside the racy window


def _stat(ino: int = 1, mtime_ns: int = OLD_NS, size: int = 3, ctime_ns: int | None = None) -> Any:
    """A stand-in for os.stat_result with the fields the state db reads."""
    return SimpleNamespace(
        st_ino=ino,
        st_mtime_ns=mtime_ns,
        st_ctime_ns=mtime_ns if ctime_ns is None else ctime_ns,
        st_size=size,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "mlv-tmp" / "state.db")


@pytest.fixture
def db(db_path: str):
    sdb = StateDB(db_path)
    yield sdb
    sdb.close()


def _rows_in_file(path: str, table: str = "files") -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        con.close()


# ---- file rows ------------------------------------------------------------------------


def test_rows_round_trip_and_persist(db_path: str) -> None:
    sdb = StateDB(db_path)
    sdb.record("data/imgs", "a.png", _stat(11, OLD_NS, 100), H1)
    sdb.record("data/imgs", "b c.png", _stat(12, OLD_NS + 5, 0), H2)
    sdb.record("data", "ü.txt", _stat(13, OLD_NS, 7), H1)
    sdb.record("", "top", _stat(14, OLD_NS, 1), H2)
    sdb.close()
    again = StateDB(db_path)
    try:
        assert again.folder("data/imgs") == {
            "a.png": (11, OLD_NS, 100, H1),
            "b c.png": (12, OLD_NS + 5, 0, H2),
        }
        assert again.folder("data") == {"ü.txt": (13, OLD_NS, 7, H1)}
        assert again.folder("") == {"top": (14, OLD_NS, 1, H2)}
        assert again.folder("nothing") == {}
    finally:
        again.close()


def test_record_replaces_previous_row(db: StateDB) -> None:
    db.record("d", "f", _stat(1, OLD_NS, 3), H1)
    db.flush()
    db.record("d", "f", _stat(2, OLD_NS + 1, 4), H2)
    db.flush()
    assert db.folder("d") == {"f": (2, OLD_NS + 1, 4, H2)}


def test_real_stat_of_an_old_file(db: StateDB, tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    os.utime(f, ns=(OLD_NS, OLD_NS))
    st = os.stat(f)
    db.record("", "x.bin", st, H1)
    db.flush()
    assert db.folder("") == {"x.bin": (st.st_ino, st.st_mtime_ns, 3, H1)}


def test_racy_rows_are_not_trusted(db: StateDB, tmp_path: Path) -> None:
    """A file modified in the same clock tick as it was hashed may change again unnoticed."""
    now = time.time_ns()
    whole_second = now - now % 1_000_000_000
    db.record("d", "fresh", _stat(1, now, 3), H1)
    db.record("d", "future", _stat(2, now + 10 * RACY_NS, 3), H1)  # clock skew
    db.record("d", "coarse-clock", _stat(3, whole_second, 3), H1)  # whole-second mtimes
    db.record("d", "old", _stat(4, now - 3 * RACY_NS, 3), H1)
    f = tmp_path / "just-written"
    f.write_bytes(b"x")
    db.record("d", "real", os.stat(f), H2)
    db.flush()
    assert set(db.folder("d")) == {"old"}


def test_racy_row_trusted_once_re_recorded_later(
    db: StateDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    mtime = time.time_ns()
    db.record("d", "f", _stat(1, mtime, 3), H1)
    db.flush()
    assert db.folder("d") == {}
    later = mtime + 2 * RACY_NS
    monkeypatch.setattr(state_mod.time, "time_ns", lambda: later)
    db.record("d", "f", _stat(1, mtime, 3), H1)
    db.flush()
    assert db.folder("d") == {"f": (1, mtime, 3, H1)}


def test_written_rows_are_judged_against_the_flush(
    db: StateDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows of files mlv wrote itself (a checkout) take the flush's time, as git judges its
    entries against the index file's mtime: a long checkout's files are trusted at once,
    except those written in the last window before the flush; a file hashed by a scan at
    the same moment keeps its own, racy, time."""
    clock = [time.time_ns()]
    monkeypatch.setattr(state_mod.time, "time_ns", lambda: clock[0])
    start = clock[0] + 1  # not a whole second: the fine window applies
    for i in range(100):  # a checkout writing one file every 10 ms
        mtime = start + i * 10_000_000
        clock[0] = mtime + 100_000  # recorded just after the write
        db.record("d", f"w{i}", _stat(i, mtime, 3), H1, written=True)
    db.record("d", "hashed", _stat(200, clock[0], 3), H2)  # a scan's row, same moment
    clock[0] += 1_000_000  # the flush, 1 ms after the last write
    db.flush()
    rows = db.folder("d")
    assert "hashed" not in rows
    assert set(rows) == {f"w{i}" for i in range(98)}  # the last two are within 20 ms
    assert rows["w0"] == (0, start, 3, H1)
    assert db.file("d", "w99") is None and db.file("d", "w0") == (0, start, 3, H1)


def test_written_row_rewritten_after_the_flush_is_not_trusted(
    db: StateDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file rewritten after the flush in the same tick as mlv's own write keeps its stat:
    its row must not be trusted, so it is re-read."""
    clock = [time.time_ns() // 10**9 * 10**9 + 500_000_000]
    monkeypatch.setattr(state_mod.time, "time_ns", lambda: clock[0])
    db.record("d", "f", _stat(1, clock[0], 3), H1, written=True)
    clock[0] += 5_000_000
    db.flush()
    assert db.folder("d") == {} and db.file("d", "f") is None
    # whole-second timestamps: the 2 s window, judged against the flush too
    second = clock[0] // 10**9 * 10**9
    db.record("d", "g", _stat(2, second, 3), H1, written=True)
    clock[0] = second + RACY_NS  # not more than the window
    db.flush()
    assert "g" not in db.folder("d")
    db.record("d", "g", _stat(2, second, 3), H1, written=True)
    clock[0] = second + RACY_NS + 1
    db.flush()
    assert set(db.folder("d")) == {"g"}


# ---- batching -------------------------------------------------------------------------


def test_rows_are_written_by_flush_in_one_batch(db: StateDB, db_path: str) -> None:
    db.folder("")  # open (creates the file)
    for i in range(100):
        db.record("d", f"f{i}", _stat(i), H1)
    assert _rows_in_file(db_path) == 0  # queued, not written
    db.flush()
    assert _rows_in_file(db_path) == 100
    db.flush()  # nothing pending: a no-op
    assert _rows_in_file(db_path) == 100


def test_close_flushes(db_path: str) -> None:
    sdb = StateDB(db_path)
    sdb.record("d", "f", _stat(), H1)
    sdb.close()
    assert _rows_in_file(db_path) == 1


def test_large_batches_flush_on_their_own(db: StateDB, db_path: str) -> None:
    """Pending rows do not grow without bound (memory of a 1,000,000-file add)."""
    st = _stat()
    for i in range(50_000):
        db.record("big", f"f{i}", st, H1)
    assert _rows_in_file(db_path) == 50_000
    db.record("big", "one-more", st, H1)
    assert _rows_in_file(db_path) == 50_000
    db.flush()
    assert _rows_in_file(db_path) == 50_001


# ---- forgetting -----------------------------------------------------------------------


def test_forget_folder_tree_is_prefix_exact(db: StateDB) -> None:
    for folder in ("a_b", "a_b/sub", "a_b/sub/deeper", "axb", "axb/sub", "a_bc", "a%b", "a", ""):
        db.record(folder, "f", _stat(), H1)
    db.flush()
    db.forget_folder_tree("a_b")
    assert db.folder("a_b") == {}
    assert db.folder("a_b/sub") == {}
    assert db.folder("a_b/sub/deeper") == {}
    for kept in ("axb", "axb/sub", "a_bc", "a%b", "a", ""):
        assert db.folder(kept) == {"f": (1, OLD_NS, 3, H1)}, kept
    db.forget_folder_tree("a%b")
    assert db.folder("a%b") == {}
    assert db.folder("axb") != {}


# ---- corruption -----------------------------------------------------------------------


def test_garbage_state_file_is_replaced(db_path: str) -> None:
    os.makedirs(os.path.dirname(db_path))
    with open(db_path, "wb") as fh:
        fh.write(b"this is not a database" * 500)
    sdb = StateDB(db_path)
    try:
        assert sdb.folder("d") == {}
        sdb.record("d", "f", _stat(), H1)
        sdb.flush()
        assert sdb.folder("d") == {"f": (1, OLD_NS, 3, H1)}
    finally:
        sdb.close()
    with open(db_path, "rb") as fh:
        assert fh.read(16) == b"SQLite format 3\x00"


def test_empty_state_file_is_fine(db_path: str) -> None:
    os.makedirs(os.path.dirname(db_path))
    open(db_path, "wb").close()
    sdb = StateDB(db_path)
    try:
        sdb.record("d", "f", _stat(), H1)
        sdb.flush()
        assert sdb.folder("d") == {"f": (1, OLD_NS, 3, H1)}
    finally:
        sdb.close()


def test_state_file_with_damaged_pages_is_replaced(db_path: str) -> None:
    """A valid header over corrupted pages (a disk error, a half-copied file): the damage
    shows only when a table is read. It still must cost re-hashing, not the command."""
    sdb = StateDB(db_path)
    st = _stat()
    for i in range(3000):
        sdb.record(f"d{i % 50}", f"name-{i}-" + "x" * 40, st, H1)
    sdb.close()
    for suffix in ("-wal", "-shm"):
        assert not os.path.exists(db_path + suffix)
    with open(db_path, "r+b") as fh:
        fh.seek(4096)  # keep page 1 (header and schema), smash the rest
        size = os.path.getsize(db_path)
        fh.write(b"\xab" * (size - 4096))
    damaged = StateDB(db_path)
    try:
        assert isinstance(damaged.folder("d1"), dict)  # must not raise
        damaged.record("d1", "new", st, H2)
        damaged.flush()
        assert damaged.folder("d1").get("new") == (1, OLD_NS, 3, H2)
    finally:
        damaged.close()


# ---- cache object trust and tree completeness -----------------------------------------


def test_object_trust_matches_only_the_same_file(db: StateDB, tmp_path: Path) -> None:
    obj = tmp_path / "obj"
    obj.write_bytes(b"content")
    os.utime(obj, ns=(OLD_NS, OLD_NS))
    st = os.stat(obj)
    assert not db.object_trusted(H1, st)
    db.trust_objects([(H1, st)])
    db.flush()
    assert db.object_trusted(H1, st)
    assert db.object_trusted(H1, os.stat(obj))
    assert not db.object_trusted(H2, st)
    # any change of inode, size or mtime withdraws the trust
    assert not db.object_trusted(H1, _stat(st.st_ino + 1, st.st_mtime_ns, st.st_size))
    assert not db.object_trusted(H1, _stat(st.st_ino, st.st_mtime_ns, st.st_size + 1))
    assert not db.object_trusted(H1, _stat(st.st_ino, st.st_mtime_ns + 1, st.st_size))
    obj.write_bytes(b"CONTENT")  # same inode and size, new mtime
    assert not db.object_trusted(H1, os.stat(obj))


def test_of_two_queued_trust_records_of_one_object_the_later_wins(db: StateDB) -> None:
    """flush() writes the queued records in hash order; the object written again (a
    repaired copy: another inode) keeps its latest record, whatever the inodes' order."""
    first, second = _stat(ino=9), _stat(ino=2)
    db.trust_objects([(H2, first), (H1, _stat(ino=5))])
    db.trust_objects([(H2, second)])
    db.flush()
    assert db.object_trusted(H2, second)
    assert not db.object_trusted(H2, first)
    assert db.object_trusted(H1, _stat(ino=5))


def test_object_trust_persists(db_path: str, tmp_path: Path) -> None:
    obj = tmp_path / "obj"
    obj.write_bytes(b"x")
    st = os.stat(obj)
    sdb = StateDB(db_path)
    sdb.trust_objects([(H1, st)])
    sdb.trust_objects([])
    sdb.close()  # flushes the queued trust records
    again = StateDB(db_path)
    try:
        assert again.object_trusted(H1, os.stat(obj))
    finally:
        again.close()


def test_completeness_memo(db_path: str) -> None:
    g1, g2 = b"gen-1", b"gen-2"
    sdb = StateDB(db_path)
    assert not sdb.is_complete(H1, g1)
    sdb.mark_complete(H1, g1)
    sdb.mark_complete(H1, g1)  # idempotent
    assert sdb.is_complete(H1, g1)
    assert not sdb.is_complete(H1, g2)  # the cache changed since: not vouched for
    assert not sdb.is_complete(H2, g1)
    sdb.close()
    again = StateDB(db_path)
    try:
        assert again.is_complete(H1, g1)
        again.forget_completeness()
        assert not again.is_complete(H1, g1)
    finally:
        again.close()


# ---- folder snapshots -----------------------------------------------------------------


def test_snapshot_round_trip_and_racy(db: StateDB) -> None:
    now = time.time_ns()
    db.record_snapshot("d", b"sig-1", OLD_NS, b"rows-1")
    db.record_snapshot("racy", b"sig-2", now, b"rows-2")
    db.flush()
    assert db.snapshot("d") == (b"sig-1", b"rows-1")
    assert db.snapshot("racy") is None
    assert db.snapshot("missing") is None
    db.forget_folder_tree("d")
    assert db.snapshot("d") is None
