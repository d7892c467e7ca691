"""mlv started with descriptor 0, 1 or 2 closed (`mlv status >&-`, a daemon or a cron job
without output), as git handles it (sanitize_stdfds): /dev/null takes the closed number.

Before, Python left sys.stdout None and every command stopped on "internal error:
AttributeError", and the next file mlv opened took the free number, so that a child
inheriting it (a stage's command) could write into it. Each test runs the real `mlv`
through /bin/sh with a descriptor closed, and checks what a script would notice: the exit
code the same command gives with its descriptors open, and that no file of the repository
changed or took in a byte of output.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from helpers import MLV, mlv, snapshot, write_files

STAGE = "printf 'OUT-%s\\n' said; printf 'ERR-%s\\n' said >&2; cp in.txt out.txt"


def _sh(repo: Path, args: list[str], redirect: str) -> subprocess.CompletedProcess[str]:
    """`mlv ARGS REDIRECT` through /bin/sh (`>&-` closes stdout); stderr kept when open."""
    line = " ".join(shlex.quote(a) for a in [MLV, *args]) + " " + redirect
    return subprocess.run(
        ["/bin/sh", "-c", line], cwd=repo, capture_output=True, text=True, check=False
    )


def _mine(repo: Path) -> dict[str, bytes | str]:
    """The repository's files but git's and mlv's own bookkeeping (the index, the state
    database), which a status may refresh."""
    return {
        k: v
        for k, v in snapshot(repo).items()
        if not k.startswith((".git/", ".mlv/tmp/", ".mlv/cache/"))
    }


@pytest.mark.parametrize("redirect", [">&-", "2>&-", "<&-", "<&- >&- 2>&-"])
@pytest.mark.parametrize(
    "args",
    [["status"], ["status", "--check"], ["status", "--"], ["ls"], ["status", "nope"]],
    ids=["fast-status", "fast-check", "click-status", "ls", "usage-error"],
)
def test_a_closed_std_descriptor_changes_no_exit_code(
    mlv_repo: Path, args: list[str], redirect: str
) -> None:
    write_files(mlv_repo, {"data/a.txt": "a", "f.txt": "f"})
    mlv("add", "data", "f.txt", cwd=mlv_repo)
    (mlv_repo / "f.txt").write_text("edited")  # status --check fails: exit 1
    expected = _sh(mlv_repo, args, "")
    assert expected.returncode == {"--check": 1, "nope": 2}.get(args[-1], 0), expected
    before = _mine(mlv_repo)
    proc = _sh(mlv_repo, args, redirect)
    assert proc.returncode == expected.returncode, proc
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    if ">&-" not in redirect:  # stdout open
        assert proc.stdout == expected.stdout
    assert _mine(mlv_repo) == before


@pytest.mark.parametrize("quiet", [[], ["-q"]], ids=["plain", "quiet"])
@pytest.mark.parametrize("redirect", [">&-", "2>&-"])
def test_a_stage_run_with_a_closed_descriptor_writes_into_no_file(
    mlv_repo: Path, quiet: list[str], redirect: str
) -> None:
    """A stage's command inherits mlv's stdout and stderr: with one closed, the file mlv
    had opened under that number (a lock, mlv.lock) would have received its output."""
    write_files(mlv_repo, {"in.txt": "x\n"})
    mlv("stage", "add", "-q", "s", "-d", "in.txt", "-o", "out.txt", "--", "sh", "-c", STAGE,
        cwd=mlv_repo)  # fmt: skip
    proc = _sh(mlv_repo, [*quiet, "repro", "-f"], redirect)
    assert proc.returncode == 0, proc
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (mlv_repo / "out.txt").read_text() == "x\n"
    for name, content in snapshot(mlv_repo).items():
        data = content if isinstance(content, bytes) else content.encode()
        assert b"OUT-said" not in data and b"ERR-said" not in data, name
    assert "clean" in mlv("status", cwd=mlv_repo).stdout
