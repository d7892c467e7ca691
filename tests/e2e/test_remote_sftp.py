"""push / pull over SFTP to Debian's OpenSSH server, reached through ~/.ssh/config as a user
would reach a real host: a `Host` alias, host keys checked against known_hosts (the
sftp_server fixture skips, saying why, without sshd)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    MLV,
    assert_cache_sound,
    assert_error,
    cache_objects,
    commit_all,
    git,
    loose_objects,
    mlv,
    packed_objects,
    remote_objects,
    snapshot,
    write_files,
    xxh,
)
from servers import SFTPServer

TREE = b'{"mlv-tree"'


def store_of(server: SFTPServer) -> Path:
    """A fresh folder on the server for one test (the server lives for the session)."""
    return server.root / f"store-{uuid.uuid4().hex[:12]}"


def url_of(store: Path) -> str:
    return f"ssh://mlvtest{store}"  # store is absolute: ssh://mlvtest/tmp/.../store-...


def assert_store_sound(store: Path) -> dict[str, bytes]:
    """Every object on the remote (seen from the server's disk, loose or packed) hashes to
    its name; every tree names only objects that are there."""
    objects = remote_objects(store) if store.is_dir() else {}
    for hash_id, data in objects.items():
        assert xxh(data) == hash_id, f"{hash_id} on {store} does not match its bytes"
        if data.startswith(TREE):
            for row in json.loads(data)["entries"]:
                assert row[2] in objects, f"tree {hash_id} names {row[2]}, absent"
    return objects


def test_push_then_pull_in_a_second_clone(
    mlv_repo: Path, tmp_path: Path, sftp_server: SFTPServer, ssh_home_config: Path
) -> None:
    store = store_of(sftp_server)
    files = {f"data/a/f{i}.txt": f"a {i}".encode() for i in range(5)}
    files |= {f"data/a/b/g{i}.txt": f"b {i}".encode() for i in range(5)}
    files["data/big.bin"] = os.urandom(3 << 20)
    files["model.bin"] = b"model"
    write_files(mlv_repo, files)
    mlv("add", "data", "model.bin", cwd=mlv_repo)
    mlv("remote", "add", "-d", "ssh", url_of(store), cwd=mlv_repo)
    commit_all(mlv_repo, "data")
    doc = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    total = 12 + 3  # files + trees data, a, b
    assert doc["ok"] and doc["transferred"]["objects"] == total
    assert set(assert_store_sound(store)) == set(cache_objects(mlv_repo))
    assert not list(store.rglob(".mlvtmp-*"))
    # every object is below the packing threshold: all packed, nothing loose
    assert set(packed_objects(store)) == set(cache_objects(mlv_repo))
    assert loose_objects(store) == {}

    again = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert again["ok"] and again["transferred"] == {"objects": 0, "bytes": 0}
    assert mlv("status", "--remote", "ssh", "--check", cwd=mlv_repo).returncode == 0

    other = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(other), cwd=tmp_path)
    doc = json.loads(mlv("pull", "--json", cwd=other).stdout)
    assert doc["ok"] and doc["transferred"]["objects"] == total
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")
    assert (other / "model.bin").read_bytes() == b"model"
    assert set(assert_cache_sound(other)) == set(cache_objects(mlv_repo))


@pytest.mark.parametrize("layout", ["loose", "packed"])
def test_interrupted_push_resumes_with_what_is_missing(
    mlv_repo: Path, tmp_path: Path, sftp_server: SFTPServer, ssh_home_config: Path, layout: str
) -> None:
    """SIGKILL mid-push: what is on the remote is whole (loose objects, or packs an index
    names), a temporary left behind is never read, and the next push sends exactly the
    rest. Loose: one file per object (pack_threshold 0); packed: 1 MiB packs, killed once
    the first pack's index is there."""
    store = store_of(sftp_server)
    n = 2000 if layout == "loose" else 6000
    write_files(mlv_repo, {f"many/f{i:04}.bin": os.urandom(1024) for i in range(n)})
    mlv("add", "many", cwd=mlv_repo)
    mlv("remote", "add", "-d", "ssh", url_of(store), cwd=mlv_repo)
    if layout == "loose":
        mlv("remote", "modify", "ssh", "pack_threshold", "0", cwd=mlv_repo)
    else:
        mlv("remote", "modify", "ssh", "pack_size", "1MiB", cwd=mlv_repo)
    commit_all(mlv_repo, "many")

    def arrived() -> bool:
        if layout == "loose":
            return store.is_dir() and len(loose_objects(store)) >= 100
        return any((store / "index").glob("*.idx"))

    proc = subprocess.Popen([MLV, "push"], cwd=mlv_repo, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if arrived():
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent = assert_store_sound(store)  # nothing half-written under an object's name
    assert 0 < len(sent) < n + 1, "the push was not interrupted mid-way"
    left = {p.relative_to(store) for p in store.rglob(".mlvtmp-*")}
    print(f"killed after {len(sent)} of {n + 1} objects; {len(left)} temporaries left")
    # what a kill may leave: a half-written temporary, here beside an object not yet sent
    # (loose) or beside the packs
    unsent = sorted(set(cache_objects(mlv_repo)) - set(sent))[0]
    shard = store / "xxh128" / unsent[7:9] if layout == "loose" else store / "packs" / "00"
    shard.mkdir(parents=True, exist_ok=True)
    (shard / f".mlvtmp-{uuid.uuid4().hex}").write_bytes(b"half an obj")

    doc = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert doc["ok"] and doc["transferred"]["objects"] == n + 1 - len(sent)
    assert set(assert_store_sound(store)) == set(cache_objects(mlv_repo))
    assert mlv("status", "--remote", "ssh", "--check", cwd=mlv_repo).returncode == 0
    # temporaries are never read as objects: a clone gets every file byte for byte
    other = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(other), cwd=tmp_path)
    doc = json.loads(mlv("pull", "--json", cwd=other).stdout)
    assert doc["ok"] and doc["transferred"]["objects"] == n + 1
    assert snapshot(other / "many") == snapshot(mlv_repo / "many")


def test_wrong_host_key_is_one_line(
    mlv_repo: Path, sftp_server: SFTPServer, ssh_home_config: Path
) -> None:
    store = store_of(sftp_server)
    known = ssh_home_config.parent / "known_hosts"
    other_key = sftp_server.client_key.with_suffix(".pub").read_text().split()[:2]
    host = sftp_server.known_hosts_line.split()[0]
    known.write_text(f"{host} {' '.join(other_key)}\n")  # some other key for this host
    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "ssh", url_of(store), cwd=mlv_repo)
    for args in (("push",), ("status", "--remote", "ssh"), ("fetch",)):
        start = time.monotonic()
        line = assert_error(mlv(*args, cwd=mlv_repo, check=False), 1, "remote 'ssh'")
        assert time.monotonic() - start < 15
        assert f"ssh://mlvtest{store}" in line and "host key" in line.lower(), line
    assert not store.exists()


def test_push_creates_each_folder_once(sftp_server: SFTPServer, tmp_path: Path) -> None:
    """SFTP requests of a push of small objects, counted in-process on asyncssh's client: one
    OPEN per object, and folders made once each (sshfs's put and pipe run makedirs, a MKDIR
    and a STAT per path component, before every file)."""
    from asyncssh.sftp import FXP_MKDIR, FXP_OPEN, FXP_STAT, SFTPClientHandler

    from mlv.storage.registry import open_backend

    counts: Counter[int | bytes] = Counter()
    original = SFTPClientHandler._make_request

    async def counting(self: Any, pkttype: int | bytes, *args: Any) -> Any:
        counts[pkttype] += 1
        return await original(self, pkttype, *args)

    store = store_of(sftp_server)
    options = {k: v for k, v in sftp_server.sshfs_kwargs.items() if k != "host"}
    backend = open_backend(f"ssh://{sftp_server.host}{store}", options)
    blobs = [os.urandom(256) for _ in range(600)]
    keys = [f"xxh128/{h[7:9]}/{h[9:]}" for h in map(xxh, blobs)]
    shards = {k.rpartition("/")[0] for k in keys}
    files = tmp_path / "files"
    files.mkdir()
    for i in range(500, 600):
        (files / str(i)).write_bytes(blobs[i])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(SFTPClientHandler, "_make_request", counting)
        written = backend.write(list(zip(blobs[:500], keys[:500], strict=True)), 32)
        uploaded = backend.upload([(str(files / str(i)), keys[i]) for i in range(500, 600)], 32)
    backend.close()
    assert all(r.ok for r in written + uploaded)
    assert set(assert_store_sound(store)) == {xxh(b) for b in blobs}
    print(f"600 objects in {len(shards)} folders, SFTP requests: {dict(counts)}")
    assert counts[FXP_OPEN] == 600
    depth = len(store.parts) + 1
    assert counts[FXP_MKDIR] <= len(shards) + depth  # was ~2 x depth per object
    assert counts[FXP_MKDIR] + counts[FXP_STAT] <= 2 * (len(shards) + 2) + 2 * depth + 100
