"""Git questions asked ahead (mlv.git._start, Repo.ask_git_ahead): status starts its two
`git ls-files` before it imports and reads, and the calls that need them take the answers.
An answer taken that way is the one a fresh call gives, a failure included, and a question
nobody took is ended with the repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import git, mlv

from mlv import git as mlv_git
from mlv.core.repo import Repo
from mlv.errors import GitError


def test_an_answer_asked_ahead_is_the_fresh_one_and_is_taken_once(mlv_repo: Path) -> None:
    (mlv_repo / "a.mlv").write_text("x")
    (mlv_repo / "sub").mkdir()
    (mlv_repo / "sub" / "b.mlv").write_text("x")
    git("add", "a.mlv", cwd=mlv_repo)  # one tracked, one untracked
    root = str(mlv_repo)
    fresh = mlv_git.list_files(root, "*.mlv")
    assert fresh == ["a.mlv", "sub/b.mlv"]
    mlv_git.start_list_files(root, "*.mlv")
    mlv_git.start_tracked_files(root, [".mlv"])
    assert len(mlv_git._STARTED) == 2
    assert mlv_git.list_files(root, "*.mlv") == fresh
    assert mlv_git.tracked_files(root, [".mlv"]) == [".mlv/.gitignore", ".mlv/config.yaml"]
    assert mlv_git._STARTED == {}
    # another question (another pattern) is not answered by one asked ahead
    mlv_git.start_list_files(root, "*.mlv")
    assert mlv_git.list_files(root, "sub/*") == ["sub/b.mlv"]
    mlv_git.forget_started()
    assert mlv_git._STARTED == {}


def test_a_failure_asked_ahead_is_reported_as_a_fresh_one(tmp_path: Path) -> None:
    outside = str(tmp_path)  # no git repository here
    with pytest.raises(GitError) as fresh:
        mlv_git.tracked_files(outside, [".mlv"])
    mlv_git.start_tracked_files(outside, [".mlv"])
    with pytest.raises(GitError) as ahead:
        mlv_git.tracked_files(outside, [".mlv"])
    assert ahead.value.text() == fresh.value.text()
    assert mlv_git._STARTED == {}


def test_questions_no_call_took_end_with_the_repository(mlv_repo: Path) -> None:
    repo = Repo(str(mlv_repo))
    repo.ask_git_ahead()
    started = list(mlv_git._STARTED.values())
    assert len(started) == 2
    repo.close()
    assert mlv_git._STARTED == {}
    assert all(p.returncode is not None for p in started)  # reaped, no zombie left


def test_status_with_the_cache_inside_the_repository_asks_its_own_question(
    mlv_repo: Path,
) -> None:
    """cache.dir inside the repository: the check of mlv's own files asks about the cache
    too, not the question asked ahead (about .mlv alone), and still refuses a cache that
    git tracks."""
    mlv("config", "cache.dir", "store", cwd=mlv_repo)
    (mlv_repo / "f.txt").write_text("data")
    mlv("add", "f.txt", cwd=mlv_repo)
    assert mlv("status", cwd=mlv_repo).stdout == "clean        f.txt\n"
    (mlv_repo / "store" / "planted").write_text("x")
    git("add", "-f", "store/planted", cwd=mlv_repo)
    proc = mlv("status", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "store is tracked by git" in proc.stderr, proc.stderr
    assert mlv_git._STARTED == {}
