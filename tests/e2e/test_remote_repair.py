"""A damaged remote is found and repaired (issue 13, item 4).

- `mlv gc -r` deletes trees before what they name, level by level, so that however it is
  stopped (SIGKILL, a failed delete), no tree stays on the remote without its content:
  push and `status --remote` take a tree on the remote to stand for its whole folder.
- `mlv push --verify` checks every object of the selection on the remote (trees are not
  trusted), re-sends what is missing, then writes the trees that lack; the messages of
  pull, verify and `status --remote` name it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import MLV, cache_objects, commit_all, git, mlv, object_path, snapshot, write_files
from servers import FaultProxy, S3Server

TREE = b'{"mlv-tree"'
PREFIX = "store"


# ---- helpers ----------------------------------------------------------------------------


def folder_objects(remote: Path) -> dict[str, bytes]:
    found = {}
    for path in remote.rglob("*"):
        parts = path.relative_to(remote).parts
        if path.is_file() and len(parts) == 3 and ".mlvtmp-" not in path.name:
            found[f"{parts[0]}:{parts[1]}{parts[2]}"] = path.read_bytes()
    return found


def bucket_objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    client = server.client()
    try:
        found: dict[str, bytes] = {}
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="")
        for page in pages:
            for item in page.get("Contents", []):
                _, algo, shard, rest = item["Key"].split("/")
                body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                found[f"{algo}:{shard}{rest}"] = body
        return found
    finally:
        client.close()


def delete_from_bucket(server: S3Server, bucket: str, hash_id: str) -> None:
    client = server.client()
    try:
        algo, _, hexpart = hash_id.partition(":")
        client.delete_object(Bucket=bucket, Key=f"{PREFIX}/{algo}/{hexpart[:2]}/{hexpart[2:]}")
    finally:
        client.close()


def trees_without_content(objects: dict[str, bytes]) -> list[str]:
    """Trees on the remote that name an object the remote lacks (what must never be)."""
    return [
        hash_id
        for hash_id, data in objects.items()
        if data.startswith(TREE)
        and any(row[2] not in objects for row in json.loads(data)["entries"])
    ]


def pointer_hash(repo: Path, rel: str) -> str:
    import yaml

    doc = yaml.safe_load((repo / f"{rel}.mlv").read_text())
    return str(doc["hash"])


def tree_entries(repo: Path, tree_hash: str) -> dict[str, str]:
    rows = json.loads(object_path(repo, tree_hash).read_bytes())["entries"]
    return {row[1]: row[2] for row in rows}


def clone_at(repo: Path, target: Path, rev: str | None = None) -> Path:
    git("clone", "-q", str(repo), str(target), cwd=target.parent)
    if rev is not None:
        git("checkout", "-q", rev, cwd=target)
    return target


# ---- gc on a remote: trees go first --------------------------------------------------------

FOLDERS, PER_FOLDER = 6, 15  # 90 files, 7 trees per version


def two_versions(repo: Path, url: str) -> str:
    """data/ pushed at v1, then every file changed, pushed at v2; the local cache then
    collected down to v2 (it no longer holds v1's trees). Returns v1's commit."""
    mlv("remote", "add", "-d", "store", url, cwd=repo)
    for version in (1, 2):
        write_files(
            repo,
            {
                f"data/d{d:02}/f{i:03}.txt": f"v{version} {d} {i} " + "x" * (i * 7)
                for d in range(FOLDERS)
                for i in range(PER_FOLDER)
            },
        )
        mlv("add", "data", cwd=repo)
        commit_all(repo, f"v{version}")
        mlv("push", cwd=repo)
        if version == 1:
            v1 = git("rev-parse", "HEAD", cwd=repo).stdout.strip()
    mlv("gc", "-w", cwd=repo)
    return v1


def check_after_interrupted_gc(
    repo: Path, objects: dict[str, bytes], v1_objects: set[str], tmp_path: Path
) -> None:
    """No tree on the remote lacks its content; a clone of v1 is told what is missing."""
    assert trees_without_content(objects) == []
    clone = clone_at(repo, tmp_path / "clone-v1", "HEAD~1")
    status = mlv("status", "--remote", "store", "--check", cwd=clone, check=False)
    pull = mlv("pull", cwd=clone, check=False)
    if v1_objects <= set(objects):  # nothing of v1 deleted yet
        assert status.returncode == 0 and pull.returncode == 0
    else:
        assert status.returncode == 1, status.stdout
        assert "not pushed   data" in status.stdout
        assert pull.returncode == 1, pull.stderr
        assert "not on remote 'store'" in pull.stderr


@pytest.fixture
def via_proxy(
    s3_env: dict[str, str], fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch
) -> FaultProxy:
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint_url)
    return fault_proxy


@pytest.mark.parametrize("after", [1, 5, 40])
def test_remote_gc_killed_midway_leaves_no_tree_without_its_content(
    mlv_repo: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    via_proxy: FaultProxy,
    after: int,
) -> None:
    """SIGKILL once the S3 server has seen `after` deletions (the cache lacks v1's trees,
    so gc reads them from the remote). At every moment, a tree on the remote names only
    objects that are there; v1's clone is told what is missing; a second gc finishes."""
    v1 = two_versions(mlv_repo, f"s3://{s3_bucket}/{PREFIX}")
    v1_objects = set(bucket_objects(s3_server, s3_bucket)) - set(cache_objects(mlv_repo))
    assert len(v1_objects) == FOLDERS * PER_FOLDER + FOLDERS + 1
    via_proxy.clear()
    proc = subprocess.Popen(
        [MLV, "gc", "-w", "-r", "store", "-f"],
        cwd=mlv_repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while via_proxy.count("DELETE") < after and proc.poll() is None:
        assert time.monotonic() < deadline, "gc never deleted"
        time.sleep(0.002)
    killed = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)  # deletions already sent reach the server
    objects = bucket_objects(s3_server, s3_bucket)
    assert killed and not v1_objects <= set(objects), "gc was not stopped mid-way"
    check_after_interrupted_gc(mlv_repo, objects, v1_objects, tmp_path)
    assert git("rev-parse", "HEAD~1", cwd=mlv_repo).stdout.strip() == v1

    mlv("gc", "-w", "-r", "store", "-f", cwd=mlv_repo)
    objects = bucket_objects(s3_server, s3_bucket)
    assert set(objects) == set(cache_objects(mlv_repo))  # exactly v2 is left
    fresh = clone_at(mlv_repo, tmp_path / "fresh")
    mlv("pull", cwd=fresh)
    assert snapshot(fresh / "data") == snapshot(mlv_repo / "data")


def test_remote_gc_deletes_nothing_below_a_tree_it_could_not_delete(
    mlv_repo: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    via_proxy: FaultProxy,
) -> None:
    """The server refuses to delete v1's top tree: gc stops with one line, and every
    object that tree names is still there (a tree is deleted before what it names)."""
    two_versions(mlv_repo, f"s3://{s3_bucket}/{PREFIX}")
    before = bucket_objects(s3_server, s3_bucket)
    top = git("show", "HEAD~1:data.mlv", cwd=mlv_repo).stdout.split("hash: ")[1].split()[0]
    via_proxy.fail("DELETE", top.partition(":")[2][2:], status=403, times=None)
    proc = mlv("gc", "-w", "-r", "store", "-f", cwd=mlv_repo, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    below = FOLDERS * PER_FOLDER + FOLDERS
    assert f"warning: {below} object(s) kept: a tree naming them could not be deleted" in (
        proc.stderr
    )
    assert "1 object(s) could not be deleted" in proc.stderr and top in proc.stderr
    assert bucket_objects(s3_server, s3_bucket) == before
    check_after_interrupted_gc(mlv_repo, before, set(), tmp_path)


def test_remote_gc_on_a_folder_reads_trees_it_lacks_from_the_remote(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """A folder remote, a cache without v1's trees: gc -r deletes exactly v1 and leaves
    nothing behind that a later push could trust."""
    remote = tmp_path / "remote"
    two_versions(mlv_repo, str(remote))
    proc = mlv("gc", "-w", "-r", "store", "-f", "--json", cwd=mlv_repo)
    assert json.loads(proc.stdout)["removed"] == FOLDERS * PER_FOLDER + FOLDERS + 1
    assert set(folder_objects(remote)) == set(cache_objects(mlv_repo))


# ---- push --verify: the repair the messages name -------------------------------------------


def nested(repo: Path) -> dict[str, str]:
    files = {f"data/sub/s{i}.txt": f"sub {i}" for i in range(5)}
    files |= {f"data/sub/deep/d{i}.txt": f"deep {i}" for i in range(3)}
    files |= {f"data/top{i}.txt": f"top {i}" for i in range(3)}
    write_files(repo, files)
    return files


def push_nested(repo: Path, url: str) -> None:
    """nested() added as data, committed and pushed to the default remote "store" at url."""
    nested(repo)
    mlv("add", "data", cwd=repo)
    mlv("remote", "add", "-d", "store", url, cwd=repo)
    commit_all(repo, "data")
    mlv("push", cwd=repo)


@pytest.fixture(params=["folder", "s3"])
def remote_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "folder":
        return str(tmp_path / "remote")
    request.getfixturevalue("s3_env")
    bucket: str = request.getfixturevalue("s3_bucket")
    return f"s3://{bucket}/{PREFIX}"


def remote_has(url: str, request: pytest.FixtureRequest) -> set[str]:
    if url.startswith("s3://"):
        server: S3Server = request.getfixturevalue("s3_server")
        return set(bucket_objects(server, url[5:].split("/")[0]))
    return set(folder_objects(Path(url)))


def remove_from_remote(url: str, hash_id: str, request: pytest.FixtureRequest) -> None:
    if url.startswith("s3://"):
        server: S3Server = request.getfixturevalue("s3_server")
        delete_from_bucket(server, url[5:].split("/")[0], hash_id)
    else:
        algo, _, hexpart = hash_id.partition(":")
        (Path(url) / algo / hexpart[:2] / hexpart[2:]).unlink()


def backticked(text: str, start: str) -> str:
    """The first `command` in text that begins with start."""
    for part in text.split("`")[1::2]:
        if part.startswith(start):
            return part
    raise AssertionError(f"no `{start}...` in {text!r}")


@pytest.mark.parametrize("lost", ["file", "tree"])
def test_a_remote_that_lost_objects_is_found_and_repaired_from_the_hint(
    mlv_repo: Path, tmp_path: Path, remote_url: str, lost: str, request: pytest.FixtureRequest
) -> None:
    """One object of a pushed folder disappears from the remote (a lifecycle rule, a bad
    restore). Plain push trusts the tree above it; verify and a clone's pull report it and
    name `mlv push --verify`, which re-sends it; then a fresh clone pulls every file."""
    push_nested(mlv_repo, remote_url)
    top = pointer_hash(mlv_repo, "data")
    sub = tree_entries(mlv_repo, top)["sub"]
    gone = tree_entries(mlv_repo, sub)["s3.txt"] if lost == "file" else sub
    remove_from_remote(remote_url, gone, request)

    proc = mlv("push", cwd=mlv_repo)  # a tree on the remote stands for its folder
    assert proc.stdout.startswith("Pushed 0 objects")
    proc = mlv("status", "--remote", "store", "--check", cwd=mlv_repo)
    assert proc.stdout.startswith("pushed       data\n")
    assert "`mlv verify --remote store` checks every object" in proc.stdout
    assert "`mlv push --verify -r store` re-sends what is missing" in proc.stdout

    proc = mlv("verify", "--remote", "store", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    missing_path = "data/sub/s3.txt" if lost == "file" else "data/sub"
    assert f"{missing_path}  expected {gone}  found: missing  where: remote store" in proc.stdout
    assert backticked(proc.stdout, "mlv push") == "mlv push --verify -r store"

    clone = clone_at(mlv_repo, tmp_path / "clone")
    proc = mlv("pull", cwd=clone, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"object(s) not on remote 'store' ({remote_url})" in proc.stderr
    assert gone in proc.stderr
    hint = backticked(proc.stderr, "mlv push")
    assert hint == "mlv push --verify"

    proc = mlv(*hint.split()[1:], cwd=mlv_repo)  # where a cache has them
    assert proc.stdout.startswith("Pushed 1 objects"), proc.stdout
    assert "Checked every object on 'store'" in proc.stdout
    assert gone in remote_has(remote_url, request)
    assert mlv("verify", "--remote", "store", cwd=mlv_repo).returncode == 0
    again = json.loads(mlv("push", "--verify", "--json", cwd=mlv_repo).stdout)
    assert again["ok"] and again["verified"] and again["transferred"]["objects"] == 0

    fresh = clone_at(mlv_repo, tmp_path / "fresh")
    mlv("pull", cwd=fresh)
    assert snapshot(fresh / "data") == snapshot(mlv_repo / "data")


def test_push_verify_reads_trees_the_cache_lacks_from_the_remote(
    mlv_repo: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A clone that fetched only one file: its cache lacks the other trees, which push
    --verify reads from the remote to find every object; it reports (not re-sends) what
    neither the remote nor this cache holds, and names the path."""
    remote = tmp_path / "remote"
    push_nested(mlv_repo, str(remote))
    top = pointer_hash(mlv_repo, "data")
    sub = tree_entries(mlv_repo, top)["sub"]
    deep = tree_entries(mlv_repo, sub)["deep"]
    gone = tree_entries(mlv_repo, deep)["d1.txt"]
    remove_from_remote(str(remote), gone, request)
    clone = clone_at(mlv_repo, tmp_path / "clone")
    mlv("pull", "data/top0.txt", cwd=clone)
    assert deep not in cache_objects(clone)
    proc = mlv("push", "--verify", cwd=clone, check=False)
    assert proc.returncode == 1, proc.stdout
    assert "1 object(s) not in the cache, not pushed" in proc.stderr
    assert f"{gone}  data/sub/deep/d1.txt" in proc.stderr
    assert gone not in folder_objects(remote)
    mlv("push", "--verify", cwd=mlv_repo)
    assert gone in folder_objects(remote)


def test_a_corrupt_object_on_the_remote_is_repaired_from_the_hint(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """A file of a pushed folder rots on a folder remote. The clone's pull refuses it and
    names the repair: delete it there, then `mlv push --verify` (a plain push trusts the
    folder's tree and re-sends nothing, so "push again" did not repair it)."""
    remote = tmp_path / "remote"
    push_nested(mlv_repo, str(remote))
    sub = tree_entries(mlv_repo, pointer_hash(mlv_repo, "data"))["sub"]
    rotten = tree_entries(mlv_repo, sub)["s3.txt"]
    algo, _, hexpart = rotten.partition(":")
    obj = remote / algo / hexpart[:2] / hexpart[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"rotten bytes")

    clone = clone_at(mlv_repo, tmp_path / "clone")
    proc = mlv("pull", cwd=clone, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"1 object(s) corrupt on remote 'store' ({remote})" in proc.stderr
    hint = backticked(proc.stderr, "mlv push")
    assert hint == "mlv push --verify"

    obj.unlink()  # "delete them there"
    assert mlv("push", cwd=mlv_repo).stdout.startswith("Pushed 0 objects")  # trusts the tree
    assert mlv(*hint.split()[1:], cwd=mlv_repo).stdout.startswith("Pushed 1 objects")
    mlv("pull", cwd=clone)
    assert snapshot(clone / "data") == snapshot(mlv_repo / "data")
