"""The write helper (mlv/objects/writer.py) and Cache.writing(): small objects written by a
second process while mlv hashes, each whole under its name, trusted only as written, and
trees held back until every object they name is in the cache."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import xxhash

from mlv.objects import hashing, store, writer
from mlv.objects.state import StateDB
from mlv.objects.store import Cache
from mlv.util import localfs


def _files(ws: Path, n: int) -> dict[str, bytes]:
    out = {}
    for i in range(n):
        data = (b"%d " % i) * (1 + i % 300)
        (ws / f"f{i}").write_bytes(data)
        out[f"f{i}"] = data
    return out


def _cache(tmp_path: Path) -> tuple[Cache, StateDB]:
    state = StateDB(str(tmp_path / "state.db"))
    return Cache(str(tmp_path / "cache"), "xxh128", ("copy",), trust=state), state


def _stray(tmp_path: Path) -> list[str]:
    return [p.name for p in (tmp_path / "cache").rglob("*") if localfs.TMP_MARK in p.name]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    d = tmp_path / "ws"
    d.mkdir()
    return d


@pytest.mark.parametrize("trust_every", [10_000, 50])
def test_objects_written_by_the_helper_are_whole_and_trusted_as_written(
    tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch, trust_every: int
) -> None:
    """trust_every 50: the confirmed objects' trust records are recorded as the add goes
    (a million objects' records kept to the end held ~250 MB), each still right."""
    monkeypatch.setattr(store, "WRITER_AFTER", 10)
    monkeypatch.setattr(store, "TRUST_EVERY", trust_every)
    files = _files(ws, 700)
    cache, state = _cache(tmp_path)
    offered = []
    held = []
    real_offer = writer.WriteHelper.offer

    def offer(self: writer.WriteHelper, *args: object) -> bool:
        taken = real_offer(self, *args)  # type: ignore[arg-type]
        offered.append(taken)
        held.append(len(self.written))
        return taken

    monkeypatch.setattr(writer.WriteHelper, "offer", offer)
    with cache.writing():
        ids = {name: cache.ingest(str(ws / name), len(data)) for name, data in files.items()}
        tree = cache.put_bytes(b"a tree naming them")
        assert not cache.has(tree)  # held back until every object is in
    assert any(offered)  # the helper took some
    assert max(held) <= trust_every + writer.IN_FLIGHT * writer.BATCH_FILES
    state.flush()
    for name, data in files.items():
        hash_id = ids[name]
        assert hash_id == hashing.hash_bytes("xxh128", data)
        path = cache.object_path(hash_id)
        with open(path, "rb") as fh:
            assert xxhash.xxh3_128_hexdigest(fh.read()) == hash_id.partition(":")[2]
        assert os.stat(path).st_mode & 0o777 == 0o444
        assert state.object_trusted(hash_id, os.stat(path))
    assert cache.has(tree)
    assert _stray(tmp_path) == []


def test_a_helper_killed_midway_leaves_its_objects_to_mlv(
    tmp_path: Path, ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the helper did not confirm is written by mlv itself at the end: every
    object is in the cache, whole, and no temporary is left under an object's name."""
    monkeypatch.setattr(store, "WRITER_AFTER", 0)
    files = _files(ws, 400)
    cache, _ = _cache(tmp_path)
    with cache.writing():
        ids = [cache.ingest(str(ws / name), len(data)) for name, data in files.items()]
        helper = cache._writer
        assert helper is not None
        os.kill(helper._proc.pid, signal.SIGKILL)
        helper._proc.wait()
        ids += [cache.ingest(str(ws / name), len(files[name])) for name in list(files)[:5]]
    for hash_id in ids:
        assert cache.verify(hash_id)


def test_after_an_error_no_held_tree_is_written(tmp_path: Path, ws: Path) -> None:
    cache, _ = _cache(tmp_path)
    with pytest.raises(RuntimeError), cache.writing():
        tree = cache.put_bytes(b"a tree")
        raise RuntimeError("the scan failed")
    assert not cache.has(tree)
    assert cache.put_bytes(b"a tree") == tree  # outside writing(): written at once
    assert cache.has(tree)


def test_stat_of_carries_a_trust_record() -> None:
    st = writer.stat_of(12, 1_700_000_000_123_456_789, 99)
    assert (st.st_ino, st.st_mtime_ns, st.st_size) == (12, 1_700_000_000_123_456_789, 99)
