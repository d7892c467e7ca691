"""Small cache objects written by a helper process while this one reads and hashes files.

`mlv add` of many small files is, per file, a read and a hash (~10 us), ~25 us of Python
around them (the scan, state rows) and the creation of the object (~40 us of kernel time:
create a temporary, write, rename). Measured on this project's VM as bare loops over
20,000 files (docs/performance.md, issue 17): one process 0.99-1.04 s, a helper writing
every other object 0.74-0.84 s, `cp -r` 0.63-0.68 s. The helper gets the second core.

The helper is a few lines of Python run with `sys.executable -I -S` (isolated: no site
packages, no environment, no current folder on its path). It gets batches of (temporary
path, object path, bytes) over a pipe: bytes that mlv read and hashed itself, whose hash
names the object path. It writes each to its temporary (created exclusively, read-only)
and renames it into place, as localfs.write_bytes_atomic does, so a killed helper leaves
at most a stray temporary, never a half-written object. It answers per object the new
file's (ino, mtime_ns, size), or None when anything failed: mlv then writes that object
itself (write_bytes_atomic), which reports the error as before.

mlv keeps the helper busy without waiting for it: a batch goes to the helper while fewer
than two are in flight, otherwise mlv writes the object itself. Nothing names an object
the helper has not confirmed: the caller (Cache) holds back trees until `drain`.
"""

from __future__ import annotations

import collections
import fcntl
import marshal
import os
import select
import subprocess

from mlv.objects import helperproc

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux's values (Python 3.10 names them)
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)

_HELPER = r"""
import marshal, os, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
while True:
    head = inp.read(8)
    if len(head) < 8:
        break
    batch = marshal.loads(inp.read(int.from_bytes(head, "little")))
    answers = []
    for tmp, dst, data in batch:
        try:
            fd = os.open(tmp, flags, 0o444)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                st = os.fstat(fd)
            finally:
                os.close(fd)
            os.replace(tmp, dst)
            answers.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            answers.append(None)
    reply = marshal.dumps(answers)
    out.write(len(reply).to_bytes(8, "little") + reply)
    out.flush()
"""

BATCH_FILES = 100  # objects in a batch
PIPE_BYTES = 1 << 20  # asked for the pipe to the helper (Linux's default limit for a user)
IN_FLIGHT = 3  # batches sent and not answered: they fit in the pipe, so sending never waits

Job = tuple[str, str, bytes]  # temporary path, object path, bytes
Written = tuple[str, int, int, int]  # hash id, ino, mtime_ns, size


class WriterGone(Exception):
    """The helper stopped answering (killed, or could not start)."""


class WriteHelper:
    """One helper process. offer() queues an object or declines it (the caller writes
    it); finished() returns what the helper confirmed and what it left to the caller."""

    def __init__(self) -> None:
        try:
            self._proc: subprocess.Popen[bytes] = helperproc.start(_HELPER)
        except OSError as e:
            raise WriterGone(str(e)) from None
        # A send must not wait for the helper to read (this process would idle while the
        # helper writes): the batches in flight, bar the one it is writing, fit in the pipe.
        stdin = self._proc.stdin
        assert stdin is not None
        size = 64 << 10
        try:
            fcntl.fcntl(stdin.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
            size = fcntl.fcntl(stdin.fileno(), F_GETPIPE_SZ)
        except OSError:
            pass
        self._batch_bytes = size // (IN_FLIGHT + 1)
        self._batch: list[Job] = []
        self._ids: list[str] = []
        self._bytes = 0
        self._sent: collections.deque[tuple[list[Job], list[str]]] = collections.deque()
        self.written: list[Written] = []  # confirmed by the helper, not yet taken
        self.left: list[tuple[str, str, bytes]] = []  # (hash id, object path, bytes) to redo
        self.pending: set[str] = set()  # object paths offered and not yet confirmed or left

    def offer(self, tmp: str, dst: str, hash_id: str, data: bytes) -> bool:
        """Queue the object for the helper; False when the helper is busy (two batches in
        flight and none answered): the caller writes it itself."""
        if len(data) > self._batch_bytes // 2:
            return False  # a large small file: not worth holding the pipe for
        if len(self._batch) >= BATCH_FILES or self._bytes + len(data) > self._batch_bytes:
            if len(self._sent) >= IN_FLIGHT and not self._answer_ready():
                return False
            self._send()
        self._batch.append((tmp, dst, data))
        self._ids.append(hash_id)
        self._bytes += len(data)
        self.pending.add(dst)
        return True

    def _answer_ready(self) -> bool:
        stdout = self._proc.stdout
        assert stdout is not None
        if not select.select([stdout], [], [], 0)[0]:
            return False
        self._receive()
        return True

    def _send(self) -> None:
        while len(self._sent) >= IN_FLIGHT:
            self._receive()
        if not self._batch:
            return
        data = marshal.dumps(self._batch)
        batch, ids = self._batch, self._ids
        self._batch, self._ids, self._bytes = [], [], 0
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(len(data).to_bytes(8, "little") + data)
            stdin.flush()
        except (OSError, ValueError):  # a broken pipe: the helper is gone
            self._leave(batch, ids)
            return
        self._sent.append((batch, ids))

    def _receive(self) -> None:
        batch, ids = self._sent.popleft()
        stdout = self._proc.stdout
        assert stdout is not None
        answers: list[tuple[int, int, int] | None] | None = None
        try:
            head = stdout.read(8)
            if len(head) == 8:
                reply = stdout.read(int.from_bytes(head, "little"))
                answers = marshal.loads(reply)
        except (OSError, ValueError, EOFError, TypeError):
            answers = None
        if not isinstance(answers, list) or len(answers) != len(batch):
            self._leave(batch, ids)
            return
        for (_tmp, dst, data), hash_id, answer in zip(batch, ids, answers, strict=True):
            self.pending.discard(dst)
            if answer is None:
                self.left.append((hash_id, dst, data))
            else:
                self.written.append((hash_id, answer[0], answer[1], answer[2]))

    def _leave(self, batch: list[Job], ids: list[str]) -> None:
        for (_tmp, dst, data), hash_id in zip(batch, ids, strict=True):
            self.pending.discard(dst)
            self.left.append((hash_id, dst, data))

    def finish(self) -> None:
        """Send what is queued and wait for every answer; the helper then exits."""
        self._send()
        while self._sent:
            self._receive()
        self.close()

    def close(self) -> None:
        """Let the helper end: it finishes the batch it is writing (every object it
        renames is whole) and exits at the closed pipe."""
        helperproc.stop(self._proc)
        while self._sent:
            batch, ids = self._sent.popleft()
            self._leave(batch, ids)


def start() -> WriteHelper | None:
    """A helper, or None where none can run (the caller writes every object itself)."""
    try:
        return WriteHelper()
    except WriterGone:
        return None


def stat_of(ino: int, mtime_ns: int, size: int) -> os.stat_result:
    """A stat result carrying what a trust record keeps (ino, mtime_ns, size)."""
    fields = [0] * 10
    fields[1], fields[6], fields[8] = ino, size, mtime_ns // 1_000_000_000
    return os.stat_result((*fields, 0, 0, 0, 0, mtime_ns, 0))
