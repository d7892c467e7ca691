"""mlv.objects.tree: canonical encoding, hashing and strict decoding of tree objects."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.errors import TreeError
from mlv.objects import hashing
from mlv.objects.names import is_git_name
from mlv.objects.tree import (
    DIR,
    FILE,
    MARK,
    TREE_VERSION,
    Entry,
    Tree,
    check_name,
    decode,
    decode_rows,
    encode_rows,
    from_rows,
    merge_rows,
)

SETTINGS = settings(max_examples=40, deadline=None, database=None)

H1 = "xxh128:" + "1" * 32
H2 = "xxh128:" + "2" * 32
HS = "sha256:" + "a" * 64

# Unicode names that are valid single path components (no surrogates: not encodable).
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"),
    min_size=1,
    max_size=12,
).filter(lambda n: n not in (".", "..") and not is_git_name(n))  # .git: refused
hashes = st.one_of(
    st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda h: "xxh128:" + h),
    st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h),
)
sizes = st.integers(min_value=0, max_value=2**63)


@st.composite
def entry_sets(draw: st.DrawFn) -> list[Entry]:
    chosen = draw(st.lists(names, unique=True, max_size=15))
    out = []
    for name in chosen:
        if draw(st.booleans()):
            out.append(Entry(FILE, name, draw(hashes), draw(sizes)))
        else:
            out.append(Entry(DIR, name, draw(hashes), draw(sizes), draw(sizes)))
    return out


def _doc(rows: list[list[object]], version: object = TREE_VERSION) -> bytes:
    return json.dumps({"mlv-tree": version, "entries": rows}, ensure_ascii=False).encode()


# ---- round trip and canonical form ---------------------------------------------------


@SETTINGS
@given(entry_sets())
def test_round_trip(entries: list[Entry]) -> None:
    tree = Tree.build(entries)
    data = tree.encode()
    back = decode(data, "obj")
    assert back == tree
    assert back.encode() == data
    assert {e.name: e for e in entries} == back.by_name()


@SETTINGS
@given(entry_sets(), st.randoms(use_true_random=False))
def test_canonical_bytes_independent_of_input_order(
    entries: list[Entry], rnd: random.Random
) -> None:
    shuffled = list(entries)
    rnd.shuffle(shuffled)
    a = Tree.build(entries)
    b = Tree.build(reversed(shuffled))
    assert a.encode() == b.encode()
    assert a.hash("xxh128") == b.hash("xxh128")
    assert a.hash("sha256") == b.hash("sha256")


@SETTINGS
@given(entry_sets())
def test_entries_sorted_by_code_point_which_is_utf8_byte_order(entries: list[Entry]) -> None:
    tree = Tree.build(entries)
    names_out = [e.name for e in tree.entries]
    assert names_out == sorted(names_out)
    assert [n.encode() for n in names_out] == sorted(n.encode() for n in names_out)


@SETTINGS
@given(entry_sets())
def test_scan_path_and_tree_encode_give_identical_bytes(entries: list[Entry]) -> None:
    """The workspace scan's fast path (file rows encoded alone and kept in the state
    database, folders merged in afterwards) and Tree.encode give the same bytes."""
    files = sorted((e for e in entries if not e.is_dir), key=lambda e: e.name)
    dirs = [e for e in entries if e.is_dir]
    fragment = encode_rows([[FILE, e.name, e.hash, e.size] for e in files])
    assert decode_rows(fragment) == [list(e[:4]) for e in files]
    data = from_rows(merge_rows(fragment, dirs))
    assert data == Tree.build(entries).encode()
    assert data.startswith(MARK)
    assert decode(data, "t") == Tree.build(entries)


def test_exact_canonical_form() -> None:
    tree = Tree.build([Entry(DIR, "sub", H2, 4096, 3), Entry(FILE, "é b.bin", H1, 12)])
    expected = (
        '{"mlv-tree":1,"entries":[["dir","sub","' + H2 + '",4096,3],'
        '["file","é b.bin","' + H1 + '",12]]}'
    ).encode()
    assert tree.encode() == expected
    assert tree.hash("xxh128") == hashing.hash_bytes("xxh128", expected)


def test_hash_changes_with_any_field() -> None:
    base = Tree.build([Entry(FILE, "a", H1, 1)])
    variants = [
        Tree.build([Entry(FILE, "b", H1, 1)]),
        Tree.build([Entry(FILE, "a", H2, 1)]),
        Tree.build([Entry(FILE, "a", H1, 2)]),
        Tree.build([Entry(DIR, "a", H1, 1, 1)]),
        Tree.build([Entry(FILE, "a", H1, 1), Entry(FILE, "b", H1, 1)]),
    ]
    hashes_seen = {base.hash("xxh128")} | {v.hash("xxh128") for v in variants}
    assert len(hashes_seen) == 1 + len(variants)


def test_totals() -> None:
    tree = Tree.build(
        [Entry(FILE, "a", H1, 10), Entry(DIR, "d", H2, 100, 7), Entry(FILE, "b", H1, 0)]
    )
    assert tree.size == 110
    assert tree.files == 9


def test_empty_tree_round_trips() -> None:
    tree = Tree.build([])
    assert tree.encode() == b'{"mlv-tree":1,"entries":[]}'
    assert decode(tree.encode(), "x") == tree


# ---- decode rejects bad input ---------------------------------------------------------


@pytest.mark.parametrize(
    "rows",
    [
        [["file", "b", H1, 1], ["file", "a", H1, 1]],
        [["file", "a", H1, 1], ["file", "a", H1, 1]],
        [["file", "a", H1, 1], ["dir", "a", H1, 1, 1]],
        [["file", "é", H1, 1], ["file", "z", H1, 1]],
    ],
    ids=["unsorted", "duplicate", "duplicate-kinds", "unsorted-unicode"],
)
def test_decode_rejects_unsorted_or_duplicate(rows: list[list[object]]) -> None:
    with pytest.raises(TreeError, match=r"^obj-1: entries not sorted or duplicated"):
        decode(_doc(rows), "obj-1")


@pytest.mark.parametrize(
    "name", ["..", ".", "", "a/b", "/abs", "../x", "a\\b", "nul\x00", "x/"], ids=repr
)
@pytest.mark.parametrize("kind", [FILE, DIR])
def test_decode_rejects_unsafe_names(name: str, kind: str) -> None:
    row: list[object] = [kind, name, H1, 1] + ([1] if kind == DIR else [])
    with pytest.raises(TreeError) as info:
        decode(_doc([row]), "tree xxh128:abc")
    msg = str(info.value)
    assert msg.startswith("tree xxh128:abc: unsafe entry name")
    assert repr(name) in msg


@pytest.mark.parametrize("name", [None, 5, ["a"]], ids=repr)
def test_decode_rejects_non_text_names(name: object) -> None:
    with pytest.raises(TreeError, match="unsafe entry name"):
        decode(_doc([["file", name, H1, 1]]), "t")


@pytest.mark.parametrize(
    "bad_hash",
    [
        "",
        "1" * 32,
        "xxh128:" + "1" * 31,
        "xxh128:" + "G" * 32,
        "md5:" + "1" * 32,
        "xxh128:" + "1" * 32 + "\n",
        "xxh128:../../../etc/passwd",
        None,
        7,
    ],
    ids=repr,
)
def test_decode_rejects_bad_hashes(bad_hash: object) -> None:
    with pytest.raises(TreeError, match=r"^t: invalid hash in entry 'a'"):
        decode(_doc([["file", "a", bad_hash, 1]]), "t")


@pytest.mark.parametrize("size", [-1, -(2**70), 1.5, 1.0, "1", None, True, False], ids=repr)
def test_decode_rejects_bad_sizes(size: object) -> None:
    with pytest.raises(TreeError, match=r"^t: invalid size in entry 'a'"):
        decode(_doc([["file", "a", H1, size]]), "t")


@pytest.mark.parametrize("files", [-1, 2.0, "3", None, True])
def test_decode_rejects_bad_file_counts(files: object) -> None:
    with pytest.raises(TreeError, match=r"^t: invalid file count in entry 'd'"):
        decode(_doc([["dir", "d", H1, 1, files]]), "t")


@pytest.mark.parametrize(
    "row",
    [
        ["file", "a", H1, 1, 1],
        ["dir", "a", H1, 1],
        ["link", "a", H1, 1],
        ["file", "a", H1],
        ["file", "a", H1, 1, 1, 1],
        {"kind": "file"},
        "file a",
    ],
    ids=repr,
)
def test_decode_rejects_malformed_rows(row: object) -> None:
    with pytest.raises(TreeError, match=r"^t: malformed tree entry"):
        decode(_doc([row]), "t")  # type: ignore[list-item]


@pytest.mark.parametrize("version", [2, 99])
def test_decode_rejects_newer_versions_and_says_upgrade(version: int) -> None:
    with pytest.raises(TreeError) as info:
        decode(_doc([["file", "a", H1, 1]], version=version), "t")
    msg = str(info.value)
    assert msg.startswith(f"t: tree format version {version} is not supported")
    assert "upgrade mlv" in msg


@pytest.mark.parametrize("version", [0, -1, "1", None, [1]], ids=repr)
def test_decode_rejects_invalid_versions(version: object) -> None:
    with pytest.raises(TreeError, match=r"^t: tree format version .* is not supported"):
        decode(_doc([], version=version), "t")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[]",
        b'{"entries":[]}',
        b'"mlv-tree"',
    ],
    ids=repr,
)
def test_decode_rejects_non_trees(data: bytes) -> None:
    with pytest.raises(TreeError, match=r"^t: not a tree object"):
        decode(data, "t")


@pytest.mark.parametrize("entries", [None, {}, "x", 3], ids=repr)
def test_decode_rejects_malformed_entries_list(entries: object) -> None:
    data = json.dumps({"mlv-tree": 1, "entries": entries}).encode()
    with pytest.raises(TreeError, match=r"^t: malformed tree object"):
        decode(data, "t")


def test_decode_keeps_large_sizes_exact() -> None:
    big = 5 * 2**40 + 3  # > 4 GiB
    huge = 2**63 + 1
    tree = decode(_doc([["dir", "d", H1, huge, 2], ["file", "f", HS, big]]), "t")
    assert tree.by_name()["f"].size == big
    assert tree.by_name()["d"].size == huge


@pytest.mark.parametrize(
    "name", ["a", "é", " leading", "x.mlv", "...", ".hidden", "名前", "n" * 255, "é" * 127]
)
def test_check_name_accepts_plain_components(name: str) -> None:
    assert check_name(name, "w") == name


@pytest.mark.parametrize("name", ["n" * 256, "é" * 128, "名" * 86])
def test_check_name_refuses_a_name_no_file_system_holds(name: str) -> None:
    """A hostile tree's 300-byte name stopped pull and checkout on a raw `[Errno 36]`."""
    with pytest.raises(TreeError, match=r"^w: an entry name of more than 255 bytes"):
        check_name(name, "w")
