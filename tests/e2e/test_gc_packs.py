"""`mlv gc -r` on packed remotes (docs/design/packs.md, "gc -r: repacking", "Concurrency and
locks"): dead packed objects leave, every kept object stays readable, and the remote is
valid however gc is stopped; an unusable index stops pack deletions; unindexed packs are
judged by their age; the gc lock keeps other gcs and pushes off.
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
    MLV,
    assert_error,
    cache_objects,
    commit_all,
    damage_remote_object,
    git,
    loose_objects,
    mlv,
    packed_objects,
    remote_objects,
    remove_remote_object,
    snapshot,
    write_files,
    xxh,
)
from servers import FaultProxy, S3Server

FOLDERS, PER_FOLDER = 3, 8
HOUR = 3600


def files(version: int, changed: int) -> dict[str, bytes]:
    """data/: the first `changed` files of each folder differ between versions."""
    return {
        f"data/d{d}/f{i:02}.txt": (
            f"v{version if i < changed else 1} {d} {i} ".encode() + b"x" * (50 * i)
        )
        for d in range(FOLDERS)
        for i in range(PER_FOLDER)
    }


def two_pushes(repo: Path, url: str) -> set[str]:
    """Push v1, change some files, push v2, then collect the local cache down to v2 (the
    workspace). Returns v1's objects that v2 does not reference."""
    mlv("remote", "add", "-d", "store", url, cwd=repo)
    write_files(repo, files(1, 0))
    mlv("add", "data", cwd=repo)
    commit_all(repo, "v1")
    mlv("push", cwd=repo)
    v1 = set(cache_objects(repo))
    write_files(repo, files(2, 4))
    mlv("add", "data", cwd=repo)
    commit_all(repo, "v2")
    mlv("push", cwd=repo)
    mlv("gc", "-w", cwd=repo)
    return v1 - set(cache_objects(repo))


def gc_remote(repo: Path, *flags: str) -> dict[str, object]:
    proc = mlv("gc", "-w", "-r", "store", "--json", *flags, cwd=repo)
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def assert_pulls_v2(repo: Path, tmp_path: Path) -> None:
    """A fresh clone pulls every file of v2, byte for byte, and verify --remote passes."""
    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    mlv("pull", cwd=clone)
    assert snapshot(clone / "data") == snapshot(repo / "data")
    mlv("verify", "--remote", "store", cwd=repo)


def pack_files(remote: Path) -> set[Path]:
    return set((remote / "packs").glob("*/*.pack"))


def age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def files_of_snapshot(snap: dict[str, bytes | str]) -> dict[str, bytes | str]:
    return {k: v for k, v in snap.items() if v != "<dir>"}


def files_of(remote: Path) -> dict[str, bytes | str]:
    """Every file of a folder remote (an empty locks/ folder a lock left does not count)."""
    return files_of_snapshot(snapshot(remote))


def plant_lock(remote: Path, kind: str, host: str, seconds_old: float) -> Path:
    path = remote / "locks" / f"{kind}-{'7' * 32}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        json.dumps({"host": host, "pid": 4242, "command": "mlv gc -r store", "started": "x"})
    )
    age(path, seconds_old)
    return path


def plant_pack(remote: Path, contents: list[bytes], kind: int = 0, indexed: bool = False) -> Path:
    """A complete pack (a killed push's last pack, say), with an index when indexed."""
    from mlv.objects.packs.index import PackRef, encode, index_name
    from mlv.objects.packs.packfile import PackWriter

    tmp = remote / "planted.tmp"
    writer = PackWriter(str(tmp), "xxh128")
    for data in contents:
        writer.add(xxh(data), data, kind)
    pack = writer.finish()
    path = remote / "packs" / pack.name[:2] / f"{pack.name}.pack"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(path)
    if indexed:
        index = encode("xxh128", [(PackRef(pack.name, pack.size), pack.entries)])
        (remote / "index" / f"{index_name(index)}.idx").write_bytes(index)
    return path


@pytest.fixture
def folder_remote(mlv_repo: Path, tmp_path: Path) -> tuple[Path, Path, set[str]]:
    remote = tmp_path / "store"
    dead = two_pushes(mlv_repo, str(remote))
    assert dead and dead <= set(packed_objects(remote)) and not loose_objects(remote)
    return mlv_repo, remote, dead


def test_gc_drops_dead_packed_objects_and_keeps_every_kept_one(
    folder_remote: tuple[Path, Path, set[str]], tmp_path: Path
) -> None:
    repo, remote, dead = folder_remote
    kept = set(cache_objects(repo))
    before = pack_files(remote)
    doc = gc_remote(repo, "-f")
    assert set(remote_objects(remote)) == kept
    assert doc["removed"] == len(dead) and doc["kept"] == len(kept)
    packs = doc["packs"]
    assert isinstance(packs, dict) and packs["deleted"] == len(before - pack_files(remote)) > 0
    # every pack left is named by an index, and every index names packs that are there
    named = {p for p, _, _ in packed_objects(remote).values()}
    assert pack_files(remote) == named
    assert list((remote / "locks").iterdir()) == []  # the lock is released
    assert_pulls_v2(repo, tmp_path)
    again = gc_remote(repo, "-f")  # nothing left to do
    assert again["removed"] == 0 and set(remote_objects(remote)) == kept


def index_cache(repo: Path) -> Path:
    return repo / ".mlv" / "cache" / "index"


def test_local_gc_expires_cached_indexes_that_no_listing_named_for_30_days(
    folder_remote: tuple[Path, Path, set[str]],
) -> None:
    repo, remote, _ = folder_remote
    cached = index_cache(repo)
    used = {p.name for p in (remote / "index").glob("*.idx")}
    assert used and used <= {p.name for p in cached.glob("*.idx")}
    gone = cached / f"{'e' * 32}.idx"  # an index a gc replaced, say: no listing names it
    gone.write_bytes(b"old index")
    unrelated = cached / "notes.txt"
    unrelated.write_bytes(b"not an index")
    for path in cached.iterdir():
        age(path, 31 * 24 * HOUR)
    mlv("status", "--remote", "store", cwd=repo)  # lists index/: touches the copies it names
    before = snapshot(cached)
    doc = json.loads(mlv("gc", "-w", "--dry-run", "--json", cwd=repo).stdout)
    assert doc["indexes_expired"] == 1 and doc["index_bytes"] == len(b"old index")
    assert snapshot(cached) == before
    proc = mlv("gc", "-w", cwd=repo)
    assert "1 cached remote index (9 B) unused for 30 days removed." in proc.stdout
    assert not gone.exists() and unrelated.exists()
    assert {p.name for p in cached.glob("*.idx")} == used
    again = json.loads(mlv("gc", "-w", "--json", cwd=repo).stdout)
    assert again["indexes_expired"] == 0


def test_dry_run_changes_nothing_and_counts_packed_objects(
    folder_remote: tuple[Path, Path, set[str]],
) -> None:
    repo, remote, dead = folder_remote
    before = snapshot(remote)
    doc = gc_remote(repo, "--dry-run")
    assert doc["dry_run"] is True and doc["removed"] == len(dead)
    assert snapshot(remote) == before


def test_the_plan_shown_before_asking_names_the_packed_objects(
    folder_remote: tuple[Path, Path, set[str]],
) -> None:
    repo, remote, dead = folder_remote
    before = snapshot(remote)
    proc = mlv("gc", "-w", "-r", "store", cwd=repo, check=False, input="")
    assert_error(proc, 2, "without confirmation", "--force")
    assert proc.stdout.startswith(f"{len(dead)} unreferenced objects (")
    assert "pack" in proc.stdout and len(proc.stdout.splitlines()) == 1
    assert files_of(remote) == files_of_snapshot(before)  # its lock taken and released


def test_an_unusable_index_stops_every_pack_deletion(
    folder_remote: tuple[Path, Path, set[str]], tmp_path: Path
) -> None:
    repo, remote, _ = folder_remote
    (remote / "index" / f"{'0' * 32}.idx").write_bytes(b"\x89MLVINDX damaged")
    old = plant_pack(remote, [b"nobody keeps this"])
    age(old, 48 * HOUR)
    before = {p: p.read_bytes() for p in pack_files(remote)}
    proc = mlv("gc", "-w", "-r", "store", "-f", cwd=repo)
    assert "no pack deleted this run" in proc.stderr and f"index/{'0' * 32}.idx" in proc.stderr
    assert "`mlv gc -r store`" in proc.stderr
    assert {p: p.read_bytes() for p in pack_files(remote)} == before
    (remote / "index" / f"{'0' * 32}.idx").unlink()
    mlv("gc", "-w", "-r", "store", "-f", cwd=repo)
    assert not old.exists()
    assert_pulls_v2(repo, tmp_path)


def test_objects_of_a_kind_from_a_newer_mlv_stop_pack_deletions(
    folder_remote: tuple[Path, Path, set[str]],
) -> None:
    """A kind above chunk lists (kind 3, of a newer mlv) may name objects in ways this mlv
    cannot follow: gc keeps every pack rather than drop what it may name."""
    repo, remote, dead = folder_remote
    plant_pack(remote, [b"an entry of a newer mlv"], kind=3, indexed=True)
    before = {p: p.read_bytes() for p in pack_files(remote)}
    proc = mlv("gc", "-w", "-r", "store", "-f", cwd=repo)
    assert "no pack deleted: remote 'store' holds 1 packed object(s) of a kind" in proc.stderr
    assert "upgrade mlv" in proc.stderr
    assert {p: p.read_bytes() for p in pack_files(remote)} == before
    assert dead <= set(remote_objects(remote))


def test_unindexed_packs_go_after_the_grace_period_only(
    folder_remote: tuple[Path, Path, set[str]],
) -> None:
    repo, remote, _ = folder_remote
    old = plant_pack(remote, [b"old garbage"])
    young = plant_pack(remote, [b"young: a push may be about to index it"])
    age(old, 25 * HOUR)
    age(young, 23 * HOUR)
    proc = mlv("gc", "-w", "-r", "store", "-f", cwd=repo)
    assert not old.exists()
    assert young.exists()
    assert "younger than 24 h" in proc.stderr


def test_a_lost_index_is_rebuilt_from_its_packs_trailer(
    folder_remote: tuple[Path, Path, set[str]], tmp_path: Path
) -> None:
    """An old pack holding kept objects that no index names is indexed again, not lost."""
    repo, remote, _ = folder_remote
    gc_remote(repo, "-f")
    indexes = list((remote / "index").glob("*.idx"))
    assert indexes
    for index in indexes:
        index.unlink()
    for pack in pack_files(remote):
        age(pack, 30 * HOUR)
    doc = gc_remote(repo, "-f")
    packs = doc["packs"]
    assert isinstance(packs, dict) and packs["reindexed"] == len(pack_files(remote)) > 0
    assert set(remote_objects(remote)) == set(cache_objects(repo))
    assert_pulls_v2(repo, tmp_path)


def indexes_naming(remote: Path, hash_id: str) -> set[Path]:
    from mlv.objects.packs.index import PackIndex

    return {
        idx
        for idx in (remote / "index").glob("*.idx")
        if any(h == hash_id for h, _ in PackIndex.parse(idx.stem, idx.read_bytes()).items())
    }


def test_a_corrupt_kept_object_is_reported_and_what_names_it_stays(
    folder_remote: tuple[Path, Path, set[str]],
) -> None:
    """A kept object whose only copy is rotten: reported and not copied; the index naming
    it and its pack stay (gc never drops the last copy of a kept object), the rest is done."""
    repo, remote, _ = folder_remote
    victim = xxh(files(2, 4)["data/d1/f06.txt"])  # unchanged since v1: in v1's file pack
    damage_remote_object(remote, victim)
    naming = indexes_naming(remote, victim)
    pack = packed_objects(remote)[victim][0]
    proc = mlv("gc", "-w", "-r", "store", "-f", cwd=repo, check=False)
    assert proc.returncode == 1
    assert "kept object(s) corrupt on remote 'store'" in proc.stderr
    assert "`mlv push --verify -r store`" in proc.stderr
    assert f"{victim}: corrupt in pack" in proc.stderr
    assert naming and naming <= set((remote / "index").glob("*.idx")) and pack.exists()
    assert packed_objects(remote)[victim][0] == pack  # no damaged copy spread into a new pack
    assert set(cache_objects(repo)) <= set(remote_objects(remote))


def test_a_rotten_copy_of_a_kept_object_is_replaced_by_its_sound_copy(
    folder_remote: tuple[Path, Path, set[str]], tmp_path: Path
) -> None:
    """A kept object in two packs that gc rewrites both: whichever copy gc reads first is
    rotten, the other serves, and the object stays on the remote."""
    from mlv.objects.packs.index import PackIndex

    repo, remote, dead = folder_remote
    data = files(2, 4)["data/d1/f06.txt"]
    victim = xxh(data)
    plant_pack(remote, [data], indexed=True)  # a second copy (a push after a lost pack)
    copies = sorted(
        (loc.pack.name, loc.offset)
        for idx in (remote / "index").glob("*.idx")
        for h, loc in PackIndex.parse(idx.stem, idx.read_bytes()).items()
        if h == victim
    )
    assert len(copies) == 2
    name, offset = copies[0]  # the copy gc reads first (packs in name order): rotten
    path = remote / "packs" / name[:2] / f"{name}.pack"
    path.chmod(0o644)
    with path.open("r+b") as fh:
        fh.seek(offset)
        fh.write(bytes([data[0] ^ 0xFF]))
    doc = gc_remote(repo, "-f")
    assert doc["removed"] == len(dead) and not doc.get("corrupt")
    assert xxh(remote_objects(remote)[victim]) == victim
    assert_pulls_v2(repo, tmp_path)


def test_a_fresh_gc_lock_stops_gc_with_the_holder_named(
    folder_remote: tuple[Path, Path, set[str]],
) -> None:
    repo, remote, _ = folder_remote
    lock = plant_lock(remote, "gc", "build-host", 60)
    before = snapshot(remote)
    proc = mlv("gc", "-w", "-r", "store", "-f", cwd=repo, check=False)
    assert_error(proc, 1, "remote 'store'", "build-host", "pid 4242", "`mlv gc -r store`")
    assert "then run `mlv gc -r store` again" in proc.stderr
    assert files_of(remote) == files_of_snapshot(before)  # its own lock deleted again
    age(lock, 31 * 60)  # stale: ignored and removed
    mlv("gc", "-w", "-r", "store", "-f", cwd=repo)
    assert not lock.exists()


def test_a_fresh_gc_lock_stops_push(folder_remote: tuple[Path, Path, set[str]]) -> None:
    repo, remote, _ = folder_remote
    plant_lock(remote, "gc", "build-host", 60)
    write_files(repo, {"data/new.txt": "new"})
    mlv("add", "data", cwd=repo)
    proc = mlv("push", cwd=repo, check=False)
    assert_error(proc, 1, "remote 'store'", "build-host", "pid 4242")


def test_a_push_lock_stops_gc_but_a_dead_local_one_does_not(
    folder_remote: tuple[Path, Path, set[str]],
) -> None:
    import socket

    repo, remote, dead = folder_remote
    other = plant_lock(remote, "push", "elsewhere", 120)
    proc = mlv("gc", "-w", "-r", "store", "-f", cwd=repo, check=False)
    assert_error(proc, 1, "locked by push", "elsewhere")
    other.unlink()
    # a killed command on this machine: its pid is gone, its lock does not wait 30 minutes
    child = subprocess.Popen(["true"])
    child.wait()
    from mlv.objects.packs.locks import _pid_space

    path = plant_lock(remote, "gc", socket.gethostname(), 10)
    body = {"host": socket.gethostname(), "pid": child.pid, "space": _pid_space()}
    path.write_text(json.dumps(body))
    doc = gc_remote(repo, "-f")
    assert doc["removed"] == len(dead) and not path.exists()


# ---- killed gc on S3, through the fault proxy ---------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method,after", [("PUT", 1), ("PUT", 2), ("DELETE", 1), ("DELETE", 4)])
def test_gc_killed_at_any_point_leaves_a_valid_remote(
    mlv_repo: Path,
    tmp_path: Path,
    s3_server: S3Server,
    s3_bucket: str,
    via_proxy: FaultProxy,
    method: str,
    after: int,
) -> None:
    """SIGKILL while the request after the first `after` of `method` hangs (the lock, new
    packs and indexes are PUTs; old indexes and packs DELETEs): verify --remote passes, a clone
    pulls v2, and a re-run of gc completes and leaves only what is kept."""
    two_pushes(mlv_repo, f"s3://{s3_bucket}/store")
    before = set(s3_server.objects(s3_bucket))
    via_proxy.clear()
    via_proxy.hang(method, every=after + 1)  # gc stops there until it is killed
    proc = subprocess.Popen(
        [MLV, "gc", "-w", "-r", "store", "-f"],
        cwd=mlv_repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while via_proxy.count(method) <= after and proc.poll() is None:
        assert time.monotonic() < deadline, f"gc never sent {after} {method}"
        time.sleep(0.002)
    killed = proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)  # requests already sent reach the server
    assert killed, "gc finished before it was killed"
    assert set(s3_server.objects(s3_bucket)) != before
    mlv("verify", "--remote", "store", cwd=mlv_repo)
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    mlv("pull", cwd=clone)
    assert snapshot(clone / "data") == snapshot(mlv_repo / "data")
    doc = json.loads(mlv("gc", "-w", "-r", "store", "-f", "--json", cwd=mlv_repo).stdout)
    assert doc["kept"] == len(cache_objects(mlv_repo))
    keys = s3_server.objects(s3_bucket)
    assert not [k for k in keys if k.startswith("store/locks/")]
    mlv("verify", "--remote", "store", cwd=mlv_repo)


def test_gc_reads_no_index_it_wrote_itself(
    mlv_repo: Path, s3_bucket: str, via_proxy: FaultProxy
) -> None:
    """The merged index gc writes goes into the local index cache: neither gc's second
    listing of index/ nor the next command downloads it."""
    mlv("remote", "add", "-d", "store", f"s3://{s3_bucket}/store", cwd=mlv_repo)
    write_files(mlv_repo, files(1, 0))
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    mlv("push", cwd=mlv_repo)  # a file pack and a tree pack, each with its index (kept)
    via_proxy.clear()
    doc = gc_remote(mlv_repo, "-f")
    packs = doc["packs"]
    assert isinstance(packs, dict) and packs["indexes_written"] == 1 and not packs["written"]
    mlv("status", "--remote", "store", cwd=mlv_repo)
    index_reads = [r for r in via_proxy.requests if r.method == "GET" and r.path.endswith(".idx")]
    assert index_reads == [], via_proxy.requests


def test_gc_of_a_small_packed_remote_costs_few_requests(
    mlv_repo: Path, s3_bucket: str, via_proxy: FaultProxy
) -> None:
    two_pushes(mlv_repo, f"s3://{s3_bucket}/store")
    via_proxy.clear()
    mlv("gc", "-w", "-r", "store", "-f", cwd=mlv_repo)
    # lock PUT + DELETE; 2 new packs + their indexes; 4 old indexes and 4 old packs deleted
    requests = via_proxy.requests
    # the lock; one pack of the kept files of v1's and v2's file packs, and its index (v2's
    # tree pack is all kept and stays as it is, v1's is all dead)
    assert via_proxy.count("PUT") == 3, requests
    # three old indexes, then three old packs, then the lock
    assert via_proxy.count("DELETE") == 7, requests
    # listings (loose objects, locks, index/ twice, packs/), the marker, two packs read whole
    assert via_proxy.count("GET") <= 10, requests


def test_a_merged_index_equal_to_one_it_replaces_is_not_deleted(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """A big pack A and a small pack B holding only a second copy of one of A's objects:
    merging their indexes gives A's index again, byte for byte; gc keeps it."""
    from mlv.objects.packs.index import PackRef, encode
    from mlv.objects.packs.packfile import PackWriter

    remote = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    small = b"a kept object with a second copy " * 40
    data = {f"data/big{i}.bin": os.urandom(3 << 20) for i in range(3)}  # one pack of 9 MiB
    write_files(mlv_repo, {**data, "data/small.txt": small})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    mlv("push", cwd=mlv_repo)
    gc_remote(mlv_repo, "-f")  # one merged index of the file pack and the tree pack
    (merged,) = (remote / "index").glob("*.idx")
    big = packed_objects(remote)[xxh(small)][0].stem
    while True:  # B after A in name order, so the merge keeps A's copy
        writer = PackWriter(str(tmp_path / "b.pack"), "xxh128")
        writer.add(xxh(small), small, 0)
        pack = writer.finish()
        if pack.name > big:
            break
    path = remote / "packs" / pack.name[:2] / f"{pack.name}.pack"
    path.parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "b.pack").rename(path)
    index = encode("xxh128", [(PackRef(pack.name, pack.size), pack.entries)])
    (remote / "index" / f"{xxh(index).split(':')[1]}.idx").write_bytes(index)
    gc_remote(mlv_repo, "-f")
    assert [p.name for p in (remote / "index").glob("*.idx")] == [merged.name]
    assert set(cache_objects(mlv_repo)) <= set(remote_objects(remote))
    mlv("verify", "--remote", "store", cwd=mlv_repo)


def test_a_lost_pack_is_not_named_again_and_its_kept_objects_are_reported(
    folder_remote: tuple[Path, Path, set[str]], tmp_path: Path
) -> None:
    """A pack an index names but packs/ lacks: gc writes no index naming it, deletes the
    indexes naming only it, reports its kept objects as missing, and does the rest."""
    repo, remote, _ = folder_remote
    victim = xxh(files(2, 4)["data/d1/f06.txt"])
    lost = remove_remote_object(remote, victim)
    proc = mlv("gc", "-w", "-r", "store", "-f", cwd=repo)
    assert "kept object(s) are not on remote 'store'" in proc.stderr
    assert "`mlv push --verify -r store`" in proc.stderr
    named = {p for p, _, _ in packed_objects(remote).values()}
    assert named == pack_files(remote)  # every index names packs that are there
    assert not lost & set(packed_objects(remote))
    mlv("gc", "-w", "-r", "store", "-f", cwd=repo)  # a second run works too
    mlv("push", "--verify", cwd=repo)  # the repair: sends what the lost pack held
    assert_pulls_v2(repo, tmp_path)


def test_an_unindexed_pack_claiming_a_huge_trailer_is_kept_unread(
    folder_remote: tuple[Path, Path, set[str]],
) -> None:
    """A (hostile) pack whose footer claims a trailer of more than an index's limit: gc
    neither reads that into memory nor deletes the pack, and says so."""
    from mlv.objects.packs.packfile import END_MAGIC, FOOTER, HEADER, MAGIC

    repo, remote, _ = folder_remote
    count = (300 << 20) // 40  # xxh128 entries: a 300 MiB trailer
    size = 32 + 40 * count + 40
    path = remote / "packs" / "ab" / f"ab{'c' * 30}.pack"
    path.parent.mkdir(exist_ok=True)
    with path.open("wb") as fh:  # sparse: header and footer only
        fh.write(HEADER.pack(MAGIC, 1, 1, 0, 0, b"\0" * 16))
        fh.truncate(size - 40)
        fh.seek(size - 40)
        fh.write(FOOTER.pack(count, 32, b"\0" * 16, END_MAGIC))
    age(path, 48 * HOUR)
    proc = mlv("gc", "-w", "-r", "store", "-f", cwd=repo)
    assert path.exists()
    assert f"pack packs/ab/{path.stem}.pack that no index names is kept" in proc.stderr
    assert "more than the" in proc.stderr
