"""Findings of a black-box review of status, commit, add, checkout and unprotect: typos
inside tracked directories, partial commits, a deleted cache, nested git repositories,
names that are not UTF-8, error lines in the status table, hints and plurals."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from helpers import (
    assert_error,
    cache_objects,
    commit_all,
    git,
    mlv,
    read_pointer,
    staged,
    status_json,
    write_files,
    xxh,
)

# ---- a path inside a tracked directory that exists nowhere -------------------------------


def _images(repo: Path) -> None:
    write_files(repo, {"data/images/a.jpg": "a", "data/images/b.jpg": "b", "model.pt": "m"})
    mlv("add", "data/images", "model.pt", cwd=repo)
    commit_all(repo, "v1")


def test_status_of_a_path_neither_pointer_nor_workspace_has_is_an_error(mlv_repo: Path) -> None:
    _images(mlv_repo)
    for flags in ((), ("--check",), ("--json",)):
        proc = mlv("status", *flags, "data/images/nonexist", cwd=mlv_repo, check=False)
        line = assert_error(proc, 2, "data/images/nonexist", "not tracked", "data/images.mlv")
        assert "mlv ls data/images" in line
        assert proc.stdout == ""
    # from a subfolder, with a relative path, the same
    proc = mlv("status", "nonexist", cwd=mlv_repo / "data" / "images", check=False)
    assert_error(proc, 2, "data/images/nonexist", "data/images.mlv")


def test_status_of_one_file_inside_a_tracked_directory(mlv_repo: Path) -> None:
    _images(mlv_repo)
    assert mlv("status", "data/images/a.jpg", cwd=mlv_repo).stdout.splitlines() == [
        "clean        data/images/a.jpg"
    ]
    # a new file there is added (it exists in the workspace), an edited one modified
    write_files(mlv_repo, {"data/images/new.jpg": "new"})
    (mlv_repo / "data" / "images" / "b.jpg").write_text("B")
    new = status_json(mlv_repo, "data/images/new.jpg")["targets"][0]
    assert (new["status"], new["added"]) == ("modified", ["data/images/new.jpg"])
    edited = status_json(mlv_repo, "data/images/b.jpg")["targets"][0]
    assert (edited["status"], edited["modified"]) == ("modified", ["data/images/b.jpg"])
    check = mlv("status", "--check", "data/images/new.jpg", cwd=mlv_repo, check=False)
    assert check.returncode == 1
    assert mlv("status", "--check", "data/images/a.jpg", cwd=mlv_repo).returncode == 0


def test_unprotect_and_checkout_of_a_path_the_pointer_lacks(mlv_repo: Path) -> None:
    _images(mlv_repo)
    proc = mlv("unprotect", "data/images/nonexist", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "data/images/nonexist", "not tracked", "data/images.mlv")
    assert proc.stdout == ""
    proc = mlv("checkout", "data/images/nonexist", cwd=mlv_repo, check=False)
    line = assert_error(proc, 2, "data/images/nonexist", "data/images.mlv")
    assert "mlv ls data/images" in line
    # a path the pointer has still works, missing from the workspace or not
    (mlv_repo / "data" / "images" / "a.jpg").unlink()
    assert mlv("unprotect", "data/images/a.jpg", cwd=mlv_repo).returncode == 0
    mlv("checkout", "data/images/a.jpg", cwd=mlv_repo)
    assert (mlv_repo / "data" / "images" / "a.jpg").read_text() == "a"


# ---- commit: partial success, and a deleted cache ----------------------------------------


def test_commit_reports_what_it_recorded_before_the_failure(mlv_repo: Path) -> None:
    _images(mlv_repo)
    (mlv_repo / "data" / "images" / "a.jpg").write_text("edited")
    (mlv_repo / "model.pt").unlink()
    proc = mlv("commit", cwd=mlv_repo, check=False)
    assert proc.stdout.splitlines() == ["Recorded data/images -> data/images.mlv"]
    assert_error(proc, 1, "model.pt", "missing from the workspace")
    assert staged(mlv_repo) == ["data/images.mlv"]
    assert read_pointer(mlv_repo / "model.pt.mlv")["hash"] == xxh(b"m")

    # --json: the document of what was recorded, then the error
    (mlv_repo / "data" / "images" / "b.jpg").write_text("edited too")
    proc = mlv("commit", "--json", cwd=mlv_repo, check=False)
    assert_error(proc, 1, "model.pt")
    doc = json.loads(proc.stdout)
    assert [(r["path"], r["changed"]) for r in doc] == [("data/images", True)]


def test_commit_of_one_missing_target_prints_only_the_error(mlv_repo: Path) -> None:
    _images(mlv_repo)
    (mlv_repo / "model.pt").unlink()
    proc = mlv("commit", "model.pt", cwd=mlv_repo, check=False)
    assert_error(proc, 1, "model.pt", "mlv checkout")
    assert proc.stdout == ""


def test_commit_after_the_cache_was_deleted_says_it_stored_objects(mlv_repo: Path) -> None:
    _images(mlv_repo)
    shutil.rmtree(mlv_repo / ".mlv" / "cache")
    assert "`mlv commit` stores them" in mlv("status", cwd=mlv_repo, check=False).stdout
    proc = mlv("commit", cwd=mlv_repo)
    assert proc.stdout.splitlines() == [
        "Stored the objects missing from the cache for data/images, model.pt; pointers unchanged."
    ]
    assert staged(mlv_repo) == []
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0
    assert mlv("commit", cwd=mlv_repo).stdout.strip() == "Nothing changed."


# ---- nested git repositories -------------------------------------------------------------


def test_nested_git_repository_is_not_tracked(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"ext/f.txt": "f", "ext/sub/g.txt": "g"})
    git("init", "-q", cwd=mlv_repo / "ext")
    (mlv_repo / "ext" / "sub" / ".git").write_text("gitdir: ../../.git/modules/sub\n")
    proc = mlv("add", "ext", cwd=mlv_repo)
    assert "(2 files, 2 B)" in proc.stdout
    assert read_pointer(mlv_repo / "ext.mlv")["files"] == 2
    assert len(cache_objects(mlv_repo)) == 2 + 2  # two files, two trees
    # changes in .git are not changes of the data: status and commit agree
    (mlv_repo / "ext" / ".git" / "HEAD").write_text("ref: refs/heads/other\n")
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0
    assert mlv("commit", cwd=mlv_repo).stdout.strip() == "Nothing changed."
    # checkout restores the data and leaves .git alone
    (mlv_repo / "ext" / "f.txt").unlink()
    mlv("checkout", "ext", cwd=mlv_repo)
    assert (mlv_repo / "ext" / "f.txt").read_text() == "f"
    assert (mlv_repo / "ext" / ".git" / "HEAD").read_text() == "ref: refs/heads/other\n"
    assert (mlv_repo / "ext" / "sub" / ".git").is_file()
    # naming something in a .git folder is refused
    write_files(mlv_repo, {"other/.git/x": "x"})
    proc = mlv("add", "other/.git", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "other/.git", ".git")


# ---- names that are not UTF-8 ------------------------------------------------------------


def test_top_level_name_not_utf8(mlv_repo: Path) -> None:
    bad = os.fsdecode(b"top\xfe")
    (mlv_repo / bad).write_text("x")
    proc = mlv("add", bad, cwd=mlv_repo, check=False)
    line = assert_error(proc, 1, "top\\xfe", "not valid UTF-8", "rename it")
    assert "b'" not in line and "internal error" not in line
    assert not (mlv_repo / os.fsdecode(b"top\xfe.mlv")).exists()
    for command in ("status", "commit", "checkout", "unprotect"):
        proc = mlv(command, bad, cwd=mlv_repo, check=False)
        line = assert_error(proc, 2, "top\\xfe", "not tracked")
        assert "internal error" not in line


def test_name_inside_a_tracked_directory_not_utf8_is_shown_readably(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a"})
    (mlv_repo / "data" / os.fsdecode(b"in\xfe")).write_text("x")
    line = assert_error(mlv("add", "data", cwd=mlv_repo, check=False), 1, "not valid UTF-8")
    assert "data/in\\xfe:" in line and "b'" not in line and str(mlv_repo) not in line


# ---- status text: error lines, and where the workspace came from -------------------------


def test_status_text_has_a_line_for_a_target_in_error(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"dd/a.txt": "a", "m.txt": "m"})
    mlv("add", "dd", "m.txt", cwd=mlv_repo)
    os.symlink("nowhere", mlv_repo / "dd" / "dangling")
    proc = mlv("status", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("error        dd  (dd/dangling: dangling symbolic link"), lines
    assert lines[1] == "clean        m.txt"
    assert proc.stderr.startswith("error: dd/dangling")


def test_status_hints_checkout_after_git_checkout_of_an_old_commit(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a1", "m.txt": "m1"})
    mlv("add", "data", "m.txt", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    write_files(mlv_repo, {"data/a.txt": "a2", "m.txt": "m2"})
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    git("checkout", "-q", "HEAD~1", cwd=mlv_repo)  # pointers move, the data stays
    hint = "[the workspace holds another recorded version: run `mlv checkout`"
    lines = mlv("status", cwd=mlv_repo).stdout.splitlines()
    assert lines[0].startswith("modified     data  (0 added, 1 modified, 0 deleted)  " + hint)
    assert lines[-1].startswith("modified     m.txt  " + hint)
    # an edit never recorded gets no such hint
    mlv("checkout", cwd=mlv_repo)
    (mlv_repo / "m.txt").chmod(0o644)
    (mlv_repo / "m.txt").write_text("m3")
    assert mlv("status", "m.txt", cwd=mlv_repo).stdout.splitlines() == ["modified     m.txt"]


# ---- counts ------------------------------------------------------------------------------


def test_one_file_is_singular(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a"})
    assert mlv("add", "data", cwd=mlv_repo).stdout.splitlines()[0] == (
        "Added data (1 file, 1 B) -> data.mlv"
    )
    (mlv_repo / "data" / "a.txt").unlink()
    assert mlv("checkout", cwd=mlv_repo).stdout.strip() == "Restored 1 file, removed 0."
