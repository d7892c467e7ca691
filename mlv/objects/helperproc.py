"""Start and stop the helper processes that take kernel work off mlv's own thread (the
link helper of a hard-link checkout, the write helper of an add): this Python, isolated
(`-I`: no environment variables, user site or current folder on its path; `-S`: no site
packages), running a few lines of code given as text, spoken to over its stdin and
stdout."""

from __future__ import annotations

import subprocess
import sys


def start(code: str) -> subprocess.Popen[bytes]:
    """The helper running code; OSError when it cannot be started (no executable)."""
    if not sys.executable:
        raise OSError("no Python executable to run the helper with")
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Close its pipes, so it finishes what it was given and exits at their end; wait for
    it (killed after 30 s: a helper never takes that long for one batch)."""
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
