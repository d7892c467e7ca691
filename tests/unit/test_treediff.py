"""mlv.objects.treediff: diff(old, new) transforms old into new and skips equal subtrees."""

from __future__ import annotations

from typing import Union

from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.objects import hashing
from mlv.objects.tree import DIR, FILE, Entry, Tree
from mlv.objects.treediff import Change, diff, walk

SETTINGS = settings(max_examples=40, deadline=None, database=None)

# A model directory: name -> file content (bytes) or a sub-directory (dict).
Model = dict[str, Union[bytes, "Model"]]


class Store:
    """Tree objects by hash, with a record of every load."""

    def __init__(self) -> None:
        self.trees: dict[str, Tree] = {}
        self.loads: list[str] = []

    def add(self, model: Model) -> Entry:
        """Store model's trees; returns the entry that names it (name left empty)."""
        entries = []
        for name, value in model.items():
            if isinstance(value, dict):
                sub = self.add(value)
                entries.append(Entry(DIR, name, sub.hash, sub.size, sub.files))
            else:
                entries.append(Entry(FILE, name, hashing.hash_bytes("xxh128", value), len(value)))
        tree = Tree.build(entries)
        hash_id = tree.hash("xxh128")
        self.trees[hash_id] = tree
        return Entry(DIR, "", hash_id, tree.size, tree.files)

    def load(self, hash_id: str) -> Tree:
        self.loads.append(hash_id)
        return self.trees[hash_id]


def flatten(model: Model, prefix: str = "") -> dict[str, object]:
    """path -> ("file", hash, size) for files, "dir" for directories."""
    out: dict[str, object] = {}
    for name, value in model.items():
        path = f"{prefix}/{name}" if prefix else name
        if isinstance(value, dict):
            out[path] = "dir"
            out.update(flatten(value, path))
        else:
            out[path] = ("file", hashing.hash_bytes("xxh128", value), len(value))
    return out


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def apply(state: dict[str, object], changes: list[Change]) -> None:
    """Apply changes like a checkout would, checking their order as it goes: a directory is
    added before its content and deleted only once it is empty; nothing is added twice."""
    for ch in changes:
        if ch.old is not None:
            assert ch.path in state, f"{ch.path} deleted or replaced but not present"
            if ch.old.is_dir:
                assert state[ch.path] == "dir"
            else:
                assert state[ch.path] == ("file", ch.old.hash, ch.old.size)
        if ch.new is None:
            assert ch.old is not None
            if ch.old.is_dir:
                below = [p for p in state if p.startswith(ch.path + "/")]
                assert not below, f"directory {ch.path} removed before its content {below}"
            del state[ch.path]
            continue
        if ch.old is None:
            assert ch.path not in state, f"{ch.path} added but already present"
        parent = _parent(ch.path)
        assert parent == "" or state.get(parent) == "dir", f"{ch.path} added before {parent}"
        if ch.new.is_dir:
            assert ch.old is None or ch.old.is_dir
            state[ch.path] = "dir"
        else:
            state[ch.path] = ("file", ch.new.hash, ch.new.size)


names = st.sampled_from(["a", "b", "c", "d", "é", "z z"])
contents = st.sampled_from([b"", b"1", b"2", b"33"])
models: st.SearchStrategy[Model] = st.recursive(
    st.dictionaries(names, contents, max_size=4),
    lambda children: st.dictionaries(names, st.one_of(contents, children), max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(models, models)
def test_applying_diff_to_old_gives_new(old: Model, new: Model) -> None:
    store = Store()
    old_root = store.add(old).hash
    new_root = store.add(new).hash
    changes = list(diff(store.load, old_root, new_root))
    state = flatten(old)
    apply(state, changes)
    assert state == flatten(new)
    if old_root == new_root:
        assert changes == []
    # no change is reported for a path that did not change
    before, after = flatten(old), flatten(new)
    for ch in changes:
        if ch.old is not None and ch.new is not None and not ch.old.is_dir:
            assert before[ch.path] != after[ch.path]


@SETTINGS
@given(models)
def test_diff_from_and_to_nothing(model: Model) -> None:
    store = Store()
    root = store.add(model).hash
    state: dict[str, object] = {}
    apply(state, list(diff(store.load, None, root)))
    assert state == flatten(model)
    apply(state, list(diff(store.load, root, None)))
    assert state == {}


@SETTINGS
@given(models)
def test_walk_lists_every_entry_parent_first(model: Model) -> None:
    store = Store()
    root = store.add(model).hash
    seen: dict[str, object] = {}
    for path, entry in walk(store.load, root):
        parent = _parent(path)
        assert parent == "" or seen.get(parent) == "dir"
        seen[path] = "dir" if entry.is_dir else ("file", entry.hash, entry.size)
    assert seen == flatten(model)


def _subtree_hashes(store: Store, tree_hash: str) -> set[str]:
    out = {tree_hash}
    for e in store.trees[tree_hash].entries:
        if e.is_dir:
            out |= _subtree_hashes(store, e.hash)
    return out


def _must_not_load(store: Store, old: str, new: str) -> set[str]:
    """Tree hashes that are equal at the same path in both trees (with all they contain),
    minus any hash that also occurs somewhere that does differ (it may be loaded there)."""
    equal: set[str] = set()
    differing: set[str] = set()

    def visit(a: str | None, b: str | None) -> None:
        if a == b and a is not None:
            equal.update(_subtree_hashes(store, a))
            return
        if a is not None:
            differing.add(a)
        if b is not None:
            differing.add(b)
        ea = store.trees[a].by_name() if a else {}
        eb = store.trees[b].by_name() if b else {}
        for name in ea.keys() | eb.keys():
            x, y = ea.get(name), eb.get(name)
            xa = x.hash if x is not None and x.is_dir else None
            yb = y.hash if y is not None and y.is_dir else None
            if xa is None and yb is None:
                continue
            if xa is not None and yb is not None and xa == yb:
                equal.update(_subtree_hashes(store, xa))
                continue
            if xa is not None and yb is None:
                differing.update(_subtree_hashes(store, xa))
            elif yb is not None and xa is None:
                differing.update(_subtree_hashes(store, yb))
            else:
                visit(xa, yb)

    visit(old, new)
    return equal - differing


@SETTINGS
@given(models, models)
def test_equal_subtrees_are_never_loaded(old: Model, new: Model) -> None:
    store = Store()
    old_root = store.add(old).hash
    new_root = store.add(new).hash
    forbidden = _must_not_load(store, old_root, new_root)
    list(diff(store.load, old_root, new_root))
    assert not forbidden & set(store.loads)


def test_identical_roots_load_nothing() -> None:
    store = Store()
    root = store.add({"a": b"1", "d": {"x": b"2"}}).hash
    assert list(diff(store.load, root, root)) == []
    assert list(diff(store.load, None, None)) == []
    assert store.loads == []


def test_one_changed_file_loads_only_the_trees_on_its_path() -> None:
    big = {f"f{i}": str(i).encode() for i in range(50)}
    shared = {"s1": dict(big), "s2": {"deep": dict(big)}}
    old: Model = {"shared": shared, "path": {"to": {"file": b"old"}}, "top": b"t"}
    new: Model = {"shared": shared, "path": {"to": {"file": b"new"}}, "top": b"t"}
    store = Store()
    old_root = store.add(old).hash
    new_root = store.add(new).hash
    store.loads.clear()
    changes = list(diff(store.load, old_root, new_root))
    assert [c.path for c in changes] == ["path/to/file"]
    assert changes[0].old is not None and changes[0].new is not None
    assert changes[0].old.hash == hashing.hash_bytes("xxh128", b"old")
    assert changes[0].new.hash == hashing.hash_bytes("xxh128", b"new")
    # old and new of: root, path, path/to -> 6 loads, none of the shared subtree
    assert len(store.loads) == 6
    shared_hashes = _subtree_hashes(store, store.add(shared).hash)
    assert not shared_hashes & set(store.loads)


def test_kind_changes_file_to_dir_and_back() -> None:
    store = Store()
    a = store.add({"x": b"1", "keep": b"k"}).hash
    b = store.add({"x": {"inner": b"2", "sub": {}}, "keep": b"k"}).hash
    forward = list(diff(store.load, a, b))
    assert [(c.path, c.old is not None, c.new is not None) for c in forward] == [
        ("x", True, False),
        ("x", False, True),
        ("x/inner", False, True),
        ("x/sub", False, True),
    ]
    backward = list(diff(store.load, b, a))
    assert [(c.path, c.old is not None, c.new is not None) for c in backward] == [
        ("x/inner", True, False),
        ("x/sub", True, False),
        ("x", True, False),
        ("x", False, True),
    ]


def test_prefix_is_prepended() -> None:
    store = Store()
    a = store.add({"f": b"1"}).hash
    b = store.add({"f": b"2"}).hash
    assert [c.path for c in diff(store.load, a, b, "sub/dir")] == ["sub/dir/f"]
