"""Remote locks (mlv/objects/packs/locks.py) on a real folder backend: who conflicts with
whom, staleness by the listing's times, refreshing while held, release."""

from __future__ import annotations

import json
import os
import socket
import subprocess
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


def plant(root: Path, name: str, body: dict[str, object], seconds_old: float = 0) -> Path:
    path = root / "locks" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(body))
    when = time.time() - seconds_old
    os.utime(path, (when, when))
    return path


@pytest.mark.parametrize("pid", ["99999999999999999999", "²", "-5", " 7"])
def test_a_hostile_pid_on_this_host_is_a_holder_not_a_crash(tmp_path: Path, pid: str) -> None:
    """A pid no process can have leaves the lock standing (not dead, not an internal
    error), and the lock just written is deleted again."""
    backend = FolderBackend(str(tmp_path))
    plant(tmp_path, f"gc-{'3' * 32}.json", {"host": socket.gethostname(), "pid": pid})
    with pytest.raises(RemoteError, match="locked by gc"):
        locks.acquire(backend, "push", "mlv push", failure, tries=1)
    assert lock_files(tmp_path) == [f"gc-{'3' * 32}.json"]


def test_a_lock_key_is_shown_without_its_junk(tmp_path: Path) -> None:
    backend = FolderBackend(str(tmp_path))
    plant(tmp_path, "gc-\x1b[2J\x07.json", {"host": "h", "pid": 5})
    with pytest.raises(RemoteError) as caught:
        locks.acquire(backend, "push", "mlv push", failure, tries=1)
    assert "gc-[2J.json" in caught.value.message
    assert "\x1b" not in caught.value.message and "\x07" not in caught.value.message


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_a_dead_holder_of_this_pid_space_goes_at_once(tmp_path: Path) -> None:
    backend = FolderBackend(str(tmp_path))
    host, space = socket.gethostname(), locks._pid_space()
    if space == "?":
        pytest.skip("no /proc here: pid spaces unknown")
    plant(tmp_path, f"gc-{'4' * 32}.json", {"host": host, "pid": dead_pid(), "space": space})
    with locks.acquire(backend, "gc", "mlv gc -r store", failure, tries=1):
        assert len(lock_files(tmp_path)) == 1


def test_a_holder_of_another_pid_space_with_this_host_name_is_not_judged_by_pid(
    tmp_path: Path,
) -> None:
    """A container or CI runner with this host name but its own process ids: its pid
    says nothing here, so its fresh lock holds."""
    backend = FolderBackend(str(tmp_path))
    host = socket.gethostname()
    body = {"host": host, "pid": dead_pid(), "space": "another-boot/pid:[1]"}
    plant(tmp_path, f"gc-{'5' * 32}.json", body)
    with pytest.raises(RemoteError, match="locked by gc"):
        locks.acquire(backend, "push", "mlv push", failure, tries=1)


def test_a_lock_without_a_pid_space_is_judged_by_pid_only_once_past_a_refresh(
    tmp_path: Path,
) -> None:
    backend = FolderBackend(str(tmp_path))
    body = {"host": socket.gethostname(), "pid": dead_pid()}
    fresh = plant(tmp_path, f"gc-{'6' * 32}.json", body, seconds_old=10)
    with pytest.raises(RemoteError, match="locked by gc"):
        locks.acquire(backend, "push", "mlv push", failure, tries=1)
    when = time.time() - locks.REFRESH - 120
    os.utime(fresh, (when, when))
    with locks.acquire(backend, "gc", "mlv gc -r store", failure, tries=1):
        assert not fresh.exists()
