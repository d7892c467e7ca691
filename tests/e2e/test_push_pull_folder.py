"""push / fetch / pull / status --remote against a folder remote, with real git clones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from helpers import (
    MLV,
    assert_cache_sound,
    cache_objects,
    commit_all,
    damage_remote_object,
    git,
    mlv,
    plant_temporary,
    read_pointer,
    remote_objects,
    remove_remote_object,
    snapshot,
    write_files,
    xxh,
)


def _tree_entries(data: bytes) -> list[str]:
    return [row[2] for row in json.loads(data)["entries"]]


def assert_trees_complete(remote: Path) -> None:
    """Every tree object on the remote names only objects that are there too."""
    objects = remote_objects(remote)
    for h, data in objects.items():
        if data.startswith(b'{"mlv-tree"'):
            for child in _tree_entries(data):
                assert child in objects, f"tree {h} names {child}, absent"


def dataset(repo: Path) -> dict[str, bytes]:
    files = {f"data/images/cats/c{i}.jpg": f"cat {i}".encode() for i in range(5)}
    files |= {f"data/images/dogs/d{i}.jpg": f"dog {i}".encode() for i in range(5)}
    files["data/labels.csv"] = b"a,b\n1,2\n"
    files["model.bin"] = os.urandom(3 << 20)  # a large file (not read whole in memory)
    write_files(repo, files)
    return files


def setup_pushed(mlv_repo: Path, tmp_path: Path) -> Path:
    remote = tmp_path / "remote"
    dataset(mlv_repo)
    mlv("add", "data", "model.bin", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    mlv("push", cwd=mlv_repo)
    return remote


def clone(mlv_repo: Path, tmp_path: Path, name: str = "clone") -> Path:
    target = tmp_path / name
    git("clone", "-q", str(mlv_repo), str(target), cwd=tmp_path)
    return target


def test_second_clone_pulls_byte_for_byte(mlv_repo: Path, tmp_path: Path) -> None:
    remote = setup_pushed(mlv_repo, tmp_path)
    assert_trees_complete(remote)
    # 12 files + 5 trees (data, images, cats, dogs... ) = all objects of the cache
    cache = set(cache_objects(mlv_repo))
    assert set(remote_objects(remote)) == cache
    other = clone(mlv_repo, tmp_path)
    proc = mlv("pull", "--json", cwd=other)
    doc = json.loads(proc.stdout)
    assert doc["ok"] and doc["transferred"]["objects"] == len(cache)
    assert doc["checkout"]["ok"]
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")
    assert (other / "model.bin").read_bytes() == (mlv_repo / "model.bin").read_bytes()
    assert mlv("status", "--check", cwd=other).returncode == 0


def test_noop_push_and_status_remote(mlv_repo: Path, tmp_path: Path) -> None:
    remote = setup_pushed(mlv_repo, tmp_path)
    doc = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert doc["transferred"] == {"objects": 0, "bytes": 0} and doc["ok"]
    assert mlv("status", "--remote", "store", "--check", cwd=mlv_repo).returncode == 0
    write_files(mlv_repo, {"data/new.txt": "new"})
    mlv("commit", cwd=mlv_repo)
    proc = mlv("status", "-r", "store", "--check", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "not pushed   data  (2 object(s) not on 'store')" in proc.stdout  # file + root tree
    assert "indexed      model.bin" in proc.stdout  # its pack is named, not looked at
    doc = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert doc["transferred"]["objects"] == 2
    assert xxh(b"new") in remote_objects(remote)


def test_pull_one_subtree_fetches_only_it(mlv_repo: Path, tmp_path: Path) -> None:
    setup_pushed(mlv_repo, tmp_path)
    other = clone(mlv_repo, tmp_path)
    proc = mlv("pull", "data/images/cats", "--json", cwd=other)
    doc = json.loads(proc.stdout)
    # the trees on the way (data, images) and the cats tree, then its 5 files
    assert doc["transferred"]["objects"] == 3 + 5
    assert sorted(os.listdir(other / "data" / "images" / "cats")) == [f"c{i}.jpg" for i in range(5)]
    assert not (other / "data" / "images" / "dogs").exists()
    assert not (other / "model.bin").exists()
    cached = {p.name for p in (other / ".mlv" / "cache").rglob("*") if p.is_file()}
    assert xxh(b"dog 0")[len("xxh128:") + 2 :] not in cached


def test_fetch_and_push_of_old_revisions(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    write_files(mlv_repo, {"m.txt": "version 1"})
    mlv("add", "m.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    git("tag", "v1", cwd=mlv_repo)
    write_files(mlv_repo, {"m.txt": "version 2"})
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    mlv("push", cwd=mlv_repo)
    assert set(remote_objects(remote)) == {xxh(b"version 2")}
    mlv("push", "--rev", "v1", cwd=mlv_repo)
    assert set(remote_objects(remote)) == {xxh(b"version 1"), xxh(b"version 2")}

    other = clone(mlv_repo, tmp_path)
    mlv("fetch", "--all-commits", cwd=other)
    git("checkout", "-q", "v1", cwd=other)
    mlv("checkout", cwd=other)
    assert (other / "m.txt").read_text() == "version 1"
    bad = mlv("push", "--rev", "no-such-rev", cwd=mlv_repo, check=False)
    assert bad.returncode == 1 and "unknown revision 'no-such-rev'" in bad.stderr


def test_push_reports_objects_missing_from_the_cache(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    dataset(mlv_repo)
    mlv("add", "data", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    lost = xxh(b"dog 3")
    obj = mlv_repo / ".mlv" / "cache" / "xxh128" / lost[7:9] / lost[9:]
    obj.chmod(0o644)
    obj.unlink()
    proc = mlv("push", "--json", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert {"hash": lost, "path": "data/images/dogs/d3.jpg"} in doc["missing"]
    on_remote = remote_objects(remote)
    assert xxh(b"dog 2") in on_remote
    dogs_tree = read_pointer(mlv_repo / "data.mlv")["hash"]
    assert dogs_tree not in on_remote  # the root tree waits for its complete content
    assert_trees_complete(remote)
    text = mlv("push", cwd=mlv_repo, check=False)
    assert "data/images/dogs/d3.jpg" in text.stderr and "not in the cache" in text.stderr


def test_corrupt_object_on_the_remote_is_caught(mlv_repo: Path, tmp_path: Path) -> None:
    remote = setup_pushed(mlv_repo, tmp_path)
    damage_remote_object(remote, xxh(b"cat 2"))
    other = clone(mlv_repo, tmp_path)
    proc = mlv("pull", "--json", cwd=other, check=False)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["corrupt"] == [{"hash": xxh(b"cat 2"), "path": "data/images/cats/c2.jpg"}]
    assert not (other / "data" / "images" / "cats" / "c2.jpg").exists()
    assert (other / "data" / "images" / "cats" / "c1.jpg").read_bytes() == b"cat 1"
    assert xxh(b"cat 2") not in assert_cache_sound(other)
    text = mlv("fetch", cwd=other, check=False)
    assert "corrupt on remote 'store'" in text.stderr and xxh(b"cat 2") in text.stderr


def test_missing_object_on_the_remote_is_reported(mlv_repo: Path, tmp_path: Path) -> None:
    remote = setup_pushed(mlv_repo, tmp_path)
    assert xxh(b"dog 4") in remove_remote_object(remote, xxh(b"dog 4"))
    other = clone(mlv_repo, tmp_path)
    proc = mlv("fetch", cwd=other, check=False)
    assert proc.returncode == 1
    assert "not on remote 'store'" in proc.stderr and "data/images/dogs/d4.jpg" in proc.stderr


def test_interrupted_push_leaves_only_whole_objects(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    write_files(mlv_repo, {f"big/f{i:04}.bin": os.urandom(2048) for i in range(3000)})
    mlv("add", "big", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    mlv("remote", "modify", "store", "pack_size", "1MiB", cwd=mlv_repo)  # about 6 packs
    proc = subprocess.Popen([MLV, "push"], cwd=mlv_repo, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(remote.glob("index/*.idx")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent = remote_objects(remote)  # what an index names: packs whose index made it
    assert 0 < len(sent) < 3001
    for h, data in sent.items():
        assert xxh(data) == h  # nothing half-written under an object's name
    assert_trees_complete(remote)
    # every index names complete packs; the pointer's data is just not all there yet
    proc = mlv("verify", "--remote", "store", "--json", cwd=mlv_repo, check=False)
    doc = json.loads(proc.stdout)
    assert {p["found"] for p in doc["problems"]} == {"missing"}, doc["problems"]
    assert not doc["remote"]["warnings"]
    doc = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert doc["transferred"]["objects"] == 3001 - len(sent)  # what arrived is not re-sent
    assert len(remote_objects(remote)) == 3001
    assert_trees_complete(remote)
    assert mlv("verify", "--remote", "store", cwd=mlv_repo).returncode == 0


def test_push_never_spreads_a_corrupt_cache_object(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    dataset(mlv_repo)
    mlv("add", "data", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    bad = xxh(b"cat 1")
    obj = mlv_repo / ".mlv" / "cache" / "xxh128" / bad[7:9] / bad[9:]
    obj.chmod(0o644)
    obj.write_bytes(b"rotten")
    proc = mlv("push", "--json", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["corrupt"] == [{"hash": bad, "path": "data/images/cats/c1.jpg"}]
    on_remote = remote_objects(remote)
    assert bad not in on_remote and xxh(b"cat 0") in on_remote
    assert read_pointer(mlv_repo / "data.mlv")["hash"] not in on_remote
    assert_trees_complete(remote)


def test_pull_of_one_file_inside_a_directory(mlv_repo: Path, tmp_path: Path) -> None:
    setup_pushed(mlv_repo, tmp_path)
    other = clone(mlv_repo, tmp_path)
    mlv("pull", "data/images/dogs/d2.jpg", cwd=other)
    assert (other / "data" / "images" / "dogs" / "d2.jpg").read_bytes() == b"dog 2"
    assert os.listdir(other / "data" / "images" / "dogs") == ["d2.jpg"]


def test_http_remote_is_read_only(mlv_repo: Path) -> None:
    (mlv_repo / "f.txt").write_text("x")
    mlv("add", "f.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "web", "https://example.invalid/data", cwd=mlv_repo)
    proc = mlv("push", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and "read-only" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_push_removes_stale_temporaries_in_the_folders_it_writes(
    mlv_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    mlv("remote", "modify", "store", "pack_threshold", "0", cwd=mlv_repo)  # loose objects
    content = b"pushed content"
    shard = xxh(content).split(":")[1][:2]
    other = "00" if shard != "00" else "01"
    written = remote / "xxh128" / shard
    stale = plant_temporary(written / ".mlvtmp-4242-0-cdef", 2 * 3600)
    fresh = plant_temporary(written / ".mlvtmp-4243-0-cdef", 60)  # a concurrent push's
    elsewhere = plant_temporary(remote / "xxh128" / other / ".mlvtmp-4242-1-cdef", 2 * 3600)
    write_files(mlv_repo, {"a.bin": content})
    mlv("add", "a.bin", cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
    assert xxh(content) in remote_objects(remote)
    assert not stale.exists()
    assert fresh.read_bytes() == b"half an object"
    assert elsewhere.exists()  # not written by this push: `mlv gc -r` sweeps everywhere
