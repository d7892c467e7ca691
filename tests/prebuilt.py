"""Expensive fixture data (a multi-commit history, a source repository with its remote) built
once per module and copied for each test, so tests cannot interfere and none pays the build.

A module-scoped fixture builds in the folder that `module_env` (tests/conftest.py) yields,
under the same isolation as every test, then wraps it in `Prebuilt`; a function-scoped
fixture calls `.copy()` for each test:

    @pytest.fixture(scope="module")
    def built(module_env: Path) -> Prebuilt:
        build_something(module_env)
        return Prebuilt(module_env)

    @pytest.fixture
    def something(built: Prebuilt, tmp_path: Path) -> Path:
        return built.copy(tmp_path / "world")   # or .copy_into(tmp_path), or .copy()

The copy is `cp -a` (modes, times, symbolic and hard links kept). Absolute paths baked into
the build (a remote URL in a committed config, a clone's origin, cache.dir) name the built
folder: build with paths relative to the built folder where the test allows (and copy with
`copy_into(tmp_path)` to keep them right beside what the test makes there), or copy to the
built path itself (`copy()` without a destination), which the next test's copy replaces.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import git, mlv


def make_git_repo(repo: Path) -> Path:
    """A fresh git repository at repo (created), branch main, with one empty commit."""
    repo.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "initial", cwd=repo)
    return repo


def make_mlv_repo(repo: Path) -> Path:
    """make_git_repo, then `mlv init` (.mlv/ staged, not committed)."""
    make_git_repo(repo)
    mlv("init", cwd=repo)
    return repo


def _cp_a(source: Path, dest: Path) -> None:
    subprocess.run(["cp", "-a", "--", str(source), str(dest)], check=True)


def _remove(folder: Path) -> None:
    """rm -rf, even where a test left a folder without write permission."""
    if subprocess.run(["rm", "-rf", "--", str(folder)], capture_output=True).returncode:
        subprocess.run(["chmod", "-R", "u+rwX", "--", str(folder)], check=True)
        subprocess.run(["rm", "-rf", "--", str(folder)], check=True)


class Prebuilt:
    """A folder built once: kept aside as it is now, copied afresh for each test."""

    def __init__(self, built: Path) -> None:
        self.built = built
        self._pristine = built.with_name(built.name + ".pristine")
        _cp_a(built, self._pristine)
        # git work trees in the copy: the folder itself and its children
        candidates = [self._pristine, *self._pristine.iterdir()]
        self._git_trees = [
            p.relative_to(self._pristine) for p in candidates if (p / ".git").is_dir()
        ]

    def copy(self, dest: Path | None = None) -> Path:
        """A fresh copy of the folder as built, at dest, or at the built path itself (the
        previous copy there is removed)."""
        dest = self.built if dest is None else dest
        if dest.exists() or dest.is_symlink():
            _remove(dest)
        _cp_a(self._pristine, dest)
        self._refresh(dest)
        return dest

    def copy_into(self, folder: Path) -> Path:
        """A fresh copy of what the built folder holds, into folder (which exists and holds
        none of those names): paths relative to the built folder hold in the copy."""
        for child in self._pristine.iterdir():
            _cp_a(child, folder / child.name)
        self._refresh(folder)
        return folder

    def _refresh(self, copy: Path) -> None:
        # git's index as the build left it: the copy's files have new inodes and ctimes
        for tree in self._git_trees:
            git("update-index", "-q", "--refresh", cwd=copy / tree, check=False)
