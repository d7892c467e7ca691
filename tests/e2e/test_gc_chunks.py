"""`mlv gc` and chunked objects (issue 16): on a remote, a kept chunk list keeps every chunk
it names and the chunks only dead lists named go; a kept chunk list gc cannot read stops
every pack deletion; in the cache, the chunk list of an object gc deletes goes with it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from helpers import (
    cache_objects,
    chunked_objects,
    commit_all,
    damage_remote_object,
    git,
    mlv,
    packed_objects,
    snapshot,
    xxh,
)

BIG = 12 << 20  # above the 4 MiB pack_threshold: pushed as chunks


def chunk_lists(remote: Path) -> dict[str, set[str]]:
    """hash id -> the chunks its chunk list names, for every chunk list the remote's
    indexes name (read from its pack and checked with mlv's parser)."""
    from mlv.objects.packs.chunks import ChunkList

    out: dict[str, set[str]] = {}
    places = packed_objects(remote)
    for h, length in chunked_objects(remote).items():
        pack, offset, stored = places[h]
        with pack.open("rb") as fh:
            fh.seek(offset)
            data = fh.read(stored)
        out[h] = {r.hash for r in ChunkList.parse(data, length, "xxh128").chunks}
    return out


def named(remote: Path, kind: int) -> dict[str, int]:
    """hash id -> stored bytes, for every entry of this kind that an index names."""
    from mlv.objects.packs.index import PackIndex

    out: dict[str, int] = {}
    for idx in sorted((remote / "index").glob("*.idx")):
        for h, loc in PackIndex.parse(idx.stem, idx.read_bytes()).items():
            if loc.kind == kind:
                out[h] = loc.stored
    return out


def pack_bytes(remote: Path) -> int:
    return sum(p.stat().st_size for p in (remote / "packs").glob("*/*.pack"))


def two_versions(repo: Path, remote: Path) -> tuple[bytes, bytes]:
    """Push v1 of a 12 MiB random file, then v2 (edits and an insert); the workspace holds
    v2 only. Returns (v1, v2)."""
    mlv("remote", "add", "-d", "store", str(remote), cwd=repo)
    v1 = os.urandom(BIG)
    (repo / "data").mkdir()
    (repo / "data" / "model.bin").write_bytes(v1)
    mlv("add", "data", cwd=repo)
    commit_all(repo, "v1")
    mlv("push", cwd=repo)
    v2 = v1[: 3 << 20] + os.urandom(200_000) + v1[3 << 20 :]  # an insert
    v2 = v2[:4096] + os.urandom(4096) + v2[8192:]  # edits near the start and the end
    v2 = v2[: -(1 << 20)] + os.urandom(8192) + v2[-(1 << 20) + 8192 :]
    model = repo / "data" / "model.bin"
    model.chmod(0o644)
    model.write_bytes(v2)
    mlv("add", "data", cwd=repo)
    commit_all(repo, "v2")
    mlv("push", cwd=repo)
    return v1, v2


def test_gc_keeps_the_chunks_of_kept_lists_and_drops_those_only_dead_lists_named(
    mlv_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    v1, v2 = two_versions(mlv_repo, remote)
    lists = chunk_lists(remote)
    assert set(lists) == {xxh(v1), xxh(v2)}
    kept, dead = lists[xxh(v2)], lists[xxh(v1)] - lists[xxh(v2)]
    assert dead and kept & lists[xxh(v1)]  # the versions share most chunks, not all
    before = pack_bytes(remote)
    chunk_bytes = sum(named(remote, 0).values())

    proc = mlv("gc", "-w", "-r", "store", "-f", "--json", cwd=mlv_repo)
    assert "no pack deleted" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["failed"] == [] and doc["packs"]["deleted"] > 0

    chunks = named(remote, 0)
    assert kept <= set(chunks)  # every chunk of v2 is still named
    assert not dead & set(chunks)  # the chunks only v1 had are not
    assert sum(chunks.values()) < chunk_bytes
    assert chunked_objects(remote) == {xxh(v2): len(v2)}  # kind 2 and its length, kept
    assert pack_bytes(remote) < before
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    mlv("pull", cwd=clone)
    assert (clone / "data" / "model.bin").read_bytes() == v2
    assert snapshot(clone / "data") == snapshot(mlv_repo / "data")
    assert mlv("verify", "--remote", "store", "--full", cwd=mlv_repo).returncode == 0
    # A second gc finds nothing more to do, and reads v2's list from the remote when the
    # cache has no copy of it.
    shutil.rmtree(mlv_repo / ".mlv" / "cache" / "chunks")
    again = json.loads(mlv("gc", "-w", "-r", "store", "-f", "--json", cwd=mlv_repo).stdout)
    assert again["removed"] == 0
    assert kept <= set(named(remote, 0))
    assert mlv("verify", "--remote", "store", "--full", cwd=mlv_repo).returncode == 0


def test_a_rotten_kept_chunk_list_stops_every_pack_deletion(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    _, v2 = two_versions(mlv_repo, remote)
    shutil.rmtree(mlv_repo / ".mlv" / "cache" / "chunks")  # read from the remote
    damage_remote_object(remote, xxh(v2))
    packs = {p: p.read_bytes() for p in (remote / "packs").glob("*/*.pack")}
    indexes = {p: p.read_bytes() for p in (remote / "index").glob("*.idx")}

    proc = mlv("gc", "-w", "-r", "store", "-f", cwd=mlv_repo)

    assert proc.stderr.count("no pack deleted this run: the chunk list of kept object") == 1
    assert xxh(v2) in proc.stderr and "not valid" in proc.stderr
    assert {p: p.read_bytes() for p in (remote / "packs").glob("*/*.pack")} == packs
    assert {p: p.read_bytes() for p in (remote / "index").glob("*.idx")} == indexes


def test_local_gc_removes_the_chunk_list_of_an_object_it_deletes(
    mlv_repo: Path, tmp_path: Path
) -> None:
    from mlv.objects.packs.chunked import list_path
    from mlv.objects.store import Cache

    v1, v2 = two_versions(mlv_repo, tmp_path / "remote")
    cache = Cache(str(mlv_repo / ".mlv" / "cache"), "xxh128")
    old, new = Path(list_path(cache, xxh(v1))), Path(list_path(cache, xxh(v2)))
    assert old.is_file() and new.is_file()  # kept by push, to rebuild the next version

    dry = json.loads(mlv("gc", "-w", "--dry-run", "--json", cwd=mlv_repo).stdout)
    assert dry["chunk_lists"] == 1 and old.is_file()  # a dry run deletes nothing

    proc = mlv("gc", "-w", "-f", cwd=mlv_repo)
    assert xxh(v1) not in cache_objects(mlv_repo)
    assert not old.exists() and new.is_file()
    assert "1 chunk list" in proc.stderr + proc.stdout
