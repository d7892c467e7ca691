"""Secrets kept for this machine: written only to a config.local.yaml that git ignores and
does not track, and sent only where the file that holds them sends them.

Review findings 3 and 4: `mlv remote modify --local` (the command mlv's own refusal
suggests) wrote a password into a config.local.yaml that a clone committed, or that its
.mlv/.gitignore left out (`git add -A` then committed it); and a header stored with
--local for remote `web` went to whatever host a later commit put in the committed url.
Real git, real mlv, real HTTP servers on loopback.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_error, commit_all, git, mlv, write_files

# ---- finding 3: the local config is one git neither tracks nor would add ----------------

TRACKED = ".mlv/config.local.yaml is tracked by git"


def _clone(src: Path, tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    git("clone", "-q", str(src), str(clone), cwd=tmp_path)
    return clone


WRITES = [
    ("remote", "modify", "--local", "origin", "password", "hunter2"),
    ("config", "--local", "remote.origin.secret_access_key", "hunter2"),
    ("remote", "add", "--local", "mine", "s3://bucket/hunter2"),
    ("remote", "default", "--local", "origin"),
    ("config", "--local", "--unset", "core.hash"),
]


@pytest.mark.parametrize("args", WRITES, ids=" ".join)
def test_a_tracked_config_local_yaml_is_not_written(
    mlv_repo: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    mlv("remote", "add", "-d", "origin", "s3://bucket/x", cwd=mlv_repo)
    write_files(mlv_repo, {".mlv/config.local.yaml": "core:\n  hash: xxh128\n"})
    git("add", "-f", ".mlv/config.local.yaml", cwd=mlv_repo)
    commit_all(mlv_repo, "a clone that commits this machine's config")
    clone = _clone(mlv_repo, tmp_path)
    before = (clone / ".mlv" / "config.local.yaml").read_text()
    line = assert_error(
        mlv(*args, cwd=clone, check=False),
        1,
        TRACKED,
        "`git rm -r --cached .mlv/config.local.yaml`",
    )
    assert "hunter2" not in line
    assert (clone / ".mlv" / "config.local.yaml").read_text() == before
    assert git("diff", cwd=clone).stdout == ""
    # the hint, then the command works and the file stays out of git
    hint = line.split("`")[1]
    git(*hint.split()[1:], cwd=clone)
    git("commit", "-q", "-m", "untrack", cwd=clone)
    mlv(*args, cwd=clone)
    assert git("status", "--porcelain", cwd=clone).stdout == ""
    git("add", "-A", cwd=clone)
    assert "config.local.yaml" not in git("diff", "--cached", "--name-only", cwd=clone).stdout


def test_a_tracked_config_local_yaml_in_a_subfolder_is_named_from_there(
    mlv_repo: Path, tmp_path: Path
) -> None:
    mlv("remote", "add", "-d", "origin", "s3://bucket/x", cwd=mlv_repo)
    write_files(mlv_repo, {".mlv/config.local.yaml": "", "sub/keep.txt": "x"})
    git("add", "-f", ".mlv/config.local.yaml", cwd=mlv_repo)
    commit_all(mlv_repo)
    clone = _clone(mlv_repo, tmp_path)
    sub = clone / "sub"
    line = assert_error(
        mlv("remote", "modify", "--local", "origin", "token", "t0k", cwd=sub, check=False),
        1,
        "../.mlv/config.local.yaml is tracked by git",
    )
    git(*line.split("`")[1].split()[1:], cwd=clone / "sub")  # the hint, from there
    git("commit", "-q", "-m", "untrack", cwd=clone)
    mlv("remote", "modify", "--local", "origin", "token", "t0k", cwd=clone / "sub")


@pytest.mark.parametrize("gitignore", ["without the line", "absent", "a link"])
def test_the_ignore_line_is_restored_before_a_secret_is_written(
    mlv_repo: Path, tmp_path: Path, gitignore: str
) -> None:
    """A clone whose .mlv/.gitignore leaves config.local.yaml out: the secret appeared as
    `?? .mlv/config.local.yaml`, which `git add -A` committed."""
    mlv("remote", "add", "-d", "origin", "s3://bucket/x", cwd=mlv_repo)
    ignore = mlv_repo / ".mlv" / ".gitignore"
    outside = tmp_path / "outside-ignore"
    outside.write_text("/cache/\n")
    if gitignore == "without the line":
        ignore.write_text("/cache/\n/tmp/")  # no newline at the end either
    elif gitignore == "absent":
        ignore.unlink()
        write_files(mlv_repo, {".gitignore": ".mlv/cache/\n.mlv/tmp/\n"})
    else:
        ignore.unlink()
        ignore.symlink_to(outside)  # git reads no .gitignore through a link
    commit_all(mlv_repo, "a .gitignore that lets the local config through")
    clone = _clone(mlv_repo, tmp_path)
    proc = mlv("remote", "modify", "--local", "origin", "password", "hunter2", cwd=clone)
    assert "Added /config.local.yaml to .mlv/.gitignore" in proc.stdout
    ignore = clone / ".mlv" / ".gitignore"
    assert not ignore.is_symlink()
    assert "/config.local.yaml" in ignore.read_text().splitlines()
    assert outside.read_text() == "/cache/\n"
    status = git("status", "--porcelain", cwd=clone).stdout
    assert "config.local.yaml" not in status and ".mlv/.gitignore" in status
    git("add", "-A", cwd=clone)
    git("commit", "-q", "-m", "wip", cwd=clone)
    assert "hunter2" not in git("log", "-p", cwd=clone).stdout
    # once ignored, no note and no change
    proc = mlv("remote", "modify", "--local", "origin", "token", "t0k", cwd=clone)
    assert proc.stdout == "" and git("status", "--porcelain", cwd=clone).stdout == ""
