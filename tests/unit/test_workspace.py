"""mlv.core.workspace: the trees a scan writes are canonical tree objects.

The scan builds tree bytes on its own fast path (each folder's file rows encoded once and kept
in the state database, folders merged in afterwards); tree.decode must read every one of them
back and Tree.encode must give the same bytes, on a first scan, on a scan that reuses the
state database's rows, and on a storing scan (add).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlv.core import repo as repo_mod
from mlv.core.workspace import Scanner
from mlv.errors import WorkspaceError
from mlv.objects import hashing
from mlv.objects.ignore import IGNORE_FILE
from mlv.objects.names import is_git_name
from mlv.objects.tree import decode
from mlv.util.localfs import TMP_MARK

# Names a file system takes and a scan keeps: no surrogates (not UTF-8), no "/", NUL or
# backslash (a tree refuses it: test_backslash_names_are_refused), nothing the scan skips.
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=12,
).filter(
    lambda n: (
        n not in (".", "..", IGNORE_FILE)
        and not n.startswith(TMP_MARK)
        and not is_git_name(n)
        and len(n.encode()) <= 255
    )
)
Layout = dict[str, Any]  # name -> bytes (a file) or a Layout (a folder)
layouts = st.dictionaries(
    names,
    st.recursive(
        st.binary(max_size=16),
        lambda inner: st.dictionaries(names, inner, max_size=4),
        max_leaves=12,
    ),
    max_size=6,
)
_folders = itertools.count()


def _write(folder: Path, layout: Layout) -> None:
    folder.mkdir()
    for name, content in layout.items():
        if isinstance(content, dict):
            _write(folder / name, content)
        else:
            (folder / name).write_bytes(content)


def _assert_canonical(trees: dict[str, bytes], algo: str) -> None:
    for hash_id, data in trees.items():
        assert hashing.hash_bytes(algo, data) == hash_id
        assert decode(data, f"tree {hash_id}").encode() == data


@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(layouts)
def test_scanned_trees_are_canonical(tmp_path: Path, layout: Layout) -> None:
    root = tmp_path / "repo"
    if not root.exists():
        root.mkdir()
        repo_mod.init(str(root), no_scm=True, force=False)
    repo = repo_mod.Repo(str(root))
    try:
        rel = f"data{next(_folders)}"
        _write(root / rel, layout)
        first = Scanner(repo, store=False)
        entry = first.scan(rel)
        assert entry is not None and entry.is_dir
        _assert_canonical(first.trees, repo.config.hash)
        again = Scanner(repo, store=False)  # the folders' rows now come from the state db
        assert again.scan(rel) == entry
        assert again.trees == first.trees
        stored = Scanner(repo, store=True)
        assert stored.scan(rel) == entry
        assert set(stored.stored_trees) == set(first.trees)
        for hash_id, data in first.trees.items():
            assert repo.cache.read_bytes(hash_id) == data
    finally:
        repo.close()


def test_backslash_names_are_refused(tmp_path: Path) -> None:
    """A tree refuses a name with a backslash (tree.check_name): the scan must not write
    one, or `mlv add` would record data that no checkout can restore."""
    root = tmp_path / "repo"
    root.mkdir()
    repo = repo_mod.init(str(root), no_scm=True, force=False)
    _write(root / "data", {"sub": {"a\\b": b"x"}, "ok": b"y"})
    try:
        with pytest.raises(WorkspaceError) as info:
            Scanner(repo, store=True).scan("data")
        assert str(info.value) == (
            "data/sub/a\\b: name holds a backslash, which Windows reads as a folder separator"
            ": rename it, or exclude it in .mlvignore"
        )
        (root / "data" / IGNORE_FILE).write_text("a\\\\b\n")
        entry = Scanner(repo, store=True).scan("data")
        assert entry is not None and entry.files == 2  # ok and .mlvignore
    finally:
        repo.close()
