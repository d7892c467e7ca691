"""A folder remote is hostile input too (docs/security.md): what stands in its folders where
files go, and how much index it lists. Real git, real mlv commands, real FIFOs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import assert_error, commit_all, mlv, write_files

HEX = "0123456789abcdef" * 2


def _pushed(repo: Path, tmp_path: Path) -> Path:
    """repo holding two files, pushed to the folder remote tmp_path/store; the cache emptied."""
    store = tmp_path / "store"
    write_files(repo, {"a.txt": "a\n", "b.txt": "b\n"})
    mlv("add", "-q", "a.txt", "b.txt", cwd=repo)
    mlv("remote", "add", "-d", "s", str(store), cwd=repo)
    commit_all(repo, "data")
    mlv("push", "-q", cwd=repo)
    shutil.rmtree(repo / ".mlv" / "cache")
    (repo / "a.txt").unlink()
    (repo / "b.txt").unlink()
    return store


def _only(folder: Path) -> Path:
    (found,) = [p for p in folder.rglob("*") if p.is_file()]
    return found


def _plant(store: Path, repo: Path, where: str) -> Path:
    """A FIFO (or a link to /dev/zero) where the remote keeps a file; its path."""
    if where == "index":
        path = store / "index" / f"{HEX}.idx"
    elif where == "zero-index":
        path = store / "index" / f"{HEX}.idx"
        os.symlink("/dev/zero", path)
        return path
    elif where == "pack":
        path = _only(store / "packs")
        path.unlink()
    else:  # a loose object (as mlv 0.1 kept them), no pack nor index holding it
        shutil.rmtree(store / "packs")
        shutil.rmtree(store / "index")
        h = (repo / "a.txt.mlv").read_text().split("hash: xxh128:")[1].split()[0]
        path = store / "xxh128" / h[:2] / h[2:]
        path.parent.mkdir(parents=True)
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("where", ["index", "zero-index", "pack", "loose"])
@pytest.mark.parametrize("command", ["pull", "fetch"])
def test_a_fifo_on_a_folder_remote_stops_the_command_at_once(
    mlv_repo: Path, tmp_path: Path, where: str, command: str
) -> None:
    """Before, `open` of a FIFO blocked forever (and /dev/zero was read to the index limit):
    now one line names the file and how to remove it."""
    store = _pushed(mlv_repo, tmp_path)
    planted = _plant(store, mlv_repo, where)
    what = "a device" if where == "zero-index" else "a FIFO"
    line = assert_error(
        mlv(command, cwd=mlv_repo, check=False, process=True, timeout=60),
        1,
        "remote 's'",
        str(planted.relative_to(store)),
        f"is not a regular file but {what}",
        f"`rm {planted}`",
    )
    assert "Traceback" not in line
    if where in ("index", "zero-index"):  # the hint works; the data was all there
        planted.unlink()
        mlv("pull", "-q", cwd=mlv_repo)
        assert (mlv_repo / "a.txt").read_text() == "a\n"
