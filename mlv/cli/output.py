"""Rendering helpers: the only place that writes to stdout and stderr.

Every command's output goes through here: `info` (lines -q hides), `out` (what the command
was asked for: a listing, a diff, a table; -q does not hide it), `warn`, `error` and
`error_list` (stderr), `emit_json`, `table`, `TerminalProgress`. Here too are the -q/-v
settings and the terminal checks. Plain lines in pipes and CI; on a terminal, rich progress
bars and tables, rich imported only then (rich itself honours NO_COLOR and TERM=dumb).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from mlv.errors import rpath, show_paths
from mlv.util.quoting import quote_path

if TYPE_CHECKING:
    from mlv.core.progress import Total

_settings = {"verbose": False, "quiet": False}
# What -v changed in the logging module, undone by reset(): the handler it added to the root
# logger and the root logger's level before.
_logging_state: list[tuple[Any, int]] = []


def configure(verbose: bool, quiet: bool) -> None:
    _settings["verbose"] = verbose
    _settings["quiet"] = quiet
    _quiet_library_warnings()
    if verbose and not _logging_state:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
        handler.addFilter(_redact_record)  # libraries log URLs with passwords
        root = logging.getLogger()
        _logging_state.append((handler, root.level))
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)


def _quiet_library_warnings() -> None:
    """asyncssh uses ciphers that cryptography has deprecated: each use prints a
    CryptographyDeprecationWarning (five lines before an ssh error), a note for asyncssh's
    authors, not for the user. Ignored in the CLI process (mlv.api callers keep their own
    filters), for warnings raised from asyncssh's modules; -v shows them. Matched as a
    UserWarning, the class it derives from, so that no command imports cryptography (an
    ssh extra's dependency, not mlv's) to name it."""
    if _settings["verbose"]:
        return
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning, module="asyncssh")


def reset() -> None:
    """Undo configure(): the settings and logging as they were before the command, so that
    main() can run again in the same process (the tests run the CLI in-process)."""
    _settings["verbose"] = _settings["quiet"] = False
    _cwd_seen.clear()
    while _logging_state:
        import logging

        handler, level = _logging_state.pop()
        root = logging.getLogger()
        root.removeHandler(handler)
        root.setLevel(level)
        handler.flush()


def _redact_record(record: Any) -> bool:
    """A logging filter: the record's text, exception and stack without the secrets of the
    remotes in use (mlv.log.add_secrets)."""
    from mlv import log

    message = record.getMessage()
    redacted = log.redact(message)
    if redacted != message:
        record.msg, record.args = redacted, None
    if record.exc_info and not record.exc_text:
        import logging

        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = log.redact(record.exc_text)
    if record.stack_info:
        record.stack_info = log.redact(record.stack_info)
    return True


def traceback_text() -> str:
    """The exception being handled, as Python prints it, without the remotes' secrets."""
    import traceback

    from mlv import log

    return log.redact(traceback.format_exc())


def quiet() -> bool:
    return _settings["quiet"]


def shown(text: str) -> str:
    """text with the paths core marked in it (mlv.errors.rpath: a message, a warning, a
    reason) shown as repo_path shows them, relative to the current folder. Every function
    here that writes text applies it; --json shows them relative to the root."""
    return show_paths(text, repo_path)


def about(file: str, why: str) -> str:
    """why, a message about file (relative to the root), led by file as text output names
    it: `m.json: not JSON` in d/ for d/m.json, whether why names it first (marked or not)
    or not at all."""
    for prefix in (rpath(file), file):
        if why.startswith(prefix):
            return repo_path(file) + shown(why[len(prefix) :])
    return f"{repo_path(file)}: {shown(why)}"


def info(line: str) -> None:
    if not _settings["quiet"]:
        sys.stdout.write(shown(line) + "\n")


def path(name: str) -> str:
    """A path as text output shows it: in double quotes with C escapes when it holds a
    control character ("x\\ny", "a\\033[31m.txt"), as git's core.quotePath does; any other
    name unchanged (--json shows names as they are, escaped by JSON)."""
    return quote_path(name)


def repo_path(name: str) -> str:
    """A path relative to the repository root (as mlv keeps them, and --json prints them) as
    text output shows it: relative to the current folder, as `git status` shows paths
    (`mlv status` in data/ prints `a.txt` and `../model.bin`), quoted like path()."""
    prefix = _cwd_prefix()
    if prefix:
        name = _relative(name, prefix) + ("/" if name.endswith("/") else "")
    return quote_path(name)


# The current folder, relative to the repository root ("" at the root), for the current
# folder it was found for: one find_root per command, not per path.
_cwd_seen: dict[str, str] = {}


def _cwd_prefix() -> str:
    try:
        cwd = os.getcwd()
    except OSError:
        return ""
    if cwd not in _cwd_seen:
        from mlv.core.repo import find_root
        from mlv.errors import MlvError

        try:
            root = find_root(cwd)
        except MlvError:
            prefix = ""
        else:
            prefix = os.path.relpath(os.path.realpath(cwd), root).replace(os.sep, "/")
            prefix = "" if prefix == "." or prefix.startswith("..") else prefix
        _cwd_seen.clear()
        _cwd_seen[cwd] = prefix
    return _cwd_seen[cwd]


def _relative(name: str, prefix: str) -> str:
    """name (relative to the root) seen from the folder prefix (relative to the root), by
    their parts alone: "data/a" from "data" is "a", "model.bin" is "../model.bin"."""
    parts = [p for p in name.split("/") if p and p != "."]
    here = prefix.split("/")
    common = 0
    while common < min(len(parts), len(here)) and parts[common] == here[common]:
        common += 1
    rel = [".."] * (len(here) - common) + parts[common:]
    return "/".join(rel) or "."


def out(text: str, end: str = "\n") -> None:
    """What the command was asked for (a listing, a diff, a table) on stdout, shown with -q
    too, in one write (a 20,000-line listing goes out at once), as it is: the commands quote
    the paths in it with path()."""
    sys.stdout.write(shown(text) + end)


def raw_line(prefix: str, line: bytes, err: bool) -> None:
    """One line a command run by mlv printed (a stage under `repro -j`), behind a prefix, as
    bytes: a stage's output is its own, so it is neither decoded nor escaped where the stream
    takes bytes (a text-only stream gets it decoded, undecodable bytes replaced)."""
    stream = sys.stderr if err else sys.stdout
    stream.flush()
    end = b"" if line.endswith(b"\n") else b"\n"
    data = prefix.encode() + line + end
    raw = getattr(stream, "buffer", None)
    if raw is None:
        stream.write(data.decode("utf-8", "replace"))
        stream.flush()
    else:
        raw.write(data)
        raw.flush()


def warn(line: str) -> None:
    if not _settings["quiet"]:
        sys.stderr.write(f"warning: {shown(line)}\n")


def error(line: str) -> None:
    sys.stderr.write(f"error: {shown(line)}\n")
    sys.stderr.flush()


def error_list(line: str, items: Sequence[str], show: int) -> None:
    """An error line, then the first `show` items it is about, indented, and how many more
    (--json lists them all)."""
    more = [f"... and {len(items) - show} more (see --json)"] if len(items) > show else []
    lines = [line, *(f"    {i}" for i in [*items[:show], *more])]
    sys.stderr.write("".join(f"{shown(x)}\n" for x in ["error: " + lines[0], *lines[1:]]))
    sys.stderr.flush()


def show_traceback() -> None:
    """The exception being handled, on stderr (-v), without the remotes' secrets."""
    sys.stderr.write(traceback_text())


def stdout_terminal() -> bool:
    return sys.stdout.isatty()


def can_ask() -> bool:
    """A person at a terminal who can answer a question (gc's confirmation)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def flush() -> None:
    """Before a child process writes to the same terminal or log (repro's commands)."""
    sys.stdout.flush()
    sys.stderr.flush()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], as_md: bool = False) -> None:
    """Markdown with as_md (shown with -q too); else, unless -q, a rich table on a terminal
    wide enough for it, plain columns (each padded to its widest cell, two spaces apart,
    trailing spaces dropped) anywhere else."""
    if as_md:
        lines = ["| " + " | ".join(_md(h) for h in headers) + " |"]
        lines.append("|" + "|".join("-" * (len(h) + 2) for h in headers) + "|")
        lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
        out("\n".join(lines))
        return
    if _settings["quiet"]:
        return
    if stdout_terminal() and _rich_table(headers, rows):
        return
    out("\n".join(columns([list(headers), *rows])))


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain aligned lines: every column padded to its widest cell, two spaces between
    columns, trailing spaces dropped (a short row leaves its last columns empty)."""
    count = max((len(row) for row in rows), default=0)
    full = [[*row, *[""] * (count - len(row))] for row in rows]
    widths = [max(len(row[i]) for row in full) for i in range(count)]
    return [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in full
    ]


def _rich_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> bool:
    """A rich table on stdout, when the terminal is wide enough (else False: plain lines,
    unwrapped)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    if sum(widths) + 2 * (len(widths) - 1) > console.width:
        return False
    rich_table = Table(box=None, header_style="bold", pad_edge=False)
    for h in headers:
        rich_table.add_column(Text(h))  # Text: no markup in user's keys and values
    for row in rows:
        rich_table.add_row(*[Text(shown(c)) for c in row])
    console.print(rich_table)
    return True


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def emit_json(data: Any) -> None:
    """data as JSON; a path core marked in a message (mlv.errors.rpath) relative to the
    root, as every path in --json (JSON writes the marks as \\u0000)."""
    text = json.dumps(data, indent=2, ensure_ascii=False)
    if "\\u0000" in text:
        text = _JSON_MARK.sub(r"\1", text)
    sys.stdout.write(text + "\n")


# A \u0000 escape in JSON text: after an even run of backslashes (a string's own "\\u0000"
# is not one)
_JSON_MARK = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")


def interactive() -> bool:
    return (
        sys.stderr.isatty()
        and not _settings["quiet"]
        and os.environ.get("CI") is None
        and os.environ.get("TERM") != "dumb"
    )


class TerminalProgress:
    """core.progress.Progress: a rich bar on stderr on a terminal (files; with transfer=True
    also bytes, rate and ETA). Off a terminal, transfers print a plain line every PLAIN_EVERY
    seconds so that CI logs show they are alive; other commands print nothing.

    The bytes and the rate are computed when the bar is drawn (ten times a second), not when
    work is reported: the rate is that of the last RATE_WINDOW seconds, so while a download
    brings nothing back (a large batch in flight) the bar shows the rate falling and the
    time running, never a frozen figure. clock: the time source (tests pass a fake one)."""

    PLAIN_EVERY = 10.0
    RATE_WINDOW = 5.0
    _SAMPLE_EVERY = 0.2  # seconds between the samples the rate is computed from

    def __init__(
        self,
        transfer: bool = False,
        clock: Callable[[], float] = time.monotonic,
        console: Any = None,
    ) -> None:
        self._progress: Any = None
        self._task: Any = None
        self._transfer = transfer
        self._clock = clock
        self._console = console  # a rich Console to draw on (tests); default: stderr
        self._lock = threading.Lock()  # advance() comes from worker threads, drawing from rich's
        self._what = ""
        self._total: int | None = None
        self._files = 0
        self._bytes = 0
        self._begun = False
        self._samples: deque[tuple[float, int]] = deque()  # (time, bytes so far)
        self._last_line = 0.0
        self.warnings: list[str] = []

    def __enter__(self) -> TerminalProgress:
        if self._console is not None or interactive():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.table import Column

            def whole() -> Column:  # never wrapped nor cut: the bar narrows instead
                return Column(no_wrap=True)

            columns: list[Any] = [
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(table_column=whole()),
                TextColumn("files", table_column=whole()),
            ]
            if self._transfer:
                columns += [_volume_column(self), TimeRemainingColumn(table_column=whole())]
            columns.append(TimeElapsedColumn(table_column=whole()))
            console = self._console or Console(stderr=True)
            # What the command writes meanwhile goes above the bar; stdout only when it is
            # a terminal too (in a pipe it must stay on stdout, untouched by the bar)
            self._progress = Progress(
                *columns,
                console=console,
                transient=True,
                redirect_stdout=sys.stdout.isatty(),
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

    @property
    def drawing(self) -> bool:
        """A bar is on the screen (a terminal), so a total is worth computing."""
        return self._progress is not None

    def begin(self, what: str, total: Total = None) -> None:
        """total may be a function: called only when a bar shows it (see core.progress)."""
        if callable(total):
            total = total() if self.drawing else None
        now = self._clock()
        with self._lock:
            self._what, self._total, self._files, self._bytes = what, total, 0, 0
            self._samples = deque([(now, 0)])
            self._last_line = now
            self._begun = True
        if self._progress is not None:
            self._task = self._progress.add_task(what, total=total)
            self._progress.refresh()  # the bar and its total at once, however short the work

    def volume(self) -> str:
        """ "12.0 MiB at 2.0 MiB/s": the bytes so far and the rate over the last
        RATE_WINDOW seconds, as of now."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            since, then = self._samples[0] if self._samples else (now, 0)
            nbytes = self._bytes
        # bytes only grow at advance(): those of the window's start are those of its last
        # sample, so the rate is over the whole window even after a long wait
        since = max(since, now - self.RATE_WINDOW)
        rate = (nbytes - then) / max(now - since, 1e-3)
        return f"{human_size(nbytes)} at {human_size(int(rate))}/s"

    def _prune(self, now: float) -> None:
        """Drop the samples older than the window but the last one before it (its bytes
        are those at the window's start); under self._lock."""
        samples = self._samples
        while len(samples) > 1 and samples[1][0] <= now - self.RATE_WINDOW:
            samples.popleft()

    def advance(self, files: int = 1, nbytes: int = 0) -> None:
        now = self._clock()
        with self._lock:
            self._files += files
            self._bytes += nbytes
            if self._samples and now - self._samples[-1][0] >= self._SAMPLE_EVERY:
                self._samples.append((now, self._bytes))
                self._prune(now)
            line_due = (
                self._task is None
                and self._begun  # nothing to name before begin(): no line
                and self._transfer
                and now - self._last_line >= self.PLAIN_EVERY
            )
            if line_due:
                self._last_line = now
        if self._task is not None:
            self._progress.advance(self._task, files)
        elif line_due and not _settings["quiet"]:
            total = f"/{self._total}" if self._total is not None else ""
            sys.stderr.write(f"{self._what}: {self._files}{total} files, {self.volume()}\n")
            sys.stderr.flush()

    def end(self) -> None:
        self._begun = False
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def _volume_column(owner: TerminalProgress) -> Any:
    """A rich column showing owner.volume(), computed each time the bar is drawn."""
    from rich.progress import ProgressColumn
    from rich.table import Column
    from rich.text import Text

    class VolumeColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            return Text(owner.volume())

    # never wrapped: in an 80-column terminal "MiB/s" went to a line of its own under the
    # bar (and the bar took two lines); the bar narrows instead
    return VolumeColumn(table_column=Column(no_wrap=True))


def plural(count: int, word: str) -> str:
    """ "1 file", "2 files": count and word, with an s unless count is 1."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
