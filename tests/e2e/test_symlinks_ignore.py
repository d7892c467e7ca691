"""Symbolic links inside tracked directories (the documented rule: links to files are followed,
links to directories and dangling links are errors) and `.mlvignore`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from helpers import (
    assert_error,
    cache_objects,
    mlv,
    object_path,
    read_pointer,
    snapshot,
    target_status,
    write_files,
    xxh,
)


def test_link_to_file_is_followed_and_checked_out_as_regular_file(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/real.txt": "real", "elsewhere/outside.txt": "outside"})
    os.symlink("real.txt", mlv_repo / "data" / "rel-link")
    os.symlink(mlv_repo / "elsewhere" / "outside.txt", mlv_repo / "data" / "abs-link")
    mlv("add", "data", cwd=mlv_repo)
    assert read_pointer(mlv_repo / "data.mlv")["files"] == 3
    assert object_path(mlv_repo, xxh(b"outside")).read_bytes() == b"outside"
    # the links themselves are left alone by add (default link type)
    assert (mlv_repo / "data" / "rel-link").is_symlink()
    assert (mlv_repo / "elsewhere" / "outside.txt").read_text() == "outside"
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0

    shutil.rmtree(mlv_repo / "data")
    mlv("checkout", cwd=mlv_repo)
    for name, content in (("real.txt", b"real"), ("rel-link", b"real"), ("abs-link", b"outside")):
        path = mlv_repo / "data" / name
        assert not path.is_symlink(), name
        assert path.read_bytes() == content
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0


def test_link_target_edit_shows_as_modified(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/real.txt": "real", "target.txt": "v1"})
    os.symlink(mlv_repo / "target.txt", mlv_repo / "data" / "link")
    mlv("add", "data", cwd=mlv_repo)
    (mlv_repo / "target.txt").write_text("v2")
    assert target_status(mlv_repo, "data")["modified"] == ["data/link"]


def test_link_to_directory_is_an_error(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a", "other/b.txt": "b"})
    os.symlink(mlv_repo / "other", mlv_repo / "data" / "dirlink")
    objects = sorted(cache_objects(mlv_repo))
    line = assert_error(mlv("add", "data", cwd=mlv_repo, check=False), 1, "data/dirlink")
    assert ".mlvignore" in line
    assert not (mlv_repo / "data.mlv").exists()
    assert not (mlv_repo / ".gitignore").exists()
    assert sorted(cache_objects(mlv_repo)) == objects
    assert (mlv_repo / "data" / "dirlink").is_symlink()


def test_dangling_link_is_an_error(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a"})
    os.symlink("does-not-exist", mlv_repo / "data" / "dangling")
    line = assert_error(mlv("add", "data", cwd=mlv_repo, check=False), 1, "data/dangling")
    assert "dangling" in line and ".mlvignore" in line
    assert not (mlv_repo / "data.mlv").exists()


def test_link_loop_is_an_error(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a"})
    os.symlink("loop", mlv_repo / "data" / "loop")
    assert_error(mlv("add", "data", cwd=mlv_repo, check=False), 1, "data/loop")
    assert not (mlv_repo / "data.mlv").exists()


def test_bad_link_appearing_after_add_is_reported_by_status(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a"})
    mlv("add", "data", cwd=mlv_repo)
    os.symlink("nowhere", mlv_repo / "data" / "dangling")
    proc = mlv("status", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "data/dangling" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    t = target_status(mlv_repo, "data")
    assert t["status"] == "error" and "data/dangling" in t["error"]


def test_mlvignore_excludes_links_and_files(mlv_repo: Path) -> None:
    write_files(
        mlv_repo,
        {
            "data/a.txt": "a",
            "data/scratch.tmp": "junk",
            "data/sub/b.txt": "b",
            "data/sub/c.tmp": "junk",
            "data/cache/huge.bin": "junk",
            "data/.mlvignore": "*.tmp\n/cache/\ndirlink\n",
            "other/x": "x",
        },
    )
    os.symlink(mlv_repo / "other", mlv_repo / "data" / "dirlink")
    mlv("add", "data", cwd=mlv_repo)
    ptr = read_pointer(mlv_repo / "data.mlv")
    assert ptr["files"] == 3  # a.txt, sub/b.txt and .mlvignore itself
    assert xxh(b"junk") not in cache_objects(mlv_repo)
    # changes to ignored files do not count
    (mlv_repo / "data" / "scratch.tmp").write_text("other junk")
    write_files(mlv_repo, {"data/new.tmp": "n"})
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0
    # checkout leaves ignored files alone
    (mlv_repo / "data" / "a.txt").unlink()
    mlv("checkout", cwd=mlv_repo)
    assert (mlv_repo / "data" / "a.txt").read_text() == "a"
    assert (mlv_repo / "data" / "scratch.tmp").read_text() == "other junk"
    assert (mlv_repo / "data" / "cache" / "huge.bin").read_text() == "junk"


def test_root_mlvignore_and_negation(mlv_repo: Path) -> None:
    write_files(
        mlv_repo,
        {
            ".mlvignore": "*.log\n!keep.log\n",
            "data/a.log": "drop",
            "data/keep.log": "keep",
            "data/x.txt": "x",
        },
    )
    mlv("add", "data", cwd=mlv_repo)
    assert read_pointer(mlv_repo / "data.mlv")["files"] == 2
    shutil.rmtree(mlv_repo / "data")
    mlv("checkout", cwd=mlv_repo)
    assert snapshot(mlv_repo / "data") == {"keep.log": b"keep", "x.txt": b"x"}


def test_special_file_is_an_error(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a"})
    os.mkfifo(mlv_repo / "data" / "pipe")
    line = assert_error(mlv("add", "data", cwd=mlv_repo, check=False), 1, "data/pipe")
    assert ".mlvignore" in line
    assert not (mlv_repo / "data.mlv").exists()
