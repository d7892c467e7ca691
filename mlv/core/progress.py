"""How use cases report progress without knowing about terminals: the CLI implements this
protocol with rich on a terminal and with nothing in pipes."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def begin(self, what: str, total: int | None = None) -> None: ...
    def advance(self, files: int = 1, nbytes: int = 0) -> None: ...
    def end(self) -> None: ...
    def warn(self, message: str) -> None: ...


class NullProgress:
    """Reports nothing; warnings are collected for the caller to show."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def begin(self, what: str, total: int | None = None) -> None:
        pass

    def advance(self, files: int = 1, nbytes: int = 0) -> None:
        pass

    def end(self) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)
