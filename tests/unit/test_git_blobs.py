"""git.read_blobs: history is untrusted, so a file of any size under a name mlv parses is
refused before it is held, and everything else still comes back through one process."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import git, mlv

from mlv import git as mlv_git
from mlv.errors import GitError


def _commit_big(repo: Path, name: str, size: int) -> str:
    with open(repo / name, "wb") as f:  # compresses to a few kB in git, not in memory
        f.write(b'{"acc": 1' + b" " * size + b"}")
    git("add", name, cwd=repo)
    git("commit", "-qm", f"big {name}", cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def test_small_missing_and_many_blobs_come_back(git_repo: Path) -> None:
    for i in range(300):  # more output than one pipe holds while stdin is still written
        (git_repo / f"f{i}.txt").write_text(f"{i}\n" * 200)
    git("add", ".", cwd=git_repo)
    git("commit", "-qm", "files", cwd=git_repo)
    specs = [f"HEAD:f{i}.txt" for i in range(300)] + ["HEAD:absent.txt"]
    blobs = mlv_git.read_blobs(str(git_repo), specs)
    assert len(blobs) == 300 and "HEAD:absent.txt" not in blobs
    assert blobs["HEAD:f7.txt"] == b"7\n" * 200


def test_a_blob_over_the_limit_is_refused_by_name_unless_asked_for(git_repo: Path) -> None:
    rev = _commit_big(git_repo, "metrics.json", 3 << 20)
    with pytest.raises(GitError) as err:
        mlv_git.read_blobs(str(git_repo), ["HEAD:metrics.json"], limit=1 << 20)
    assert "HEAD:metrics.json" in err.value.message and "1 MiB" in err.value.message
    # the hint is a command that shows the commit
    shown = subprocess.run(
        err.value.hint.split("`")[1].split(), cwd=git_repo, capture_output=True, text=True
    )
    assert shown.returncode == 0 and "metrics.json" in shown.stdout
    whole = mlv_git.read_blobs(str(git_repo), ["HEAD:metrics.json"], limit=None)
    assert len(whole["HEAD:metrics.json"]) == (3 << 20) + 10
    assert rev


def test_metrics_of_a_commit_with_a_huge_file_is_one_line_not_memory(mlv_repo: Path) -> None:
    (mlv_repo / "mlv.yaml").write_text("stages:\n  s:\n    cmd: echo hi\n    metrics: [m.json]\n")
    git("add", "mlv.yaml", cwd=mlv_repo)
    _commit_big(mlv_repo, "m.json", (64 << 20) + 1)
    (mlv_repo / "m.json").write_text('{"acc": 1}')
    proc = mlv("metrics", "show", "-A", cwd=mlv_repo, check=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "m.json" in lines[0] and "64 MiB" in lines[0]
