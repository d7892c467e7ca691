"""`mlv du --remote`: what a folder remote holds, logical and stored, read from its indexes;
text is stored compressed, random data raw, a second version of a large file costs only its
changed chunks, and `compression false` stores everything raw."""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from typing import Any

from helpers import assert_error, commit_all, mlv, write_files

from mlv.objects.packs.index import Location, PackIndex


def csv_text(nbytes: int) -> bytes:
    r = random.Random(nbytes)
    rows = []
    size = 0
    while size < nbytes:
        row = f"{len(rows)},{r.randint(0, 99999)},{r.random():.6f},city_{r.randint(0, 300)}\n"
        rows.append(row)
        size += len(row)
    return "".join(rows).encode()


def indexed(remote: Path) -> dict[str, Location]:
    """Every entry the remote's indexes name (the first copy), parsed from the files."""
    found: dict[str, Location] = {}
    for idx in sorted((remote / "index").glob("*.idx")):
        for h, loc in PackIndex.parse(idx.stem, idx.read_bytes()).items():
            found.setdefault(h, loc)
    return found


def du_remote(repo: Path) -> dict[str, Any]:
    doc = json.loads(mlv("du", "--remote", "--json", cwd=repo).stdout)
    assert isinstance(doc, dict)
    return doc


def pushed(repo: Path, remote: Path, files: dict[str, bytes], *options: str) -> None:
    mlv("remote", "add", "-d", "store", str(remote), cwd=repo)
    for i in range(0, len(options), 2):
        mlv("remote", "modify", "store", options[i], options[i + 1], cwd=repo)
    write_files(repo, files)
    mlv("add", *sorted({p.split("/")[0] for p in files}), cwd=repo)
    commit_all(repo, "v1")
    mlv("push", cwd=repo)


def test_text_is_stored_smaller_and_the_numbers_are_the_indexes(
    mlv_repo: Path, tmp_path: Path
) -> None:
    remote = tmp_path / "remote"
    text, noise = csv_text(3 << 20), os.urandom(2 << 20)
    pushed(mlv_repo, remote, {"data/table.csv": text, "data/weights.bin": noise})
    doc = du_remote(mlv_repo)
    entries = indexed(remote)
    assert not any(loc.kind == 2 for loc in entries.values())  # below the threshold: whole
    assert doc["remote"] == "store" and doc["loose"] == 0
    assert doc["objects"] == len(entries) == 3  # two files and their folder's tree
    assert doc["logical"] == sum(loc.length for loc in entries.values())
    assert doc["stored"] == sum(loc.stored for loc in entries.values())
    assert doc["saved"] == doc["logical"] - doc["stored"]
    assert doc["logical"] > len(text) + len(noise)
    # the text shrinks severalfold; the random bytes are stored as they are
    assert doc["stored"] < len(noise) + len(text) // 2
    by_length = {loc.length: loc for loc in entries.values()}
    assert by_length[len(text)].codec == 1 and by_length[len(text)].stored < len(text) // 2
    assert by_length[len(noise)].codec == 0 and by_length[len(noise)].stored == len(noise)

    line = mlv("du", "--remote", cwd=mlv_repo).stdout.strip()
    assert re.fullmatch(
        r"remote 'store': 3 objects, [\d.]+ MiB logical, [\d.]+ MiB stored \(\d+%\): "
        r"dedup and compression saved [\d.]+ MiB",
        line,
    ), line
    assert (
        mlv("du", "--remote", "store", "--json", cwd=mlv_repo).stdout
        == mlv("du", "--remote", "--json", cwd=mlv_repo).stdout
    )


def test_a_second_version_adds_only_its_changed_chunks(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    v1 = os.urandom(8 << 20)
    pushed(mlv_repo, remote, {"model.bin": v1}, "pack_threshold", "1MiB")
    first = du_remote(mlv_repo)
    assert first["objects"] == 1 and first["chunked"] == 1 and first["chunks"] > 20
    assert first["logical"] == len(v1)

    middle = len(v1) // 2
    v2 = v1[:middle] + os.urandom(4096) + v1[middle + 4096 :]
    (mlv_repo / "model.bin").chmod(0o644)
    (mlv_repo / "model.bin").write_bytes(v2)
    mlv("add", "model.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    mlv("push", cwd=mlv_repo)
    second = du_remote(mlv_repo)
    assert second["objects"] == 2 and second["chunked"] == 2
    assert second["logical"] == len(v1) + len(v2)  # each version counted whole, once
    added = second["stored"] - first["stored"]
    assert 4096 < added < len(v2) // 10, added  # a few chunks and a chunk list
    assert second["chunks"] - first["chunks"] <= 4
    assert second["stored"] < 0.6 * second["logical"]  # dedup: both versions for ~one


def test_compression_false_stores_text_raw(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    text = csv_text(3 << 20)
    pushed(mlv_repo, remote, {"data/table.csv": text}, "compression", "false")
    doc = du_remote(mlv_repo)
    assert doc["compressed"] == 0
    assert doc["stored"] >= doc["logical"] > len(text)
    assert all(loc.codec == 0 for loc in indexed(remote).values())
    line = mlv("du", "--remote", cwd=mlv_repo).stdout
    assert "(100%)" in line


def test_du_remote_refuses_a_path(mlv_repo: Path, tmp_path: Path) -> None:
    pushed(mlv_repo, tmp_path / "remote", {"data/a.txt": b"a"})
    assert_error(
        mlv("du", "--remote", "store", "data", cwd=mlv_repo, check=False), 2, "takes no PATH"
    )
    mlv("remote", "modify", "store", "compression", "maybe", cwd=mlv_repo)
    assert_error(
        mlv("du", "--remote", cwd=mlv_repo, check=False),
        1,
        "remote.store.compression: expected true or false",
    )
