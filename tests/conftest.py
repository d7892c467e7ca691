"""Shared fixtures: every test runs isolated from the user's machine, in temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import git, mlv
from hypothesis import settings

# Property tests explore the same examples on every run: CI failures are reproducible, and a
# green run is not luck. (Run with HYPOTHESIS_PROFILE=explore to search afresh.)
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """HOME and XDG_CONFIG_HOME in tmp_path, no system git config, a fixed git identity,
    no colours, CI mode, and no MLV_* or GIT_* variables from the caller."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    for name in list(os.environ):
        if name.startswith(("MLV_", "GIT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "mlv tests")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "tests@mlv.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "mlv tests")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "tests@mlv.invalid")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("CI", "true")
    return home


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh git repository with one empty commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "initial", cwd=repo)
    return repo


@pytest.fixture
def mlv_repo(git_repo: Path) -> Path:
    """git_repo after `mlv init` (.mlv/ staged, not committed)."""
    mlv("init", cwd=git_repo)
    return git_repo
