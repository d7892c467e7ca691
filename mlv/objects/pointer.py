"""Pointer files (PATH.mlv): the small YAML file git tracks in place of the data.

    version: 1
    path: images
    kind: dir
    hash: xxh128:1f0c6b7e0a4d3c2b1a09f8e7d6c5b4a3
    size: 209715200
    files: 20000

`desc` and `meta` are optional and kept as written; `source` records where `mlv import` took
the data from (url, path, rev, commit). A pointer from a newer format version,
or with keys this version does not know, is an error: mlv never rewrites what it cannot read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from typing import Any

from mlv.errors import PointerError, show_paths
from mlv.objects import hashing, names
from mlv.util import localfs

POINTER_VERSION = 1
SUFFIX = ".mlv"
_KEYS = {"version", "path", "kind", "hash", "size", "files", "desc", "meta", "source"}
_SOURCE_KEYS = ("url", "path", "rev", "commit")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_AT_COMMIT = re.compile(r" at [0-9a-f]{7,64}$")  # "x.mlv at 0123abcdef": read from a commit


@dataclass(frozen=True)
class PointerSource:
    """Where `mlv import` took the data from: a git repository (URL or local path, never
    with credentials), the path in it, the revision asked for (None: its default branch)
    and the commit that revision resolved to."""

    url: str
    path: str
    commit: str
    rev: str | None = None

    def to_dict(self) -> dict[str, str]:
        doc = {"url": self.url, "path": self.path}
        if self.rev is not None:
            doc["rev"] = self.rev
        doc["commit"] = self.commit
        return doc


@dataclass(frozen=True)
class Pointer:
    """What a pointer file says. `path` is relative to the pointer's folder."""

    path: str
    kind: str  # "file" | "dir"
    hash: str
    size: int
    files: int | None = None
    desc: str | None = None
    meta: dict[str, Any] | None = field(default=None, compare=False)
    source: PointerSource | None = None

    def with_content(self, hash_id: str, size: int, files: int | None) -> Pointer:
        return replace(self, hash=hash_id, size=size, files=files)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"version": POINTER_VERSION, "path": self.path, "kind": self.kind}
        doc["hash"] = self.hash
        doc["size"] = self.size
        if self.kind == "dir":
            doc["files"] = self.files or 0
        if self.desc is not None:
            doc["desc"] = self.desc
        if self.meta is not None:
            doc["meta"] = self.meta
        if self.source is not None:
            doc["source"] = self.source.to_dict()
        return doc

    def encode(self) -> str:
        from mlv import yamlio

        return yamlio.dumps(self.to_dict())


def pointer_path_for(data_path: str) -> str:
    return data_path + SUFFIX


# Pointers as mlv writes them (plain `key: value` lines, values that YAML would read as
# these same strings or integers) are parsed without importing PyYAML: status on a repo
# with a few pointers then starts tens of milliseconds sooner. Anything else goes to YAML.
_SIMPLE_LINE = re.compile(
    r"(version|size|files): (0|[1-9][0-9]{0,18})"
    r"|(kind): (file|dir)"
    r"|(hash): ([a-z0-9]+:[0-9a-f]+)"
    r"|(path): ([A-Za-z_][A-Za-z0-9_.+-]*)"
)
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n"}


def _parse_simple(text: str) -> dict[str, Any] | None:
    doc: dict[str, Any] = {}
    for line in text.split("\n"):
        if not line:
            continue
        m = _SIMPLE_LINE.fullmatch(line)
        if m is None:
            return None
        groups = [g for g in m.groups() if g is not None]
        key, value = groups[0], groups[1]
        if key in doc:
            return None
        if key in ("version", "size", "files"):
            doc[key] = int(value)
        elif key == "path" and (value.lower() in _YAML_WORDS or _looks_numeric(value)):
            return None
        else:
            doc[key] = value
    return doc


def _looks_numeric(value: str) -> bool:
    try:
        float(value.replace("_", ""))
    except ValueError:
        return value.startswith(("0x", "0o", "."))
    return True


def _load_doc(text: str | bytes, where: str) -> Any:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if isinstance(text, str):
        simple = _parse_simple(text)
        if simple is not None:
            return simple
    from mlv import yamlio

    try:
        return yamlio.loads(text)
    except yamlio.LimitError as e:
        raise PointerError(f"{where}: {e}", "fix it or restore it with `git checkout`") from None
    except yamlio.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise PointerError(
            f"{where}: not a valid pointer file{line}", "fix it or restore it with `git checkout`"
        ) from None


def parse(text: str | bytes, where: str) -> Pointer:
    """Validate a pointer's text; errors name `where` and say what to do."""
    doc = _load_doc(text, where)
    if not isinstance(doc, dict):
        raise PointerError(f"{where}: not a valid pointer file", "expected a YAML mapping")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise PointerError(f"{where}: missing or invalid 'version'", "expected `version: 1`")
    if version > POINTER_VERSION:
        raise PointerError(
            f"{where}: pointer format version {version} is newer than this mlv understands "
            f"(version {POINTER_VERSION})",
            "upgrade mlv",
        )
    if version < 1:
        raise PointerError(f"{where}: invalid pointer version {version}")
    unknown = sorted(str(k) for k in doc if k not in _KEYS)
    if unknown:
        raise PointerError(
            f"{where}: unknown key(s) {', '.join(unknown)} in a version {version} pointer",
            "remove them or upgrade mlv",
        )
    path = doc.get("path")
    kind = doc.get("kind")
    if not isinstance(path, str) or not path:
        raise PointerError(f"{where}: missing or invalid 'path'")
    check_relative(path, where)
    check_place(path, where)
    if kind not in ("file", "dir"):
        raise PointerError(f"{where}: 'kind' must be file or dir, not {kind!r}")
    hash_id = hashing.check_hash(doc.get("hash"), where)
    size = doc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise PointerError(f"{where}: missing or invalid 'size'")
    files = doc.get("files")
    if kind == "dir" and (not isinstance(files, int) or isinstance(files, bool) or files < 0):
        raise PointerError(f"{where}: missing or invalid 'files' for a directory")
    desc = doc.get("desc")
    if desc is not None and not isinstance(desc, str):
        raise PointerError(f"{where}: 'desc' must be text")
    meta = doc.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise PointerError(f"{where}: 'meta' must be a mapping")
    source = _parse_source(doc.get("source"), where) if "source" in doc else None
    return Pointer(path, kind, hash_id, size, files if kind == "dir" else None, desc, meta, source)


def _parse_source(raw: Any, where: str) -> PointerSource:
    if not isinstance(raw, dict):
        raise PointerError(
            f"{where}: 'source' must be a mapping (url, path, rev, commit)",
            "fix it, or re-import the data with `mlv import --force`",
        )
    unknown = sorted(str(k) for k in raw if k not in _SOURCE_KEYS)
    if unknown:
        raise PointerError(
            f"{where}: unknown key(s) {', '.join(unknown)} in 'source'",
            "expected url, path, rev and commit",
        )
    for key in ("url", "path", "commit"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise PointerError(f"{where}: missing or invalid 'source.{key}'", "expected text")
    rev = raw.get("rev")
    if "rev" in raw and (not isinstance(rev, str) or not rev or rev.startswith("-")):
        raise PointerError(
            f"{where}: invalid 'source.rev' {rev!r}", "expected a branch, tag or commit"
        )
    url = raw["url"]
    if url.startswith("-") or names.has_control(url):
        # git would read "--upload-pack=CMD" as an option: never hand it over
        raise PointerError(
            f"{where}: 'source.url' {url!r} is not a repository URL or path",
            "fix it, or re-import the data with `mlv import --force`",
        )
    commit = raw["commit"]
    if not _COMMIT_RE.fullmatch(commit):
        raise PointerError(
            f"{where}: 'source.commit' must be a full git commit id (40 hex digits), not {commit!r}"
        )
    src_path = raw["path"]
    if (
        os.path.isabs(src_path)
        or src_path.startswith("\\")
        or "\0" in src_path
        or any(p in ("", ".", "..") for p in src_path.split("/"))
    ):
        raise PointerError(
            f"{where}: 'source.path' {src_path!r} is not a relative path in the source",
            "it names a path inside the source repository, like data/images",
        )
    return PointerSource(raw["url"], raw["path"], commit, rev)


def check_relative(path: str, where: str) -> None:
    """Refuse paths that could leave the pointer's folder (absolute, '..') or name the
    folder itself ('.', which would track the pointer, .git/ and .mlv/ along with it)."""
    parts = path.split("/")
    if (
        os.path.isabs(path)
        or path.startswith("\\")
        or "\0" in path
        or any(p in ("", ".", "..") for p in parts)
    ):
        raise PointerError(
            f"{where}: path {path!r} leaves the pointer's folder",
            "a pointer's path must be a relative path inside the repository",
        )


def check_place(path: str, where: str, shown: str | None = None) -> None:
    """Refuse (PointerError naming where) a pointer whose data path lies inside .git or
    a .mlv (any spelling git refuses, in any folder), or holds a control character (see
    mlv.objects.names). shown: the path as the pointer file says it (default: path)."""
    reason = names.problem(path)
    if reason is not None:
        pointer_file = _AT_COMMIT.sub("", where)
        is_pointer = show_paths(pointer_file).endswith(SUFFIX)  # where may be marked (rpath)
        undo = (
            f"`git rm -f {pointer_file}`, or `rm {pointer_file}` if git does not track it"
            if is_pointer
            else "`git rm -f` it"
        )
        raise PointerError(
            f"{where}: path {(shown or path)!r} {reason}: {names.refusing(reason, 'a pointer')}",
            f"a pointer names data in the work tree; delete the pointer ({undo})",
        )


def read(pointer_file: str, where: str | None = None) -> Pointer:
    where = where or pointer_file
    try:
        text = localfs.read_small(pointer_file)
    except FileNotFoundError:
        raise PointerError(f"{where}: no such pointer file") from None
    except OSError as e:
        raise PointerError(f"{where}: cannot read pointer file ({e.strerror})") from None
    return parse(text, where)


def write(pointer_file: str, ptr: Pointer) -> bool:
    """Write the pointer atomically; returns False when the file already says exactly this."""
    text = ptr.encode()
    try:
        with open(pointer_file, encoding="utf-8") as fh:
            if fh.read() == text:
                return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    localfs.write_text_atomic(pointer_file, text)
    return True
