"""mlv.objects.hashing: hash ids, one-shot and streaming hashing, validation of "ALGO:HEX"."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.errors import MlvError, PointerError
from mlv.objects import hashing

SETTINGS = settings(max_examples=40, deadline=None, database=None)
XXH128SUM = shutil.which("xxh128sum")

# Sizes around the read-chunk and the small-file boundaries (and the empty file).
BOUNDARY_SIZES = sorted(
    {
        0,
        1,
        hashing.SMALL_FILE - 1,
        hashing.SMALL_FILE,
        hashing.SMALL_FILE + 1,
        hashing.CHUNK - 1,
        hashing.CHUNK,
        hashing.CHUNK + 1,
        2 * hashing.CHUNK,
        2 * hashing.CHUNK + 7,
    }
)


def _pattern(size: int) -> bytes:
    """Deterministic, non-repeating-per-chunk content (a chunk mix-up changes the hash)."""
    block = hashlib.sha256(str(size).encode()).digest() * 2048  # 64 KiB
    reps = size // len(block) + 1
    data = bytearray(block * reps)[:size]
    # Make every 64 KiB block distinct, so swapped or repeated chunks are noticed.
    for i in range(0, size, len(block)):
        data[i : i + 8] = i.to_bytes(8, "little")[: min(8, size - i)]
    return bytes(data)


# ---- ids ------------------------------------------------------------------------------


@SETTINGS
@given(st.binary(max_size=4096))
def test_xxh128_equals_xxhash_xxh3_128(data: bytes) -> None:
    assert hashing.hash_bytes("xxh128", data) == "xxh128:" + xxhash.xxh3_128_hexdigest(data)


@SETTINGS
@given(st.binary(max_size=4096))
def test_sha256_equals_hashlib(data: bytes) -> None:
    assert hashing.hash_bytes("sha256", data) == "sha256:" + hashlib.sha256(data).hexdigest()


def test_known_vectors() -> None:
    # Fixed values, so that a change of algorithm (e.g. xxh3_64, xxh128 with a seed) is caught
    # even if xxhash itself were swapped.
    assert hashing.hash_bytes("xxh128", b"") == "xxh128:99aa06d3014798d86001c324468d497f"
    assert hashing.hash_bytes("xxh128", b"hello") == "xxh128:b5e9c1ad071b3e7fc779cfaa5e523818"
    assert hashing.hash_bytes("sha256", b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("algo", hashing.ALGORITHMS)
def test_new_hasher_streams_like_oneshot(algo: str) -> None:
    data = _pattern(100_000)
    h = hashing.new_hasher(algo)
    for i in range(0, len(data), 777):
        h.update(data[i : i + 777])
    assert f"{algo}:{h.hexdigest()}" == hashing.hash_bytes(algo, data)


@pytest.mark.skipif(
    XXH128SUM is None,
    reason="the xxh128sum binary is not installed (apt-get install -y xxhash) so the "
    "comparison with the reference tool cannot run",
)
@pytest.mark.parametrize("size", [0, 1, 5, 4096, hashing.SMALL_FILE + 3, hashing.CHUNK + 1])
def test_xxh128_file_hash_matches_xxh128sum(tmp_path: Path, size: int) -> None:
    assert XXH128SUM is not None
    path = tmp_path / f"f {size}.bin"
    path.write_bytes(_pattern(size))
    out = subprocess.run([XXH128SUM, str(path)], check=True, capture_output=True, text=True).stdout
    printed = out.split()[0]
    assert hashing.hash_file("xxh128", path) == (f"xxh128:{printed}", size)


# ---- files ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
@pytest.mark.parametrize("algo", hashing.ALGORITHMS)
def test_hash_file_equals_hash_bytes_at_boundaries(tmp_path: Path, algo: str, size: int) -> None:
    data = _pattern(size)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    assert hashing.hash_file(algo, path) == (hashing.hash_bytes(algo, data), size)
    # and the reference implementations agree
    if algo == "xxh128":
        assert hashing.hash_file(algo, path)[0] == "xxh128:" + xxhash.xxh3_128_hexdigest(data)
    else:
        assert hashing.hash_file(algo, path)[0] == "sha256:" + hashlib.sha256(data).hexdigest()


def test_hash_file_accepts_str_path(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert hashing.hash_file("xxh128", str(path)) == (hashing.hash_bytes("xxh128", b"abc"), 3)


def test_hash_fd_hashes_from_current_offset(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, 4, os.SEEK_SET)
        assert hashing.hash_fd("xxh128", fd) == (hashing.hash_bytes("xxh128", b"456789"), 6)
    finally:
        os.close(fd)


def test_hash_file_twice_in_a_row_is_stable(tmp_path: Path) -> None:
    """The reused read buffer must not leak bytes of a previous, larger file."""
    big = tmp_path / "big"
    small = tmp_path / "small"
    big.write_bytes(_pattern(hashing.CHUNK + 5))
    small.write_bytes(b"tiny")
    hashing.hash_file("xxh128", big)
    assert hashing.hash_file("xxh128", small) == (hashing.hash_bytes("xxh128", b"tiny"), 4)


def test_hash_file_missing_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hashing.hash_file("xxh128", tmp_path / "nope")


# ---- is_hash / check_hash -------------------------------------------------------------

X = "0123456789abcdef" * 2  # 32 hex
S = "0123456789abcdef" * 4  # 64 hex

VALID = [f"xxh128:{X}", f"sha256:{S}", "xxh128:" + "f" * 32, "sha256:" + "0" * 64]
INVALID = [
    "",
    X,
    f"xxh128{X}",
    f"xxh128:{X[:-1]}",
    f"xxh128:{X}0",
    f"xxh128:{X.upper()}",
    f"XXH128:{X}",
    f"sha256:{X}",
    f"xxh128:{S}",
    f"md5:{X}",
    f"xxh128:{X[:-1]}g",
    f" xxh128:{X}",
    f"xxh128:{X} ",
    f"xxh128: {X}",
    f"xxh128:{X}\n",
    f"sha256:{S}\n",
    f"xxh128:{X}\x00",
    None,
    123,
    b"xxh128:" + X.encode(),
    ["xxh128", X],
]


@pytest.mark.parametrize("value", VALID)
def test_is_hash_accepts(value: str) -> None:
    assert hashing.is_hash(value)
    assert hashing.check_hash(value, "somewhere") == value


@pytest.mark.parametrize("value", INVALID, ids=repr)
def test_is_hash_rejects(value: object) -> None:
    assert not hashing.is_hash(value)
    with pytest.raises(PointerError) as info:
        hashing.check_hash(value, "data.mlv")
    assert isinstance(info.value, MlvError)
    assert str(info.value).startswith("data.mlv: invalid hash")
    assert repr(value) in str(info.value)


@SETTINGS
@given(st.sampled_from(hashing.ALGORITHMS), st.binary(max_size=64))
def test_every_computed_id_is_valid_and_splits(algo: str, data: bytes) -> None:
    hash_id = hashing.hash_bytes(algo, data)
    assert hashing.is_hash(hash_id)
    got_algo, hexpart = hashing.split(hash_id)
    assert got_algo == algo == hashing.algorithm_of(hash_id)
    assert len(hexpart) == hashing.hex_len(algo)
