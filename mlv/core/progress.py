"""How use cases report progress without knowing about terminals: the CLI implements this
protocol with rich on a terminal and with plain lines (or nothing) in pipes.

A use case calls begin() before the advance() calls of a piece of work and end() after
them. begin's total is the number of files the work will advance by, or None when it is
not known; or a function that counts them, called only when a bar will show the count, so
that a count that costs a walk of the workspace is paid only at a terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Total = int | Callable[[], int | None] | None


class Progress(Protocol):
    def begin(self, what: str, total: Total = None) -> None: ...
    def advance(self, files: int = 1, nbytes: int = 0) -> None: ...
    def end(self) -> None: ...
    def warn(self, message: str) -> None: ...


class NullProgress:
    """Reports nothing (and counts nothing); warnings are collected for the caller to show."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def begin(self, what: str, total: Total = None) -> None:
        pass

    def advance(self, files: int = 1, nbytes: int = 0) -> None:
        pass

    def end(self) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)
