"""`mlv add` refuses what it must not track, with exit 2, one line saying what to do, and
nothing written: no pointer, no .gitignore change, no cache object, no change to git's index."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import assert_error, cache_objects, git, mlv, snapshot, staged, write_files


def _state(repo: Path) -> tuple[object, ...]:
    """Everything add could write (the workspace minus .git, the cache, the index)."""
    work = {k: v for k, v in snapshot(repo).items() if not k.startswith((".git/", ".mlv/tmp"))}
    work.pop(".git", None)
    return work, sorted(cache_objects(repo)), staged(repo)


def test_refuses_path_outside_the_repository(mlv_repo: Path, tmp_path: Path) -> None:
    write_files(tmp_path, {"elsewhere/f.txt": "outside"})
    before = _state(mlv_repo)
    for arg in (str(tmp_path / "elsewhere" / "f.txt"), "../elsewhere/f.txt", "../elsewhere"):
        proc = mlv("add", arg, cwd=mlv_repo, check=False)
        assert_error(proc, 2, "outside the repository")
    assert _state(mlv_repo) == before
    assert not (tmp_path / "elsewhere" / "f.txt.mlv").exists()
    assert (tmp_path / "elsewhere" / "f.txt").read_text() == "outside"


def test_refuses_path_git_already_tracks(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"code.py": "print(1)\n", "src/a.py": "a", "src/b.py": "b"})
    git("add", "code.py", "src/a.py", cwd=mlv_repo)
    before = _state(mlv_repo)
    line = assert_error(mlv("add", "code.py", cwd=mlv_repo, check=False), 2, "tracked by git")
    assert "git rm -r --cached" in line
    # a folder that holds a file git tracks
    assert_error(mlv("add", "src", cwd=mlv_repo, check=False), 2, "src", "tracked by git")
    assert _state(mlv_repo) == before


def test_refuses_mlv_dir_and_git_dir(mlv_repo: Path) -> None:
    before = _state(mlv_repo)
    for arg in (".mlv", ".mlv/config.yaml", ".mlv/", ".git"):
        assert_error(mlv("add", arg, cwd=mlv_repo, check=False), 2, "never tracks")
    sub = mlv_repo / ".mlv" / "tmp"
    assert_error(mlv("add", "../config.yaml", cwd=sub, check=False), 2, "never tracks")
    assert _state(mlv_repo) == before


def test_refuses_repository_root(mlv_repo: Path) -> None:
    before = _state(mlv_repo)
    assert_error(mlv("add", ".", cwd=mlv_repo, check=False), 2, "root")
    assert _state(mlv_repo) == before


def test_refuses_path_inside_tracked_directory(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/sub/a.txt": "a", "data/b.txt": "b"})
    mlv("add", "data", cwd=mlv_repo)
    (mlv_repo / "data" / "sub" / "a.txt").write_text("edited")
    before = _state(mlv_repo)
    for arg in ("data/sub", "data/sub/a.txt", "data/b.txt"):
        line = assert_error(mlv("add", arg, cwd=mlv_repo, check=False), 2, "data.mlv")
        assert "mlv commit data" in line
    assert_error(mlv("add", "a.txt", cwd=mlv_repo / "data" / "sub", check=False), 2, "data.mlv")
    assert _state(mlv_repo) == before


def test_refuses_directory_containing_tracked_path(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"proj/data/a.txt": "a", "proj/notes.txt": "n"})
    mlv("add", "proj/data", cwd=mlv_repo)
    before = _state(mlv_repo)
    line = assert_error(mlv("add", "proj", cwd=mlv_repo, check=False), 2, "proj/data")
    assert "mlv rm" in line
    assert _state(mlv_repo) == before


def test_refuses_pointer_file_and_missing_path(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    before = _state(mlv_repo)
    assert_error(mlv("add", "f.txt.mlv", cwd=mlv_repo, check=False), 2, "pointer file", "f.txt")
    assert_error(mlv("add", "nope.txt", cwd=mlv_repo, check=False), 2, "nope.txt", "no such")
    assert _state(mlv_repo) == before


def test_one_bad_path_among_good_ones_writes_nothing(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"good.txt": "g"})
    before = _state(mlv_repo)
    assert_error(mlv("add", "good.txt", "missing.txt", cwd=mlv_repo, check=False), 2, "missing")
    assert _state(mlv_repo) == before
    assert not (mlv_repo / "good.txt.mlv").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["add"],
        ["add", "--bogus", "x"],
        ["status", "--nope"],
        ["checkout", "--relink=3"],
        ["mv", "only-one"],
        ["no-such-command"],
    ],
)
def test_bad_usage_is_one_line_exit_2(mlv_repo: Path, args: list[str]) -> None:
    before = _state(mlv_repo)
    line = assert_error(mlv(*args, cwd=mlv_repo, check=False), 2)
    assert "--help" in line  # says where to look
    assert _state(mlv_repo) == before
