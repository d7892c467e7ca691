"""Remote locks (mlv/objects/packs/locks.py) on a real folder backend: who conflicts with
whom, staleness by the listing's times, refreshing while held, release."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mlv.errors import RemoteError
from mlv.objects.packs import locks
from mlv.storage.backend import PermanentError
from mlv.storage.folder import FolderBackend


def failure(e: BaseException) -> RemoteError:
    if isinstance(e, PermanentError):
        return RemoteError(f"remote 'store': {e.message}", e.hint)
    return RemoteError(f"remote 'store': {e}", "run again")


def lock_files(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "locks").glob("*.json"))


def test_gc_is_exclusive_and_pushes_share(tmp_path: Path) -> None:
    backend = FolderBackend(str(tmp_path))
    with locks.acquire(backend, "push", "mlv push", failure) as first:
        with locks.acquire(backend, "push", "mlv push", failure):
            assert len(lock_files(tmp_path)) == 2
        with pytest.raises(RemoteError) as caught:
            locks.acquire(backend, "gc", "mlv gc -r store", failure, tries=1)
        assert "locked by push `mlv push`" in caught.value.message
        assert "then run `mlv gc -r store` again" in (caught.value.hint or "")
        assert lock_files(tmp_path) == [first.key.rpartition("/")[2]]  # its own deleted
    assert lock_files(tmp_path) == []
    with locks.acquire(backend, "gc", "mlv gc -r store", failure):
        with pytest.raises(RemoteError, match="locked by gc"):
            locks.acquire(backend, "push", "mlv push", failure, tries=1)
        with pytest.raises(RemoteError, match="locked by gc"):
            locks.acquire(backend, "gc", "mlv gc -r store", failure, tries=1)
    assert lock_files(tmp_path) == []


def test_stale_locks_are_ignored_and_gc_removes_them(tmp_path: Path) -> None:
    backend = FolderBackend(str(tmp_path))
    old = tmp_path / "locks" / f"gc-{'1' * 32}.json"
    old.parent.mkdir()
    old.write_text(json.dumps({"host": "gone", "pid": 1, "command": "mlv gc -r store"}))
    when = time.time() - locks.STALE - 60
    os.utime(old, (when, when))
    with locks.acquire(backend, "push", "mlv push", failure):
        assert old.exists()  # push ignores it, gc alone deletes locks
    with locks.acquire(backend, "gc", "mlv gc -r store", failure):
        assert not old.exists()


def test_a_hostile_lock_body_is_named_without_its_junk(tmp_path: Path) -> None:
    backend = FolderBackend(str(tmp_path))
    bad = tmp_path / "locks" / f"gc-{'2' * 32}.json"
    bad.parent.mkdir()
    bad.write_bytes(json.dumps({"host": "evil\x1b[2J\nhost" + "x" * 500, "pid": [1]}).encode())
    with pytest.raises(RemoteError) as caught:
        locks.acquire(backend, "push", "mlv push", failure, tries=1)
    message = caught.value.message
    assert "\n" not in message and "\x1b" not in message and len(message) < 400


def test_a_held_lock_is_rewritten_until_released(tmp_path: Path) -> None:
    backend = FolderBackend(str(tmp_path))
    lock = locks.acquire(backend, "gc", "mlv gc -r store", failure, refresh_every=0.05)
    path = tmp_path / lock.key
    os.utime(path, (1, 1))
    deadline = time.monotonic() + 10
    while path.stat().st_mtime < 2:
        assert time.monotonic() < deadline, "the lock was never refreshed"
        time.sleep(0.01)
    assert lock.held
    lock.release()
    assert not path.exists() and not lock.held
