"""mlv.objects.packs.codec and Packed's codec handling: compressible objects are stored zstd
and read back equal, random ones raw, and a frame that is malformed or claims more than its
entry's length is refused without allocating what it claims."""

from __future__ import annotations

import os
import random
import tracemalloc
from pathlib import Path

import pytest
import zstandard

from mlv.objects import hashing
from mlv.objects.packs import codec
from mlv.objects.packs.codec import CodecError, Compressor, decode
from mlv.objects.packs.index import Location
from mlv.objects.packs.packed import NewerFormat, Settings
from mlv.objects.packs.packfile import CODEC_RAW, CODEC_ZSTD, KIND_FILE
from mlv.objects.remote import RemoteStore
from mlv.objects.store import Cache
from mlv.storage.folder import FolderBackend


def csv_bytes(n: int) -> bytes:
    r = random.Random(n)
    return "".join(
        f"{i},{r.randint(0, 99999)},{r.random():.6f},name_{r.randint(0, 500)}\n" for i in range(n)
    ).encode()


def entries(remote: Path) -> dict[str, tuple[int, int, int]]:
    """hash -> (codec, stored, length) of every entry the remote's indexes name."""
    store = RemoteStore(FolderBackend(str(remote)), "origin")
    try:
        return {h: (loc.codec, loc.stored, loc.length) for h, loc in store.packs.catalog().items()}
    finally:
        store.close()


def test_compressible_is_stored_zstd_random_raw_and_both_read_back(tmp_path: Path) -> None:
    src, dst = Cache(str(tmp_path / "c1"), "xxh128"), Cache(str(tmp_path / "c2"), "xxh128")
    remote = tmp_path / "remote"
    text, noise = csv_bytes(20000), os.urandom(500_000)
    t, n = src.put_bytes(text), src.put_bytes(noise)
    store = RemoteStore(FolderBackend(str(remote)), "origin")
    try:
        assert sorted(store.upload(src, [t, n]).done) == sorted([t, n])
    finally:
        store.close()
    found = entries(remote)
    assert found[t][0] == CODEC_ZSTD and found[t][2] == len(text)
    assert found[t][1] <= 0.9 * len(text)
    assert found[n] == (CODEC_RAW, len(noise), len(noise))
    fresh = RemoteStore(FolderBackend(str(remote)), "origin")
    try:
        down = fresh.download(dst, [t, n], sizes={t: len(text), n: len(noise)})
    finally:
        fresh.close()
    assert sorted(down.done) == sorted([t, n]) and down.corrupt == []
    assert dst.read_bytes(t) == text and dst.read_bytes(n) == noise


def test_compression_off_stores_raw(tmp_path: Path) -> None:
    src = Cache(str(tmp_path / "c1"), "xxh128")
    text = csv_bytes(5000)
    h = src.put_bytes(text)
    store = RemoteStore(
        FolderBackend(str(tmp_path / "remote")),
        "origin",
        packing=Settings(compression=False),
    )
    try:
        assert store.upload(src, [h]).done == [h]
    finally:
        store.close()
    assert entries(tmp_path / "remote")[h] == (CODEC_RAW, len(text), len(text))


def test_saving_under_ten_percent_stays_raw() -> None:
    # Half random, half zeros in 16-byte runs: zstd saves a little, less than 10%.
    r = random.Random(3)
    data = b"".join(r.randbytes(15) + b"\0" for _ in range(20000))
    assert len(zstandard.ZstdCompressor(level=codec.LEVEL).compress(data)) > 0.9 * len(data)
    assert Compressor().encode(data) == (CODEC_RAW, data)
    assert Compressor(enabled=False).encode(csv_bytes(1000))[0] == CODEC_RAW


def test_chunks_of_an_incompressible_object_stop_being_tried() -> None:
    """After a chunk that does not pay, the next ones are stored raw untried (backing off),
    until the next object."""
    comp = Compressor()
    text = csv_bytes(3000)
    comp.new_object()
    assert comp.encode(os.urandom(100_000))[0] == CODEC_RAW
    assert comp.encode(text) == (CODEC_RAW, text)  # skipped, not tried
    comp.new_object()
    assert comp.encode(text)[0] == CODEC_ZSTD


def test_decode_gives_exactly_the_length() -> None:
    data = csv_bytes(2000)
    frame = zstandard.ZstdCompressor().compress(data)
    assert decode(CODEC_ZSTD, frame, len(data)) == data
    assert decode(CODEC_RAW, data, len(data)) == data
    with pytest.raises(CodecError, match="claims"):
        decode(CODEC_ZSTD, frame, len(data) - 1)
    with pytest.raises(CodecError, match="claims"):
        decode(CODEC_ZSTD, frame, len(data) + 1)
    with pytest.raises(CodecError):
        decode(CODEC_ZSTD, frame + b"extra", len(data))
    with pytest.raises(CodecError):
        decode(7, frame, len(data))


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"not zstd at all",
        zstandard.ZstdCompressor().compress(b"x" * 1000)[:-3],  # truncated
        b"\x28\xb5\x2f\xfd" + os.urandom(40),  # the magic, then noise
    ],
    ids=["empty", "no-magic", "truncated", "noise"],
)
def test_malformed_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(CodecError):
        decode(CODEC_ZSTD, frame, 1000)


def test_a_bomb_is_refused_without_allocating_what_it_claims() -> None:
    """A 1 GiB frame of zeros is a few dozen KiB; an entry saying 1000 bytes must not make
    mlv allocate its gigabyte, whether the frame states its size or not."""
    with_size = zstandard.ZstdCompressor(level=19).compress(bytes(1 << 30))
    chunks = zstandard.ZstdCompressor(write_content_size=False).compressobj()
    without_size = chunks.compress(bytes(64 << 20)) + chunks.flush()
    assert len(with_size) < 100_000
    tracemalloc.start()
    try:
        for frame in (with_size, without_size):
            with pytest.raises(CodecError):
                decode(CODEC_ZSTD, frame, 1000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_a_damaged_frame_on_the_remote_is_a_corrupt_object(tmp_path: Path) -> None:
    """The reader's hash check sees a frame that does not decode: the object is reported
    corrupt and never enters the cache."""
    src, dst = Cache(str(tmp_path / "c1"), "xxh128"), Cache(str(tmp_path / "c2"), "xxh128")
    remote = tmp_path / "remote"
    text = csv_bytes(20000)
    h = src.put_bytes(text)
    store = RemoteStore(FolderBackend(str(remote)), "origin")
    try:
        store.upload(src, [h])
        loc = store.packs.catalog().lookup(h)
        assert loc is not None and loc.codec == CODEC_ZSTD
        pack = next((remote / "packs").rglob(f"{loc.pack.name}.pack"))
        pack.chmod(0o644)
        with pack.open("r+b") as fh:  # bit rot inside the frame's compressed blocks
            fh.seek(loc.offset + loc.stored // 2)
            fh.write(b"\xff" * 16)
    finally:
        store.close()
    fresh = RemoteStore(FolderBackend(str(remote)), "origin")
    try:
        down = fresh.download(dst, [h], sizes={h: len(text)})
    finally:
        fresh.close()
    assert down.corrupt == [h] and down.done == [] and not dst.has(h)


def test_an_unknown_codec_is_a_newer_mlv(tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    store = RemoteStore(FolderBackend(str(remote)), "origin")
    try:
        data = csv_bytes(100)
        h = hashing.hash_bytes("xxh128", data)
        store.packs.write(iter([(h, data)]), KIND_FILE, str(tmp_path / "scratch"))
        loc = store.packs.catalog().lookup(h)
        assert loc is not None
        newer = Location(loc.pack, loc.offset, loc.stored, loc.length, 9, loc.kind)
        ((got, data_read, error),) = list(store.packs.read({h: newer}))
        assert got == h and data_read is None and isinstance(error, NewerFormat)
        assert "codec 9" in str(error)
    finally:
        store.close()
