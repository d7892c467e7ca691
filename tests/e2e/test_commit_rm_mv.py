"""`mlv commit`, `mlv rm` and `mlv mv`: pointers, data, .gitignore and git's index in step."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from helpers import (
    assert_error,
    commit_all,
    commit_images,
    git,
    index_files,
    mlv,
    object_path,
    read_pointer,
    snapshot,
    staged,
    target_status,
    write_files,
    xxh,
)

# ---- commit -------------------------------------------------------------------------------


def test_commit_records_workspace_edits(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a", "data/b.txt": "b", "m.bin": "m1"})
    mlv("add", "data", "m.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    old_tree = read_pointer(mlv_repo / "data.mlv")["hash"]
    (mlv_repo / "data" / "a.txt").write_text("a, edited")
    (mlv_repo / "data" / "b.txt").unlink()
    write_files(mlv_repo, {"data/c.txt": "c"})
    (mlv_repo / "m.bin").write_text("m2")

    proc = mlv("commit", cwd=mlv_repo)
    assert proc.stdout.splitlines() == ["Recorded data -> data.mlv", "Recorded m.bin -> m.bin.mlv"]
    ptr = read_pointer(mlv_repo / "data.mlv")
    assert ptr["hash"] != old_tree
    assert (ptr["files"], ptr["size"]) == (2, len("a, edited") + 1)
    assert read_pointer(mlv_repo / "m.bin.mlv")["hash"] == xxh(b"m2")
    assert object_path(mlv_repo, xxh(b"a, edited")).read_bytes() == b"a, edited"
    assert staged(mlv_repo) == ["data.mlv", "m.bin.mlv"]
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0
    assert mlv("commit", cwd=mlv_repo).stdout.strip() == "Nothing changed."


def test_commit_named_target_only(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"a.txt": "a", "b.txt": "b"})
    mlv("add", "a.txt", "b.txt", cwd=mlv_repo)
    (mlv_repo / "a.txt").write_text("A")
    (mlv_repo / "b.txt").write_text("B")
    doc = json.loads(mlv("commit", "--json", "a.txt.mlv", cwd=mlv_repo).stdout)
    assert [(r["path"], r["changed"]) for r in doc] == [("a.txt", True)]
    assert read_pointer(mlv_repo / "a.txt.mlv")["hash"] == xxh(b"A")
    assert read_pointer(mlv_repo / "b.txt.mlv")["hash"] == xxh(b"b")


def test_commit_keeps_desc_and_meta(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"a.txt": "a"})
    mlv("add", "--desc", "the a file", "a.txt", cwd=mlv_repo)
    ptr_file = mlv_repo / "a.txt.mlv"
    ptr_file.write_text(ptr_file.read_text() + "meta:\n  owner: ana\n  tags: [x, y]\n")
    (mlv_repo / "a.txt").write_text("a2")
    mlv("commit", cwd=mlv_repo)
    ptr = read_pointer(ptr_file)
    assert ptr["desc"] == "the a file"
    assert ptr["meta"] == {"owner": "ana", "tags": ["x", "y"]}
    assert ptr["hash"] == xxh(b"a2")


def test_commit_refusals(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/sub/a.txt": "a"})
    mlv("add", "data", cwd=mlv_repo)
    before = (mlv_repo / "data.mlv").read_bytes()
    line = assert_error(mlv("commit", "data/sub", cwd=mlv_repo, check=False), 2, "data/sub")
    assert "mlv commit data" in line
    assert_error(mlv("commit", "untracked", cwd=mlv_repo, check=False), 2, "not tracked")
    import shutil

    shutil.rmtree(mlv_repo / "data")
    assert_error(mlv("commit", cwd=mlv_repo, check=False), 1, "data", "mlv checkout")
    assert (mlv_repo / "data.mlv").read_bytes() == before


# ---- rm -----------------------------------------------------------------------------------


def test_rm_keeps_data_removes_pointer_and_gitignore_line(mlv_repo: Path) -> None:
    write_files(mlv_repo, {".gitignore": "*.log\n", "data/a.txt": "a", "m.bin": "m"})
    mlv("add", "data", "m.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "tracked")
    before = snapshot(mlv_repo / "data")
    proc = mlv("rm", "data", cwd=mlv_repo)
    assert "data" in proc.stdout
    assert not (mlv_repo / "data.mlv").exists()
    assert snapshot(mlv_repo / "data") == before
    assert os.access(mlv_repo / "data" / "a.txt", os.W_OK)
    assert (mlv_repo / ".gitignore").read_text() == "*.log\n/m.bin\n"
    assert "data.mlv" not in index_files(mlv_repo)
    assert staged(mlv_repo) == [".gitignore", "data.mlv"]  # a staged deletion and an edit
    assert git("check-ignore", "-q", "data", cwd=mlv_repo, check=False).returncode == 1
    # the object stays in the cache (until gc)
    assert object_path(mlv_repo, xxh(b"a")).is_file()


def test_rm_given_pointer_path_and_last_gitignore_line(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"sub/m.bin": "m"})
    mlv("add", "sub/m.bin", cwd=mlv_repo)
    mlv("rm", "m.bin.mlv", cwd=mlv_repo / "sub")
    assert not (mlv_repo / "sub" / "m.bin.mlv").exists()
    assert (mlv_repo / "sub" / "m.bin").read_text() == "m"
    assert not (mlv_repo / "sub" / ".gitignore").exists()  # emptied, so removed
    assert [p for p in index_files(mlv_repo) if p.startswith("sub/")] == []


def test_rm_outs_deletes_data(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a", "m.bin": "m"})
    mlv("add", "data", "m.bin", cwd=mlv_repo)
    mlv("rm", "--outs", "data", "m.bin", cwd=mlv_repo)
    assert not (mlv_repo / "data").exists()
    assert not (mlv_repo / "m.bin").exists()
    assert not (mlv_repo / "data.mlv").exists()
    assert not (mlv_repo / "m.bin.mlv").exists()
    assert not (mlv_repo / ".gitignore").exists()
    assert object_path(mlv_repo, xxh(b"a")).is_file()


def test_rm_refusals(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/sub/a.txt": "a"})
    mlv("add", "data", cwd=mlv_repo)
    before = (mlv_repo / "data.mlv").read_bytes()
    assert_error(mlv("rm", "data/sub", cwd=mlv_repo, check=False), 2, "data/sub", "mlv rm data")
    assert_error(mlv("rm", "other", cwd=mlv_repo, check=False), 2, "other", "not tracked")
    assert (mlv_repo / "data.mlv").read_bytes() == before
    assert (mlv_repo / "data" / "sub" / "a.txt").read_text() == "a"


# ---- mv -----------------------------------------------------------------------------------


def test_mv_renames_data_pointer_gitignore_and_index(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a", "keep.bin": "k"})
    mlv("add", "data", "keep.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "tracked")
    ptr_before = read_pointer(mlv_repo / "data.mlv")
    content = snapshot(mlv_repo / "data")
    mlv("mv", "data", "dataset", cwd=mlv_repo)
    assert not (mlv_repo / "data").exists() and not (mlv_repo / "data.mlv").exists()
    assert snapshot(mlv_repo / "dataset") == content
    assert read_pointer(mlv_repo / "dataset.mlv") == {**ptr_before, "path": "dataset"}
    assert (mlv_repo / ".gitignore").read_text() == "/keep.bin\n/dataset\n"
    files = index_files(mlv_repo)
    assert "dataset.mlv" in files and "data.mlv" not in files
    assert target_status(mlv_repo, "dataset")["status"] == "clean"


def test_mv_into_other_folder_by_pointer_name(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"m.bin": "m", "models/README": "r"})
    mlv("add", "m.bin", cwd=mlv_repo)
    mlv("mv", "m.bin.mlv", "models", cwd=mlv_repo)
    assert (mlv_repo / "models" / "m.bin").read_text() == "m"
    assert read_pointer(mlv_repo / "models" / "m.bin.mlv")["path"] == "m.bin"
    assert (mlv_repo / "models" / ".gitignore").read_text() == "/m.bin\n"
    assert not (mlv_repo / ".gitignore").exists()
    files = index_files(mlv_repo)
    assert "models/m.bin.mlv" in files and "models/.gitignore" in files
    assert "m.bin.mlv" not in files and ".gitignore" not in files
    assert target_status(mlv_repo, "models/m.bin")["status"] == "clean"


def test_mv_refusals_change_nothing(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"a/x.txt": "x", "b.txt": "b", "taken": "t"})
    mlv("add", "a", "b.txt", cwd=mlv_repo)
    before = {k: v for k, v in snapshot(mlv_repo).items() if not k.startswith(".git/")}
    before = {k: v for k, v in before.items() if not k.startswith(".mlv/tmp")}
    assert_error(mlv("mv", "b.txt", "taken", cwd=mlv_repo, check=False), 2, "already exists")
    assert_error(mlv("mv", "b.txt", "a/inside", cwd=mlv_repo, check=False), 2, "tracked")
    assert_error(mlv("mv", "a", ".mlv/x", cwd=mlv_repo, check=False), 2, ".mlv/x")
    assert_error(mlv("mv", "nope", "z", cwd=mlv_repo, check=False), 2, "not tracked")
    after = {k: v for k, v in snapshot(mlv_repo).items() if not k.startswith(".git/")}
    after = {k: v for k, v in after.items() if not k.startswith(".mlv/tmp")}
    assert after == before


# ---- commit: partial success, and a deleted cache --------------------------------------------


def test_commit_reports_what_it_recorded_before_the_failure(mlv_repo: Path) -> None:
    commit_images(mlv_repo)
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
    commit_images(mlv_repo)
    (mlv_repo / "model.pt").unlink()
    proc = mlv("commit", "model.pt", cwd=mlv_repo, check=False)
    assert_error(proc, 1, "model.pt", "mlv checkout")
    assert proc.stdout == ""


def test_commit_after_the_cache_was_deleted_says_it_stored_objects(mlv_repo: Path) -> None:
    commit_images(mlv_repo)
    shutil.rmtree(mlv_repo / ".mlv" / "cache")
    assert "`mlv commit` stores them" in mlv("status", cwd=mlv_repo, check=False).stdout
    proc = mlv("commit", cwd=mlv_repo)
    assert proc.stdout.splitlines() == [
        "Stored the objects missing from the cache for data/images, model.pt; pointers unchanged."
    ]
    assert staged(mlv_repo) == []
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0
    assert mlv("commit", cwd=mlv_repo).stdout.strip() == "Nothing changed."
