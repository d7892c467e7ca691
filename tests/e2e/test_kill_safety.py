"""Killing `add` or `checkout` (SIGKILL, at several moments) leaves no half-written object in
the cache and no pointer naming a missing object; running the command again succeeds.

Kills are triggered by progress seen on disk (cache prefix folders, restored folders), not by
fixed delays, so they land mid-run on fast and slow machines alike."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import (
    MLV,
    assert_cache_sound,
    git,
    is_tmp_name,
    mlv,
    object_path,
    read_pointer,
    snapshot,
)

FOLDERS, FILES_PER_FOLDER = 20, 100  # 2,000 files


def _make_repo(base: Path, link_type: str) -> tuple[Path, dict[str, bytes | str]]:
    repo = base
    repo.mkdir()
    git("init", "-q", cwd=repo)
    mlv("init", cwd=repo)
    if link_type != "default":
        mlv("config", "cache.type", link_type, cwd=repo)
    rnd = __import__("random").Random(str(base))
    for d in range(FOLDERS):
        folder = repo / "data" / f"d{d:02}"
        folder.mkdir(parents=True)
        for i in range(FILES_PER_FOLDER):
            (folder / f"f{i:03}.bin").write_bytes(rnd.randbytes(500 + rnd.randrange(4000)))
    (repo / "data" / "big.bin").write_bytes(rnd.randbytes(3 << 20))  # a large-file path too
    return repo, snapshot(repo / "data")


def _without_tmp(snap: dict[str, bytes | str]) -> dict[str, bytes | str]:
    return {k: v for k, v in snap.items() if not is_tmp_name(k.rpartition("/")[2])}


def _kill_when(args: list[str], repo: Path, ready: Callable[[], bool]) -> bool:
    """Start mlv, SIGKILL it as soon as ready() holds; True if it was still running then."""
    proc = subprocess.Popen(
        [MLV, *args], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and not ready() and time.monotonic() < deadline:
            time.sleep(0.002)
        running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    return running


def _count(path: Path) -> int:
    try:
        return len(os.listdir(path))
    except FileNotFoundError:
        return 0


def _tree_complete(repo: Path, tree_hash: str) -> None:
    doc = json.loads(object_path(repo, tree_hash).read_bytes())
    for kind, name, hash_id, *_ in doc["entries"]:
        assert object_path(repo, hash_id).is_file(), f"{name}: {hash_id} missing from the cache"
        if kind == "dir":
            _tree_complete(repo, hash_id)


def _assert_consistent(repo: Path) -> None:
    """Every cached object is whole; a pointer, if written, names only cached objects."""
    assert_cache_sound(repo)
    ptr_file = repo / "data.mlv"
    if ptr_file.exists():
        ptr = read_pointer(ptr_file)
        assert object_path(repo, ptr["hash"]).is_file()
        _tree_complete(repo, ptr["hash"])


@pytest.mark.slow
@pytest.mark.parametrize("link_type", ["default", "hardlink"])
def test_killed_add_leaves_a_consistent_cache(tmp_path: Path, link_type: str) -> None:
    killed_mid_run = 0
    # kill once 1, 60 and 200 of the 256 cache prefix folders exist
    for i, prefixes in enumerate((1, 60, 200)):
        repo, original = _make_repo(tmp_path / f"r{i}", link_type)
        store = repo / ".mlv" / "cache" / "xxh128"
        ready = lambda store=store, k=prefixes: _count(store) >= k  # noqa: E731
        killed_mid_run += _kill_when(["add", "data"], repo, ready)
        _assert_consistent(repo)
        # the data itself is intact whatever the moment (links to whole objects at worst)
        assert _without_tmp(snapshot(repo / "data")) == original

        mlv("add", "data", cwd=repo)
        _assert_consistent(repo)
        assert read_pointer(repo / "data.mlv")["files"] == FOLDERS * FILES_PER_FOLDER + 1
        assert "clean" in mlv("status", "--check", cwd=repo).stdout
        assert _without_tmp(snapshot(repo / "data")) == original
        shutil.rmtree(tmp_path / f"r{i}")
    assert killed_mid_run >= 2, "the kills came too late to test anything"


@pytest.mark.slow
@pytest.mark.parametrize("link_type", ["default", "hardlink"])
def test_killed_checkout_then_rerun_restores_the_workspace(tmp_path: Path, link_type: str) -> None:
    repo, original = _make_repo(tmp_path / "repo", link_type)
    mlv("add", "data", cwd=repo)
    pointer = (repo / "data.mlv").read_bytes()
    killed_mid_run = 0
    for folders in (1, 7, 14):
        shutil.rmtree(repo / "data")
        data = repo / "data"
        ready = lambda data=data, k=folders: _count(data) >= k  # noqa: E731
        killed_mid_run += _kill_when(["checkout"], repo, ready)
        _assert_consistent(repo)
        assert (repo / "data.mlv").read_bytes() == pointer
        # whatever was written is whole: every restored file has its original bytes
        partial = _without_tmp(snapshot(repo / "data"))
        for rel, content in partial.items():
            assert original[rel] == content, rel

        mlv("checkout", cwd=repo)
        assert _without_tmp(snapshot(repo / "data")) == original
        assert "clean" in mlv("status", "--check", cwd=repo).stdout
    assert killed_mid_run >= 2, "the kills came too late to test anything"
