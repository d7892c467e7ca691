"""push / fetch / pull / status --remote against an S3 API server (moto) through s3fs, as a
user reaches AWS or MinIO: credentials and endpoint from the environment or the remote's
options, requests counted and faults injected by a proxy, real git clones."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import xxhash
from helpers import (
    assert_cache_sound,
    assert_error,
    cache_objects,
    commit_all,
    decoded,
    git,
    mlv,
    snapshot,
    write_files,
    xxh,
)
from servers import FaultProxy, S3Server

PREFIX = "store"
ACCOUNT = "123456789012"  # moto's default account
BIG = 6 << 20  # > 5 MiB: above S3's multipart minimum, and streamed to a file on download
TREE = b'{"mlv-tree"'


# ---- helpers ----------------------------------------------------------------------------


def bucket_keys(server: S3Server, bucket: str) -> dict[str, bytes]:
    """key (below the remote's prefix) -> bytes, for every key of the remote (any key
    outside the prefix fails)."""
    found: dict[str, bytes] = {}
    for key, body in server.objects(bucket).items():
        assert key.startswith(f"{PREFIX}/"), key
        found[key[len(PREFIX) + 1 :]] = body
    return found


def bucket_objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    """hash id -> bytes of every object of the remote, loose or packed (read through the
    indexes with mlv's own checked parser); any key of another form fails."""
    from mlv.objects.packs.chunks import ChunkList
    from mlv.objects.packs.index import PackIndex

    keys = bucket_keys(server, bucket)
    found: dict[str, bytes] = {}
    for key, body in keys.items():
        parts = key.split("/")
        if key == "mlv-remote.json" or parts[0] in ("packs", "index"):
            continue
        algo, shard, rest = parts
        assert (algo, len(shard)) == ("xxh128", 2), key
        found[f"{algo}:{shard}{rest}"] = body
    chunked: dict[str, int] = {}
    for key, body in keys.items():
        if key.startswith("index/"):
            index = PackIndex.parse(key[len("index/") : -len(".idx")], body)
            for h, loc in index.items():
                pack = keys[f"packs/{loc.pack.name[:2]}/{loc.pack.name}.pack"]
                found.setdefault(
                    h, decoded(pack[loc.offset : loc.offset + loc.stored], loc.codec, loc.length)
                )
                if loc.kind == 2:  # a chunk list: the object is its chunks put together
                    chunked[h] = loc.length
    chunks: set[str] = set()
    for h, length in chunked.items():
        chunk_list = ChunkList.parse(found[h], length, "xxh128")
        found[h] = b"".join(found[ref.hash] for ref in chunk_list.chunks)
        chunks |= {ref.hash for ref in chunk_list.chunks}
    return {h: data for h, data in found.items() if h not in chunks}  # objects, not chunks


def assert_remote_sound(server: S3Server, bucket: str) -> dict[str, bytes]:
    """Every object hashes to its name (re-hashed here); every tree names only objects that
    are there."""
    objects = bucket_objects(server, bucket)
    for hash_id, data in objects.items():
        assert xxh(data) == hash_id, f"object {hash_id} does not match its bytes"
        if data.startswith(TREE):
            for row in json.loads(data)["entries"]:
                assert row[2] in objects, f"tree {hash_id} names {row[2]}, absent"
    return objects


def put_raw(server: S3Server, bucket: str, hash_id: str, data: bytes) -> None:
    """Replace an object's bytes on the remote behind mlv's back: its loose key, or its
    range inside its pack (data of the same length)."""
    from mlv.objects.packs.index import PackIndex

    keys = bucket_keys(server, bucket)
    client = server.client()
    try:
        loose = f"xxh128/{hash_id[7:9]}/{hash_id[9:]}"
        if loose in keys:
            client.put_object(Bucket=bucket, Key=f"{PREFIX}/{loose}", Body=data)
            return
        for key, body in keys.items():
            if not key.startswith("index/"):
                continue
            loc = PackIndex.parse(key[len("index/") : -len(".idx")], body).lookup(hash_id)
            if loc is None:
                continue
            assert len(data) == loc.stored
            pack_key = f"packs/{loc.pack.name[:2]}/{loc.pack.name}.pack"
            pack = bytearray(keys[pack_key])
            pack[loc.offset : loc.offset + loc.stored] = data
            client.put_object(Bucket=bucket, Key=f"{PREFIX}/{pack_key}", Body=bytes(pack))
            return
        raise AssertionError(f"{hash_id} is not on the remote")
    finally:
        client.close()


def bucket_objects_raw(server: S3Server, bucket: str) -> dict[str, bytes]:
    """hash id -> stored bytes of every packed entry (a chunk list as it is stored)."""
    from mlv.objects.packs.index import PackIndex

    keys = bucket_keys(server, bucket)
    found: dict[str, bytes] = {}
    for key, body in keys.items():
        if key.startswith("index/"):
            for h, loc in PackIndex.parse(key[len("index/") : -len(".idx")], body).items():
                pack = keys[f"packs/{loc.pack.name[:2]}/{loc.pack.name}.pack"]
                found.setdefault(
                    h, decoded(pack[loc.offset : loc.offset + loc.stored], loc.codec, loc.length)
                )
    return found


def first_chunk(server: S3Server, bucket: str, hash_id: str) -> str:
    """The first chunk of a chunked object on the remote."""
    from mlv.objects.packs.chunks import ChunkList

    raw = bucket_objects_raw(server, bucket)[hash_id]
    return ChunkList.parse(raw, BIG, "xxh128").chunks[0].hash


def dataset(repo: Path) -> dict[str, bytes]:
    """data/ with nested folders and one large file; 16 files, 5 trees."""
    files = {f"data/sub/s{i}.txt": f"sub {i}".encode() for i in range(4)}
    files |= {f"data/sub/deep/d{i}.txt": f"deep {i}".encode() for i in range(3)}
    files |= {f"data/other/o{i}.txt": f"other {i}".encode() for i in range(4)}
    files |= {f"data/other/more/m{i}.txt": f"more {i}".encode() for i in range(4)}
    files["data/big.bin"] = os.urandom(BIG)
    write_files(repo, files)
    return files


N_OBJECTS = 16 + 5  # files + trees (data, sub, deep, other, more)


def setup_repo(repo: Path, bucket: str) -> dict[str, bytes]:
    files = dataset(repo)
    mlv("add", "data", cwd=repo)
    mlv("remote", "add", "-d", "s3", f"s3://{bucket}/{PREFIX}", cwd=repo)
    commit_all(repo, "data")
    return files


def clone(repo: Path, tmp_path: Path, name: str = "clone") -> Path:
    target = tmp_path / name
    git("clone", "-q", str(repo), str(target), cwd=tmp_path)
    return target


def as_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def listing_prefixes(proxy: FaultProxy) -> list[str]:
    """The prefix of every ListObjects(V2) request the proxy saw."""
    return [
        r.params.get("prefix", "")
        for r in proxy.matching("GET")
        if "list-type" in r.params or "prefix" in r.params
    ]


def counts(proxy: FaultProxy) -> dict[str, int]:
    lists = len(listing_prefixes(proxy))
    return {
        "PUT": proxy.count("PUT"),
        "HEAD": proxy.count("HEAD"),
        "GET": proxy.count("GET") - lists,
        "LIST": lists,
        "all": proxy.count(),
    }


SHARD_LISTING = re.compile(rf"^{PREFIX}/xxh128/[0-9a-f]{{2}}/$")


# ---- 1. credentials and endpoint from the environment ------------------------------------


def test_push_then_pull_a_subtree_then_all_in_a_second_clone(
    mlv_repo: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    files = setup_repo(mlv_repo, s3_bucket)
    assert "endpoint" not in (mlv_repo / ".mlv" / "config.yaml").read_text()
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    assert doc["ok"] and doc["remote"] == "s3" and doc["url"] == f"s3://{s3_bucket}/{PREFIX}"
    assert doc["transferred"]["objects"] == N_OBJECTS
    assert doc["transferred"]["bytes"] >= sum(len(b) for b in files.values())
    on_remote = assert_remote_sound(s3_server, s3_bucket)
    assert set(on_remote) == set(cache_objects(mlv_repo))

    again = as_json(mlv("push", "--json", cwd=mlv_repo))
    assert again["ok"] and again["transferred"] == {"objects": 0, "bytes": 0}
    assert mlv("status", "--remote", "s3", "--check", cwd=mlv_repo).returncode == 0

    other = clone(mlv_repo, tmp_path)
    doc = as_json(mlv("pull", "data/sub", "--json", cwd=other))
    assert doc["ok"] and doc["transferred"]["objects"] == 3 + 7  # trees data, sub, deep; files
    sub = {k: v for k, v in files.items() if k.startswith("data/sub/")}
    assert snapshot(other / "data") == {
        "sub": "<dir>",
        "sub/deep": "<dir>",
        **{k[len("data/") :]: v for k, v in sub.items()},
    }
    cached = set(assert_cache_sound(other))
    assert len(cached) == 10 and {xxh(v) for v in sub.values()} <= cached

    doc = as_json(mlv("pull", "--json", cwd=other))
    assert doc["ok"] and doc["transferred"]["objects"] == N_OBJECTS - 10
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")
    assert (other / "data" / "big.bin").read_bytes() == files["data/big.bin"]
    assert set(assert_cache_sound(other)) == set(on_remote)
    assert mlv("status", "--check", cwd=other).returncode == 0

    write_files(mlv_repo, {"data/sub/new.txt": "new"})
    mlv("commit", cwd=mlv_repo)
    proc = mlv("status", "--remote", "s3", "--check", cwd=mlv_repo, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "not pushed   data  (3 object(s) not on 's3')" in proc.stdout  # file, sub, data
    assert as_json(mlv("push", "--json", cwd=mlv_repo))["transferred"]["objects"] == 3
    assert mlv("status", "--remote", "s3", "--check", cwd=mlv_repo).returncode == 0


# ---- 2. endpoint as an option, credentials in config.local.yaml --------------------------


def test_endpoint_option_and_local_credentials(
    mlv_repo: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    key_id, secret = f"AKIA{uuid.uuid4().hex[:16].upper()}", f"s3cr3t-{uuid.uuid4().hex}"
    setup_repo(mlv_repo, s3_bucket)
    mlv("remote", "modify", "s3", "endpoint_url", s3_server.endpoint_url, cwd=mlv_repo)
    mlv("remote", "modify", "s3", "region", "us-east-1", cwd=mlv_repo)
    # without credentials: one line naming the remote
    start = time.monotonic()
    assert_error(mlv("push", cwd=mlv_repo, check=False), 1, "remote 's3'", "credentials")
    assert time.monotonic() - start < 15
    refused = mlv("remote", "modify", "s3", "secret", secret, cwd=mlv_repo, check=False)
    assert refused.returncode == 2 and secret not in refused.stderr
    mlv("remote", "modify", "--local", "s3", "key", key_id, cwd=mlv_repo)
    mlv("remote", "modify", "--local", "s3", "secret", secret, cwd=mlv_repo)
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    assert doc["ok"] and doc["transferred"]["objects"] == N_OBJECTS
    assert len(assert_remote_sound(s3_server, s3_bucket)) == N_OBJECTS
    listed = mlv("remote", "list", "--json", cwd=mlv_repo).stdout
    assert s3_server.endpoint_url in listed and secret not in listed

    commit_all(mlv_repo, "remote options")
    committed = git("show", "HEAD:.mlv/config.yaml", cwd=mlv_repo).stdout
    assert s3_server.endpoint_url in committed
    assert secret not in committed and key_id not in committed
    assert ".mlv/config.local.yaml" not in git("ls-files", cwd=mlv_repo).stdout
    assert secret in (mlv_repo / ".mlv" / "config.local.yaml").read_text()


# ---- 3. requests: how many, and which ----------------------------------------------------


def test_request_counts_of_a_full_and_a_noop_push(
    mlv_repo: Path, s3_bucket: str, via_proxy: FaultProxy, record_property: Any
) -> None:
    proxy = via_proxy
    write_files(mlv_repo, {f"many/f{i:03}.txt": f"file {i}" for i in range(300)})
    write_files(mlv_repo, {"one.txt": "one", "two.txt": "two"})
    mlv("add", "many", "one.txt", "two.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", f"s3://{s3_bucket}/{PREFIX}", cwd=mlv_repo)
    mlv("remote", "modify", "s3", "pack_threshold", "0", cwd=mlv_repo)  # loose, as 0.1 wrote
    proxy.clear()
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    full = counts(proxy)
    record_property("full_push_of_303_objects", full)
    print("push of 303 objects to an empty bucket:", full, listing_prefixes(proxy))
    assert doc["ok"] and doc["transferred"]["objects"] == 303
    # exactly one PUT per object (300 files, 1 tree, 2 single files), nothing else written
    puts = [r.path for r in proxy.matching("PUT") if f"/{PREFIX}/locks/push-" not in r.path]
    expected = {f"/{s3_bucket}/{PREFIX}/xxh128/{h[7:9]}/{h[9:]}" for h in cache_objects(mlv_repo)}
    assert sorted(puts) == sorted(expected)
    assert proxy.count("PUT") == len(puts) + 1  # and the push lock
    assert proxy.count("POST") == 0 and proxy.count("DELETE") == 1  # the lock, released
    # no existence check per object: listings are cheaper (and index/, the marker: 0.1 has none)
    assert full["HEAD"] <= 3
    assert full["LIST"] <= 6  # and index/ (before and under the lock), locks/
    assert full["GET"] <= 1

    proxy.clear()
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    noop = counts(proxy)
    record_property("noop_push_of_3_pointers", noop)
    print("no-op push, 3 pointers:", noop)
    assert doc["ok"] and doc["transferred"] == {"objects": 0, "bytes": 0}
    assert noop["PUT"] == 0
    assert noop["HEAD"] <= 3  # at most one check per pointer
    assert noop["all"] == noop["HEAD"] + noop["LIST"] and noop["LIST"] <= 1  # index/


def test_request_counts_of_pushes_and_pulls_on_a_packed_remote(
    mlv_repo: Path, tmp_path: Path, s3_bucket: str, via_proxy: FaultProxy, record_property: Any
) -> None:
    proxy = via_proxy
    write_files(mlv_repo, {f"many/d{i % 3}/f{i:03}.txt": f"file {i}" for i in range(300)})
    write_files(mlv_repo, {"one.txt": "one", "two.txt": "two"})
    mlv("add", "many", "one.txt", "two.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", f"s3://{s3_bucket}/{PREFIX}", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    proxy.clear()
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    full = counts(proxy)
    record_property("packed_push_of_306_objects", full)
    print("push of 306 objects to an empty bucket, packed:", full, listing_prefixes(proxy))
    assert doc["ok"] and doc["transferred"]["objects"] == 306
    # the lock, the marker, a data pack and its index, a tree pack and its index: nothing
    # per object
    keys = sorted(r.path.split(f"/{PREFIX}/", 1)[1].split("/")[0] for r in proxy.matching("PUT"))
    assert keys == ["index", "index", "locks", "mlv-remote.json", "packs", "packs"], keys
    assert full["HEAD"] == 0 and full["all"] <= 14

    proxy.clear()
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    noop = counts(proxy)
    record_property("packed_noop_push", noop)
    print("no-op push, packed:", noop)
    assert doc["ok"] and doc["transferred"] == {"objects": 0, "bytes": 0}
    assert noop == {"PUT": 0, "HEAD": 0, "GET": 0, "LIST": 1, "all": 1}  # index/ only

    write_files(mlv_repo, {f"many/d{i}/f{i:03}.txt": f"changed {i}" for i in range(3)})
    write_files(mlv_repo, {f"many/d{i % 3}/n{i}.txt": f"new {i}" for i in range(7)})
    mlv("add", "many", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    proxy.clear()
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    ten = counts(proxy)
    record_property("packed_push_of_10_changed_files", ten)
    print("push of 10 changed files, packed:", ten)
    assert doc["ok"] and doc["transferred"]["objects"] == 10 + 4  # files, trees d0-d2, many
    assert ten["all"] <= 10 and ten["PUT"] == 4 + 1  # 2 packs, 2 indexes, the lock

    other = clone(mlv_repo, tmp_path)
    proxy.clear()
    mlv("pull", "many/d1/f001.txt", cwd=other)
    one = counts(proxy)
    record_property("packed_pull_of_one_file", one)
    print("pull of one file, packed (indexes not cached yet):", one)
    assert (other / "many" / "d1" / "f001.txt").read_text() == "changed 1"
    assert one["PUT"] == 0 and one["HEAD"] == 0 and one["LIST"] == 1
    assert one["GET"] <= 4 + 3  # the 4 indexes, then a range of a tree pack per level, the file

    proxy.clear()
    doc = as_json(mlv("verify", "--remote", "s3", "--json", cwd=mlv_repo, check=False))
    checked = counts(proxy)
    record_property("packed_verify_remote", checked)
    print("verify --remote, packed:", checked)
    # index/ and packs/ listed, and the 4 indexes read from the remote again (verify does
    # not trust the local copies: an index may have rotted there)
    assert checked == {"PUT": 0, "HEAD": 0, "GET": 4, "LIST": 2, "all": 6}


def _fill(backend: Any, bucket: str, n: int) -> float:
    """n keys spread over every shard, straight into moto's memory; the seconds it took."""
    start = time.monotonic()
    for i in range(n):
        digest = xxhash.xxh3_128_hexdigest(f"filler {i}".encode())
        backend.put_object(bucket, f"{PREFIX}/xxh128/{digest[:2]}/{digest[2:]}", b"x")
    return time.monotonic() - start


def test_small_transfers_never_list_a_big_remote(
    mlv_repo: Path,
    tmp_path: Path,
    s3_bucket: str,
    via_proxy: FaultProxy,
    record_property: Any,
) -> None:
    from moto.backends import get_backend

    proxy = via_proxy
    backend = get_backend("s3")[ACCOUNT]["global"]
    seconds = _fill(backend, s3_bucket, 100_000)
    print(f"100,000 keys put into moto's memory in {seconds:.1f} s")
    assert seconds < 60
    write_files(mlv_repo, {"one.bin": "just one file"})
    write_files(mlv_repo, {f"few/f{i:02}.txt": f"few {i}" for i in range(20)})
    mlv("add", "one.bin", "few", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", f"s3://{s3_bucket}/{PREFIX}", cwd=mlv_repo)
    mlv("remote", "modify", "s3", "pack_threshold", "0", cwd=mlv_repo)  # loose, as 0.1 wrote
    commit_all(mlv_repo)

    proxy.clear()
    doc = as_json(mlv("push", "one.bin", "--json", cwd=mlv_repo))
    one = counts(proxy)
    record_property("push_one_file_to_100k", one)
    print("push of one file to a remote of 100,000 objects:", one)
    assert doc["ok"] and doc["transferred"]["objects"] == 1
    # HEAD of the object, and once per run of the bucket (a 404 could mean either); the
    # listing of index/ that every command asks (a packed remote's indexes: none here)
    # and the push lock: PUT, LIST locks/, DELETE, then index/ listed again under it
    assert one == {"PUT": 2, "HEAD": 2, "GET": 0, "LIST": 3, "all": 8}

    proxy.clear()
    doc = as_json(mlv("push", "few", "--json", cwd=mlv_repo))
    few = counts(proxy)
    record_property("push_21_objects_to_100k", few)
    print("push of 21 objects to a remote of 100,000:", few, listing_prefixes(proxy))
    assert doc["ok"] and doc["transferred"]["objects"] == 21  # more than FEW: rule by counts
    assert few["PUT"] == 21 + 1  # and the lock
    shards = [
        p for p in listing_prefixes(proxy) if p not in (f"{PREFIX}/index/", f"{PREFIX}/locks/")
    ]
    assert all(SHARD_LISTING.match(p) for p in shards), listing_prefixes(proxy)
    assert few["HEAD"] + few["LIST"] <= 21 + 5

    other = clone(mlv_repo, tmp_path)
    proxy.clear()
    mlv("pull", "one.bin", cwd=other)
    pull = counts(proxy)
    record_property("pull_one_file_from_100k", pull)
    print("pull of one file from a remote of 100,000 objects:", pull)
    assert (other / "one.bin").read_text() == "just one file"
    assert pull == {"PUT": 0, "HEAD": 0, "GET": 1, "LIST": 1, "all": 2}


# ---- 4. faults ---------------------------------------------------------------------------


def test_push_survives_server_errors(
    mlv_repo: Path, s3_server: S3Server, s3_bucket: str, via_proxy: FaultProxy
) -> None:
    proxy = via_proxy
    setup_repo(mlv_repo, s3_bucket)
    rules = [
        proxy.fail("PUT", "/packs/", status=503, times=2),
        proxy.fail("PUT", "/index/", status=500, times=1),
        proxy.drop("PUT", "/packs/", forward=True, times=1),  # stored, answer lost
        proxy.drop("PUT", "/index/", times=1),  # never arrives
    ]
    start = time.monotonic()
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    assert doc["ok"] and doc["transferred"]["objects"] == N_OBJECTS, doc
    assert time.monotonic() - start < 30
    assert [r.fired for r in rules] == [2, 1, 1, 1]
    on_remote = assert_remote_sound(s3_server, s3_bucket)
    assert set(on_remote) == set(cache_objects(mlv_repo))


def test_pull_survives_cut_downloads_and_server_errors(
    mlv_repo: Path, tmp_path: Path, s3_bucket: str, via_proxy: FaultProxy
) -> None:
    proxy = via_proxy
    files = setup_repo(mlv_repo, s3_bucket)
    mlv("push", cwd=mlv_repo)
    big = xxh(files["data/big.bin"])
    other = clone(mlv_repo, tmp_path)
    proxy.clear()
    rules = [
        proxy.cut("GET", "/packs/", keep=3, times=2),  # ranges of packs
        proxy.fail("GET", "/packs/", status=503, times=2),
        proxy.cut("GET", "/packs/", keep=1 << 16, times=1),
        proxy.fail("GET", "/index/", status=500, times=1),
    ]
    doc = as_json(mlv("pull", "--json", cwd=other))
    assert doc["ok"] and doc["transferred"]["objects"] == N_OBJECTS, doc
    assert [r.fired for r in rules] == [2, 2, 1, 1]
    assert big in cache_objects(other)
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")
    assert set(assert_cache_sound(other)) == set(cache_objects(mlv_repo))
    assert mlv("status", "--check", cwd=other).returncode == 0


def test_corrupt_objects_on_s3_never_enter_the_cache(
    mlv_repo: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    files = setup_repo(mlv_repo, s3_bucket)
    mlv("push", cwd=mlv_repo)
    small, big = xxh(b"sub 3"), xxh(files["data/big.bin"])
    put_raw(s3_server, s3_bucket, small, b"sub 9")  # packed: same length, other bytes
    chunk = first_chunk(s3_server, s3_bucket, big)  # big is stored as chunks
    put_raw(
        s3_server,
        s3_bucket,
        chunk,
        os.urandom(len(bucket_objects_raw(s3_server, s3_bucket)[chunk])),
    )
    other = clone(mlv_repo, tmp_path)
    proc = mlv("pull", "--json", cwd=other, check=False)
    assert proc.returncode == 1, proc.stderr
    doc = as_json(proc)
    assert sorted(doc["corrupt"], key=lambda c: c["path"]) == [
        {"hash": big, "path": "data/big.bin"},
        {"hash": small, "path": "data/sub/s3.txt"},
    ]
    assert not (other / "data" / "sub" / "s3.txt").exists()
    assert not (other / "data" / "big.bin").exists()
    assert (other / "data" / "sub" / "s2.txt").read_text() == "sub 2"
    cached = assert_cache_sound(other)
    assert small not in cached and big not in cached
    assert len(cached) == N_OBJECTS - 2
    assert not list((other / ".mlv" / "cache").rglob(".mlvtmp-*"))

    text = mlv("fetch", cwd=other, check=False)
    assert text.returncode == 1
    assert "Traceback" not in text.stderr
    assert f"corrupt on remote 's3' (s3://{s3_bucket}/{PREFIX})" in text.stderr
    assert small in text.stderr and big in text.stderr


# ---- 4b. permanent errors: one line, quickly, secrets redacted ----------------------------


def _quick_error(repo: Path, *args: str, needles: tuple[str, ...]) -> str:
    start = time.monotonic()
    proc = mlv(*args, cwd=repo, check=False)
    line = assert_error(proc, 1, *needles)
    assert time.monotonic() - start < 10, f"{args} took {time.monotonic() - start:.1f} s"
    return line


def test_missing_bucket_is_one_line(mlv_repo: Path, s3_env: dict[str, str]) -> None:
    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", "s3://no-such-bucket-here/p", cwd=mlv_repo)
    needles = ("remote 's3' (s3://no-such-bucket-here/p)", "bucket does not exist")
    _quick_error(mlv_repo, "push", needles=needles)
    (mlv_repo / ".mlv" / "cache").rename(mlv_repo / "old-cache")
    _quick_error(mlv_repo, "fetch", needles=needles)


def test_rejected_credentials_are_one_line(
    mlv_repo: Path, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    from moto.core.authorization import enable_iam_authentication

    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", f"s3://{s3_bucket}/p", cwd=mlv_repo)
    with enable_iam_authentication():  # moto now rejects keys IAM does not know
        line = _quick_error(mlv_repo, "push", needles=("remote 's3'", "access denied"))
    assert "InvalidAccessKeyId" in line or "credentials" in line


def test_credentials_in_a_url_are_never_printed(
    mlv_repo: Path, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    password = f"pw{uuid.uuid4().hex}"
    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    refused = mlv(
        "remote",
        "add",
        "-d",
        "s3",
        f"s3://AKIAUSER:{password}@{s3_bucket}/p",
        cwd=mlv_repo,
        check=False,
    )
    assert refused.returncode == 2 and password not in refused.stderr + refused.stdout
    assert "AKIAUSER:***@" in refused.stderr
    mlv(
        "remote",
        "add",
        "--local",
        "-d",
        "s3",
        f"s3://AKIAUSER:{password}@{s3_bucket}/p",
        cwd=mlv_repo,
    )
    outputs = [
        mlv("remote", "list", cwd=mlv_repo, check=False),
        mlv("remote", "list", "--json", cwd=mlv_repo, check=False),
        mlv("push", cwd=mlv_repo, check=False),
        mlv("push", "--json", cwd=mlv_repo, check=False),
        mlv("status", "--remote", "s3", cwd=mlv_repo, check=False),
        mlv("fetch", cwd=mlv_repo, check=False),
    ]
    for proc in outputs:
        text = proc.stdout + proc.stderr
        assert password not in text, f"{proc.args}: {text}"
    assert any("AKIAUSER:***@" in p.stdout + p.stderr for p in outputs)


def test_status_remote_of_a_missing_bucket_says_so(mlv_repo: Path, s3_env: dict[str, str]) -> None:
    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", "s3://no-such-bucket-here/p", cwd=mlv_repo)
    _quick_error(mlv_repo, "status", "--remote", "s3", needles=("bucket does not exist",))


def test_credentials_in_a_url_are_not_printed_with_verbose(
    mlv_repo: Path, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    password = f"pw{uuid.uuid4().hex}"
    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    url = f"s3://AKIAUSER:{password}@{s3_bucket}/p"
    mlv("remote", "add", "--local", "-d", "s3", url, cwd=mlv_repo)
    proc = mlv("push", "-v", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert password not in proc.stdout + proc.stderr
    assert "debug: " in proc.stderr and "AKIAUSER:***@" in proc.stderr  # logged, redacted
