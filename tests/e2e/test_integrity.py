"""Damaged and unreadable cache objects (issue 13, items 5 and 12).

Bit rot that keeps an object file's inode, size and mtime fools the trust record (the state
database's memory of objects checked before). A copy checkout and a push read every byte
anyway, so they hash what they read and refuse damaged bytes: nothing corrupt reaches the
workspace or the remote. One unreadable object costs its own file only: everything else is
restored or pushed, then what could not be is listed (exit 1).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from helpers import (
    commit_all,
    git,
    mlv,
    object_path,
    read_pointer,
    remote_objects,
    run_unprivileged,
    write_files,
    xxh,
)

BIG = 3 << 20  # above the small-file threshold (1 MiB): copied in the background, streamed


def _run_unreadable(
    repo: Path, objects: Iterable[Path], *args: str
) -> subprocess.CompletedProcess[str]:
    """`mlv ARGS` (allowed to fail), run unprivileged while the cache objects are unreadable
    (mode 0); they are read-only (0o444) again after."""
    objects = list(objects)
    try:
        for obj in objects:
            os.chmod(obj, 0)
        return run_unprivileged("mlv", *args, cwd=repo, check=False)
    finally:
        for obj in objects:
            os.chmod(obj, 0o444)


def _rot(obj: Path) -> None:
    """Flip bytes in the middle of obj in place, keeping inode, size and mtime: what the
    trust record cannot see."""
    st = obj.stat()
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as fh:
        fh.seek(st.st_size // 2)
        old = fh.read(16)
        fh.seek(st.st_size // 2)
        fh.write(bytes(b ^ 0xFF for b in old))
    os.chmod(obj, 0o444)
    os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = obj.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    )


def _files() -> dict[str, bytes]:
    files = {f"data/f{i}.txt": f"file {i}".encode() for i in range(5)}
    files["data/big.bin"] = os.urandom(BIG)
    files["data/other.bin"] = os.urandom(BIG)
    return files


def _setup(repo: Path) -> tuple[dict[str, bytes], Path]:
    """data/ added in copy mode (its objects trusted by the add), committed; returns the
    files and the object of data/big.bin."""
    mlv("config", "cache.type", "copy", cwd=repo)
    files = _files()
    write_files(repo, files)
    mlv("add", "data", cwd=repo)
    commit_all(repo, "data")
    mlv("status", cwd=repo)  # the objects stay trusted: nothing re-reads them
    return files, object_path(repo, xxh(files["data/big.bin"]))


def _remote_keys(remote: Path) -> set[str]:
    """The objects on a folder remote, loose or packed; each one's bytes hash to its name
    (what went out is intact)."""
    objects = remote_objects(remote)
    for hash_id, data in objects.items():
        assert xxh(data) == hash_id, f"{hash_id} on the remote does not match its bytes"
    return set(objects)


def test_copy_checkout_refuses_bit_rot_that_keeps_inode_size_and_mtime(
    mlv_repo: Path, tmp_path: Path
) -> None:
    files, obj = _setup(mlv_repo)
    remote = tmp_path / "remote"
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)  # a good copy elsewhere, for the repair below
    _rot(obj)
    for rel in files:
        (mlv_repo / rel).unlink()

    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: 1 file(s) cache object corrupt, not copied"), first
    assert "`mlv pull`" in first  # what to do
    assert f"data/big.bin  (object {obj})" in proc.stderr  # the file and the object
    assert not (mlv_repo / "data" / "big.bin").exists()
    for rel, data in files.items():  # everything else is there
        if rel != "data/big.bin":
            assert (mlv_repo / rel).read_bytes() == data
    assert not [p for p in (mlv_repo / "data").iterdir() if ".mlvtmp-" in p.name]

    # the fix the message names: pull replaces the damaged object and checks the file out
    proc = mlv("pull", cwd=mlv_repo, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Replaced 1 corrupt object(s)" in proc.stdout + proc.stderr
    assert (mlv_repo / "data" / "big.bin").read_bytes() == files["data/big.bin"]
    mlv("verify", "--cache", cwd=mlv_repo)


def test_push_refuses_bit_rot_that_keeps_inode_size_and_mtime(
    mlv_repo: Path, tmp_path: Path
) -> None:
    files, obj = _setup(mlv_repo)
    remote = tmp_path / "remote"
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    _rot(obj)
    big = xxh(files["data/big.bin"])

    proc = mlv("push", cwd=mlv_repo, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "1 object(s) corrupt in the cache, not pushed" in proc.stderr
    assert f"{big}  data/big.bin" in proc.stderr
    assert str(obj) in proc.stderr  # the object's file, to delete
    on_remote = _remote_keys(remote)
    assert big not in on_remote  # nothing damaged went out
    assert {xxh(d) for rel, d in files.items() if rel != "data/big.bin"} <= on_remote
    pointer = read_pointer(mlv_repo / "data.mlv")
    assert pointer["hash"] not in on_remote  # nor the tree that names it

    # the fix the message names: delete the object, add the (intact) data again, push
    os.unlink(obj)
    mlv("add", "data", cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
    assert {big, pointer["hash"]} <= _remote_keys(remote)


def _many(repo: Path) -> dict[str, bytes]:
    files = {f"data/f{i:03d}.txt": f"file {i}".encode() for i in range(150)}
    files["data/big.bin"] = os.urandom(BIG)
    write_files(repo, files)
    mlv("add", "data", cwd=repo)
    commit_all(repo, "data")
    return files


def test_checkout_restores_everything_but_unreadable_objects(mlv_repo: Path) -> None:
    files = _many(mlv_repo)
    bad = {rel: object_path(mlv_repo, xxh(files[rel])) for rel in ("data/f077.txt", "data/big.bin")}
    for rel in files:
        (mlv_repo / rel).unlink()
    proc = _run_unreadable(mlv_repo, bad.values(), "checkout")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Errno" not in proc.stderr, proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: 2 file(s) not restored, cache object unreadable"), first
    for rel, obj in bad.items():
        assert f"{rel}  (object {obj}: permission denied)" in proc.stderr
        assert not (mlv_repo / rel).exists()
    restored = [rel for rel in files if (mlv_repo / rel).exists()]
    assert len(restored) == len(files) - 2
    for rel in restored:
        assert (mlv_repo / rel).read_bytes() == files[rel]
    assert "Restored 149 files" in proc.stdout + proc.stderr

    mlv("checkout", cwd=mlv_repo)  # readable again: the rest comes back
    for rel, data in files.items():
        assert (mlv_repo / rel).read_bytes() == data


def test_push_sends_everything_but_unreadable_objects(mlv_repo: Path, tmp_path: Path) -> None:
    files = _many(mlv_repo)
    remote = tmp_path / "remote"
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    bad = {rel: object_path(mlv_repo, xxh(files[rel])) for rel in ("data/f077.txt", "data/big.bin")}
    proc = _run_unreadable(mlv_repo, bad.values(), "push")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Errno" not in proc.stderr, proc.stderr
    for rel, obj in bad.items():
        line = f"{xxh(files[rel])}  {rel}: cannot read the cache object {obj}: permission denied"
        assert line in proc.stderr, proc.stderr
    on_remote = _remote_keys(remote)
    assert {xxh(d) for rel, d in files.items() if rel not in bad} <= on_remote
    assert not {xxh(files[rel]) for rel in bad} & on_remote
    assert read_pointer(mlv_repo / "data.mlv")["hash"] not in on_remote

    mlv("push", cwd=mlv_repo)  # readable again: the rest goes up
    assert read_pointer(mlv_repo / "data.mlv")["hash"] in _remote_keys(remote)


def test_unreadable_object_of_the_workspace_version_keeps_that_file(mlv_repo: Path) -> None:
    """Replacing a file needs its current content safe in the cache; an object that cannot
    be read (and was never checked) cannot vouch for it: the file is left alone, the rest
    of the switch happens."""
    write_files(mlv_repo, {"data/a.txt": "a1", "data/b.txt": "b1"})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    write_files(mlv_repo, {"data/a.txt": "a2", "data/b.txt": "b2"})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    (mlv_repo / ".mlv" / "tmp" / "state.db").unlink()  # no trust records: objects are read
    obj = object_path(mlv_repo, xxh(b"a2"))
    git("checkout", "-q", "HEAD~1", cwd=mlv_repo)
    proc = _run_unreadable(mlv_repo, [obj], "checkout")
    assert proc.returncode == 1, proc.stderr
    assert "Errno" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("error: 1 file(s) not restored, cache object unreadable")
    assert f"data/a.txt  (object {obj}: permission denied)" in proc.stderr
    assert (mlv_repo / "data" / "a.txt").read_text() == "a2"  # kept: its object unreadable
    assert (mlv_repo / "data" / "b.txt").read_text() == "b1"  # switched
