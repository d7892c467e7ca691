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


# ---- F6: how much index a folder remote can make a command hold ---------------------------


def _hostile_index(folder: Path, n: int) -> int:
    """A structurally valid index of n random entries (one pack of 4 GiB - 1 bytes, one
    byte each) written into folder under its name, as the review's reproduction built
    them; its size in bytes."""
    import struct

    from mlv.objects.packs import index as index_mod

    entry = struct.Struct("<16sIIIBBHQ")
    hashes = sorted(os.urandom(16) for _ in range(n))
    fanout = [0] * 256
    for h in hashes:
        fanout[h[0]] += 1
    total = 0
    for b in range(256):
        total += fanout[b]
        fanout[b] = total
    data = b"".join(
        [
            index_mod.HEADER.pack(index_mod.MAGIC, 1, 1, 16, 1, n, b""),
            index_mod.PACK_ROW.pack(os.urandom(16), (4 << 30) - 1),
            index_mod.FANOUT.pack(*fanout),
            *(entry.pack(h, 0, 32 + i, 1, 0, 0, 0, 1) for i, h in enumerate(hashes)),
        ]
    )
    (folder / f"{index_mod.index_name(data)}.idx").write_bytes(data)
    return len(data)


def _peak_kib(repo: Path, *args: str) -> int:
    """The peak resident memory (KiB) of `mlv ARGS` run as its own process in repo."""
    import subprocess
    import sys

    from helpers import MLV

    probe = (
        "import resource, subprocess, sys\n"
        "proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "assert proc.returncode == 0, proc.stderr\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, MLV, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return int(out.stdout)


def test_the_memory_of_a_fetch_is_about_the_bytes_of_the_remotes_indexes(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """Before, three valid indexes of 1M entries (115 MB) made `mlv fetch` peak at 835 MB:
    the catalog built ~175 bytes of Python objects per entry. Now a large index is searched
    in place: what fetch holds is about the indexes' own bytes."""
    store = _pushed(mlv_repo, tmp_path)
    mlv("pull", "-q", cwd=mlv_repo)
    baseline = _peak_kib(mlv_repo, "fetch")
    planted = sum(_hostile_index(store / "index", 250_000) for _ in range(3))
    peak = _peak_kib(mlv_repo, "fetch")
    grown = (peak - baseline) * 1024
    assert grown < 2.5 * planted, f"grew by {grown >> 20} MiB for {planted >> 20} MiB of indexes"


def test_indexes_beyond_the_total_a_command_loads_are_named_once_and_not_used(
    mlv_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What one command loads in all is bounded (packed.MAX_TOTAL_INDEX_BYTES, 1 GiB; made
    small here, for an in-process run): the indexes past it count as absent, with one
    warning, and `gc -r` deletes no pack meanwhile."""
    from mlv.objects.packs import packed

    store = _pushed(mlv_repo, tmp_path)
    for i in range(3):  # three more pushes: four indexes
        write_files(mlv_repo, {f"more{i}.txt": f"more {i}\n"})
        mlv("add", "-q", f"more{i}.txt", cwd=mlv_repo)
        mlv("push", "-q", cwd=mlv_repo)
    commit_all(mlv_repo, "more")
    sizes = sorted((p.name, p.stat().st_size) for p in (store / "index").glob("*.idx"))
    assert len(sizes) == 4
    monkeypatch.setattr(packed, "MAX_TOTAL_INDEX_BYTES", sum(s for _, s in sizes[:2]))
    shutil.rmtree(mlv_repo / ".mlv" / "cache")
    proc = mlv("fetch", cwd=mlv_repo, check=False)
    warned = [line for line in proc.stderr.splitlines() if "remote's indexes" in line]
    assert len(warned) == 1, proc.stderr
    assert f"2 of the remote's indexes (first: index/{sizes[2][0]})" in warned[0]
    assert "count as absent" in warned[0] and "Traceback" not in proc.stderr
    proc = mlv("gc", "-w", "-r", "s", "-f", cwd=mlv_repo, check=False)
    assert "no pack deleted" in proc.stderr + proc.stdout
    assert len(list((store / "packs").rglob("*.pack"))) == 4
    monkeypatch.undo()
    mlv("pull", "-q", cwd=mlv_repo)
    assert (mlv_repo / "more2.txt").read_text() == "more 2\n"
