"""Advisory locks on a remote: `locks/push-RANDOM.json` (shared) and `locks/gc-RANDOM.json`
(exclusive), docs/design/packs.md, "Concurrency and locks".

Plain object stores have no compare-and-swap, so a lock is "write, then list": a writer
PUTs its lock, lists locks/ with the server's modification times, and backs off when it sees
a fresh lock it conflicts with (gc conflicts with any other lock, push with a gc lock).
Ages are read from the listing (the server's clock), never from this machine's clock, so
writers with wrong clocks still agree on what is stale. A holder re-writes its lock every
REFRESH seconds from a daemon thread; a killed holder's lock goes stale after STALE, or at
once for a command on this same machine whose process is gone (restic's rule).
"""

from __future__ import annotations

import json
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from mlv import log, yamlio
from mlv.errors import RemoteError
from mlv.objects.packs.layout import LOCKS
from mlv.storage.backend import Backend, KeyInfo, Missing, PermanentError

Kind = Literal["push", "gc"]

STALE = 30 * 60  # seconds, by the listing's mtimes
REFRESH = 5 * 60  # a holder re-writes its lock this often
UNSURE = 25 * 60  # a holder that could not refresh for this long has lost the lock
TRIES = 3  # two writers that start together both back off and try again
BACKOFF = (1.0, 5.0)  # seconds, random
TOGETHER = 10.0  # a conflicting lock this much younger than ours: started together
MAX_BODY = 4096


@dataclass(frozen=True)
class Holder:
    """Another command's lock, as one listing of locks/ and its body say."""

    key: str
    kind: str
    age: float  # seconds, by the server's clock
    host: str = "?"
    pid: str = "?"
    command: str = "?"
    space: str = "?"  # its process-id space: _pid_space() of the machine that wrote it

    def describe(self) -> str:
        key = _clean(self.key)  # a hostile key name is shown as cleaned as a body field
        return f"`{self.command}` on {self.host} (pid {self.pid}, lock {key}, {_ago(self.age)})"


def lock_kind(key: str) -> str | None:
    """push or gc, from a key under locks/; None for a key that is not a lock."""
    name = key[len(LOCKS) :] if key.startswith(LOCKS) else ""
    if "/" in name or not name.endswith(".json"):
        return None
    kind = name.partition("-")[0]
    return kind if kind in ("push", "gc") else None


def _ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 7200:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def _clean(value: object) -> str:
    """A field of a hostile lock body, fit for one line of output."""
    text = "".join(c for c in str(value) if c.isprintable())
    return text[:80] or "?"


def _pid_space() -> str:
    """Which process ids this process sees: the kernel's boot id and the pid namespace
    (containers and CI runners sharing a host name have their own); "?" where unknown."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read(64).strip()
        ns = os.readlink("/proc/self/ns/pid")
    except (OSError, ValueError):
        return "?"
    return _clean(f"{boot}/{ns}") if boot else "?"


class RemoteLock:
    """A lock this command holds; refreshed in the background until released."""

    def __init__(
        self,
        backend: Backend,
        key: str,
        body: bytes,
        mtime: float,
        refresh_every: float = REFRESH,
    ) -> None:
        self.backend = backend
        self.key = key
        self.body = body
        self.mtime = mtime  # the server's time of the lock when it was taken (or refreshed)
        self._refreshed = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._refresh_loop, args=(refresh_every,), name="mlv-lock", daemon=True
        )
        self._released = False
        self._thread.start()

    def _refresh_loop(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                results = self.backend.write([(self.body, self.key)], 1)
            except Exception as e:  # the next round tries again; `held` tells the holder
                log.debug(__name__, f"cannot refresh lock {self.key}: {e}")
                continue
            if results[0].error is None:
                self._refreshed = time.monotonic()
            else:
                log.debug(__name__, f"cannot refresh lock {self.key}: {results[0].error}")

    @property
    def held(self) -> bool:
        """False once refreshing failed for UNSURE seconds (a suspended laptop): the lock
        may have gone stale and another command may hold the remote; write nothing more."""
        return not self._released and time.monotonic() - self._refreshed < UNSURE

    def release(self) -> None:
        """Stop refreshing and delete the lock (a failure only leaves it to go stale)."""
        if self._released:
            return
        self._released = True
        self._stop.set()
        self._thread.join()
        try:
            self.backend.delete([self.key], 1)
        except Exception as e:
            log.debug(__name__, f"cannot delete lock {self.key}: {e}")

    def __enter__(self) -> RemoteLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def acquire(
    backend: Backend,
    kind: Kind,
    command: str,
    failure: Callable[[BaseException], RemoteError],
    *,
    tries: int = TRIES,
    refresh_every: float = REFRESH,
) -> RemoteLock:
    """Take a lock of kind on the remote for `command` (as the user typed it, for the
    holder's message and the hint), or raise the RemoteError naming who holds it.

    gc takes it exclusively and deletes stale locks it finds; push shares it with other
    pushes. gc refuses a remote whose listing does not show a lock right after it was
    written: there "write, then list" excludes nobody."""
    body = json.dumps(
        {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "space": _pid_space(),
            "command": command,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
        separators=(",", ":"),
    ).encode()
    for attempt in range(1, tries + 1):
        key = f"{LOCKS}{kind}-{os.urandom(16).hex()}.json"
        _write(backend, key, body, failure)
        try:
            taken = _settle(
                backend, kind, key, body, command, failure, attempt, tries, refresh_every
            )
        except BaseException:
            _delete(backend, [key])  # never left behind, whatever stopped this command
            raise
        if taken is not None:
            return taken
    raise AssertionError("unreachable")  # pragma: no cover


def _settle(
    backend: Backend,
    kind: Kind,
    key: str,
    body: bytes,
    command: str,
    failure: Callable[[BaseException], RemoteError],
    attempt: int,
    tries: int,
    refresh_every: float,
) -> RemoteLock | None:
    """After writing key: the lock, None to try again (its key deleted), or the RemoteError
    naming the holder (acquire deletes the key then)."""
    listed = _list(backend, failure)
    mine = listed.get(key)
    if mine is None:
        if kind == "gc":
            raise failure(
                PermanentError(
                    f"this remote does not list new keys at once (lock {key} was written "
                    "but not listed): gc cannot lock it",
                    "run gc where the remote's listings are consistent (S3, GCS, Azure, "
                    "a local folder), or clean it without mlv",
                )
            )
        log.debug(__name__, f"lock {key} not listed yet: going on (push takes it shared)")
        return RemoteLock(backend, key, body, time.time(), refresh_every)
    now = max(info.mtime for info in listed.values())
    stale, conflicts = [], []
    for other, info in sorted(listed.items()):
        other_kind = lock_kind(other)
        if other == key or other_kind is None:
            continue
        age = now - info.mtime
        if age >= STALE:
            stale.append(other)
        elif kind == "gc" or other_kind == "gc":
            conflicts.append((other, other_kind, age, info))
    dead = [c for c in conflicts if _dead(backend, c[0], c[1], c[2])]
    if dead:
        conflicts = [c for c in conflicts if c not in dead]
        stale += [c[0] for c in dead]
    if not conflicts:
        if stale and kind == "gc":
            log.debug(__name__, f"removing {len(stale)} stale lock(s): {', '.join(stale)}")
            _delete(backend, stale)
        return RemoteLock(backend, key, body, mine.mtime, refresh_every)
    together = any(info.mtime >= mine.mtime - TOGETHER for _, _, _, info in conflicts)
    if together and attempt < tries:
        _delete(backend, [key])
        time.sleep(random.uniform(*BACKOFF))
        return None
    other, other_kind, age, _ = conflicts[0]
    holder = _holder(backend, other, other_kind, age)
    more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
    raise failure(
        PermanentError(
            f"locked by {holder.kind} {holder.describe()}{more}",
            f"wait until it ends, then run `{command}` again (a lock left by a killed "
            f"command goes stale {STALE // 60} minutes after its last refresh)",
        )
    )


def _write(
    backend: Backend, key: str, body: bytes, failure: Callable[[BaseException], RemoteError]
) -> None:
    try:
        results = backend.write([(body, key)], 1)
    except Exception as e:
        raise failure(e) from e
    if results[0].error is not None:
        raise failure(results[0].error)


def _list(backend: Backend, failure: Callable[[BaseException], RemoteError]) -> dict[str, KeyInfo]:
    try:
        return backend.list_info(LOCKS)
    except Missing:
        return {}
    except Exception as e:
        raise failure(e) from e


def _delete(backend: Backend, keys: list[str]) -> None:
    try:
        backend.delete(keys, 1)
    except Exception as e:  # left behind, it goes stale
        log.debug(__name__, f"cannot delete lock(s) {', '.join(keys)}: {e}")


def _dead(backend: Backend, key: str, kind: str, age: float) -> bool:
    """Is key the lock of a command on this machine that is not running any more (killed:
    its lock would otherwise stop everyone for STALE seconds)?"""
    holder = _holder(backend, key, kind, age)
    if holder.host != socket.gethostname() or not re.fullmatch(r"[0-9]{1,9}", holder.pid):
        return False
    space = _pid_space()
    if holder.space != "?" and space != "?":
        if holder.space != space:  # another container or runner of the same name
            return False
    elif age <= REFRESH + TOGETHER:
        # Unknown pid spaces (an older mlv's lock, no /proc): a live holder refreshes its
        # lock every REFRESH seconds, so only a lock older than that may be a dead one's.
        return False
    pid = int(holder.pid)
    if pid == os.getpid() or pid <= 1:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # running, as another user
        return False
    return False


def _holder(backend: Backend, key: str, kind: str, age: float) -> Holder:
    """Who holds key, from its body when it can be read (a hostile or damaged body only
    leaves question marks)."""
    fields: dict[str, str] = {}
    try:
        result = backend.read_ranges([(key, 0, MAX_BODY)], 1)[0]
        if result.error is None and result.data:
            doc = yamlio.loads_json(result.data)
            if isinstance(doc, dict):
                fields = {
                    k: _clean(doc[k]) for k in ("host", "pid", "command", "space") if k in doc
                }
    except Exception as e:
        log.debug(__name__, f"cannot read lock {key}: {e}")
    return Holder(key, kind, age, **fields)
