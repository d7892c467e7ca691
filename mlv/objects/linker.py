"""Hard links made by a helper process while this one does the Python work around them.

A hard-link checkout is, per file, a stat of the object and a link() (~15 us of kernel time
together) plus ~10 us of Python: trees, trust records, state rows. os.link releases the GIL,
but a thread making the links waits for the GIL after every call while the main thread runs
Python: measured on 200,000 files, one thread alone was faster (docs/performance.md, issue
17). A second process has no GIL to share, and the machine's second core does the links.

The helper is a few lines of Python run with `sys.executable -I -S` (isolated: no site
packages, no environment, no current folder on its path). It reads batches of (object path,
destination, ino, mtime_ns, size) over a pipe; for each it stats the object and links it
only when the stat equals that trust record (the caller read it from the state database),
and answers one byte per file: 0 linked, 1 not done. What it does not do (no trust record,
a changed or missing object, an existing destination, any error) the caller redoes
in-process through Cache.materialize, which reports it as before.
"""

from __future__ import annotations

import collections
import marshal
import subprocess
from collections.abc import Sequence

from mlv.objects import helperproc

LINKED = 0  # the one answer that means the file was linked

_HELPER = r"""
import marshal, os, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
stat, link = os.stat, os.link
while True:
    head = inp.read(8)
    if len(head) < 8:
        break
    batch = marshal.loads(inp.read(int.from_bytes(head, "little")))
    codes = bytearray(len(batch))
    i = 0
    for obj, dst, ino, mtime, size in batch:
        try:
            st = stat(obj)
            if st.st_ino == ino and st.st_mtime_ns == mtime and st.st_size == size:
                link(obj, dst)
            else:
                codes[i] = 1
        except OSError:
            codes[i] = 1
        i += 1
    out.write(len(codes).to_bytes(8, "little") + bytes(codes))
    out.flush()
"""

LinkJob = tuple[str, str, int, int, int]  # object path, destination, ino, mtime_ns, size


class HelperGone(Exception):
    """The helper process stopped answering (killed, or could not start): the batches it
    was given are to be redone in-process (a link it did make is found by materialize)."""


class LinkHelper:
    """One helper process; batches go in with send() and their answers come back, oldest
    first, from receive(). A caller keeps one or two batches in flight."""

    def __init__(self) -> None:
        try:
            self._proc: subprocess.Popen[bytes] = helperproc.start(_HELPER)
        except OSError as e:
            raise HelperGone(str(e)) from None
        self._sizes: collections.deque[int] = collections.deque()
        self.sent = 0  # batches sent so far

    @property
    def in_flight(self) -> int:
        return len(self._sizes)

    def send(self, jobs: Sequence[LinkJob]) -> None:
        data = marshal.dumps(list(jobs))
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            stdin.write(len(data).to_bytes(8, "little") + data)
            stdin.flush()
        except (OSError, ValueError) as e:  # a broken pipe: the helper is gone
            raise HelperGone(str(e)) from None
        self._sizes.append(len(jobs))
        self.sent += 1

    def receive(self) -> bytes:
        """The answers to the oldest batch in flight, one byte per job (LINKED or not)."""
        expected = self._sizes.popleft()
        stdout = self._proc.stdout
        assert stdout is not None
        try:
            head = stdout.read(8)
            codes = stdout.read(expected) if len(head) == 8 else b""
        except (OSError, ValueError) as e:
            raise HelperGone(str(e)) from None
        if len(head) < 8 or int.from_bytes(head, "little") != expected or len(codes) != expected:
            raise HelperGone("the link helper stopped")
        return codes

    def close(self) -> None:
        """Let the helper finish what it was given and exit; answers not read are dropped
        (the caller has booked or redone every batch by then). A helper that answered every
        batch it was given has nothing left to do: it is killed rather than waited for
        while its Python shuts down (~3 ms at the end of every large hard-link checkout)."""
        if not self._sizes and self._proc.poll() is None:
            self._proc.kill()
        helperproc.stop(self._proc)
        self._sizes.clear()


def start() -> LinkHelper | None:
    """A helper, or None where none can run (the caller links in-process)."""
    try:
        return LinkHelper()
    except HelperGone:
        return None
