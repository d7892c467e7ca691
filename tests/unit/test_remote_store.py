"""mlv.objects.remote: the object <-> key mapping, how `present` chooses between existence
checks and listings (requests counted on a real FolderBackend), and uploads and downloads
through a real Cache, where a corrupt remote object never enters the cache."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from helpers import damage_remote_object, remote_objects
from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.objects import hashing
from mlv.objects.packs.packed import Settings
from mlv.objects.packs.packfile import KIND_CHUNKS, KIND_FILE, KIND_TREE
from mlv.objects.remote import FEW, IN_MEMORY, RemoteStore, hash_of_key, key_of
from mlv.objects.store import Cache
from mlv.storage.backend import ItemResult
from mlv.storage.folder import FolderBackend
from mlv.util import localfs


class CountingFolder(FolderBackend):
    """A FolderBackend that records what it was asked; `listing_page` as a flat store's."""

    def __init__(self, root: str, listing_page: int | None = None) -> None:
        super().__init__(root)
        self.listing_page = listing_page
        self.checked: list[str] = []  # every key given to exists()
        self.listed: list[str] = []  # the prefix of every list_keys() call

    def exists(self, keys: Sequence[str], jobs: int) -> set[str]:
        self.checked.extend(keys)
        return super().exists(keys, jobs)

    def list_keys(self, prefix: str, limit: int | None = None) -> list[str]:
        self.listed.append(prefix)
        return super().list_keys(prefix, limit)


def fake(shard: int, n: int, algo: str = "xxh128") -> str:
    """A well-formed hash id in shard `shard` (content does not matter to `present`)."""
    width = hashing.hex_len(algo) - 2
    return f"{algo}:{shard:02x}{n:0{width}x}"


def place(root: Path, hashes: set[str] | list[str]) -> None:
    """Objects on the remote (empty files at their keys)."""
    for h in hashes:
        path = root / key_of(h)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def shard_prefix(h: str) -> str:
    return key_of(h).rsplit("/", 1)[0] + "/"


# ---- keys -----------------------------------------------------------------------------


@given(st.binary(max_size=64), st.sampled_from(hashing.ALGORITHMS))
def test_key_of_and_hash_of_key_round_trip(data: bytes, algo: str) -> None:
    h = hashing.hash_bytes(algo, data)
    k = key_of(h)
    algo_part, shard, rest = k.split("/")
    assert (algo_part, shard + rest) == hashing.split(h)
    assert len(shard) == 2
    assert hash_of_key(k) == h


@pytest.mark.parametrize(
    "key",
    [
        "xxh128/ab",
        "xxh128/ab/cd/" + "0" * 30,
        "xxh128/abc/" + "0" * 29,
        "xxh128/ab/" + "0" * 29,  # one hex digit short
        "xxh128/ab/" + "G" * 30,
        "md5/ab/" + "0" * 30,
        "xxh128/ab/" + localfs.TMP_MARK + "1-2-" + "0" * 20,
        "",
    ],
)
def test_hash_of_key_rejects_what_is_not_an_object(key: str) -> None:
    assert hash_of_key(key) is None


# ---- present: which way of asking -------------------------------------------------------


def test_few_objects_get_existence_checks_only(tmp_path: Path) -> None:
    backend = CountingFolder(str(tmp_path))
    wanted = {fake(s, s) for s in range(FEW)}
    there = set(sorted(wanted)[::3])
    place(tmp_path, there)
    store = RemoteStore(backend, "r")
    assert store.present(wanted) == there
    assert sorted(backend.checked) == sorted(key_of(h) for h in wanted)
    assert backend.listed == []
    assert store.present([]) == set()
    assert len(backend.checked) == FEW and backend.listed == []


def test_one_more_than_few_is_listed(tmp_path: Path) -> None:
    backend = CountingFolder(str(tmp_path))
    wanted = {fake(0, n) for n in range(FEW + 1)}  # all in one shard: one listing answers
    store = RemoteStore(backend, "r")
    assert store.present(wanted) == set()
    assert backend.listed == ["xxh128/00/"]
    assert backend.checked == []


@pytest.mark.parametrize("listing_page", [None, 1000])
def test_thousands_on_an_empty_remote_are_listed_never_checked(
    tmp_path: Path, listing_page: int | None
) -> None:
    backend = CountingFolder(str(tmp_path), listing_page)
    wanted = {fake(n % 256, n) for n in range(3000)}
    store = RemoteStore(backend, "r")
    assert store.present(wanted) == set()
    assert backend.checked == []
    assert 1 <= len(backend.listed) <= 256
    assert len(backend.listed) == len(set(backend.listed))  # no prefix listed twice
    if listing_page is None:  # a folder: a listing per shard, never the whole prefix
        assert sorted(backend.listed) == sorted({shard_prefix(h) for h in wanted})
    else:  # a flat store: the sample shard is empty, so the whole prefix is one page
        assert backend.listed == ["xxh128/00/", "xxh128/"]


def test_full_remote_few_spread_objects_never_lists_the_whole_prefix(tmp_path: Path) -> None:
    """A folder (listing_page None): one listing per folder whatever its size, so a whole
    listing is 256 requests and never the cheapest for 20 objects."""
    backend = CountingFolder(str(tmp_path))
    remote = {fake(s, n) for s in range(256) for n in range(6)}
    place(tmp_path, remote)
    wanted = {fake(s * 12, 5) for s in range(20)} | {fake(1, 999)}  # one of them absent
    store = RemoteStore(backend, "r")
    assert store.present(wanted) == wanted & remote
    assert "xxh128/" not in backend.listed
    assert len(backend.listed) + len(backend.checked) <= len(wanted)
    assert set(backend.listed) <= {shard_prefix(h) for h in wanted}


def test_flat_store_whole_listing_only_when_cheaper(tmp_path: Path) -> None:
    # 40 objects a shard, 10 keys a listing page: a whole listing is ~1024 requests and
    # 20 checks are far cheaper.
    backend = CountingFolder(str(tmp_path), listing_page=10)
    remote = {fake(s, n) for s in range(0, 256, 8) for n in range(40)}
    place(tmp_path, remote)
    wanted = {fake(s, 3) for s in range(0, 160, 8)} | {fake(s, 77) for s in range(8, 24, 8)}
    store = RemoteStore(backend, "r")
    assert store.present(wanted) == wanted & remote
    assert "xxh128/" not in backend.listed
    assert len(backend.listed) == 1  # the sample shard; the rest by existence checks
    assert sorted(backend.checked) == sorted(key_of(h) for h in wanted if h != fake(0, 3))


def test_flat_store_whole_listing_when_it_is_the_cheapest(tmp_path: Path) -> None:
    # 3 objects a shard, 1000 keys a page: the whole remote is one page; 200 objects over
    # 100 shards would cost 99 listings or 198 checks.
    backend = CountingFolder(str(tmp_path), listing_page=1000)
    remote = {fake(s, n) for s in range(256) for n in range(3)}
    place(tmp_path, remote)
    wanted = {fake(s, n) for s in range(100) for n in (1, 7)}
    store = RemoteStore(backend, "r")
    assert store.present(wanted) == wanted & remote
    assert backend.listed == ["xxh128/00/", "xxh128/"]
    assert backend.checked == []


def test_flat_store_long_whole_listing_is_split_in_16(tmp_path: Path) -> None:
    # 3 objects a shard, 10 keys a page: a whole listing is ~77 pages, cheaper than 255
    # shard listings or 800 checks, and long enough to be listed as 16 prefixes at once.
    backend = CountingFolder(str(tmp_path), listing_page=10)
    remote = {fake(s, n) for s in range(256) for n in range(3)}
    place(tmp_path, remote)
    (tmp_path / "xxh128" / "zz").mkdir()
    (tmp_path / "xxh128" / "zz" / "junk").touch()  # not an object key: never listed
    wanted = {fake(s, n) for s in range(256) for n in (0, 2, 5)}  # a third absent
    store = RemoteStore(backend, "r", jobs=4)
    assert store.present(wanted) == wanted & remote
    assert backend.listed[0] == "xxh128/00/"
    assert sorted(backend.listed[1:]) == [f"xxh128/{c}" for c in "0123456789abcdef"]
    assert store.stats.listings == 17
    assert backend.checked == []
    # one job: the one chain of pages, as before
    backend.listed.clear()
    assert RemoteStore(backend, "r", jobs=1).present(wanted) == wanted & remote
    assert backend.listed == ["xxh128/00/", "xxh128/"]


POOL = [fake(s, n) for s in (0, 1, 7, 0x80, 0xFF) for n in range(12)] + [
    fake(s, n, "sha256") for s in (0, 3) for n in range(6)
]


@settings(max_examples=60, deadline=None)
@given(
    wanted=st.sets(st.sampled_from(POOL), max_size=len(POOL)),
    there=st.sets(st.sampled_from(POOL), max_size=len(POOL)),
    listing_page=st.sampled_from([None, 1, 5, 1000]),
)
def test_present_is_exactly_the_objects_there(
    wanted: set[str], there: set[str], listing_page: int | None
) -> None:
    with tempfile.TemporaryDirectory() as root:
        place(Path(root), there)
        backend = CountingFolder(root, listing_page)
        assert RemoteStore(backend, "r").present(wanted) == wanted & there
        if len(wanted) <= FEW:
            assert backend.listed == []
        if listing_page is None:
            assert not {"xxh128/", "sha256/"} & set(backend.listed)
        assert set(backend.checked) <= {key_of(h) for h in wanted}


# ---- moving objects through a real cache ------------------------------------------------


def tmp_leftovers(cache: Cache) -> list[str]:
    if not os.path.isdir(cache.tmp_dir):
        return []
    return os.listdir(cache.tmp_dir)


def tamper(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


@pytest.fixture(params=["packed", "loose"])
def stores(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Cache, Cache, RemoteStore, Path]]:
    """Two caches and a folder remote: packed (small objects in packs, the default) or
    loose (pack_threshold 0: one key per object, as mlv 0.1 wrote)."""
    remote = tmp_path / "remote"
    packing = Settings() if request.param == "packed" else Settings(threshold=0)
    store = RemoteStore(FolderBackend(str(remote)), "origin", packing=packing)
    yield (
        Cache(str(tmp_path / "cache1"), "xxh128"),
        Cache(str(tmp_path / "cache2"), "xxh128"),
        store,
        remote,
    )
    store.close()


def test_upload_then_download_into_another_cache(
    stores: tuple[Cache, Cache, RemoteStore, Path],
) -> None:
    src, dst, store, remote = stores
    blobs = [b"", b"small", os.urandom(5000), os.urandom(IN_MEMORY + 10)]
    hashes = [src.put_bytes(b) for b in blobs]
    absent = hashing.hash_bytes("xxh128", b"never added")
    up = store.upload(src, [*hashes, absent])
    assert sorted(up.done) == sorted(hashes)
    assert up.nbytes == sum(len(b) for b in blobs)
    assert up.missing == [absent] and up.corrupt == [] and up.failed == {}
    on_remote = remote_objects(remote)
    for h, b in zip(hashes, blobs, strict=True):
        assert on_remote[h] == b
    assert store.present(hashes) == set(hashes)

    sizes = {h: len(b) for h, b in zip(hashes, blobs, strict=True)}
    down = store.download(dst, [*hashes, absent], sizes=sizes)
    assert sorted(down.done) == sorted(hashes)
    assert down.missing == [absent] and down.corrupt == []
    for h, b in zip(hashes, blobs, strict=True):
        assert dst.verify(h) and dst.read_bytes(h) == b
    assert tmp_leftovers(dst) == []


def test_upload_refuses_a_corrupt_cache_object(
    stores: tuple[Cache, Cache, RemoteStore, Path],
) -> None:
    src, _, store, remote = stores
    good, bad = src.put_bytes(b"good"), src.put_bytes(b"bad")
    tamper(Path(src.object_path(bad)), b"BAD")
    out = store.upload(src, [good, bad])
    assert out.done == [good] and out.corrupt == [bad]
    assert bad not in remote_objects(remote)


@pytest.mark.parametrize("large", [False, True], ids=["in-memory", "via-tmp-file"])
def test_corrupt_remote_object_never_enters_the_cache(
    stores: tuple[Cache, Cache, RemoteStore, Path], large: bool
) -> None:
    src, dst, store, remote = stores
    size = IN_MEMORY + 100 if large else 300
    good_data, bad_data = os.urandom(size), os.urandom(size)
    good, bad = src.put_bytes(good_data), src.put_bytes(bad_data)
    assert sorted(store.upload(src, [good, bad]).done) == sorted([good, bad])
    damage_remote_object(remote, bad)

    out = store.download(dst, [good, bad], sizes={good: size, bad: size})
    assert out.corrupt == [bad]
    assert out.done == [good] and out.missing == [] and out.failed == {}
    assert out.nbytes == size
    assert dst.verify(good)
    assert not dst.has(bad)
    assert not os.path.exists(dst.object_path(bad))
    assert tmp_leftovers(dst) == []


# ---- packed objects: copies, tree packs, the hard maximum ------------------------------------


def test_a_damaged_packed_copy_is_passed_over_for_a_good_one(tmp_path: Path) -> None:
    """An object in two packs (re-sent after the first was damaged): download and check
    take the copy that hashes right, whichever index is listed first."""
    cache, other = Cache(str(tmp_path / "c1"), "xxh128"), Cache(str(tmp_path / "c2"), "xxh128")
    remote = tmp_path / "remote"
    store = RemoteStore(FolderBackend(str(remote)), "origin")
    data = b"the only object" * 10
    h = cache.put_bytes(data)
    assert store.upload(cache, [h]).done == [h]
    damage_remote_object(remote, h)
    written = store.packs.write(iter([(h, data)]), KIND_FILE, str(tmp_path / "scratch"))
    assert written.done == [h] and len(list((remote / "index").glob("*.idx"))) == 2
    store.close()
    fresh = RemoteStore(FolderBackend(str(remote)), "origin")
    try:
        down = fresh.download(other, [h], sizes={h: len(data)})
        assert down.done == [h] and down.corrupt == [] and other.read_bytes(h) == data
        checked = fresh.check([h], str(tmp_path / "scratch"))
        assert checked.done == [h] and checked.corrupt == []
    finally:
        fresh.close()


def test_a_damaged_packed_object_without_another_copy_is_corrupt(tmp_path: Path) -> None:
    cache, other = Cache(str(tmp_path / "c1"), "xxh128"), Cache(str(tmp_path / "c2"), "xxh128")
    remote = tmp_path / "remote"
    store = RemoteStore(FolderBackend(str(remote)), "origin")
    try:
        h = cache.put_bytes(b"rots")
        store.upload(cache, [h])
        damage_remote_object(remote, h)
        down = store.download(other, [h], sizes={h: 4})
        assert down.corrupt == [h] and down.done == [] and not other.has(h)
        checked = store.check([h], str(tmp_path / "scratch"))
        assert checked.corrupt == [h] and checked.got[h] != h
    finally:
        store.close()


class _FailingSecondUpload(FolderBackend):
    """A folder whose second pack upload fails (a network error that outlived retries)."""

    uploads = 0

    def upload(
        self, items: Sequence[tuple[str, str]], jobs: int, done: Any = None, move: bool = False
    ) -> Any:
        self.uploads += 1
        if self.uploads == 2:
            return [ItemResult(key, 0, OSError("connection reset")) for _, key in items]
        return super().upload(items, jobs, done, move)


def test_trees_of_a_push_get_no_index_when_one_of_their_packs_failed(tmp_path: Path) -> None:
    """A push's trees share one index; if a tree pack fails, none is indexed (a tree
    must never be named while a tree it names is not)."""
    remote = tmp_path / "remote"
    backend = _FailingSecondUpload(str(remote))
    store = RemoteStore(backend, "origin", packing=Settings(size=1 << 20))
    trees = [os.urandom(600_000) for _ in range(3)]  # one pack each at 1 MiB packs
    objects = [(hashing.hash_bytes("xxh128", t), t) for t in trees]
    try:
        written = store.packs.write(iter(objects), KIND_TREE, str(tmp_path / "scratch"))
    finally:
        store.close()
    assert written.done == [] and set(written.failed) == {h for h, _ in objects}
    assert not list((remote / "index").glob("*.idx"))


def test_a_pack_never_grows_past_the_hard_maximum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many small objects and a pack_size at the maximum: the pack is cut before its
    trailer would take it past the hard maximum (1 GiB; 1 MiB here)."""
    from mlv.objects.packs import packed, packfile

    monkeypatch.setattr(packfile, "MAX_PACK_WRITE", 1 << 20)
    monkeypatch.setattr(packed, "MAX_PACK_WRITE", 1 << 20)
    remote = tmp_path / "remote"
    store = RemoteStore(FolderBackend(str(remote)), "origin", packing=Settings(size=1 << 30))
    objects = [
        (hashing.hash_bytes("xxh128", b), b) for b in (os.urandom(60) for _ in range(30_000))
    ]
    try:
        written = store.packs.write(iter(objects), KIND_FILE, str(tmp_path / "scratch"))
    finally:
        store.close()
    assert not written.failed and len(written.done) == len(objects)
    packs = list((remote / "packs").glob("*/*.pack"))
    assert len(packs) >= 2 and all(p.stat().st_size <= 1 << 20 for p in packs)


def test_a_folder_remote_copies_ranges_into_local_files(tmp_path: Path) -> None:
    """copy_ranges (a folder remote's own): the kernel copies each range to its offset in
    an open file; an absent key is Missing, a range past the end an error."""
    backend = FolderBackend(str(tmp_path / "remote"))
    data = os.urandom(300_000)
    backend.write([(data, "packs/ab/thing.pack")], 1)
    target = tmp_path / "out"
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.ftruncate(fd, 400_000)
        results = backend.copy_ranges(
            [
                ("packs/ab/thing.pack", 100, 400, fd, 600),
                ("packs/ab/thing.pack", 0, 100, fd, 0),
                ("packs/ab/none.pack", 0, 10, fd, 0),
                ("packs/ab/thing.pack", 299_990, 20, fd, 100),
                # longer than the 64 KiB step it aligns to, starting mid-step: two calls
                ("packs/ab/thing.pack", 1000, 250_000, fd, 70_001),
            ]
        )
    finally:
        os.close(fd)
    assert [r.error is None for r in results] == [True, True, False, False, True]
    assert isinstance(results[2].error, FileNotFoundError)
    out = target.read_bytes()
    assert out[600:1000] == data[100:500] and out[:100] == data[:100]
    assert out[70_001:320_001] == data[1000:251_000]


def test_a_chunk_list_claiming_another_length_than_the_pointer_is_not_built(
    tmp_path: Path,
) -> None:
    """A hostile index names a chunked object with a length the pointer does not say: no
    file of that length is made; the object fails, naming both lengths."""
    from mlv.objects.packs.chunks import DEFAULT, ChunkList, ChunkRef

    other = Cache(str(tmp_path / "c2"), "xxh128")
    store = RemoteStore(FolderBackend(str(tmp_path / "remote")), "origin")
    try:
        h = hashing.hash_bytes("xxh128", b"x")
        chunk = store.packs.write(iter([(h, b"x")]), KIND_FILE, str(tmp_path / "s"))
        assert chunk.done == [h]
        claimed = 3  # three times the chunk "x": a list that parses, of the wrong length
        lie = ChunkList("xxh128", claimed, DEFAULT, (ChunkRef(h, 1),) * 3)
        fake = hashing.hash_bytes("xxh128", b"a large object")
        store.packs.write(
            iter([(fake, lie.encode())]),
            KIND_CHUNKS,
            str(tmp_path / "s"),
            lengths={fake: claimed},
        )
        out = store.download(other, [fake], sizes={fake: 14})
        assert fake in out.failed and "for 3 bytes, where 14 are expected" in out.failed[fake]
        assert not other.has(fake) and tmp_leftovers(other) == []
    finally:
        store.close()
