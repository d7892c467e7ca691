"""A folder remote that is, holds or lies inside the cache folder in effect is refused by
every command that opens it.

The cache has the layout of a remote's loose objects: a clone that commits the remote url
`.mlv/cache` made `mlv gc -r -w -f` delete the user's only copy of an older version from
the cache (review finding 2). Real git, real mlv, a real clone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import assert_error, cache_objects, commit_all, git, mlv, write_files

HINT = "mlv remote modify --local origin url PATH"


def _clone_with_remote(mlv_repo: Path, tmp_path: Path, url: str) -> Path:
    """A repository with two versions of model.bin whose committed remote is `url`, cloned;
    the clone's cache holds both versions (pushed nowhere)."""
    mlv("remote", "add", "-d", "origin", url, cwd=mlv_repo)
    write_files(mlv_repo, {"model.bin": "v1"})
    mlv("add", "model.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    write_files(mlv_repo, {"model.bin": "v2"})
    mlv("add", "model.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    shutil.copytree(mlv_repo / ".mlv" / "cache", clone / ".mlv" / "cache")
    mlv("checkout", cwd=clone)
    return clone


COMMANDS = [
    ("push",),
    ("fetch",),
    ("pull",),
    ("gc", "-r", "-w", "-f"),
    ("verify", "--remote"),
    ("remote", "repack", "origin"),
    ("status", "--remote", "origin"),
    ("du", "--remote", "origin"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_committed_remote_naming_the_cache_is_refused(
    mlv_repo: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    clone = _clone_with_remote(mlv_repo, tmp_path, ".mlv/cache")
    before = cache_objects(clone)
    assert len(before) == 2
    line = assert_error(
        mlv(*args, cwd=clone, check=False),
        1,
        "remote 'origin'",
        "'.mlv/cache' in .mlv/config.yaml",
        "is this repository's cache",
        HINT,
    )
    assert str(clone / ".mlv" / "cache") in line
    assert cache_objects(clone) == before


def test_the_hint_gives_the_remote_a_folder_of_its_own(mlv_repo: Path, tmp_path: Path) -> None:
    clone = _clone_with_remote(mlv_repo, tmp_path, ".mlv/cache")
    proc = mlv("gc", "-r", "-w", "-f", cwd=clone, check=False)
    hint = assert_error(proc, 1, HINT).split("`")[1]
    store = tmp_path / "store"
    mlv(*hint.replace("PATH", str(store)).split()[1:], cwd=clone)
    mlv("push", cwd=clone)  # the current version only
    mlv("gc", "-r", "-w", "-f", cwd=clone)
    assert len(cache_objects(clone)) == 2  # the cache is not gc -r's
    git("checkout", "-q", "HEAD~1", cwd=clone)
    mlv("checkout", cwd=clone)
    assert (clone / "model.bin").read_text() == "v1"


def test_a_link_to_the_cache_is_followed(mlv_repo: Path, tmp_path: Path) -> None:
    """A committed link `store -> .mlv/cache` is the cache by another name."""
    (mlv_repo / "store").symlink_to(".mlv/cache")
    clone = _clone_with_remote(mlv_repo, tmp_path, "store")
    assert (clone / "store").is_symlink()
    assert_error(
        mlv("gc", "-r", "-w", "-f", cwd=clone, check=False),
        1,
        "'store' in .mlv/config.yaml",
        "is this repository's cache",
        HINT,
    )
    assert len(cache_objects(clone)) == 2


@pytest.mark.parametrize(
    ("remote", "relation"),
    [("shared", "is this"), ("shared/xxh128", "lies inside"), (".", "holds")],
    ids=["same", "inside", "holds"],
)
def test_a_cache_dir_shared_outside_the_repository(
    mlv_repo: Path, tmp_path: Path, remote: str, relation: str
) -> None:
    """cache.dir set for this machine (--local) to a folder outside: a remote that is, lies
    inside or holds it is refused too (the url made absolute from tmp_path/shared's parent)."""
    shared = tmp_path / "shared"
    mlv("cache", "dir", "--local", str(shared), cwd=mlv_repo)
    write_files(mlv_repo, {"f.txt": "data"})
    mlv("add", "f.txt", cwd=mlv_repo)
    url = str((tmp_path / remote).resolve())
    mlv("remote", "add", "-d", "origin", url, cwd=mlv_repo)
    before = cache_objects(mlv_repo, shared)
    for args in (("push",), ("gc", "-r", "-w", "-f")):
        assert_error(
            mlv(*args, cwd=mlv_repo, check=False),
            1,
            f"remote 'origin': its folder {url} {relation}",
            ".mlv/config.yaml",
            HINT,
        )
    assert cache_objects(mlv_repo, shared) == before
    mlv("remote", "modify", "--local", "origin", "url", str(tmp_path / "store"), cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
