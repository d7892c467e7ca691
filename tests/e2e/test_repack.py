"""`mlv remote repack NAME` (docs/design/packs.md, "gc -r: repacking", last paragraph): a
remote that holds its small objects loose (mlv 0.1's, or pushed with pack_threshold 0)
becomes fully packed, stays valid however repack is stopped, and says so in its marker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    MLV,
    assert_error,
    commit_all,
    damage_remote_object,
    git,
    loose_objects,
    mlv,
    packed_objects,
    snapshot,
    write_files,
    xxh,
)
from servers import FaultProxy, S3Server

BIG = 5 << 20  # above 4 MiB: stays loose


def dataset() -> dict[str, bytes]:
    files = {f"data/a/f{i}.txt": f"a {i}".encode() * (i + 1) for i in range(8)}
    files |= {f"data/b/deep/g{i}.txt": f"deep {i}".encode() for i in range(4)}
    files["data/mid.bin"] = os.urandom(2 << 20)  # above the in-memory read size, below 4 MiB
    files["data/model.bin"] = os.urandom(BIG)
    return files


def pushed_loose(repo: Path, url: str) -> dict[str, bytes]:
    """Push with pack_threshold 0 (every object loose, as mlv 0.1 did), then set 4MiB."""
    files = dataset()
    write_files(repo, files)
    mlv("add", "data", cwd=repo)
    mlv("remote", "add", "-d", "store", url, cwd=repo)
    mlv("remote", "modify", "store", "pack_threshold", "0", cwd=repo)
    commit_all(repo, "v1")
    mlv("push", cwd=repo)
    mlv("remote", "modify", "store", "pack_threshold", "4MiB", cwd=repo)
    return files


def repack(repo: Path, *flags: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(
        mlv("remote", "repack", "store", "--json", *flags, cwd=repo).stdout
    )
    return doc


def assert_clone_pulls(repo: Path, tmp_path: Path, name: str = "clone") -> None:
    clone = tmp_path / name
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    mlv("pull", cwd=clone)
    assert snapshot(clone / "data") == snapshot(repo / "data")


def test_repack_packs_small_loose_objects_and_leaves_large_ones(
    mlv_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    files = pushed_loose(mlv_repo, str(remote))
    loose_before = set(loose_objects(remote))
    big = xxh(files["data/model.bin"])
    assert not packed_objects(remote) and len(loose_before) > 10

    proc = mlv("remote", "repack", "store", cwd=mlv_repo)
    small = loose_before - {big}
    assert proc.stdout.startswith(f"Packed {len(small)} objects (")
    assert f"of remote 'store' into 2 pack(s); deleted {len(small)} loose copies." in proc.stdout
    assert set(loose_objects(remote)) == {big}
    assert set(packed_objects(remote)) == small  # files and trees, each named by an index
    assert (remote / "mlv-remote.json").read_bytes() == b'{"mlv-remote":1,"loose-small":false}'
    assert not list((remote / "locks").glob("*"))
    mlv("verify", "--remote", "store", cwd=mlv_repo)
    assert_clone_pulls(mlv_repo, tmp_path)

    again = snapshot(remote)
    doc = repack(mlv_repo)
    assert (doc["packed"], doc["deleted"], doc["packs"], doc["marker_written"]) == (0, 0, 0, False)
    assert snapshot(remote) == again


def test_dry_run_changes_nothing_and_says_what_would_happen(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    files = pushed_loose(mlv_repo, str(remote))
    before = snapshot(remote)
    small = set(loose_objects(remote)) - {xxh(files["data/model.bin"])}
    doc = repack(mlv_repo, "--dry-run")
    assert doc["dry_run"] is True and doc["packed"] == len(small) and doc["large"] == 1
    text = mlv("remote", "repack", "store", "--dry-run", cwd=mlv_repo).stdout
    assert text.startswith(f"Would pack {len(small)} objects")
    assert snapshot(remote) == before


def test_a_corrupt_loose_object_is_reported_and_left_alone(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    files = pushed_loose(mlv_repo, str(remote))
    bad = xxh(files["data/a/f3.txt"])
    damage_remote_object(remote, bad)
    proc = mlv("remote", "repack", "store", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert bad in proc.stdout + proc.stderr
    assert bad in loose_objects(remote) and bad not in packed_objects(remote)
    # a small loose object remains: the marker still says small objects may be loose
    assert (remote / "mlv-remote.json").read_bytes() == b'{"mlv-remote":1,"loose-small":true}'


def test_a_remote_with_pack_threshold_0_is_refused(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    pushed_loose(mlv_repo, str(remote))
    mlv("remote", "modify", "store", "pack_threshold", "0", cwd=mlv_repo)
    before = snapshot(remote)
    proc = mlv("remote", "repack", "store", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "pack_threshold 0", "mlv remote modify store pack_threshold")
    assert snapshot(remote) == before


# ---- killed on S3, through the fault proxy ------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method,after", [("PUT", 3), ("PUT", 5), ("PUT", 6), ("DELETE", 3)])
def test_repack_killed_midway_leaves_a_valid_remote_and_a_rerun_completes(
    mlv_repo: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    via_proxy: FaultProxy,
    method: str,
    after: int,
) -> None:
    """SIGKILL while the request after the first `after` of `method` hangs. The PUTs, in
    order: the lock, the marker (loose-small true), the file pack, its index, the tree
    pack, its index, the marker (loose-small false); the DELETEs: the loose copies."""
    files = pushed_loose(mlv_repo, f"s3://{s3_bucket}/store")
    before = set(s3_server.objects(s3_bucket))
    via_proxy.clear()
    via_proxy.hang(method, every=after + 1)
    proc = subprocess.Popen(
        [MLV, "remote", "repack", "store"],
        cwd=mlv_repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while via_proxy.count(method) <= after and proc.poll() is None:
        assert time.monotonic() < deadline, f"repack never sent {after} {method}"
        time.sleep(0.002)
    killed = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)
    assert killed, "repack finished before it was killed"
    assert set(s3_server.objects(s3_bucket)) != before
    via_proxy.clear()
    mlv("verify", "--remote", "store", cwd=mlv_repo)
    assert_clone_pulls(mlv_repo, tmp_path)
    # The killed holder's lock is on this machine and its process is gone: no wait.
    doc = repack(mlv_repo)
    assert doc["remaining"] == 0 and doc["marker_written"] is True
    keys = set(s3_server.objects(s3_bucket))
    big = xxh(files["data/model.bin"]).split(":")[1]
    loose = [k for k in keys if k.startswith("store/xxh128/")]
    assert loose == [f"store/xxh128/{big[:2]}/{big[2:]}"]
    assert not [k for k in keys if k.startswith("store/locks/")]
    mlv("verify", "--remote", "store", cwd=mlv_repo)
    assert_clone_pulls(mlv_repo, tmp_path, "clone2")


def test_a_loose_copy_stays_when_its_packed_copy_is_rotten(mlv_repo: Path, tmp_path: Path) -> None:
    """An object loose and indexed (a killed repack's) loses its loose copy only once its
    packed bytes hash right: a pack of the right size but rotten inside proves nothing."""
    from mlv.objects.packs.index import PackRef, encode
    from mlv.objects.packs.packfile import PackWriter

    remote = tmp_path / "remote"
    files = pushed_loose(mlv_repo, str(remote))
    data = files["data/a/f3.txt"]
    victim = xxh(data)
    writer = PackWriter(str(tmp_path / "p.pack"), "xxh128")
    writer.add(victim, data, 0)
    pack = writer.finish()
    path = remote / "packs" / pack.name[:2] / f"{pack.name}.pack"
    path.parent.mkdir(parents=True)
    raw = bytearray((tmp_path / "p.pack").read_bytes())
    raw[pack.entries[0].offset] ^= 0xFF  # rotten, same size
    path.write_bytes(bytes(raw))
    index = encode("xxh128", [(PackRef(pack.name, pack.size), pack.entries)])
    (remote / "index").mkdir()
    (remote / "index" / f"{xxh(index).split(':')[1]}.idx").write_bytes(index)
    proc = mlv("remote", "repack", "store", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and victim in proc.stdout + proc.stderr
    loose = loose_objects(remote)
    assert victim in loose and xxh(loose[victim].read_bytes()) == victim
