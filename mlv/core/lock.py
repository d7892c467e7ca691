"""The repository write lock: one writer at a time, and a clear word on who holds it.

An flock on .mlv/tmp/lock (released by the kernel if the holder dies, so no stale locks),
with the holder's pid and command written inside for the error message.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from types import TracebackType

from mlv.errors import LockedError

DEFAULT_WAIT_S = 3.0


class RepoLock:
    def __init__(self, path: str, wait: float | None = DEFAULT_WAIT_S) -> None:
        """wait: seconds to wait for another writer; None waits as long as it takes."""
        self.path = path
        self.wait = wait
        self._fd: int | None = None

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.wait is None else time.monotonic() + self.wait
        delay = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise LockedError(
                        f"the repository is locked by another mlv process ({holder})",
                        "wait for it to finish, or retry with --wait-for-lock",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        os.ftruncate(fd, 0)
        command = " ".join(["mlv", *sys.argv[1:]])[:200]
        os.pwrite(fd, f"pid {os.getpid()}: {command}\n".encode("utf-8", "backslashreplace"), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RepoLock:
        self.acquire()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 512, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "holder unknown"
