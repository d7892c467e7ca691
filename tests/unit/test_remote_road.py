"""One road to the remote: mlv/core asks RemoteStore for objects by hash id (inventory,
read_heads, delete) and for the run cache's plain files, never a backend for keys; one error
classification and one shortened, scrubbed reason per failed item. Option dataclasses and
the revision selection are keyword-only."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

import mlv
from mlv.core.gc import Scope
from mlv.core.pipeline import repro
from mlv.core.selection import Revisions
from mlv.core.verify import Options as VerifyOptions
from mlv.objects import hashing
from mlv.objects.remote import RemoteStore, key_of
from mlv.storage.folder import FolderBackend

MLV = Path(mlv.__file__).parent


def put(root: Path, data: bytes) -> str:
    h = hashing.hash_bytes("xxh128", data)
    path = root / key_of(h)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return h


def test_core_and_cli_never_import_the_storage_layer() -> None:
    found = []
    for layer in ("core", "cli", "api"):
        for path in sorted((MLV / layer).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                if any(n == "mlv.storage" or n.startswith("mlv.storage.") for n in names):
                    found.append(f"{path.relative_to(MLV)}:{node.lineno}")
    assert found == []


def test_inventory_lists_objects_with_sizes_and_nothing_else(tmp_path: Path) -> None:
    a = put(tmp_path, b"alpha")
    b = put(tmp_path, b"a longer bravo")
    (tmp_path / "runs" / "ab").mkdir(parents=True)
    (tmp_path / "runs" / "ab" / "cdef").write_bytes(b"{}")
    (tmp_path / "xxh128" / "zz").mkdir()
    (tmp_path / "xxh128" / "zz" / "not-an-object").write_bytes(b"x")
    store = RemoteStore(FolderBackend(str(tmp_path)), "r")
    assert store.inventory() == {a: 5, b: 14}


def test_read_heads_and_delete_by_hash(tmp_path: Path) -> None:
    a = put(tmp_path, b'{"mlv-tree": 1, "entries": []}')
    b = put(tmp_path, b"short")
    gone = hashing.hash_bytes("xxh128", b"never stored")
    store = RemoteStore(FolderBackend(str(tmp_path)), "r")
    heads = store.read_heads([a, b, gone], 11)
    assert heads.data == {a: b'{"mlv-tree"', b: b"short"}
    assert heads.missing == [gone]
    deleted = store.delete([a, gone, b])  # an object absent already counts as deleted
    assert sorted(deleted.done) == sorted([a, gone, b])
    assert not deleted.failed
    assert store.inventory() == {}


def test_a_failed_item_has_one_short_scrubbed_reason(tmp_path: Path) -> None:
    h = hashing.hash_bytes("xxh128", b"data")
    (tmp_path / key_of(h)).mkdir(parents=True)  # a folder where the object should be
    # a "secret" that the error text holds: "[Errno 21] Is a directory"
    store = RemoteStore(FolderBackend(str(tmp_path)), "r", secrets=["directory"])
    read = store.read_heads([h], 4)
    assert list(read.failed) == [h]
    reason = read.failed[h]
    assert reason == "IsADirectoryError: [Errno 21] Is a ***"
    assert len(reason) <= len("IsADirectoryError: ") + 200
    assert read.kinds == {h: "IsADirectoryError"}


def test_run_cache_files_are_written_listed_and_read(tmp_path: Path) -> None:
    store = RemoteStore(FolderBackend(str(tmp_path)), "r")
    written = store.write_files([(b"one", "runs/ab/cdef"), (b"two", "runs/cd/ef01")])
    assert sorted(written.done) == ["runs/ab/cdef", "runs/cd/ef01"]
    assert sorted(store.list_files("runs/")) == ["runs/ab/cdef", "runs/cd/ef01"]
    read = store.read_files(["runs/ab/cdef", "runs/ff/gone"])
    assert read.data == {"runs/ab/cdef": b"one"}
    assert read.missing == ["runs/ff/gone"]


@pytest.mark.parametrize(
    "cls",
    [repro.Options, VerifyOptions, Revisions, Scope],
    ids=["repro.Options", "verify.Options", "Revisions", "gc.Scope"],
)
def test_option_dataclasses_are_keyword_only(cls: type) -> None:
    with pytest.raises(TypeError):
        cls(True)
    assert all(f.kw_only for f in dataclasses.fields(cls))


def test_verify_options_resolve_keeps_every_field() -> None:
    opts = VerifyOptions(remote="r", sample=5.0, seed=3, jobs=2, changed_since=None)
    resolved = opts.resolved()
    assert (resolved.workspace, resolved.cache) == (False, False)
    assert dataclasses.replace(resolved, workspace=False, cache=False) == opts
    both = VerifyOptions(rehash=True, jobs=4).resolved()
    assert (both.workspace, both.cache, both.rehash, both.jobs) == (True, True, True, 4)
