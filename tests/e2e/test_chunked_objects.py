"""Large objects stored as content-defined chunks (issue 16): sizes at the threshold's
edges round trip, a damaged chunk never enters the cache, and a push or pull killed at any
point leaves nothing that verify rejects.

The format: docs/formats.md ("Chunk list, version 1"); what push and pull do:
docs/remotes.md ("Large files: content-defined chunks").
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    IN_PROCESS,
    MLV,
    assert_cache_sound,
    cache_objects,
    chunked_objects,
    commit_all,
    git,
    mlv,
    packed_objects,
    snapshot,
    write_files,
    xxh,
)
from servers import FaultProxy

THRESHOLD = 1 << 20  # pack_threshold of these tests' remotes: chunked from 1 MiB on


def with_remote(repo: Path, url: str, pack_size: str = "32MiB") -> None:
    mlv("remote", "add", "-d", "store", url, cwd=repo)
    mlv("remote", "modify", "store", "pack_threshold", "1MiB", cwd=repo)
    mlv("remote", "modify", "store", "pack_size", pack_size, cwd=repo)


def pushed(
    repo: Path, url: str, files: dict[str, bytes], target: str, pack_size: str = "32MiB"
) -> None:
    """files written and `mlv add TARGET`, the remote set up and v1 committed and pushed."""
    stored(repo, url, files, target, pack_size)
    mlv("push", cwd=repo)


def stored(
    repo: Path, url: str, files: dict[str, bytes], target: str, pack_size: str = "32MiB"
) -> None:
    """files written and `mlv add TARGET`, the remote set up and v1 committed (no push)."""
    write_files(repo, files)
    mlv("add", target, cwd=repo)
    with_remote(repo, url, pack_size)
    commit_all(repo, "v1")


def clone(repo: Path, target: Path) -> Path:
    git("clone", "-q", str(repo), str(target), cwd=repo.parent)
    return target


def test_sizes_at_the_threshold_round_trip(mlv_repo: Path, tmp_path: Path) -> None:
    sizes = [0, 1, THRESHOLD - 1, THRESHOLD, THRESHOLD + 1, 3 * THRESHOLD + 12345]
    files = {f"data/s{n}.bin": os.urandom(n) for n in sizes}
    remote = tmp_path / "remote"
    pushed(mlv_repo, str(remote), files, "data")
    chunked = chunked_objects(remote)
    assert set(chunked) == {xxh(files[f"data/s{n}.bin"]) for n in sizes if n >= THRESHOLD}
    other = clone(mlv_repo, tmp_path / "clone")
    mlv("pull", cwd=other)
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")
    assert_cache_sound(other)
    assert mlv("verify", "--remote", "store", "--full", cwd=other).returncode == 0


def test_a_damaged_chunk_is_found_and_never_enters_the_cache(
    mlv_repo: Path, tmp_path: Path
) -> None:
    big, small = os.urandom(3 * THRESHOLD), b"small and fine"
    remote = tmp_path / "remote"
    pushed(mlv_repo, str(remote), {"data/big.bin": big, "data/small.txt": small}, "data")
    # flip a byte in the middle of the big file's bytes inside its pack: some chunk
    packed = packed_objects(remote)
    chunk = max((h for h in packed if h not in (xxh(big), xxh(small))), key=lambda h: packed[h][2])
    pack, offset, stored = packed[chunk]
    pack.chmod(0o644)
    with pack.open("r+b") as fh:
        fh.seek(offset + stored // 2)
        byte = fh.read(1)
        fh.seek(offset + stored // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    other = clone(mlv_repo, tmp_path / "clone")
    proc = mlv("pull", "--json", cwd=other, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["corrupt"] == [{"hash": xxh(big), "path": "data/big.bin"}]
    assert (other / "data" / "small.txt").read_bytes() == small
    assert not (other / "data" / "big.bin").exists()
    assert xxh(big) not in assert_cache_sound(other)
    assert not list((other / ".mlv" / "cache").rglob(".mlvtmp-*"))
    found = mlv("verify", "--remote", "store", "--full", "--json", cwd=other, check=False)
    problems = json.loads(found.stdout)["problems"]
    assert [(p["path"], p["found"]) for p in problems] == [("data/big.bin", "corrupt")]


def test_a_folder_fetch_hashes_the_bytes_as_it_copies_them(
    mlv_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a folder remote, a file rebuilt wholly by copies (of the remote's raw chunks,
    and of the chunks an older version in the cache holds) is checked by the hash of the
    bytes as they were copied, not read again; one with a compressed chunk (decoded on
    its way) is hashed after. Either way the file arrives exact."""
    if not IN_PROCESS:
        pytest.skip("counts the files hashed after their rebuild, in this process")
    from mlv.objects import store
    from mlv.objects.packs import chunked

    hashed_after: list[str] = []
    hash_path = store.hash_path_mmap

    def counting(algo: str, path: str) -> str:
        hashed_after.append(path)
        return hash_path(algo, path)

    monkeypatch.setattr(chunked, "hash_path_mmap", counting)
    v1 = os.urandom(4 * THRESHOLD)
    text = b"".join(b"row %d,%d\n" % (i, i * i) for i in range(200_000))[: 2 * THRESHOLD]
    remote = tmp_path / "remote"
    pushed(mlv_repo, str(remote), {"data/model.bin": v1, "data/table.csv": text}, "data")
    other = clone(mlv_repo, tmp_path / "clone")
    mlv("pull", cwd=other)
    assert (other / "data" / "model.bin").read_bytes() == v1
    assert (other / "data" / "table.csv").read_bytes() == text
    assert len(hashed_after) == 1  # the CSV, whose chunks are stored zstd

    v2 = v1[: 2 * THRESHOLD] + os.urandom(50_000) + v1[2 * THRESHOLD :]
    (mlv_repo / "data" / "model.bin").chmod(0o644)
    (mlv_repo / "data" / "model.bin").write_bytes(v2)
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    mlv("push", cwd=mlv_repo)
    git("pull", "-q", cwd=other)
    hashed_after.clear()
    doc = json.loads(mlv("pull", "--json", cwd=other).stdout)
    assert doc["ok"], doc
    assert doc["transferred"]["bytes"] < len(v2) // 2  # v1's chunks came from the cache
    assert (other / "data" / "model.bin").read_bytes() == v2
    assert hashed_after == []
    assert_cache_sound(other)


# ---- killed on S3, through the fault proxy ---------------------------------------------------


def _kill_after(proxy: FaultProxy, method: str, after: int, args: list[str], cwd: Path) -> None:
    """Run mlv ARGS as a process; SIGKILL it while the request after the first `after` of
    method hangs."""
    proxy.clear()
    proxy.hang(method, every=after + 1)
    proc = subprocess.Popen([MLV, *args], cwd=cwd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while proxy.count(method) <= after and proc.poll() is None:
        assert time.monotonic() < deadline, f"mlv {args} never sent {after} {method}"
        time.sleep(0.002)
    assert proc.poll() is None, f"mlv {args} finished before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)  # requests already sent reach the server
    proxy.clear()


def _two_versions(repo: Path) -> tuple[bytes, bytes]:
    v1 = os.urandom(4 * THRESHOLD)
    v2 = v1[: 2 * THRESHOLD] + os.urandom(50_000) + v1[2 * THRESHOLD :]
    return v1, v2


@pytest.mark.slow
@pytest.mark.parametrize("after", [1, 3, 5, 7])
def test_a_push_of_chunks_killed_at_any_point_leaves_a_valid_remote(
    mlv_repo: Path, s3_bucket: str, via_proxy: FaultProxy, after: int
) -> None:
    v1, _ = _two_versions(mlv_repo)
    # several packs of chunks
    stored(mlv_repo, f"s3://{s3_bucket}/store", {"model.bin": v1}, "model.bin", "1MiB")
    _kill_after(via_proxy, "PUT", after, ["push", "-j", "1"], mlv_repo)
    doc = json.loads(mlv("verify", "--remote", "store", "--json", cwd=mlv_repo, check=False).stdout)
    assert {p["found"] for p in doc["problems"]} <= {"missing"}, doc["problems"]
    assert not doc["remote"]["warnings"]
    assert json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)["ok"]
    assert mlv("verify", "--remote", "store", "--full", cwd=mlv_repo).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("after", [1, 2])
def test_a_pull_of_chunks_killed_midway_leaves_a_sound_cache(
    mlv_repo: Path, tmp_path: Path, s3_bucket: str, via_proxy: FaultProxy, after: int
) -> None:
    """Killed while rebuilding v2 from v1's chunks and downloaded ones: no object in the
    cache is half-written or wrong; the re-run completes and gets v2 byte for byte."""
    v1, v2 = _two_versions(mlv_repo)
    pushed(mlv_repo, f"s3://{s3_bucket}/store", {"model.bin": v1}, "model.bin")
    (mlv_repo / "model.bin").chmod(0o644)
    (mlv_repo / "model.bin").write_bytes(v2)
    mlv("add", "model.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    mlv("push", cwd=mlv_repo)
    other = clone(mlv_repo, tmp_path / "clone")
    git("checkout", "-q", "HEAD~1", cwd=other)
    mlv("pull", cwd=other)  # v1 in the cache, with its chunk list
    git("checkout", "-q", "-", cwd=other)
    _kill_after(via_proxy, "GET", after, ["pull", "-j", "1"], other)
    assert_cache_sound(other)  # nothing half-written under an object's name
    assert xxh(v1) in cache_objects(other)
    mlv("pull", cwd=other)
    assert (other / "model.bin").read_bytes() == v2
    assert_cache_sound(other)


@pytest.mark.slow
@pytest.mark.parametrize("method,after", [("PUT", 1), ("DELETE", 1), ("DELETE", 2)])
def test_a_gc_of_chunks_killed_at_any_point_leaves_a_valid_remote(
    mlv_repo: Path, tmp_path: Path, s3_bucket: str, via_proxy: FaultProxy, method: str, after: int
) -> None:
    """v1 and v2 of a chunked file pushed, v1 no longer kept: gc -r killed while the request
    after the first `after` of method hangs leaves v2 whole on the remote (verify --full),
    and a re-run completes."""
    v1, v2 = os.urandom(3 * THRESHOLD), os.urandom(3 * THRESHOLD)
    pushed(mlv_repo, f"s3://{s3_bucket}/store", {"model.bin": v1}, "model.bin", "1MiB")
    (mlv_repo / "model.bin").chmod(0o644)
    (mlv_repo / "model.bin").write_bytes(v2)
    mlv("add", "model.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    mlv("push", cwd=mlv_repo)
    _kill_after(via_proxy, method, after, ["gc", "-w", "-r", "store", "-f"], mlv_repo)
    assert mlv("verify", "--remote", "store", "--full", cwd=mlv_repo).returncode == 0
    mlv("gc", "-w", "-r", "store", "-f", cwd=mlv_repo)
    assert mlv("verify", "--remote", "store", "--full", cwd=mlv_repo).returncode == 0
    other = clone(mlv_repo, tmp_path / "clone")
    mlv("pull", cwd=other)
    assert (other / "model.bin").read_bytes() == v2


def test_an_object_of_one_chunk_is_stored_plain_and_pulls(mlv_repo: Path, tmp_path: Path) -> None:
    """Above the threshold but cut into a single chunk (here: a threshold of 16 KiB and a
    20,000-byte file, below the smallest chunk): no chunk list, the object itself packed."""
    data = os.urandom(20_000)
    write_files(mlv_repo, {"small-model.bin": data})
    mlv("add", "small-model.bin", cwd=mlv_repo)
    remote = tmp_path / "remote"
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    mlv("remote", "modify", "store", "pack_threshold", "16KiB", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    mlv("push", cwd=mlv_repo)
    assert xxh(data) in packed_objects(remote) and not chunked_objects(remote)
    other = clone(mlv_repo, tmp_path / "clone")
    mlv("pull", cwd=other)
    assert (other / "small-model.bin").read_bytes() == data
    assert mlv("verify", "--remote", "store", cwd=other).returncode == 0


def test_a_lost_pack_of_chunks_is_sent_again_by_push_verify(mlv_repo: Path, tmp_path: Path) -> None:
    big = os.urandom(3 * THRESHOLD)
    remote = tmp_path / "remote"
    pushed(mlv_repo, str(remote), {"model.bin": big}, "model.bin")
    packed = packed_objects(remote)
    chunk_pack = max({p for p, _, _ in packed.values()}, key=lambda p: p.stat().st_size)
    chunk_pack.unlink()  # the chunks, lost behind mlv's back; the chunk list stays
    assert mlv("verify", "--remote", "store", cwd=mlv_repo, check=False).returncode == 1
    mlv("push", "--verify", cwd=mlv_repo)
    assert mlv("verify", "--remote", "store", "--full", cwd=mlv_repo).returncode == 0
    other = clone(mlv_repo, tmp_path / "clone")
    mlv("pull", cwd=other)
    assert (other / "model.bin").read_bytes() == big


def test_a_stray_file_in_the_chunk_lists_folder_is_ignored(mlv_repo: Path, tmp_path: Path) -> None:
    big = os.urandom(2 * THRESHOLD)
    pushed(mlv_repo, str(tmp_path / "remote"), {"model.bin": big}, "model.bin")
    other = clone(mlv_repo, tmp_path / "clone")
    chunks = other / ".mlv" / "cache" / "chunks" / "xxh128"
    chunks.mkdir(parents=True)
    (chunks / "stray").write_text("not a folder")
    mlv("pull", cwd=other)
    assert (other / "model.bin").read_bytes() == big
