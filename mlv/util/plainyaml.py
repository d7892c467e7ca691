"""A reader for the YAML mlv writes itself, without importing PyYAML (~9 ms of start-up).

mlv's config files are what yamlio.dumps makes of a few sections: block mappings indented
two spaces, lists of scalars written as PyYAML writes them (`- item` under the key, at its
indentation), and plain scalars: names, paths, URLs, integers, true, false, null. load()
reads exactly that shape, and answers what yamlio.loads (PyYAML's safe loader) answers for
it; any other text, including every valid YAML it does not read (comments, blank lines,
quotes but the simplest, anchors, flow collections, tabs, other indentation, a key given
twice), gets UNSURE and the caller loads it with yamlio, its bounds and its errors. So a
hostile file is never read by this module more trustingly than by yamlio: it is either
read to the same value or handed over. tests/unit/test_plainyaml.py checks both against
yamlio on generated documents and on random texts.
"""

from __future__ import annotations

import re
from typing import Any


class _Unsure:
    """The answer for text this reader does not vouch for."""

    def __repr__(self) -> str:
        return "UNSURE"


UNSURE: Any = _Unsure()

# Printable ASCII and line feeds only: PyYAML refuses some control characters, reads others
# (tab, CR, NEL, BOM) in ways this reader does not follow.
_TEXT = re.compile(r"[\x20-\x7e\n]*")
# `KEY: VALUE`, `KEY:` (its value on the lines below) or `- VALUE`, after the indentation
_LINE = re.compile(r"( *)(?:- (.+)|([A-Za-z_][A-Za-z0-9_-]*):(?: (.+))?)")
# What PyYAML's resolver reads as a bool or a null (YAML 1.1), and y/n for good measure:
# neither a key nor a plain value here.
_WORDS = frozenset(
    word
    for base in ("yes", "no", "true", "false", "on", "off", "null")
    for word in (base, base.capitalize(), base.upper())
) | {"y", "Y", "n", "N"}
# A plain scalar no resolver of PyYAML turns into another type: it starts with a letter,
# `_`, `/`, `./`, `../` or `~/` (numbers, floats such as .5 and .inf, timestamps, `~`,
# merge keys and indicators start otherwise), holds no space, `#`, quote or bracket, and
# does not end with `:` (`: ` cannot occur: no spaces).
_PLAIN = re.compile(r"(?:[A-Za-z_/]|\.\.?/|~/)[A-Za-z0-9_./~@%+=,:-]*(?<!:)")
_INT = re.compile(r"0|[1-9][0-9]{0,17}")  # PyYAML's decimal ints, no sign, `_` or leading 0
_QUOTED = re.compile(r"'([^']*)'")  # single-quoted, no quote inside: the text as it is
_MAX_DEPTH = 20  # deeper than mlv ever writes (yamlio refuses past 100)


class _Refused(Exception):
    pass


def load(text: str | bytes) -> Any:
    """The document text holds, as yamlio.loads reads it, or UNSURE."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            return UNSURE
    if not text.endswith("\n") or _TEXT.fullmatch(text) is None:
        return UNSURE
    lines: list[tuple[int, str | None, str | None]] = []  # (indent, key or None, value)
    for line in text[:-1].split("\n"):
        m = _LINE.fullmatch(line)
        if m is None:
            return UNSURE
        indent = len(m.group(1))
        if m.group(2) is not None:
            lines.append((indent, None, m.group(2)))
        else:
            lines.append((indent, m.group(3), m.group(4)))
    try:
        doc, end = _mapping(lines, 0, 0, 0)
    except _Refused:
        return UNSURE
    if end != len(lines) or not doc:
        return UNSURE
    return doc


def _mapping(
    lines: list[tuple[int, str | None, str | None]], i: int, indent: int, depth: int
) -> tuple[dict[str, Any], int]:
    """The block mapping whose keys start at lines[i], indented indent; returns it and the
    index of the first line after it."""
    if depth > _MAX_DEPTH:
        raise _Refused()
    doc: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent and lines[i][1] is not None:
        _, key, value = lines[i]
        assert key is not None
        if key in _WORDS or key in doc:
            raise _Refused()
        i += 1
        if value is not None:
            doc[key] = _scalar(value)
        elif i < len(lines) and lines[i][0] == indent and lines[i][1] is None:
            items = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1] is None:
                items.append(_scalar(lines[i][2] or ""))
                i += 1
            doc[key] = items
        elif i < len(lines) and lines[i][0] == indent + 2 and lines[i][1] is not None:
            doc[key], i = _mapping(lines, i, indent + 2, depth + 1)
        else:
            doc[key] = None  # `KEY:` and nothing below it
    return doc, i


def _scalar(value: str) -> Any:
    if _INT.fullmatch(value):
        return int(value)
    if value == "true":
        return True
    if value == "false":
        return False
    if value == "null":
        return None
    if value == "{}":
        return {}
    if value == "[]":
        return []
    quoted = _QUOTED.fullmatch(value)
    if quoted is not None:
        return quoted.group(1)
    if value in _WORDS or _PLAIN.fullmatch(value) is None:
        raise _Refused()
    return value
