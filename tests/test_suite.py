"""The test suite's own plumbing (tests/conftest.py, tests/prebuilt.py): slow tests out of a
plain `pytest` but in CI's, and fixture data built once whose copies tests cannot share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import git, write_files
from prebuilt import Prebuilt, make_git_repo

ROOT = Path(__file__).resolve().parents[1]
SLOW_MODULE = "tests/e2e/test_lock.py"  # two tests, both marked slow


def _collect(*args: str, ci: str | None) -> str:
    env = dict(os.environ)
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.stdout


def test_slow_tests_are_left_out_of_a_plain_run_unless_named() -> None:
    named = "tests/e2e/test_init_add.py::test_file_over_4_gib_sparse"  # slow, asked for
    for ci in (None, "false"):
        out = _collect(SLOW_MODULE, named, ci=ci)
        assert "2 slow tests deselected: run them with --run-slow (CI=true runs them)" in out
        assert "1/3 tests collected (2 deselected)" in out, out


@pytest.mark.parametrize(("args", "ci"), [((), "true"), (("--run-slow",), None)])
def test_slow_tests_run_in_ci_or_when_asked(args: tuple[str, ...], ci: str | None) -> None:
    out = _collect(SLOW_MODULE, *args, ci=ci)
    assert "slow tests deselected" not in out
    assert "2 tests collected" in out, out


def test_prebuilt_copies_are_private_and_keep_absolute_paths(tmp_path: Path) -> None:
    built = tmp_path / "built"
    repo = make_git_repo(built / "repo")
    write_files(repo, {"where.txt": str(built / "remote"), "data.txt": "as built"})
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "built", cwd=repo)
    (built / "remote").mkdir()
    prebuilt = Prebuilt(built)

    # a copy at the built path: the absolute path baked in names the copy's own remote
    first = prebuilt.copy()
    assert first == built
    assert Path((first / "repo/where.txt").read_text()) == first / "remote"
    (first / "repo/data.txt").write_text("changed by a test")
    (first / "remote/object").write_text("pushed by a test")
    (first / "remote").chmod(0o500)  # a test may leave a folder it cannot write
    second = prebuilt.copy()
    assert (second / "repo/data.txt").read_text() == "as built"
    assert list((second / "remote").iterdir()) == []
    # git's index is fresh in the copy: nothing looks modified
    assert git("diff-files", "--name-only", cwd=second / "repo").stdout == ""

    # copied into another folder: the same layout beside what the test has there
    other = tmp_path / "other"
    other.mkdir()
    prebuilt.copy_into(other)
    assert sorted(p.name for p in other.iterdir()) == ["remote", "repo"]
    assert (other / "repo/data.txt").read_text() == "as built"
    assert git("diff-files", "--name-only", cwd=other / "repo").stdout == ""
