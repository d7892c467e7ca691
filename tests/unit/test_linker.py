"""The link helper (objects/linker.py) and the trust records that let it work: it links an
object only when the object's stat is the trust record it was given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlv.objects import linker
from mlv.objects.state import StateDB
from mlv.objects.store import Cache


def _object(tmp_path: Path, name: str, data: bytes) -> tuple[str, tuple[int, int, int]]:
    path = tmp_path / name
    path.write_bytes(data)
    st = os.stat(path)
    return str(path), (st.st_ino, st.st_mtime_ns, st.st_size)


def test_helper_links_only_what_its_trust_record_vouches_for(tmp_path: Path) -> None:
    good, good_rec = _object(tmp_path, "good", b"good")
    changed, changed_rec = _object(tmp_path, "changed", b"changed")
    os.utime(changed, ns=(0, changed_rec[1] - 10**9))  # touched since it was checked
    taken, taken_rec = _object(tmp_path, "taken", b"taken")
    (tmp_path / "there").write_bytes(b"already here")
    out = tmp_path / "out"
    out.mkdir()
    helper = linker.start()
    assert helper is not None
    try:
        helper.send(
            [
                (good, str(out / "a"), *good_rec),
                (changed, str(out / "b"), *changed_rec),
                (str(tmp_path / "absent"), str(out / "c"), 1, 2, 3),
                (taken, str(tmp_path / "there"), *taken_rec),
                (good, str(tmp_path / "no-such-folder" / "d"), *good_rec),
            ]
        )
        helper.send([(good, str(out / "e"), *good_rec)])
        assert list(helper.receive()) == [linker.LINKED, 1, 1, 1, 1]
        assert list(helper.receive()) == [linker.LINKED]
    finally:
        helper.close()
    assert sorted(os.listdir(out)) == ["a", "e"]
    assert os.stat(out / "a").st_ino == good_rec[0] == os.stat(out / "e").st_ino
    assert (tmp_path / "there").read_bytes() == b"already here"


def test_a_helper_that_stops_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linker, "_HELPER", "import sys; sys.stdin.buffer.read(8)")
    helper = linker.start()
    assert helper is not None
    try:
        good, rec = _object(tmp_path, "good", b"good")
        try:
            helper.send([(good, str(tmp_path / "a"), *rec)])
        except linker.HelperGone:
            return  # gone before it took the batch
        with pytest.raises(linker.HelperGone):
            helper.receive()
    finally:
        helper.close()


def test_added_small_objects_carry_a_trust_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`add` hashed the bytes it wrote into the cache: a link checkout that follows need
    not read them again (the helper links only objects with a record)."""
    state = StateDB(str(tmp_path / "state.db"))
    try:
        cache = Cache(str(tmp_path / "cache"), "xxh128", ("copy",), trust=state)
        src = tmp_path / "src"
        src.write_bytes(b"some content")
        hash_id = cache.ingest(str(src), src.stat().st_size)
        state.flush()
        st = os.stat(cache.object_path(hash_id))
        assert state.object_record(hash_id) == (st.st_ino, st.st_mtime_ns, st.st_size)

        def no_reading(self: Cache, h: str) -> bool:
            raise AssertionError(f"{h} read again")

        monkeypatch.setattr(Cache, "verify", no_reading)
        assert cache.is_intact(hash_id)
    finally:
        state.close()


def test_tree_trust_is_dropped_with_any_damaged_object(tmp_path: Path) -> None:
    state = StateDB(str(tmp_path / "state.db"))
    try:
        state.record_tree_trust("xxh128:" + "1" * 32, [(1, 2, 3), None])
        state.flush()
        assert state.tree_trust("xxh128:" + "1" * 32) == [(1, 2, 3), None]
        state.distrust_object("xxh128:" + "2" * 32)
        assert state.tree_trust("xxh128:" + "1" * 32) is None
        state.record_tree_trust("xxh128:" + "3" * 32, [(1, 2)])  # not a record: ignored
        state.flush()
        assert state.tree_trust("xxh128:" + "3" * 32) is None
    finally:
        state.close()
