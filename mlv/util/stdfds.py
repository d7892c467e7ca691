"""Descriptors 0, 1 and 2 open before mlv opens anything, as git's sanitize_stdfds does.

A process started with one of them closed (`mlv status >&-`, a daemon or a cron job without
output) gives that number to the next file it opens: a lock, an object being written,
mlv.lock. A child that inherits it (git, a stage's command) then writes its output into
that file, and Python, which found the descriptor closed at start-up, leaves sys.stdout
(or stdin, stderr) None: the first print stopped mlv on an internal AttributeError.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def sanitize() -> None:
    """Open /dev/null onto each of descriptors 0, 1 and 2 that is closed (inheritable, as
    a standard descriptor is), and give Python a stream over it where it has none. Three
    fstat calls when all are open."""
    for fd in (0, 1, 2):
        if _is_open(fd):
            continue
        null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: fd itself
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        os.set_inheritable(fd, True)
    if sys.stdin is None:
        sys.stdin = _stream(0, write=False)
    if sys.stdout is None:
        sys.stdout = _stream(1, write=True)
    if sys.stderr is None:
        sys.stderr = _stream(2, write=True)


def _stream(fd: int, write: bool) -> TextIO:
    """A text stream over fd, for the rest of the process (never closed: closefd=False)."""
    if write:
        return open(fd, "w", encoding="utf-8", errors="replace", closefd=False)
    return open(fd, encoding="utf-8", errors="replace", closefd=False)
