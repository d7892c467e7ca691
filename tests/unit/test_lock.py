"""mlv.core.lock.RepoLock: one writer at a time, and a clear word on who holds the lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlv.core.lock import RepoLock
from mlv.errors import LockedError

HOLDER = textwrap.dedent(
    """
    import sys
    from mlv.core.lock import RepoLock
    sys.argv = ["mlv", "add", "data dir"]
    lock = RepoLock(sys.stdin.readline().strip())
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.readline()   # hold until told to go
    lock.release()
    print("released", flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture
def lock_path(tmp_path: Path) -> str:
    return str(tmp_path / ".mlv" / "tmp" / "lock")


@pytest.fixture
def holder(lock_path: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock, as `mlv add "data dir"`."""
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(lock_path + "\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "locked"
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def test_second_writer_fails_naming_the_holder(
    holder: subprocess.Popen[str], lock_path: str
) -> None:
    start = time.monotonic()
    with pytest.raises(LockedError) as info:
        RepoLock(lock_path, wait=0.2).acquire()
    waited = time.monotonic() - start
    msg = str(info.value)
    assert f"pid {holder.pid}" in msg
    assert "mlv add data dir" in msg
    assert "--wait-for-lock" in msg
    assert 0.2 <= waited < 2.0


def test_lock_is_free_once_the_holder_releases(
    holder: subprocess.Popen[str], lock_path: str
) -> None:
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("go\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"
    with RepoLock(lock_path, wait=0.2):
        pass


def test_lock_is_free_when_the_holder_dies(holder: subprocess.Popen[str], lock_path: str) -> None:
    holder.kill()
    holder.wait(timeout=10)
    with RepoLock(lock_path, wait=0.2):
        pass


def test_waiting_writer_gets_the_lock_when_it_is_released(
    holder: subprocess.Popen[str], lock_path: str
) -> None:
    assert holder.stdin is not None
    lock = RepoLock(lock_path, wait=None)

    def release_soon() -> None:
        time.sleep(0.3)
        assert holder.stdin is not None
        holder.stdin.write("go\n")
        holder.stdin.flush()

    t = threading.Thread(target=release_soon)
    t.start()
    start = time.monotonic()
    lock.acquire()
    t.join()
    try:
        assert time.monotonic() - start >= 0.25
    finally:
        lock.release()


def test_in_process_second_lock_and_release_on_exit(lock_path: str) -> None:
    with RepoLock(lock_path) as first:
        with open(lock_path, encoding="utf-8") as fh:
            assert fh.read().startswith(f"pid {os.getpid()}: mlv")
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
            RepoLock(lock_path, wait=0.2).acquire()
        assert first is not None
    # released on exit: another lock succeeds at once, and the holder line is gone
    start = time.monotonic()
    with RepoLock(lock_path, wait=0.2):
        assert time.monotonic() - start < 0.2
    with open(lock_path, encoding="utf-8") as fh:
        assert fh.read() == ""


def test_released_when_the_body_raises(lock_path: str) -> None:
    with pytest.raises(RuntimeError), RepoLock(lock_path):
        raise RuntimeError("boom")
    with RepoLock(lock_path, wait=0.2):
        pass


def test_release_is_idempotent(lock_path: str) -> None:
    lock = RepoLock(lock_path)
    lock.acquire()
    lock.release()
    lock.release()
    with RepoLock(lock_path, wait=0):
        pass


def test_failed_acquire_leaks_no_file_descriptor(lock_path: str) -> None:
    fd_dir = "/proc/self/fd"
    with RepoLock(lock_path):
        before = len(os.listdir(fd_dir))
        for _ in range(5):
            with pytest.raises(LockedError):
                RepoLock(lock_path, wait=0).acquire()
        assert len(os.listdir(fd_dir)) == before
