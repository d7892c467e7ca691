"""Tree objects: one per directory, naming each entry's kind, hash and size.

Like git, a directory's hash is the hash of its tree object, which names its subdirectories
by their own tree hashes: a change to one file rewrites only the trees on its path, and any
subdirectory can be checked out (or fetched) alone by starting from its tree.

Canonical form (the bytes that are hashed), UTF-8 JSON without spaces:
    {"mlv-tree":1,"entries":[["file","a.bin","xxh128:...",12],
                             ["dir","sub","xxh128:...",4096,3]]}
Entries are sorted by name (Unicode code point order, which is UTF-8 byte order); dir
entries carry the total size and file count of their subtree. Mtimes, modes and traversal
order do not enter the hash.

This module is the one codec for that form. Tree.encode and the workspace scan
(core/workspace.py) both build it from encode_rows and from_rows: the scan keeps each
folder's encoded file rows in the state database and reuses them while the folder is
unchanged, which is what makes status fast; tests/unit/test_tree.py checks that both give
the same bytes for the same entries. Every tree read goes through decode.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from mlv.errors import TreeError
from mlv.objects import hashing, names

TREE_VERSION = 1
FILE = "file"
DIR = "dir"
# The deepest folder a tree may lead to. Every walk over trees recurses once per level, so a
# hostile chain of trees 3,000 deep ran out of Python's stack (reported as a corrupt tree);
# datasets are rarely 30 deep, and Linux paths end at 4,096 bytes anyway.
MAX_DEPTH = 256


class Entry(NamedTuple):
    """One name in a directory: a file (files=1) or a subdirectory (its totals).

    A NamedTuple, not a dataclass: scans create one per file, and tuples are cheapest.
    """

    kind: str
    name: str
    hash: str
    size: int
    files: int = 1

    @property
    def is_dir(self) -> bool:
        return self.kind == DIR


@dataclass(frozen=True)
class Tree:
    entries: tuple[Entry, ...]

    @classmethod
    def build(cls, entries: Iterable[Entry]) -> Tree:
        return cls(tuple(sorted(entries, key=_name_key)))

    @property
    def size(self) -> int:
        return sum([e[3] for e in self.entries])

    @property
    def files(self) -> int:
        return sum([e[4] for e in self.entries])

    def by_name(self) -> dict[str, Entry]:
        return {e.name: e for e in self.entries}

    def encode(self) -> bytes:
        return from_rows(encode_rows([e[:4] if e[0] == FILE else e for e in self.entries]))

    def hash(self, algo: str) -> str:
        return hashing.hash_bytes(algo, self.encode())


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
MARK = b'{"mlv-tree":'  # how every tree object starts (gc tells trees from files by it)
_HEAD = f'{{"mlv-tree":{TREE_VERSION},"entries":'


def encode_rows(rows: Sequence[Sequence[str | int]]) -> str:
    """Entry rows in name order as the JSON array of the canonical form: a file's row is
    [kind, name, hash, size], a folder's adds its file count."""
    return _ENCODER.encode(rows)


def from_rows(fragment: str) -> bytes:
    """A tree object's canonical bytes from its encoded entry rows (encode_rows)."""
    return (_HEAD + fragment + "}").encode()


def merge_rows(fragment: str, dirs: Sequence[Entry]) -> str:
    """Encoded file rows (in name order) with the folder entries dirs, in name order."""
    if not dirs:
        return fragment
    merged = decode_rows(fragment)
    merged += [list(e) for e in dirs]
    merged.sort(key=_row_name)
    return encode_rows(merged)


def decode_rows(fragment: str) -> list[Any]:
    """encode_rows' output back into rows. Only for fragments the scan wrote itself (kept in
    the state database): a tree object, from the cache or a remote, goes through decode,
    which checks every name, hash and size."""
    rows: list[Any] = json.loads(fragment)
    return rows


def _row_name(row: list[Any]) -> str:
    return row[1]  # type: ignore[no-any-return]


def _name_key(entry: Entry) -> str:
    return entry.name


def check_name(name: object, where: str) -> str:
    """A safe single path component: no separators, no '.', '..', NUL or empty names, and
    nothing git would take for `.git` (any case, NTFS and HFS+ spellings: names.is_git_name),
    which would check out a nested repository whose config runs commands, nor what mlv
    would take for `.mlv` (names.is_mlv_name): `data/.mlv/config.local.yaml` was this
    machine's config for every command run in data/ (cache.dir, a remote's proxy_command)."""
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or (
            (name[0] in _OWN_FIRST or not name.isascii())
            and (names.is_git_name(name) or names.is_mlv_name(name))
        )
    ):
        raise TreeError(
            f"{where}: unsafe entry name {name!r}",
            "the object may be corrupt or hostile; delete it and re-add the data",
        )
    limit = names.NAME_MAX
    if len(name) > limit // 4 and len(name.encode("utf-8", "surrogateescape")) > limit:
        raise TreeError(  # a checkout stopped on a raw "[Errno 36] File name too long"
            f"{where}: an entry name of more than {names.NAME_MAX} bytes ({name[:40]!r}...), "
            "which no file system here can hold",
            "the object may be corrupt or hostile; delete it and re-add the data",
        )
    return name


def check_depth(path: str, tree_hash: str) -> None:
    """Refuse (TreeError) to walk into `path`, relative to the walked tree's root, when it
    lies more than MAX_DEPTH folders down: tree_hash names the tree that holds it."""
    if path.count("/") >= MAX_DEPTH - 1:
        raise TreeError(
            f"tree {tree_hash}: folders nested more than {MAX_DEPTH} deep ({path[:40]}...)",
            f"mlv reads at most {MAX_DEPTH} levels of folders; the object may be hostile: "
            "delete it and re-add the data",
        )


# how an ASCII name that names .git or .mlv starts (.git, .GIT., git~1, .MLV, mlv~1)
_OWN_FIRST = frozenset(".gGmM")


def decode(data: bytes, where: str) -> Tree:
    """Parse and validate a tree object; `where` names it in errors."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TreeError(f"{where}: not a tree object", "the cache object may be corrupt") from None
    if not isinstance(doc, dict) or "mlv-tree" not in doc:
        raise TreeError(f"{where}: not a tree object", "the cache object may be corrupt")
    version = doc["mlv-tree"]
    if version != TREE_VERSION:
        raise TreeError(
            f"{where}: tree format version {version!r} is not supported",
            "it was written by a newer mlv; upgrade mlv",
        )
    rows = doc.get("entries")
    if not isinstance(rows, list):
        raise TreeError(f"{where}: malformed tree object", "the cache object may be corrupt")
    entries: list[Entry] = []
    previous = None
    for row in rows:
        entries.append(_decode_entry(row, where))
        name = entries[-1].name
        if previous is not None and name <= previous:
            raise TreeError(f"{where}: entries not sorted or duplicated at {name!r}")
        previous = name
    return Tree(tuple(entries))


def _decode_entry(row: object, where: str) -> Entry:
    if not isinstance(row, list) or len(row) not in (4, 5):
        raise TreeError(f"{where}: malformed tree entry {row!r}")
    kind, name, hash_id, size = row[:4]
    check_name(name, where)
    if not hashing.is_hash(hash_id):
        raise TreeError(f"{where}: invalid hash in entry {name!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise TreeError(f"{where}: invalid size in entry {name!r}")
    if kind == FILE and len(row) == 4:
        return Entry(FILE, name, hash_id, size)
    if kind == DIR and len(row) == 5:
        files = row[4]
        if not isinstance(files, int) or isinstance(files, bool) or files < 0:
            raise TreeError(f"{where}: invalid file count in entry {name!r}")
        return Entry(DIR, name, hash_id, size, files)
    raise TreeError(f"{where}: malformed tree entry {row!r}")
