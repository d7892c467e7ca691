"""objects/remote.py: key layout, the existence-check-or-listing rule, verified downloads."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.objects import hashing
from mlv.objects.remote import FEW, RemoteStore, hash_of_key, key_of
from mlv.objects.store import Cache
from mlv.storage.folder import FolderBackend


class CountingFolder(FolderBackend):
    """A real folder remote that counts how it was asked."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.checked = 0
        self.listed: list[str] = []

    def exists(self, keys: Sequence[str], jobs: int) -> set[str]:
        self.checked += len(keys)
        return super().exists(keys, jobs)

    def list_keys(self, prefix: str) -> list[str]:
        self.listed.append(prefix)
        return super().list_keys(prefix)


def fake_hash(i: int) -> str:
    return hashing.hash_bytes("xxh128", str(i).encode())


def fill(remote: Path, hashes: list[str]) -> None:
    for h in hashes:
        path = remote / key_of(h)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")


def test_key_layout_round_trip() -> None:
    h = fake_hash(1)
    key = key_of(h)
    assert key == f"xxh128/{h[7:9]}/{h[9:]}"
    assert hash_of_key(key) == h
    assert hash_of_key("xxh128/zz") is None
    assert hash_of_key("xxh128/ab/not-hex") is None


def test_few_objects_are_checked_one_by_one(tmp_path: Path) -> None:
    backend = CountingFolder(str(tmp_path / "remote"))
    fill(tmp_path / "remote", [fake_hash(i) for i in range(5000)])
    store = RemoteStore(backend, "r")
    wanted = {fake_hash(i) for i in range(3)} | {fake_hash(-1)}
    assert store.present(wanted) == {fake_hash(i) for i in range(3)}
    assert backend.checked == len(wanted) and backend.listed == []


def test_many_objects_on_an_empty_remote_are_listed_not_checked(tmp_path: Path) -> None:
    backend = CountingFolder(str(tmp_path / "remote"))
    store = RemoteStore(backend, "r")
    assert store.present({fake_hash(i) for i in range(3000)}) == set()
    assert backend.checked == 0
    assert all(p.startswith("xxh128/") and len(p) == len("xxh128/ab/") for p in backend.listed)


def test_a_few_dozen_against_a_big_remote_never_lists_the_whole_remote(tmp_path: Path) -> None:
    backend = CountingFolder(str(tmp_path / "remote"))
    fill(tmp_path / "remote", [fake_hash(i) for i in range(3000)])
    store = RemoteStore(backend, "r")
    wanted = {fake_hash(i) for i in range(10)} | {fake_hash(-i) for i in range(1, 11)}
    assert len(wanted) > FEW
    assert store.present(wanted) == {fake_hash(i) for i in range(10)}
    assert "xxh128/" not in backend.listed
    assert backend.checked + len(backend.listed) <= len(wanted) + 1


@settings(max_examples=25, deadline=None)
@given(
    on_remote=st.sets(st.integers(0, 400), max_size=300),
    wanted=st.sets(st.integers(0, 400), max_size=300),
)
def test_present_is_exactly_the_intersection(on_remote: set[int], wanted: set[int]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        fill(Path(tmp), [fake_hash(i) for i in on_remote])
        store = RemoteStore(FolderBackend(tmp), "r")
        got = store.present({fake_hash(i) for i in wanted})
        assert got == {fake_hash(i) for i in on_remote & wanted}


def test_download_checks_every_object(tmp_path: Path) -> None:
    source = Cache(str(tmp_path / "source"), "xxh128")
    good_small = source.put_bytes(b"good")
    bad_small = source.put_bytes(b"will be damaged")
    big_data = os.urandom(3 << 20)
    big = source.put_bytes(big_data)
    remote = tmp_path / "remote"
    store = RemoteStore(FolderBackend(str(remote)), "r")
    sent = store.upload(source, [good_small, bad_small, big])
    assert sorted(sent.done) == sorted([good_small, bad_small, big])
    damaged = remote / key_of(bad_small)
    damaged.chmod(0o644)
    damaged.write_bytes(b"damaged!")

    target = Cache(str(tmp_path / "target"), "xxh128")
    got = store.download(target, [good_small, bad_small, big, fake_hash(9)], sizes={big: 3 << 20})
    assert sorted(got.done) == sorted([good_small, big])
    assert got.corrupt == [bad_small] and got.missing == [fake_hash(9)]
    assert target.read_bytes(good_small) == b"good"
    assert Path(target.object_path(big)).read_bytes() == big_data
    assert not target.has(bad_small)
    leftovers = list(Path(target.tmp_dir).iterdir()) if os.path.isdir(target.tmp_dir) else []
    assert leftovers == []


def test_upload_refuses_a_damaged_cache_object(tmp_path: Path) -> None:
    cache = Cache(str(tmp_path / "cache"), "xxh128")
    h = cache.put_bytes(b"precious")
    obj = Path(cache.object_path(h))
    obj.chmod(0o644)
    obj.write_bytes(b"bitrot!!")
    store = RemoteStore(FolderBackend(str(tmp_path / "remote")), "r")
    outcome = store.upload(cache, [h, fake_hash(5)])
    assert outcome.corrupt == [h] and outcome.missing == [fake_hash(5)] and not outcome.done
    assert not (tmp_path / "remote").exists()
