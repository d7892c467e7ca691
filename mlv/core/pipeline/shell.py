"""Run a stage's commands so that stopping mlv stops everything they started.

Each command runs through /bin/sh in a session (and process group) of its own, its output
streaming to mlv's. A SIGINT, SIGTERM or SIGHUP sent to mlv alone (`kill -INT PID`, a CI
runner cancelling a job) or to mlv's process group (Ctrl-C at a terminal, which no longer
reaches the stage's own session) is forwarded to the command's whole group: the shell, what
it waits for, what it started in the background. The shell gets GRACE seconds to end;
what it leaves behind gets SIGTERM, and whatever is still running after that is killed
(SIGKILL). A second signal skips the waiting. mlv then leaves as the signal asks: SIGINT as
KeyboardInterrupt (the CLI's `error: interrupted`, exit 130), the others with exit
128 + signal, as a process killed by them would.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future
from contextlib import contextmanager
from types import FrameType
from typing import IO, Any, NoReturn

GRACE = 5.0  # seconds the command's shell gets to end after a forwarded signal
LEFTOVERS = 1.0  # seconds what it started in the background gets after SIGTERM
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_POLL = 0.02

Handler = Callable[[int, FrameType | None], object] | int | signal.Handlers | None


class _Stop(BaseException):
    """Raised by the signal handler out of the wait for a command, and caught around it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Runner:
    """Runs commands one at a time; see the module's docstring. Use as `with run_commands()
    as runner:` so the signal handlers are in place only while commands run.

    The handler stops a command only where run() can catch it (while it waits); during the
    start of a command a signal is kept for the moment the command's group exists."""

    def __init__(self) -> None:
        self._starting = False
        self._waiting = False
        self._stopping = False
        self._pending = 0  # a signal that came while a command was starting
        self._hurry = False  # a second signal: no more grace

    def run(self, cmd: str, cwd: str, env: dict[str, str]) -> int:
        """Run cmd through /bin/sh; its exit code, or -N if signal N ended it."""
        self._starting = True
        try:
            proc = subprocess.Popen(cmd, shell=True, cwd=cwd, env=env, start_new_session=True)
        except BaseException:
            self._starting = False
            if self._pending:
                _leave(self._pending)
            raise
        try:
            self._waiting = True
            self._starting = False
            if self._pending:
                self._stopping, self._waiting = True, False
                raise _Stop(self._pending)
            code = proc.wait()
            self._waiting = False
            return code
        except _Stop as stop:
            self._stop_group(proc, stop.signum)
            _leave(stop.signum)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            self._hurry = True
        elif self._starting:
            self._pending = signum
        elif self._waiting:
            self._stopping, self._waiting = True, False
            raise _Stop(signum)
        else:  # between commands: nothing to stop
            _leave(signum)

    def _stop_group(self, proc: subprocess.Popen[bytes], signum: int) -> None:
        if proc.returncode is not None:  # reaped already: the command had ended
            return
        group = proc.pid  # the shell leads its group; it is reaped last, so the id stays its
        _killpg(group, signum)
        if self._wait(lambda: _exited(proc), GRACE):
            _killpg(group, signal.SIGTERM)  # what the shell left running in the background
            self._wait(lambda: not _running(group), LEFTOVERS)
        if _running(group):
            _killpg(group, signal.SIGKILL)
        proc.wait()

    def _wait(self, done: Callable[[], bool], seconds: float) -> bool:
        """Wait until done() (True) or seconds passed or a second signal came (False)."""
        deadline = time.monotonic() + seconds
        while not done():
            if self._hurry or time.monotonic() > deadline:
                return False
            time.sleep(_POLL)
        return True


def _leave(signum: int) -> NoReturn:
    """Leave as the signal asks: SIGINT as Ctrl-C does, the others with 128 + signal."""
    if signum == signal.SIGINT:
        raise KeyboardInterrupt from None
    raise SystemExit(128 + signum) from None


@contextmanager
def _forwarding(on_signal: Handler) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP go to on_signal while the block runs (from the main thread
    only: elsewhere Python delivers no signals, and the defaults stay)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: list[tuple[int, Handler]] = []
    try:
        for signum in FORWARDED:
            previous.append((signum, signal.signal(signum, on_signal)))
        yield
    finally:
        for number, handler in reversed(previous):
            signal.signal(number, handler)


@contextmanager
def run_commands() -> Iterator[Runner]:
    """A Runner, with the stopping signals forwarded to its command while the block runs."""
    runner = Runner()
    with _forwarding(runner.on_signal):
        yield runner


def _killpg(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """proc ended (it is not reaped: its id, which names the group, stays taken)."""
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def _running(group: int) -> bool:
    """A process of the group still runs. Zombies do not count: the unreaped shell, and
    orphans that an init which reaps nothing (some containers) keeps forever."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        names = os.listdir("/proc")
    except OSError:  # no /proc (macOS): something of the group exists
        return True
    member = (str(group), "running")
    return any(name.isdigit() and _stat(name) == member for name in names)


def _stat(pid: str) -> tuple[str, str]:
    """(process group, "running" or "zombie") of a process from /proc, ("", "") if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rpartition(b")")[2].split()
    except OSError:
        return "", ""
    state = "zombie" if fields[0] in (b"Z", b"X") else "running"
    return fields[2].decode(), state


# ---- several stages at once (mlv repro -j N) ---------------------------------------------

Lines = Callable[[bytes, bool], None]  # a line a command wrote, and whether to stderr


class Parallel:
    """Runs the commands of several stages at once, from worker threads, each command in
    a session of its own as Runner does; its output comes line by line to a callback (so
    that the CLI can prefix each line with its stage) and its stdin is /dev/null (several
    commands cannot share a terminal's input). The main thread waits in wait(); a signal
    to mlv is forwarded to every running command's group, with Runner's grace periods,
    and no command starts after it. Use as `with parallel_commands() as runner:`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._waiting = False
        self._stopping = False
        self._pending = 0  # a signal that came while the main thread was not waiting
        self._hurry = False

    def run(self, cmd: str, cwd: str, env: dict[str, str], lines: Lines) -> int:
        """Run cmd through /bin/sh (from any thread); its exit code, or -N if signal N
        ended it (or -SIGTERM, without starting it, once mlv is being stopped)."""
        with self._lock:
            if self._stopping or self._pending:
                return -signal.SIGTERM
            proc = subprocess.Popen(
                cmd,
                shell=True,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            self._procs.add(proc)
        pumps = [
            threading.Thread(target=_pump, args=(stream, lines, err), daemon=True)
            for stream, err in ((proc.stdout, False), (proc.stderr, True))
        ]
        for pump in pumps:
            pump.start()
        try:
            code = proc.wait()
        finally:
            with self._lock:
                self._procs.discard(proc)
        for pump in pumps:  # what a command left in the background may keep the pipe open:
            pump.join(LEFTOVERS)  # its lines still come, later, from the daemon thread
        return code

    def wait(self, futures: Iterable[Future[Any]]) -> set[Future[Any]]:
        """Wait (main thread) until one of futures is done; those done."""
        if self._pending:
            self._stop_all(self._pending)
        self._waiting = True
        try:
            done, _ = concurrent.futures.wait(futures, return_when=FIRST_COMPLETED)
        except _Stop as stop:
            self._stop_all(stop.signum)
        finally:
            self._waiting = False
        return done

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            self._hurry = True
        elif self._waiting:
            self._waiting = False
            raise _Stop(signum)
        else:  # the main thread is recording a stage: stop at its next wait, or at the end
            self._pending = signum

    def close(self) -> None:
        """At the end of the block: a signal that came during the last bookkeeping."""
        if self._pending and not self._stopping:
            self._stop_all(self._pending)

    def _stop_all(self, signum: int) -> NoReturn:
        with self._lock:
            self._stopping = True
            procs = list(self._procs)
        for proc in procs:
            _killpg(proc.pid, signum)
        deadline = time.monotonic() + GRACE
        while not all(_exited(p) for p in procs):
            if self._hurry or time.monotonic() > deadline:
                break
            time.sleep(_POLL)
        groups = [p.pid for p in procs]
        if not self._hurry:
            for group in groups:
                _killpg(group, signal.SIGTERM)  # what the shells left running
            deadline = time.monotonic() + LEFTOVERS
            while any(_running(g) for g in groups) and not self._hurry:
                if time.monotonic() > deadline:
                    break
                time.sleep(_POLL)
        for group in groups:
            if _running(group):
                _killpg(group, signal.SIGKILL)
        _leave(signum)


LINE_MAX = 64 << 10  # a longer line (a progress bar's \r updates, bytes without \n) comes in parts


def _pump(stream: IO[bytes] | None, lines: Lines, err: bool) -> None:
    """Pass what stream gives on, a line at a time, a line at most LINE_MAX bytes: a
    command that writes no newline (tqdm's \r updates for hours, a binary blob) must not
    grow one line in memory until it ends."""
    if stream is None:
        return
    with stream:
        for line in iter(lambda: stream.readline(LINE_MAX), b""):
            lines(line, err)


@contextmanager
def parallel_commands() -> Iterator[Parallel]:
    """A Parallel, with the stopping signals forwarded to every running command while the
    block runs."""
    runner = Parallel()
    with _forwarding(runner.on_signal):
        yield runner
        runner.close()
