"""Packed remotes (remote format version 1, docs/formats.md): what push writes, how a 0.1
remote is upgraded without converting anything, and what a damaged or newer remote does.

Request counts on S3 are asserted in test_remote_s3.py; gc -r over packs in test_gc_packs.py;
lost and damaged packs in test_remote_repair.py and test_verify.py.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xxhash
from helpers import (
    MLV,
    assert_cache_sound,
    chunked_objects,
    commit_all,
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
from servers import FaultProxy

BIG = 5 << 20  # above the default pack_threshold (4 MiB): stays loose


def name_of(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def dataset(repo: Path) -> dict[str, bytes]:
    files = {f"data/a/f{i}.txt": f"a {i}".encode() for i in range(6)}
    files |= {f"data/b/deep/g{i}.txt": f"deep {i}".encode() for i in range(4)}
    files["data/model.bin"] = os.urandom(BIG)
    write_files(repo, files)
    return files


def pushed(repo: Path, remote: Path, *options: str) -> dict[str, bytes]:
    files = dataset(repo)
    mlv("add", "data", cwd=repo)
    mlv("remote", "add", "-d", "store", str(remote), cwd=repo)
    for option in options:
        name, value = option.split("=")
        mlv("remote", "modify", "store", name, value, cwd=repo)
    commit_all(repo, "v1")
    mlv("push", cwd=repo)
    return files


def clone(repo: Path, target: Path) -> Path:
    git("clone", "-q", str(repo), str(target), cwd=repo.parent)
    return target


def test_a_push_packs_small_objects_and_chunks_large_ones(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    files = pushed(mlv_repo, remote)
    assert (remote / "mlv-remote.json").read_bytes() == b'{"mlv-remote":1,"loose-small":false}'
    big = xxh(files["data/model.bin"])
    assert loose_objects(remote) == {}
    assert chunked_objects(remote) == {big: BIG}  # a chunk list under the file's own hash
    assert remote_objects(remote)[big] == files["data/model.bin"]  # its chunks, together
    packed = packed_objects(remote)
    small = {xxh(v) for k, v in files.items() if k != "data/model.bin"}
    assert small <= set(packed)
    # every pack and index is named by the xxh128sum of its bytes, packs sharded by name
    for pack in (remote / "packs").glob("*/*.pack"):
        assert pack.stem == name_of(pack.read_bytes()) and pack.parent.name == pack.stem[:2]
    for index in (remote / "index").glob("*.idx"):
        assert index.stem == name_of(index.read_bytes())
    # trees sit in packs of their own (header byte 11: contents 1), files in others
    objects = remote_objects(remote)
    kinds = {
        pack.read_bytes()[11]
        for h, (pack, _, _) in packed.items()
        if objects.get(h, b"").startswith(b'{"mlv-tree"')
    }
    assert kinds == {1}
    other = clone(mlv_repo, tmp_path / "clone")
    mlv("pull", cwd=other)
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")
    assert_cache_sound(other)
    # the clone keeps the indexes it read, named by their hash, beside its objects
    cached = sorted(p.name for p in (other / ".mlv" / "cache" / "index").iterdir())
    assert cached == sorted(p.name for p in (remote / "index").iterdir())


def test_a_loose_remote_of_mlv_0_1_is_upgraded_without_converting(
    mlv_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    pushed(mlv_repo, remote, "pack_threshold=0")  # every object loose, as mlv 0.1 wrote
    old = loose_objects(remote)
    assert not (remote / "mlv-remote.json").exists() and not (remote / "index").exists()
    mlv("remote", "modify", "store", "pack_threshold", "4MiB", cwd=mlv_repo)
    write_files(mlv_repo, {f"data/c/n{i}.txt": f"new {i}" for i in range(5)})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    doc = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert doc["ok"] and doc["transferred"]["objects"] == 5 + 2  # files, trees c and data
    marker = (remote / "mlv-remote.json").read_bytes()
    assert marker == b'{"mlv-remote":1,"loose-small":true}'  # it held loose objects
    assert loose_objects(remote) == old  # nothing re-sent, moved or deleted
    assert {xxh(f"new {i}".encode()) for i in range(5)} <= set(packed_objects(remote))
    other = clone(mlv_repo, tmp_path / "clone")
    mlv("pull", cwd=other)  # loose and packed objects, from one remote
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")
    assert mlv("verify", "--remote", "store", cwd=mlv_repo).returncode == 0


def test_an_unusable_index_is_named_and_what_it_held_sent_again(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """An index that rots on the remote: this clone keeps a good copy of it (named by its
    hash), but verify and push --verify read every index from the remote again, say which
    one is unusable, count its objects absent and re-send them; other clones then pull."""
    remote = tmp_path / "remote"
    pushed(mlv_repo, remote)
    index = max((remote / "index").glob("*.idx"), key=lambda p: p.stat().st_size)
    data = bytearray(index.read_bytes())
    data[-1] ^= 0xFF  # no longer what its name says
    index.chmod(0o644)
    index.write_bytes(bytes(data))
    (remote / "index" / f"{'0' * 32}.idx").write_bytes(b"not an index")
    proc = mlv("verify", "--remote", "store", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"warning: remote 'store': index index/{index.name} is not usable" in proc.stderr
    assert f"index/{'0' * 32}.idx is not usable" in proc.stderr
    hint = proc.stdout.split("`")[1] if "`" in proc.stdout else proc.stderr.split("`")[1]
    assert hint.startswith("mlv push --verify"), proc.stdout + proc.stderr
    doc = json.loads(mlv(*hint.split()[1:], "--json", cwd=mlv_repo).stdout)
    assert doc["ok"] and doc["transferred"]["objects"] > 0  # what it named, sent again
    assert any(index.name in w and "not usable" in w for w in doc["warnings"]), doc
    assert mlv("verify", "--remote", "store", cwd=mlv_repo).returncode == 0
    other = clone(mlv_repo, tmp_path / "clone")
    proc = mlv("pull", cwd=other)
    assert f"index index/{index.name} is not usable" in proc.stderr
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")


def test_a_remote_of_a_newer_format_stops_writers_not_readers(
    mlv_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    pushed(mlv_repo, remote)
    marker = remote / "mlv-remote.json"
    marker.chmod(0o644)
    marker.write_bytes(b'{"mlv-remote":2,"loose-small":false,"chunks":true}')
    write_files(mlv_repo, {"data/a/later.txt": "later"})
    mlv("add", "data", cwd=mlv_repo)
    proc = mlv("push", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "format version 2, newer than this mlv understands (version 1)" in proc.stderr
    assert "upgrade mlv" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 2
    other = clone(mlv_repo, tmp_path / "clone")
    mlv("pull", cwd=other)  # readers use the indexes and packs, each of its own version
    assert (other / "data" / "a" / "f1.txt").read_text() == "a 1"


def test_pack_options_are_checked_and_the_hint_fixes_them(mlv_repo: Path, tmp_path: Path) -> None:
    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=mlv_repo)
    mlv("remote", "modify", "store", "pack_size", "12parsecs", cwd=mlv_repo)
    proc = mlv("push", cwd=mlv_repo, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "remote.store.pack_size: expected a size in bytes" in proc.stderr
    hint = proc.stderr.split("`")[1]
    assert hint == "mlv remote modify store pack_size 32MiB"
    mlv(*hint.split()[1:], cwd=mlv_repo)
    assert mlv("push", cwd=mlv_repo).returncode == 0
    assert xxh(b"x") in packed_objects(tmp_path / "remote")


class _Files(http.server.SimpleHTTPRequestHandler):
    """A static file server; with `ranges`, it answers Range requests (206) as nginx and
    object stores do, else with the whole file (200) as python's http.server does."""

    ranges = False
    served: list[str] = []  # noqa: RUF012 (one list per server subclass)

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self) -> Any:
        self.served.append(f"{self.command} {self.path} {self.headers.get('Range', '')}")
        path = self.translate_path(self.path)
        wanted = self.headers.get("Range")
        if not self.ranges or wanted is None or os.path.isdir(path):
            return super().send_head()
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted)
        if m is None or not os.path.isfile(path):
            return super().send_head()
        with open(path, "rb") as fh:
            data = fh.read()
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        return io.BytesIO(data[start : end + 1])


@contextlib.contextmanager
def serving(folder: Path, ranges: bool) -> Iterator[tuple[str, list[str]]]:
    handler = type("Handler", (_Files,), {"ranges": ranges, "served": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.served
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("ranges", [True, False], ids=["range-requests", "whole-files"])
def test_a_packed_remote_pulls_over_plain_http(
    mlv_repo: Path, tmp_path: Path, ranges: bool
) -> None:
    """A packed folder remote published by a static web server: the indexes are found
    through its directory pages, packed objects read by ranges, or, from a server that
    ignores Range, each pack read once whole."""
    remote = tmp_path / "remote"
    pushed(mlv_repo, remote)
    other = clone(mlv_repo, tmp_path / "clone")
    with serving(remote, ranges) as (url, served):
        mlv("remote", "add", "-d", "web", url, cwd=other)
        mlv("pull", "-r", "web", cwd=other)
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")
    assert_cache_sound(other)
    pack_gets = [line for line in served if line.startswith("GET /packs/")]
    assert pack_gets and all(("bytes=" in line) for line in pack_gets)


def test_status_remote_says_it_read_the_indexes_and_its_hints_find_a_lost_pack(
    mlv_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    pushed(mlv_repo, remote)
    assert remove_remote_object(remote, xxh(b"a 3"))  # a pack lost behind mlv's back
    proc = mlv("status", "--remote", "store", "--check", cwd=mlv_repo)
    assert "indexed      data" in proc.stdout  # not "pushed": the indexes name it, no more
    doc = json.loads(mlv("status", "--remote", "store", "--json", cwd=mlv_repo).stdout)
    assert doc["targets"][0]["indexed_objects"] > 0
    hints = proc.stdout.split("`")[1::2]
    assert hints == ["mlv verify --remote store", "mlv push --verify -r store"], proc.stdout
    found = mlv(*hints[0].split()[1:], cwd=mlv_repo, check=False)
    assert found.returncode == 1 and "missing" in found.stdout
    repaired = mlv(*hints[1].split()[1:], cwd=mlv_repo)
    assert repaired.stdout.startswith("Pushed ") and not repaired.stdout.startswith("Pushed 0")
    assert mlv(*hints[0].split()[1:], cwd=mlv_repo).returncode == 0


# ---- a push killed at any point, on S3 through the fault proxy -----------------------------


@pytest.mark.slow
@pytest.mark.parametrize("after", [1, 2, 3, 4, 6, 9])
def test_a_push_killed_at_any_point_leaves_a_valid_remote(
    mlv_repo: Path, s3_bucket: str, via_proxy: FaultProxy, after: int
) -> None:
    """SIGKILL while the PUT after the first `after` hangs (the lock, the marker, packs and
    their indexes, the tree pack and its index): every index names a complete pack, so
    verify --remote finds objects missing and nothing corrupt or unusable; a re-run of the
    push completes (the killed push's lock does not block it) and verify passes."""
    write_files(mlv_repo, {f"data/d{i % 4}/f{i:03}.bin": os.urandom(20_000) for i in range(200)})
    mlv("add", "data", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", f"s3://{s3_bucket}/store", cwd=mlv_repo)
    mlv("remote", "modify", "s3", "pack_size", "1MiB", cwd=mlv_repo)  # 4 data packs
    commit_all(mlv_repo, "v1")
    via_proxy.clear()
    via_proxy.hang("PUT", every=after + 1)
    proc = subprocess.Popen([MLV, "push"], cwd=mlv_repo, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while via_proxy.count("PUT") <= after and proc.poll() is None:
        assert time.monotonic() < deadline, f"push never sent {after} PUTs"
        time.sleep(0.002)
    assert proc.poll() is None, "push finished before it was killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)  # requests already sent reach the server
    via_proxy.clear()
    doc = json.loads(mlv("verify", "--remote", "s3", "--json", cwd=mlv_repo, check=False).stdout)
    assert {p["found"] for p in doc["problems"]} <= {"missing"}, doc["problems"]
    assert not doc["remote"]["warnings"]
    again = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert again["ok"]
    assert mlv("verify", "--remote", "s3", cwd=mlv_repo).returncode == 0


def test_a_marker_that_is_not_one_stops_writers_with_one_line(
    mlv_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    pushed(mlv_repo, remote)
    marker = remote / "mlv-remote.json"
    marker.chmod(0o644)
    marker.write_bytes(b"[" * 4000)  # deeper than any JSON parser recurses
    write_files(mlv_repo, {"data/a/later.txt": "later"})
    mlv("add", "data", cwd=mlv_repo)
    proc = mlv("push", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "mlv-remote.json is not valid JSON" in proc.stderr
    assert "look at mlv-remote.json on the remote" in proc.stderr


def test_chunking_false_keeps_large_objects_loose(mlv_repo: Path, tmp_path: Path) -> None:
    """`chunking false`: a large object keeps a key of its own (`xxh128sum` of it prints its
    name; `aws s3 cp` or a URL reach it), as in mlv 0.1."""
    remote = tmp_path / "remote"
    files = pushed(mlv_repo, remote, "chunking=false")
    big = xxh(files["data/model.bin"])
    loose = loose_objects(remote)
    assert set(loose) == {big} and not chunked_objects(remote)
    assert "xxh128:" + name_of(loose[big].read_bytes()) == big


def test_a_new_version_of_a_large_file_sends_and_fetches_only_its_changed_chunks(
    mlv_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    files = pushed(mlv_repo, remote)
    v1 = files["data/model.bin"]
    v2 = v1[: 2 << 20] + os.urandom(100_000) + v1[2 << 20 :]  # an insert in the middle
    v2 = v2[:4096] + os.urandom(4096) + v2[8192:]  # and an edit near the start
    (mlv_repo / "data" / "model.bin").chmod(0o644)
    (mlv_repo / "data" / "model.bin").write_bytes(v2)
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    doc = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert doc["ok"] and doc["transferred"]["bytes"] < len(v2) * 0.4, doc
    other = clone(mlv_repo, tmp_path / "clone")
    git("checkout", "-q", "HEAD~1", cwd=other)
    mlv("pull", cwd=other)
    git("checkout", "-q", "-", cwd=other)
    doc = json.loads(mlv("pull", "--json", cwd=other).stdout)
    assert doc["ok"] and doc["transferred"]["bytes"] < len(v2) * 0.4, doc  # v1 chunks reused
    assert (other / "data" / "model.bin").read_bytes() == v2
    assert_cache_sound(other)
    assert mlv("verify", "--remote", "store", "--full", cwd=mlv_repo).returncode == 0


def test_a_rotten_local_version_gives_no_chunk_to_the_next(mlv_repo: Path, tmp_path: Path) -> None:
    """Pulling v2 takes v1's chunks from the cache unread; when v1's object rotted (same
    size and mtime), the rebuilt file fails its hash, every local chunk is read again and
    checked, and the damaged ones come from the remote: v2 arrives exact."""
    remote = tmp_path / "remote"
    files = pushed(mlv_repo, remote)
    v1 = files["data/model.bin"]
    v2 = v1[: 2 << 20] + os.urandom(100_000) + v1[2 << 20 :]
    (mlv_repo / "data" / "model.bin").chmod(0o644)
    (mlv_repo / "data" / "model.bin").write_bytes(v2)
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    mlv("push", cwd=mlv_repo)
    other = clone(mlv_repo, tmp_path / "clone")
    git("checkout", "-q", "HEAD~1", cwd=other)
    mlv("pull", cwd=other)
    git("checkout", "-q", "-", cwd=other)
    obj = other / ".mlv" / "cache" / "xxh128" / xxh(v1)[7:9] / xxh(v1)[9:]
    st = obj.stat()
    obj.chmod(0o644)
    with open(obj, "r+b") as fh:  # rot in v1's first chunk, which v2 shares
        fh.seek(1000)
        fh.write(b"\0" * 16 if v1[1000:1016] != b"\0" * 16 else b"\1" * 16)
    os.utime(obj, ns=(st.st_atime_ns, st.st_mtime_ns))
    doc = json.loads(mlv("pull", "--json", cwd=other).stdout)
    assert doc["ok"], doc
    assert (other / "data" / "model.bin").read_bytes() == v2
    assert doc["transferred"]["bytes"] > 100_000  # the rotten chunk came again


def test_two_pushes_at_the_same_moment_lose_nothing(mlv_repo: Path, tmp_path: Path) -> None:
    """Two clones push different data to one remote at once: packs and indexes are named by
    their content and nothing is read-modified-written, so both land whole."""
    remote = tmp_path / "remote"
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    commit_all(mlv_repo, "remote")
    clones = [clone(mlv_repo, tmp_path / f"c{n}") for n in range(2)]
    for n, repo in enumerate(clones):
        write_files(repo, {f"d{n}/f{i:03}.bin": os.urandom(5000) for i in range(300)})
        mlv("add", f"d{n}", cwd=repo)
    procs = [subprocess.Popen([MLV, "push", "-q"], cwd=repo) for repo in clones]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    for repo in clones:
        assert mlv("verify", "--remote", "store", "--full", cwd=repo).returncode == 0
