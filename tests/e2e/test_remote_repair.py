"""A damaged remote is found and repaired (issue 13, item 4).

- `mlv gc -r` on a loose remote (mlv 0.1's layout, `pack_threshold 0`) deletes trees before
  what they name, level by level, so that however it is stopped (SIGKILL, a failed delete),
  no tree stays on the remote without its content: push and `status --remote` take a loose
  tree on the remote to stand for its whole folder.
- `mlv push --verify` checks every object of the selection on the remote (trees are not
  trusted; on a packed remote, packs are listed), re-sends what is missing, then writes the
  trees that lack; the messages of pull, verify and `status --remote` name it. On a packed
  remote, losing an object means losing its pack: every object of the pack is reported and
  re-sent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    MLV,
    cache_objects,
    commit_all,
    damage_remote_object,
    decoded,
    git,
    mlv,
    object_path,
    remote_objects,
    remove_remote_object,
    snapshot,
    write_files,
)
from servers import FaultProxy, S3Server

TREE = b'{"mlv-tree"'
PREFIX = "store"


# ---- helpers ----------------------------------------------------------------------------


def bucket_keys(client: Any, bucket: str) -> dict[str, bytes]:
    """key below the remote's prefix -> bytes, for every key of s3://BUCKET/store."""
    found: dict[str, bytes] = {}
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="")
    for page in pages:
        for item in page.get("Contents", []):
            assert item["Key"].startswith(f"{PREFIX}/"), item["Key"]
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"][len(PREFIX) + 1 :]] = body
    return found


def bucket_packed(keys: dict[str, bytes]) -> dict[str, str]:
    """hash id -> pack key, for every object an index names (mlv's own checked parser)."""
    from mlv.objects.packs.index import PackIndex

    found: dict[str, str] = {}
    for key, body in sorted(keys.items()):
        if key.startswith("index/"):
            for h, loc in PackIndex.parse(key[len("index/") : -len(".idx")], body).items():
                found.setdefault(h, f"packs/{loc.pack.name[:2]}/{loc.pack.name}.pack")
    return found


def bucket_objects(server: S3Server, bucket: str) -> dict[str, bytes]:
    """hash id -> bytes, for every object of s3://BUCKET/store, loose or packed (one whose
    pack is gone is left out)."""
    from mlv.objects.packs.index import PackIndex

    client = server.client()
    try:
        keys = bucket_keys(client, bucket)
    finally:
        client.close()
    found: dict[str, bytes] = {}
    for key, body in keys.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0] in ("xxh128", "sha256"):
            found[f"{parts[0]}:{parts[1]}{parts[2]}"] = body
    for key, body in sorted(keys.items()):
        if key.startswith("index/"):
            for h, loc in PackIndex.parse(key[len("index/") : -len(".idx")], body).items():
                pack = keys.get(f"packs/{loc.pack.name[:2]}/{loc.pack.name}.pack")
                if pack is not None:
                    found.setdefault(
                        h,
                        decoded(pack[loc.offset : loc.offset + loc.stored], loc.codec, loc.length),
                    )
    return found


def delete_from_bucket(server: S3Server, bucket: str, hash_id: str) -> set[str]:
    """Delete an object of s3://BUCKET/store behind mlv's back: its loose key and its whole
    pack. The hashes lost."""
    client = server.client()
    try:
        keys = bucket_keys(client, bucket)
        lost = set()
        algo, _, hexpart = hash_id.partition(":")
        loose = f"{algo}/{hexpart[:2]}/{hexpart[2:]}"
        if loose in keys:
            client.delete_object(Bucket=bucket, Key=f"{PREFIX}/{loose}")
            lost.add(hash_id)
        packed = bucket_packed(keys)
        if hash_id in packed:
            lost |= {h for h, pack in packed.items() if pack == packed[hash_id]}
            client.delete_object(Bucket=bucket, Key=f"{PREFIX}/{packed[hash_id]}")
        return lost
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


def two_versions(repo: Path, url: str, *, loose: bool = True) -> str:
    """data/ pushed at v1, then every file changed, pushed at v2; the local cache then
    collected down to v2 (it no longer holds v1's trees). Returns v1's commit."""
    mlv("remote", "add", "-d", "store", url, cwd=repo)
    if loose:  # loose trees, deleted top-down by gc -r: what these tests are about
        mlv("remote", "modify", "store", "pack_threshold", "0", cwd=repo)
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


@pytest.mark.parametrize("layout", ["loose", "packed"])
def test_remote_gc_on_a_folder_reads_trees_it_lacks_from_the_remote(
    mlv_repo: Path, tmp_path: Path, layout: str
) -> None:
    """A folder remote, a cache without v1's trees: gc -r deletes exactly v1 and leaves
    nothing behind that a later push could trust."""
    remote = tmp_path / "remote"
    two_versions(mlv_repo, str(remote), loose=layout == "loose")
    proc = mlv("gc", "-w", "-r", "store", "-f", "--json", cwd=mlv_repo)
    assert json.loads(proc.stdout)["removed"] == FOLDERS * PER_FOLDER + FOLDERS + 1
    assert set(remote_objects(remote)) == set(cache_objects(mlv_repo))
    assert mlv("verify", "--remote", "store", "--full", cwd=mlv_repo).returncode == 0


# ---- push --verify: the repair the messages name -------------------------------------------


def nested(repo: Path) -> dict[str, str]:
    files = {f"data/sub/s{i}.txt": f"sub {i}" for i in range(5)}
    files |= {f"data/sub/deep/d{i}.txt": f"deep {i}" for i in range(3)}
    files |= {f"data/top{i}.txt": f"top {i}" for i in range(3)}
    write_files(repo, files)
    return files


def push_nested(repo: Path, url: str, layout: str = "packed") -> None:
    """nested() added as data, committed and pushed to the default remote "store" at url,
    packed (the default) or loose (`pack_threshold 0`, mlv 0.1's layout)."""
    nested(repo)
    mlv("add", "data", cwd=repo)
    mlv("remote", "add", "-d", "store", url, cwd=repo)
    if layout == "loose":
        mlv("remote", "modify", "store", "pack_threshold", "0", cwd=repo)
    commit_all(repo, "data")
    mlv("push", cwd=repo)


def nested_paths(repo: Path) -> dict[str, str]:
    """hash id -> path of every file and folder of the pushed data/ (trees from the cache)."""
    found = {}

    def walk(tree: str, path: str) -> None:
        found[tree] = path
        for name, h in tree_entries(repo, tree).items():
            if object_path(repo, h).read_bytes().startswith(TREE):
                walk(h, f"{path}/{name}")
            else:
                found[h] = f"{path}/{name}"

    walk(pointer_hash(repo, "data"), "data")
    return found


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
    return set(remote_objects(Path(url)))


def remove_from_remote(url: str, hash_id: str, request: pytest.FixtureRequest) -> set[str]:
    """Delete an object behind mlv's back (with its whole pack): the hashes lost."""
    if url.startswith("s3://"):
        server: S3Server = request.getfixturevalue("s3_server")
        return delete_from_bucket(server, url[5:].split("/")[0], hash_id)
    return remove_remote_object(Path(url), hash_id)


def backticked(text: str, start: str) -> str:
    """The first `command` in text that begins with start."""
    for part in text.split("`")[1::2]:
        if part.startswith(start):
            return part
    raise AssertionError(f"no `{start}...` in {text!r}")


@pytest.mark.parametrize("layout", ["packed", "loose"])
@pytest.mark.parametrize("lost", ["file", "tree"])
def test_a_remote_that_lost_objects_is_found_and_repaired_from_the_hint(
    mlv_repo: Path,
    tmp_path: Path,
    remote_url: str,
    lost: str,
    layout: str,
    request: pytest.FixtureRequest,
) -> None:
    """One object of a pushed folder disappears from the remote (a lifecycle rule, a bad
    restore), with its pack on a packed remote. Plain push trusts the tree above it (loose)
    or the index naming it (packed); verify and a clone's pull report it and name `mlv push
    --verify`, which re-sends exactly what was lost; then a fresh clone pulls every file."""
    push_nested(mlv_repo, remote_url, layout)
    top = pointer_hash(mlv_repo, "data")
    sub = tree_entries(mlv_repo, top)["sub"]
    gone = tree_entries(mlv_repo, sub)["s3.txt"] if lost == "file" else sub
    removed = remove_from_remote(remote_url, gone, request)
    paths = nested_paths(mlv_repo)
    if layout == "loose":
        assert removed == {gone}
    else:  # every file is in one data pack, every tree in one tree pack
        kind = {h for h, p in paths.items() if (p in ("data", "data/sub", "data/sub/deep"))}
        assert removed == (kind if lost == "tree" else set(paths) - kind)

    proc = mlv("push", cwd=mlv_repo)  # a tree, or an index, on the remote stands for it
    assert proc.stdout.startswith("Pushed 0 objects")
    proc = mlv("status", "--remote", "store", "--check", cwd=mlv_repo)
    # the label says what was found: the folder's tree (loose), or index entries (packed)
    label = "tree present" if layout == "loose" else "indexed"
    assert proc.stdout.startswith(f"{label:<13}data\n")
    if layout == "loose":  # a tree taken to stand for its folder: the hints say how to check
        assert "`mlv verify --remote store` asks for every object" in proc.stdout
        assert "`mlv push --verify -r store` re-sends what is missing" in proc.stdout

    proc = mlv("verify", "--remote", "store", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    missing_path = "data/sub/s3.txt" if lost == "file" else "data/sub"
    assert f"{missing_path}  expected {gone}  found: missing  where: remote store" in proc.stdout
    doc = json.loads(mlv("verify", "--remote", "store", "--json", cwd=mlv_repo, check=False).stdout)
    reported = {(p["path"], p["found"]) for p in doc["problems"]}
    if lost == "file":
        assert reported == {(paths[h], "missing") for h in removed}
    else:  # a missing tree hides what it names: the top tree's absence is reported
        assert ("data", "missing") in reported or (missing_path, "missing") in reported
    assert backticked(proc.stdout, "mlv push") == "mlv push --verify -r store"

    clone = clone_at(mlv_repo, tmp_path / "clone")
    proc = mlv("pull", cwd=clone, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"object(s) not on remote 'store' ({remote_url})" in proc.stderr
    assert gone in proc.stderr or top in proc.stderr
    hint = backticked(proc.stderr, "mlv push")
    assert hint == "mlv push --verify"

    proc = mlv(*hint.split()[1:], cwd=mlv_repo)  # where a cache has them
    assert proc.stdout.startswith(f"Pushed {len(removed)} object"), proc.stdout
    assert "Checked every object on 'store'" in proc.stdout
    assert removed <= remote_has(remote_url, request)
    assert mlv("verify", "--remote", "store", cwd=mlv_repo).returncode == 0
    again = json.loads(mlv("push", "--verify", "--json", cwd=mlv_repo).stdout)
    assert again["ok"] and again["verified"] and again["transferred"]["objects"] == 0

    fresh = clone_at(mlv_repo, tmp_path / "fresh")
    mlv("pull", cwd=fresh)
    assert snapshot(fresh / "data") == snapshot(mlv_repo / "data")


def test_push_verify_reads_trees_the_cache_lacks_from_the_remote(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """A clone that fetched only one file: its cache lacks the other trees, which push
    --verify reads from the remote to find every object; it re-sends what it holds of the
    lost pack, reports (not re-sends) what neither the remote nor this cache holds, and
    names the path."""
    remote = tmp_path / "remote"
    push_nested(mlv_repo, str(remote))
    top = pointer_hash(mlv_repo, "data")
    sub = tree_entries(mlv_repo, top)["sub"]
    deep = tree_entries(mlv_repo, sub)["deep"]
    gone = tree_entries(mlv_repo, deep)["d1.txt"]
    clone = clone_at(mlv_repo, tmp_path / "clone")
    mlv("pull", "data/top0.txt", cwd=clone)
    assert deep not in cache_objects(clone)
    lost = remove_remote_object(remote, gone)  # with every file of data/: one pack
    assert len(lost) == 11
    proc = mlv("push", "--verify", cwd=clone, check=False)
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout.startswith("Pushed 1 object ("), proc.stdout  # top0.txt, from its cache
    assert f"{len(lost) - 1} object(s) not in the cache, not pushed" in proc.stderr
    assert f"{gone}  data/sub/deep/d1.txt" in proc.stderr
    assert gone not in remote_objects(remote)
    mlv("push", "--verify", cwd=mlv_repo)
    assert lost <= set(remote_objects(remote))


@pytest.mark.parametrize("layout", ["packed", "loose"])
def test_a_corrupt_object_on_the_remote_is_repaired_from_the_hint(
    mlv_repo: Path, tmp_path: Path, layout: str
) -> None:
    """A file of a pushed folder rots on a folder remote. The clone's pull refuses it and
    names the repair: delete it there (on a packed remote, its pack), then `mlv push
    --verify` (a plain push trusts the folder's tree, or the index, and re-sends nothing,
    so "push again" did not repair it)."""
    remote = tmp_path / "remote"
    push_nested(mlv_repo, str(remote), layout)
    sub = tree_entries(mlv_repo, pointer_hash(mlv_repo, "data"))["sub"]
    rotten = tree_entries(mlv_repo, sub)["s3.txt"]
    damage_remote_object(remote, rotten)

    clone = clone_at(mlv_repo, tmp_path / "clone")
    proc = mlv("pull", cwd=clone, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"1 object(s) corrupt on remote 'store' ({remote})" in proc.stderr
    assert f"{rotten}  data/sub/s3.txt" in proc.stderr
    hint = backticked(proc.stderr, "mlv push")
    assert hint == "mlv push --verify"

    lost = remove_remote_object(remote, rotten)  # "delete them there"
    assert rotten in lost and len(lost) == (1 if layout == "loose" else 11)
    assert mlv("push", cwd=mlv_repo).stdout.startswith("Pushed 0 objects")  # trusts the remote
    pushed = mlv(*hint.split()[1:], cwd=mlv_repo).stdout
    assert pushed.startswith(f"Pushed {len(lost)} object"), pushed
    mlv("pull", cwd=clone)
    assert snapshot(clone / "data") == snapshot(mlv_repo / "data")
