"""push / fetch / pull against an S3 API server (moto) through s3fs, as a user would use
AWS or MinIO: credentials and endpoint from the environment, faults injected by a proxy,
and the requests counted."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_error, commit_all, git, mlv, snapshot, write_files, xxh
from servers import FaultProxy, S3Server

PREFIX = "store"


def bucket_objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    """hash id -> bytes of every object under the remote's prefix."""
    client = server.client()
    try:
        found: dict[str, bytes] = {}
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/")
        for page in pages:
            for item in page.get("Contents", []):
                _, algo, shard, rest = item["Key"].split("/")
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found[f"{algo}:{shard}{rest}"] = body
        return found
    finally:
        client.close()


def assert_remote_sound(server: S3Server, bucket: str, expected: int | None = None) -> None:
    """Every object's bytes hash to its name; every tree names only objects that are there."""
    objects = bucket_objects(server, bucket)
    for hash_id, data in objects.items():
        assert xxh(data) == hash_id
        if data.startswith(b'{"mlv-tree"'):
            for row in json.loads(data)["entries"]:
                assert row[2] in objects
    if expected is not None:
        assert len(objects) == expected


def make_dataset(repo: Path, bucket: str, n: int = 6) -> dict[str, bytes]:
    files = {f"data/sub/s{i}.txt": f"sub {i}".encode() for i in range(n)}
    files |= {f"data/other/o{i}.txt": f"other {i}".encode() for i in range(n)}
    files["data/big.bin"] = os.urandom(6 << 20)  # > 5 MiB: s3fs's multipart threshold
    write_files(repo, files)
    mlv("add", "data", cwd=repo)
    mlv("remote", "add", "-d", "s3", f"s3://{bucket}/{PREFIX}", cwd=repo)
    commit_all(repo, "data")
    return files


def clone(repo: Path, tmp_path: Path, name: str = "clone") -> Path:
    target = tmp_path / name
    git("clone", "-q", str(repo), str(target), cwd=tmp_path)
    return target


def as_json(proc: Any) -> dict[str, Any]:
    return json.loads(proc.stdout)


def test_push_and_pull_in_a_second_clone(
    mlv_repo: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    make_dataset(mlv_repo, s3_bucket)
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    total = 13 + 3  # files and trees (data, sub, other)
    assert doc["ok"] and doc["transferred"]["objects"] == total
    assert_remote_sound(s3_server, s3_bucket, total)
    assert as_json(mlv("push", "--json", cwd=mlv_repo))["transferred"]["objects"] == 0
    assert mlv("status", "--remote", "s3", "--check", cwd=mlv_repo).returncode == 0

    other = clone(mlv_repo, tmp_path)
    partial = as_json(mlv("pull", "data/sub", "--json", cwd=other))
    assert partial["transferred"]["objects"] == 2 + 6  # trees data and sub, then its files
    assert not (other / "data" / "other").exists()
    mlv("pull", cwd=other)
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")

    write_files(mlv_repo, {"data/sub/new.txt": "new"})
    mlv("commit", cwd=mlv_repo)
    proc = mlv("status", "--remote", "s3", "--check", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and "not pushed" in proc.stdout


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
    make_dataset(mlv_repo, s3_bucket)
    mlv("remote", "modify", "s3", "endpoint_url", s3_server.endpoint_url, cwd=mlv_repo)
    mlv("remote", "modify", "s3", "region", "us-east-1", cwd=mlv_repo)
    mlv("remote", "modify", "--local", "s3", "key", "testing", cwd=mlv_repo)
    mlv("remote", "modify", "--local", "s3", "secret", "testing-secret", cwd=mlv_repo)
    assert as_json(mlv("push", "--json", cwd=mlv_repo))["ok"]
    committed = (mlv_repo / ".mlv" / "config.yaml").read_text()
    assert "testing-secret" not in committed and "key:" not in committed
    assert_remote_sound(s3_server, s3_bucket, 16)


def test_request_counts(
    mlv_repo: Path,
    s3_bucket: str,
    s3_env: dict[str, str],
    fault_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint_url)
    write_files(mlv_repo, {f"many/f{i:03}.txt": f"file {i}" for i in range(300)})
    mlv("add", "many", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", f"s3://{s3_bucket}/{PREFIX}", cwd=mlv_repo)
    fault_proxy.clear()
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    assert doc["transferred"]["objects"] == 301
    puts = fault_proxy.count("PUT", f"/{s3_bucket}/{PREFIX}/xxh128/")
    assert puts == 301  # one write per missing object, nothing else written
    assert fault_proxy.count("PUT") == 301
    # 300 objects on an empty bucket: listings are cheaper than 300 existence checks
    assert fault_proxy.count("HEAD") <= 1  # the root tree's own check
    assert fault_proxy.count("GET", "list-type=2") <= 3

    fault_proxy.clear()
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    assert doc["transferred"]["objects"] == 0
    assert fault_proxy.count("PUT") == 0
    assert fault_proxy.count("HEAD") == 1  # one check: the pointer's tree is there
    assert fault_proxy.count("GET", "list-type=2") == 0


def test_one_file_against_a_big_remote_lists_nothing_whole(
    mlv_repo: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    s3_env: dict[str, str],
    fault_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.backends import get_backend

    backend = get_backend("s3")["123456789012"]["global"]
    start = time.monotonic()
    for i in range(100_000):
        digest = f"{i:032x}"
        backend.put_object(s3_bucket, f"{PREFIX}/xxh128/{digest[:2]}/{digest[2:]}", b"x")
    assert time.monotonic() - start < 120
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint_url)
    write_files(mlv_repo, {"one.bin": "just one file"})
    mlv("add", "one.bin", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", f"s3://{s3_bucket}/{PREFIX}", cwd=mlv_repo)
    commit_all(mlv_repo)
    fault_proxy.clear()
    assert as_json(mlv("push", "--json", cwd=mlv_repo))["transferred"]["objects"] == 1
    assert fault_proxy.count("GET", "list-type=2") == 0
    assert fault_proxy.count("PUT") == 1 and fault_proxy.count("HEAD") == 1
    other = clone(mlv_repo, tmp_path)
    fault_proxy.clear()
    mlv("pull", cwd=other)
    assert (other / "one.bin").read_text() == "just one file"
    assert fault_proxy.count("GET", "list-type=2") == 0
    assert fault_proxy.count() == 1  # one GET of the object itself


def test_push_and_pull_survive_server_errors_and_cut_connections(
    mlv_repo: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    s3_env: dict[str, str],
    fault_proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint_url)
    make_dataset(mlv_repo, s3_bucket, n=10)
    fault_proxy.fail("PUT", "/xxh128/", status=503, times=4, every=3)
    fault_proxy.fail("PUT", "/xxh128/", status=500, times=2, every=5)
    fault_proxy.drop("PUT", "/xxh128/", forward=True, times=1)
    doc = as_json(mlv("push", "--json", cwd=mlv_repo))
    assert doc["ok"], doc
    assert sum(r.fired for r in fault_proxy.rules) >= 4
    assert_remote_sound(s3_server, s3_bucket, 21 + 3)

    other = clone(mlv_repo, tmp_path)
    fault_proxy.clear()
    fault_proxy.cut("GET", "/xxh128/", times=3, every=4)
    fault_proxy.fail("GET", "/xxh128/", status=503, times=3, every=3)
    doc = as_json(mlv("pull", "--json", cwd=other))
    assert doc["ok"], doc
    assert sum(r.fired for r in fault_proxy.rules) >= 3
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")
    assert not fault_proxy.errors


def test_corrupt_object_on_s3_is_caught(
    mlv_repo: Path, tmp_path: Path, s3_server: S3Server, s3_bucket: str, s3_env: dict[str, str]
) -> None:
    make_dataset(mlv_repo, s3_bucket)
    mlv("push", cwd=mlv_repo)
    victim = xxh(b"sub 3")
    client = s3_server.client()
    key = f"{PREFIX}/xxh128/{victim[7:9]}/{victim[9:]}"
    client.put_object(Bucket=s3_bucket, Key=key, Body=b"tampered")
    client.close()
    other = clone(mlv_repo, tmp_path)
    proc = mlv("pull", cwd=other, check=False)
    assert proc.returncode == 1
    assert victim in proc.stderr and "corrupt on remote 's3'" in proc.stderr
    assert f"s3://{s3_bucket}/{PREFIX}" in proc.stderr
    assert not (other / "data" / "sub" / "s3.txt").exists()
    cached = [p.read_bytes() for p in (other / ".mlv" / "cache").rglob("*") if p.is_file()]
    assert b"tampered" not in cached
    assert (other / "data" / "sub" / "s2.txt").read_text() == "sub 2"


def test_permanent_errors_are_one_line(
    mlv_repo: Path, s3_server: S3Server, s3_env: dict[str, str]
) -> None:
    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", "s3://no-such-bucket-here/p", cwd=mlv_repo)
    start = time.monotonic()
    line = assert_error(mlv("push", cwd=mlv_repo, check=False), 1, "bucket does not exist")
    assert "'s3' (s3://no-such-bucket-here/p)" in line
    assert time.monotonic() - start < 30
    mlv("remote", "add", "--local", "--force", "s3", "s3://u:pa55@nohost/p", cwd=mlv_repo)
    proc = mlv("push", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and "pa55" not in proc.stderr and "u:***@" in proc.stderr
