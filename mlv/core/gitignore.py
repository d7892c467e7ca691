"""Keeping tracked data out of git: one `/name` line per tracked path in its folder's
.gitignore, added by `add` and removed by `rm` and `mv`."""

from __future__ import annotations

import os

from mlv.storage import localfs

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


def add_entry(root: str, data_rel: str) -> str | None:
    """Ignore data_rel in its folder's .gitignore; returns that .gitignore (relative) if changed."""
    folder, _, name = data_rel.rpartition("/")
    rel_file = f"{folder}/.gitignore" if folder else ".gitignore"
    path = os.path.join(root, rel_file)
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
