"""mlv.objects.pointer: pointer files round-trip, and every malformed one is refused clearly."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mlv.errors import PointerError
from mlv.objects import pointer
from mlv.objects.names import is_git_name
from mlv.objects.pointer import Pointer, parse

SETTINGS = settings(max_examples=40, deadline=None, database=None)

H = "xxh128:1f0c6b7e0a4d3c2b1a09f8e7d6c5b4a3"
HS = "sha256:" + "ab" * 32

# ---- strategies -----------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
component = st.text(  # control characters and what git takes for .git are refused
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x7f"),
    min_size=1,
    max_size=10,
).filter(lambda c: c not in (".", "..") and not is_git_name(c))
rel_paths = st.lists(component, min_size=1, max_size=3).map("/".join)
hashes = st.one_of(
    st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda h: "xxh128:" + h),
    st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "sha256:" + h),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), text)
meta_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8,
)


@st.composite
def pointers(draw: st.DrawFn) -> Pointer:
    kind = draw(st.sampled_from(["file", "dir"]))
    return Pointer(
        path=draw(rel_paths),
        kind=kind,
        hash=draw(hashes),
        size=draw(st.integers(min_value=0, max_value=2**64)),
        files=draw(st.integers(min_value=0, max_value=10**7)) if kind == "dir" else None,
        desc=draw(st.none() | text),
        meta=draw(st.none() | st.dictionaries(text, meta_values, max_size=4)),
    )


def _text(**fields: Any) -> str:
    doc: dict[str, Any] = {"version": 1, "path": "data", "kind": "file", "hash": H, "size": 3}
    doc.update(fields)
    doc = {k: v for k, v in doc.items() if v is not _MISSING}
    return yaml.safe_dump(doc, sort_keys=False)


_MISSING: Any = object()

# ---- round trips ----------------------------------------------------------------------


@SETTINGS
@given(pointers())
def test_round_trip_through_text(ptr: Pointer) -> None:
    back = parse(ptr.encode(), "p.mlv")
    assert back == ptr
    assert back.meta == ptr.meta  # meta is not part of ==, so compare it explicitly
    assert back.encode() == ptr.encode()


@SETTINGS
@given(pointers())
def test_round_trip_through_file(tmp_path_factory: pytest.TempPathFactory, ptr: Pointer) -> None:
    path = str(tmp_path_factory.mktemp("p") / "data.mlv")
    assert pointer.write(path, ptr) is True
    back = pointer.read(path)
    assert back == ptr and back.meta == ptr.meta
    assert pointer.write(path, back) is False


def test_documented_example_parses() -> None:
    text = (
        "version: 1\n"
        "path: images          # relative to the pointer's folder\n"
        "kind: dir             # file | dir\n"
        "hash: xxh128:1f0c6b7e0a4d3c2b1a09f8e7d6c5b4a3\n"
        "size: 209715200       # total bytes\n"
        "files: 20000          # dir only\n"
    )
    assert parse(text, "images.mlv") == Pointer("images", "dir", H, 209715200, 20000)


def test_encoded_form_is_plain_block_yaml_in_key_order() -> None:
    ptr = Pointer("images", "dir", H, 10, 2, desc="some pictures", meta={"b": 1, "a": [1, 2]})
    assert ptr.encode() == (
        "version: 1\n"
        "path: images\n"
        "kind: dir\n"
        f"hash: {H}\n"
        "size: 10\n"
        "files: 2\n"
        "desc: some pictures\n"
        "meta:\n"
        "  b: 1\n"
        "  a:\n"
        "  - 1\n"
        "  - 2\n"
    )


def test_file_pointer_has_no_files_key() -> None:
    doc = yaml.safe_load(Pointer("model.bin", "file", H, 3).encode())
    assert doc == {"version": 1, "path": "model.bin", "kind": "file", "hash": H, "size": 3}


def test_files_key_of_a_file_pointer_is_ignored() -> None:
    assert parse(_text(files=5), "p").files is None


def test_desc_and_meta_preserved_as_written(tmp_path: Path) -> None:
    path = tmp_path / "data.mlv"
    meta = {"source": "s3://bucket/x", "labels": ["cat", "dög"], "nested": {"n": 1, "ok": True}}
    path.write_text(_text(desc="Ünïcode: description", meta=meta), encoding="utf-8")
    ptr = pointer.read(str(path))
    assert ptr.desc == "Ünïcode: description"
    assert ptr.meta == meta
    updated = ptr.with_content(HS, 99, None)
    assert pointer.write(str(path), updated) is True
    again = pointer.read(str(path))
    assert (again.hash, again.size) == (HS, 99)
    assert again.desc == "Ünïcode: description"
    assert again.meta == meta


# ---- write() --------------------------------------------------------------------------


def test_write_returns_false_when_unchanged_and_keeps_file(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    path = str(folder / "data.mlv")
    ptr = Pointer("data", "file", H, 3)
    assert pointer.write(path, ptr) is True
    ino = os.stat(path).st_ino
    assert pointer.write(path, ptr) is False
    assert os.stat(path).st_ino == ino  # not rewritten
    assert pointer.write(path, ptr.with_content(HS, 3, None)) is True
    assert pointer.read(path).hash == HS
    assert [p.name for p in folder.iterdir()] == ["data.mlv"]  # no temporaries left


def test_write_replaces_a_file_that_differs_only_in_formatting(tmp_path: Path) -> None:
    path = tmp_path / "data.mlv"
    ptr = Pointer("data", "file", H, 3)
    path.write_text(ptr.encode().replace("size: 3", "size:   3"))
    assert pointer.write(str(path), ptr) is True
    assert path.read_text() == ptr.encode()


def test_write_over_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "data.mlv"
    path.write_bytes(b"\xff\xfe garbage")
    ptr = Pointer("data", "file", H, 3)
    assert pointer.write(str(path), ptr) is True
    assert pointer.read(str(path)) == ptr


# ---- parse errors ---------------------------------------------------------------------


def _err(text: str | bytes) -> str:
    with pytest.raises(PointerError) as info:
        parse(text, "sub/data.mlv")
    msg = str(info.value)
    assert msg.startswith("sub/data.mlv: "), msg
    return msg


@pytest.mark.parametrize(
    "text", ["version: [1\n", "a: b: c\n", "version: 1\n  path: x\n bad", "\t- x\n"], ids=repr
)
def test_malformed_yaml(text: str) -> None:
    msg = _err(text)
    assert "not a valid pointer file" in msg
    assert "git checkout" in msg


def test_malformed_yaml_names_the_line() -> None:
    assert "(line 3)" in _err("version: 1\npath: data\nkind: file: x\nsize: 3\n")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n", "42\n", "null\n"], ids=repr)
def test_non_mapping(text: str) -> None:
    assert "not a valid pointer file" in _err(text)


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"], ids=repr)
def test_empty_pointer_file(text: str) -> None:
    msg = _err(text)
    assert "not a valid pointer file" in msg or "missing or invalid 'version'" in msg


@pytest.mark.parametrize("version", [2, 10])
def test_newer_version_names_it_and_says_upgrade(version: int) -> None:
    msg = _err(_text(version=version))
    assert f"version {version}" in msg
    assert "upgrade mlv" in msg


def test_newer_version_with_unknown_keys_names_the_version() -> None:
    msg = _err(_text(version=2, shards=4))
    assert "version 2" in msg and "upgrade mlv" in msg


@pytest.mark.parametrize("version", [0, -1, "1", "one", True, 1.5, None, _MISSING], ids=repr)
def test_invalid_version(version: object) -> None:
    assert "version" in _err(_text(version=version))


def test_unknown_keys_named() -> None:
    msg = _err(_text(shards=4, cloud="x"))
    assert "unknown key(s) cloud, shards" in msg
    assert "version 1" in msg


@pytest.mark.parametrize(
    ("fields", "what"),
    [
        ({"path": _MISSING}, "'path'"),
        ({"path": ""}, "'path'"),
        ({"path": 5}, "'path'"),
        ({"kind": _MISSING}, "'kind'"),
        ({"kind": "link"}, "'kind'"),
        ({"hash": _MISSING}, "invalid hash"),
        ({"size": _MISSING}, "'size'"),
        ({"size": -1}, "'size'"),
        ({"size": "3"}, "'size'"),
        ({"size": True}, "'size'"),
        ({"size": 3.0}, "'size'"),
        ({"kind": "dir"}, "'files'"),
        ({"kind": "dir", "files": -2}, "'files'"),
        ({"kind": "dir", "files": "7"}, "'files'"),
        ({"desc": 5}, "'desc'"),
        ({"meta": [1, 2]}, "'meta'"),
        ({"meta": "x"}, "'meta'"),
    ],
    ids=repr,
)
def test_missing_or_invalid_fields(fields: dict[str, Any], what: str) -> None:
    assert what in _err(_text(**fields))


@pytest.mark.parametrize(
    "path",
    [
        "..",
        "../data",
        "a/../../b",
        "a/..",
        "/abs/data",
        "/",
        "a//b",
        "a/",
        "./../x",
        "\\x",
        "a\x00b",
    ],
    ids=repr,
)
def test_path_leaving_the_folder(path: str) -> None:
    msg = _err(_text(path=path))
    assert f"path {path!r} leaves the pointer's folder" in msg


@pytest.mark.parametrize(
    "bad",
    [
        "xxh128:123",
        "xxh128:" + "A" * 32,
        "md5:" + "0" * 32,
        "1f0c6b7e0a4d3c2b1a09f8e7d6c5b4a3",
        H + "\n",
        "xxh128:../../etc",
        12345,
    ],
    ids=repr,
)
def test_bad_hash(bad: object) -> None:
    msg = _err(_text(hash=bad))
    assert "invalid hash" in msg and repr(bad) in msg


@pytest.mark.parametrize("path", ["data", "a/b/c", "..data", "data..", "a/.hidden", "ü b/ç"])
def test_legitimate_relative_paths_accepted(path: str) -> None:
    assert parse(_text(path=path), "p").path == path


def test_bytes_input_and_unicode() -> None:
    assert parse(_text(path="dätä").encode("utf-8"), "p").path == "dätä"


def test_read_missing_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(PointerError, match="no such pointer file"):
        pointer.read(str(tmp_path / "nope.mlv"))
    with pytest.raises(PointerError, match="cannot read pointer file"):
        pointer.read(str(tmp_path))  # a directory
    with pytest.raises(PointerError, match=r"^shown\.mlv: no such"):
        pointer.read(str(tmp_path / "nope.mlv"), "shown.mlv")


def test_pointer_path_for() -> None:
    assert pointer.pointer_path_for("a/b c") == "a/b c.mlv"


# ---- the YAML-free fast path must read exactly what YAML reads --------------------------

_TOKENS = [
    "data",
    "images",
    "model.bin",
    "a_b-c+d.e",
    "0",
    "7",
    "01",
    "123",
    "1e3",
    "1.5",
    "1_000",
    "0x1f",
    "0o17",
    "0b101",
    "2001-12-14",
    "2001-12-14t21-59-43",
    "yes",
    "No",
    "ON",
    "off",
    "true",
    "False",
    "null",
    "NULL",
    "y",
    "n",
    "nan",
    "inf",
    "file",
    "dir",
    H,
    HS,
]


_VALID_LINES = {
    "version": "1",
    "path": "data",
    "kind": "dir",
    "hash": H,
    "size": "12",
    "files": "3",
}


def _same_through_yaml(text: str) -> None:
    """A trailing comment line forces the YAML parser: the outcome must not change."""
    outcomes = []
    for variant in (text, text + "# parsed by YAML\n"):
        try:
            ptr = parse(variant, "p.mlv")
            outcomes.append(("ok", ptr, ptr.meta))
        except PointerError as e:
            outcomes.append(("error", str(e), None))
    assert outcomes[0] == outcomes[1], text


@pytest.mark.parametrize("value", _TOKENS)
@pytest.mark.parametrize("key", sorted(_VALID_LINES))
def test_fast_parse_agrees_with_yaml_for_each_value(key: str, value: str) -> None:
    values = {**_VALID_LINES, key: value}
    _same_through_yaml("".join(f"{k}: {v}\n" for k, v in values.items()))


@SETTINGS
@given(
    st.dictionaries(st.sampled_from(sorted(_VALID_LINES)), st.sampled_from(_TOKENS), max_size=3),
    st.permutations(sorted(_VALID_LINES)),
    st.sets(st.sampled_from(sorted(_VALID_LINES)), max_size=1),
)
def test_fast_parse_agrees_with_yaml(
    overrides: dict[str, str], order: list[str], dropped: set[str]
) -> None:
    values = {**_VALID_LINES, **overrides}
    _same_through_yaml("".join(f"{k}: {values[k]}\n" for k in order if k not in dropped))


# ---- source (mlv import) ------------------------------------------------------------------

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_source_round_trips_in_documented_key_order() -> None:
    src = pointer.PointerSource("https://github.com/org/registry", "data/images", COMMIT, "v1")
    ptr = Pointer("images", "dir", H, 10, 2, meta={"k": 1}, source=src)
    text = ptr.encode()
    assert text.endswith(
        "meta:\n"
        "  k: 1\n"
        "source:\n"
        "  url: https://github.com/org/registry\n"
        "  path: data/images\n"
        "  rev: v1\n"
        f"  commit: {COMMIT}\n"
    )
    back = parse(text, "images.mlv")
    assert back == ptr and back.source == src
    assert back.encode() == text
    # with_content (mlv commit) keeps the source
    assert ptr.with_content(HS, 3, 1).source == src


def test_source_without_rev() -> None:
    src = pointer.PointerSource("../registry", "model.bin", COMMIT)
    ptr = Pointer("model.bin", "file", H, 3, source=src)
    doc = yaml.safe_load(ptr.encode())
    assert doc["source"] == {"url": "../registry", "path": "model.bin", "commit": COMMIT}
    assert parse(ptr.encode(), "p").source == src
    assert Pointer("model.bin", "file", H, 3) != ptr  # the source is part of what it says


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("https://x", "'source' must be a mapping"),
        (["url"], "'source' must be a mapping"),
        ({"url": "u", "path": "p", "commit": COMMIT, "branch": "b"}, "unknown key(s) branch"),
        ({"path": "p", "commit": COMMIT}, "'source.url'"),
        ({"url": "", "path": "p", "commit": COMMIT}, "'source.url'"),
        ({"url": "u", "commit": COMMIT}, "'source.path'"),
        ({"url": "u", "path": 3, "commit": COMMIT}, "'source.path'"),
        ({"url": "u", "path": "p"}, "'source.commit'"),
        ({"url": "u", "path": "p", "commit": "abc123"}, "full git commit id"),
        ({"url": "u", "path": "p", "commit": COMMIT.upper()}, "full git commit id"),
        ({"url": "u", "path": "p", "commit": COMMIT, "rev": ""}, "'source.rev'"),
        ({"url": "u", "path": "p", "commit": COMMIT, "rev": 1}, "'source.rev'"),
        ({"url": "u", "path": "p", "commit": COMMIT, "rev": None}, "'source.rev'"),
        ({"url": "u", "path": "../p", "commit": COMMIT}, "not a relative path"),
        ({"url": "u", "path": "/etc/p", "commit": COMMIT}, "not a relative path"),
        ({"url": "u", "path": "a//b", "commit": COMMIT}, "not a relative path"),
    ],
)
def test_invalid_source_is_refused(source: Any, needle: str) -> None:
    with pytest.raises(PointerError) as info:
        parse(_text(source=source), "x.mlv")
    assert needle in str(info.value)
    assert str(info.value).startswith("x.mlv: ")


def test_sha256_git_commit_ids_are_accepted() -> None:
    commit = "ab" * 32
    ptr = parse(_text(source={"url": "u", "path": "p", "commit": commit}), "p")
    assert ptr.source is not None and ptr.source.commit == commit
