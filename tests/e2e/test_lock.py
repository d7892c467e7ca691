"""The repository lock: a second writer fails naming the holder, `--wait-for-lock` waits,
`status` takes no lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import MLV, assert_error, mlv, write_files

HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()}: mlv add x\\n".encode(), 0)
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    """
)


@contextmanager
def held_lock(repo: Path, seconds: float = 60) -> Iterator[subprocess.Popen[str]]:
    """Another process holding .mlv/tmp/lock, as a running `mlv add x` would."""
    lock = repo / ".mlv" / "tmp" / "lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        yield proc
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.mark.slow
def test_second_writer_fails_naming_the_holder(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"f.txt": "f", "g.txt": "g"})
    mlv("add", "g.txt", cwd=mlv_repo)
    with held_lock(mlv_repo) as holder:
        for args in (["add", "f.txt"], ["checkout"]):
            start = time.monotonic()
            proc = mlv(*args, cwd=mlv_repo, check=False)
            elapsed = time.monotonic() - start
            line = assert_error(proc, 1, f"pid {holder.pid}", "mlv add x", "--wait-for-lock")
            assert "locked" in line
            assert elapsed < 10, elapsed
        assert not (mlv_repo / "f.txt.mlv").exists()
        assert (mlv_repo / "g.txt.mlv").exists()
        # readers are not blocked (the holder keeps the lock for a minute)
        status = mlv("status", "--check", cwd=mlv_repo)
        assert "clean" in status.stdout
        assert mlv("cache", "dir", cwd=mlv_repo).returncode == 0
    mlv("add", "f.txt", cwd=mlv_repo)  # the lock died with its holder


@pytest.mark.slow
def test_wait_for_lock_waits_for_the_holder(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"f.txt": "f"})
    with held_lock(mlv_repo, seconds=4) as holder:
        start = time.monotonic()
        waiter = subprocess.run(
            [MLV, "add", "--wait-for-lock", "f.txt"],
            cwd=mlv_repo,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        elapsed = time.monotonic() - start
        assert holder.poll() is not None  # it only succeeded once the holder was gone
    assert waiter.returncode == 0, waiter.stderr
    assert elapsed > 3.0
    assert (mlv_repo / "f.txt.mlv").is_file()
