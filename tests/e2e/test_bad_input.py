"""Bad input gets a one-line error and loses nothing: broken or newer pointers, pointers that
leave the repository, hostile tree objects, unreadable files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import (
    assert_cache_sound,
    assert_error,
    cache_objects,
    mlv,
    object_path,
    read_pointer,
    run_unprivileged,
    snapshot,
    write_files,
    xxh,
)


def _workspace(repo: Path) -> dict[str, bytes | str]:
    """Everything outside .git/ and the cache and scratch folders of .mlv/."""
    skip = (".git", ".mlv/tmp", ".mlv/cache")
    return {k: v for k, v in snapshot(repo).items() if not k.startswith(skip)}


def _tracked(repo: Path) -> None:
    write_files(repo, {"data/a.txt": "a", "m.bin": "m"})
    mlv("add", "data", "m.bin", cwd=repo)


POINTERS = {
    "malformed YAML": ("version: 1\npath: [unclosed\n", ["bad.mlv", "not a valid pointer"]),
    "not a mapping": ("- just\n- a list\n", ["bad.mlv", "not a valid pointer"]),
    "newer version": (
        f"version: 2\npath: bad\nkind: file\nhash: {xxh(b'x')}\nsize: 1\n",
        ["bad.mlv", "version 2", "upgrade mlv"],
    ),
    "unknown keys": (
        f"version: 1\npath: bad\nkind: file\nhash: {xxh(b'x')}\nsize: 1\nshiny: yes\n",
        ["bad.mlv", "shiny"],
    ),
    "path with ..": (
        f"version: 1\npath: ../escaped\nkind: file\nhash: {xxh(b'm')}\nsize: 1\n",
        ["bad.mlv", "../escaped"],
    ),
    "absolute path": (
        f"version: 1\npath: /tmp/escaped-abs\nkind: file\nhash: {xxh(b'm')}\nsize: 1\n",
        ["bad.mlv", "/tmp/escaped-abs"],
    ),
    "bad hash": ("version: 1\npath: bad\nkind: file\nhash: md5:abc\nsize: 1\n", ["bad.mlv"]),
    "bad kind": (
        f"version: 1\npath: bad\nkind: socket\nhash: {xxh(b'x')}\nsize: 1\n",
        ["bad.mlv", "kind"],
    ),
    "dir without files": (
        f"version: 1\npath: bad\nkind: dir\nhash: {xxh(b'x')}\nsize: 1\n",
        ["bad.mlv", "files"],
    ),
}


@pytest.mark.parametrize("case", list(POINTERS), ids=list(POINTERS))
def test_bad_pointer_files(mlv_repo: Path, tmp_path: Path, case: str) -> None:
    text, needles = POINTERS[case]
    _tracked(mlv_repo)
    (mlv_repo / "bad.mlv").write_text(text)
    write_files(mlv_repo, {"new.txt": "n"})
    before = _workspace(mlv_repo)
    objects = sorted(cache_objects(mlv_repo))

    # commands over every pointer (or naming the bad one) fail with one line naming it
    for args in (["status"], ["checkout", "--force"], ["commit"], ["checkout", "bad.mlv"]):
        assert_error(mlv(*args, cwd=mlv_repo, check=False), 1, *needles)
        assert _workspace(mlv_repo) == before, args
    assert sorted(cache_objects(mlv_repo)) == objects
    assert not (tmp_path / "escaped").exists()
    assert not Path("/tmp/escaped-abs").exists()
    # status still reports the good pointers, and the bad one as an error line
    proc = mlv("status", cwd=mlv_repo, check=False)
    lines = proc.stdout.splitlines()
    assert lines[1:] == ["clean        data", "clean        m.bin"]
    assert lines[0].startswith("error        bad  (bad.mlv") and lines[0].endswith(")")

    # a broken pointer does not block commands on other paths
    assert mlv("status", "--check", "m.bin", cwd=mlv_repo).returncode == 0
    mlv("add", "new.txt", cwd=mlv_repo)
    mlv("rm", "m.bin", cwd=mlv_repo)
    assert (mlv_repo / "bad.mlv").read_text() == text  # never rewritten


def test_newer_pointer_is_never_rewritten(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"m.bin": "m"})
    text = f"version: 2\npath: m.bin\nkind: file\nhash: {xxh(b'm')}\nsize: 1\nfuture: {{a: 1}}\n"
    (mlv_repo / "m.bin.mlv").write_text(text)
    for args in (["add", "m.bin"], ["commit", "m.bin"], ["rm", "m.bin"], ["mv", "m.bin", "x"]):
        assert_error(mlv(*args, cwd=mlv_repo, check=False), 1, "version 2")
        assert (mlv_repo / "m.bin.mlv").read_text() == text, args
        assert (mlv_repo / "m.bin").read_text() == "m"


def _put_object(repo: Path, data: bytes) -> str:
    hash_id = xxh(data)
    path = object_path(repo, hash_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o444)
    return hash_id


def _tree(entries: list[list[object]]) -> bytes:
    return json.dumps({"mlv-tree": 1, "entries": entries}, separators=(",", ":")).encode()


@pytest.mark.parametrize("name", ["..", ".", "../evil", "/tmp/evil-abs", "a/b", ""])
def test_tree_object_naming_unsafe_path(mlv_repo: Path, tmp_path: Path, name: str) -> None:
    blob = _put_object(mlv_repo, b"evil bytes")
    inner = _put_object(mlv_repo, _tree([["file", name, blob, 10]]))
    # the hostile name one level down, below an innocent folder
    root = _put_object(mlv_repo, _tree([["dir", "sub", inner, 10, 1]]))
    for ptr_name, tree in (("top", inner), ("nested", root)):
        (mlv_repo / f"{ptr_name}.mlv").write_text(
            f"version: 1\npath: {ptr_name}\nkind: dir\nhash: {tree}\nsize: 10\nfiles: 1\n"
        )
    before = _workspace(mlv_repo)
    proc = mlv("checkout", "--force", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2, proc.stderr  # one line per pointer
    for line in lines:
        assert line.startswith("error: ") and "unsafe entry name" in line, line
    # nothing outside the repository, no file with the hostile name, no evil bytes anywhere
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil-abs").exists()
    after = _workspace(mlv_repo)
    assert b"evil bytes" not in after.values()
    assert {k for k in after if k not in before} <= {"top", "nested", "nested/sub"}
    # status reports it too, without a traceback
    proc = mlv("status", cwd=mlv_repo, check=False)
    assert "Traceback" not in proc.stderr + proc.stdout


def test_tree_object_that_is_not_a_tree(mlv_repo: Path) -> None:
    junk = _put_object(mlv_repo, b"this is not json")
    (mlv_repo / "d.mlv").write_text(
        f"version: 1\npath: d\nkind: dir\nhash: {junk}\nsize: 0\nfiles: 0\n"
    )
    assert_error(mlv("checkout", cwd=mlv_repo, check=False), 1, "not a tree object")


def test_corrupt_tree_object_is_detected(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a", "data/b.txt": "b"})
    mlv("add", "data", cwd=mlv_repo)
    tree = object_path(mlv_repo, read_pointer(mlv_repo / "data.mlv")["hash"])
    os.chmod(tree, 0o644)
    tree.write_bytes(tree.read_bytes().replace(b"a.txt", b"z.txt"))
    shutil.rmtree(mlv_repo / "data")
    line = assert_error(mlv("checkout", cwd=mlv_repo, check=False), 1, "corrupt")
    assert str(tree) in line
    assert not (mlv_repo / "data" / "z.txt").exists()


# ---- unreadable files -------------------------------------------------------------------


def test_unreadable_file_or_folder_is_an_error_and_nothing_is_written(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/ok.txt": "ok", "data/secret.txt": "secret", "data/locked/x": "x"})
    secret, locked = mlv_repo / "data" / "secret.txt", mlv_repo / "data" / "locked"
    before = _workspace(mlv_repo)
    objects = sorted(cache_objects(mlv_repo))
    os.chmod(secret, 0)
    try:
        proc = run_unprivileged("mlv", "add", "data", cwd=mlv_repo, check=False)
        assert_error(proc, 1, "data/secret.txt", "permission denied")
        os.chmod(secret, 0o644)
        os.chmod(locked, 0)
        proc = run_unprivileged("mlv", "add", "data", cwd=mlv_repo, check=False)
        assert_error(proc, 1, "data/locked", "permission denied")
    finally:
        os.chmod(secret, 0o644)
        os.chmod(locked, 0o755)
    assert _workspace(mlv_repo) == before  # no pointer, no .gitignore, data intact
    # objects of files read before the failure may stay (unreferenced, like after a kill),
    # but each is whole
    assert set(objects) <= set(assert_cache_sound(mlv_repo))
    mlv("add", "data", cwd=mlv_repo)
    assert read_pointer(mlv_repo / "data.mlv")["files"] == 3


def test_unwritable_workspace_folder_on_checkout(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/ro/a.txt": "a", "data/b.txt": "b"})
    mlv("add", "data", cwd=mlv_repo)
    (mlv_repo / "data" / "ro" / "a.txt").unlink()
    (mlv_repo / "data" / "b.txt").unlink()
    os.chmod(mlv_repo / "data" / "ro", 0o555)
    try:
        proc = run_unprivileged("mlv", "checkout", cwd=mlv_repo, check=False)
    finally:
        os.chmod(mlv_repo / "data" / "ro", 0o755)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "data/ro" in proc.stderr
    assert "internal error" not in proc.stderr
    mlv("checkout", cwd=mlv_repo)
    assert (mlv_repo / "data" / "ro" / "a.txt").read_text() == "a"
