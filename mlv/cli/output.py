"""Rendering helpers: the only place that decides what goes to stdout and stderr.

Plain lines in pipes and CI; rich progress bars on a terminal (rich imported only then).
"""

from __future__ import annotations

import json
import os
import sys
from types import TracebackType
from typing import Any

_settings = {"verbose": False, "quiet": False}


def configure(verbose: bool, quiet: bool) -> None:
    _settings["verbose"] = verbose
    _settings["quiet"] = quiet
    if verbose:
        import logging

        logging.basicConfig(
            level=logging.DEBUG, stream=sys.stderr, format="debug: %(name)s: %(message)s"
        )


def quiet() -> bool:
    return _settings["quiet"]


def info(line: str) -> None:
    if not _settings["quiet"]:
        sys.stdout.write(line + "\n")


def warn(line: str) -> None:
    if not _settings["quiet"]:
        sys.stderr.write(f"warning: {line}\n")


def error(line: str) -> None:
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def interactive() -> bool:
    return (
        sys.stderr.isatty()
        and not _settings["quiet"]
        and os.environ.get("CI") is None
        and os.environ.get("TERM") != "dumb"
    )


class TerminalProgress:
    """core.progress.Progress on a terminal: files, bytes, rate; nothing off a terminal."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None
        self.warnings: list[str] = []

    def __enter__(self) -> TerminalProgress:
        if interactive():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("files"),
                TimeElapsedColumn(),
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        for w in self.warnings:
            warn(w)

    def begin(self, what: str, total: int | None = None) -> None:
        if self._progress is not None:
            self._task = self._progress.add_task(what, total=total)

    def advance(self, files: int = 1, nbytes: int = 0) -> None:
        if self._task is not None:
            self._progress.advance(self._task, files)

    def end(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
