"""Keeping tracked data out of git: one `/name` line per tracked path in its folder's
.gitignore, added by `add` and removed by `rm` and `mv`."""

from __future__ import annotations

import os

from mlv.core import safepaths
from mlv.errors import WorkspaceError
from mlv.util import localfs

_SPECIAL = set("*?[]\\!#")


def escape(name: str) -> str:
    """A gitignore line that matches exactly this name, anchored to the folder."""
    out = []
    for i, ch in enumerate(name):
        if ch in "*?[]\\" or (i == 0 and ch in "!#"):
            out.append("\\" + ch)
        else:
            out.append(ch)
    line = "".join(out)
    stripped = line.rstrip(" ")
    if len(stripped) != len(line):  # trailing spaces are significant only when escaped
        line = stripped + "\\ " * (len(line) - len(stripped))
    return "/" + line


def _read_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().splitlines()
    except FileNotFoundError:
        return []


def file_of(data_rel: str) -> str:
    """The .gitignore (relative to the root) that holds data_rel's line."""
    folder = data_rel.rpartition("/")[0]
    return f"{folder}/.gitignore" if folder else ".gitignore"


def add_entry(root: str, data_rel: str) -> str | None:
    """Ignore data_rel in its folder's .gitignore; returns that .gitignore (relative) if changed."""
    folder, _, name = data_rel.rpartition("/")
    rel_file = f"{folder}/.gitignore" if folder else ".gitignore"
    safepaths.check_path(root, rel_file)  # neither through a link nor a link itself
    path = os.path.join(root, rel_file)
    if "\n" in name or "\r" in name:  # the line would split: a last guard (see names.py)
        raise WorkspaceError(
            f"{data_rel!r}: a .gitignore line cannot hold a name with a newline",
            "rename it without line breaks",
        )
    lines = _read_lines(path)
    line = escape(name)
    if line in lines:
        return None
    lines.append(line)
    localfs.write_text_atomic(path, "\n".join(lines) + "\n")
    return rel_file


def remove_entry(root: str, data_rel: str) -> str | None:
    folder, _, name = data_rel.rpartition("/")
    rel_file = f"{folder}/.gitignore" if folder else ".gitignore"
    safepaths.check_path(root, rel_file)  # neither through a link nor a link itself
    path = os.path.join(root, rel_file)
    lines = _read_lines(path)
    line = escape(name)
    if line not in lines:
        return None
    lines = [x for x in lines if x != line]
    if lines:
        localfs.write_text_atomic(path, "\n".join(lines) + "\n")
    else:
        os.unlink(path)
    return rel_file


def unstaged(root: str, data_rels: list[str]) -> list[str]:
    """The .gitignore files (relative to root) that ignore one of data_rels on disk while
    the copy in git's index lacks that line: left by a command killed between writing a
    .gitignore and staging it. One `git cat-file --batch` for all of them. A .gitignore in
    a merge conflict is left to the user (staging it would mark the conflict resolved)."""
    wanted: dict[str, set[str]] = {}
    for data_rel in data_rels:
        folder, _, name = data_rel.rpartition("/")
        rel_file = f"{folder}/.gitignore" if folder else ".gitignore"
        if "\n" not in rel_file:
            wanted.setdefault(rel_file, set()).add(escape(name))
    present = {}  # .gitignore -> the wanted lines it holds on disk
    for f, lines in wanted.items():
        on_disk = lines & set(_read_lines(os.path.join(root, f)))
        if on_disk:
            present[f] = on_disk
    if not present:
        return []
    from mlv import git

    blobs = git.read_blobs(root, [s for f in present for s in (":" + f, ":2:" + f)])
    out = []
    for f, on_disk in sorted(present.items()):
        index = blobs.get(":" + f)
        if index is None:
            if ":2:" + f not in blobs:  # not in the index at all (no conflict)
                out.append(f)
            continue
        if on_disk - set(index.decode("utf-8", "surrogateescape").splitlines()):
            out.append(f)
    return out
