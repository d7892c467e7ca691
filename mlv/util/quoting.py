"""Names safe to print on a terminal, quoted the way git quotes paths (core.quotePath).

A name that holds a control character (U+0000-U+001F, U+007F) is printed in double quotes
with C escapes (\\a \\b \\t \\n \\v \\f \\r \\" \\\\, \\ooo octal for the other bytes), so a
newline cannot forge an extra line and an escape sequence never reaches the terminal. A byte
that is not UTF-8 (read from the file system as a lone surrogate) is quoted as \\ooo too. Any
other name, non-ASCII letters included, is returned unchanged, as git does with
core.quotePath=false.
"""

from __future__ import annotations

import re

_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    '"': '\\"',
    "\\": "\\\\",
}
_NEEDS_QUOTES = re.compile("[\x00-\x1f\x7f\udc80-\udcff]")
_QUOTED = re.compile('[\x00-\x1f\x7f"\\\\\udc80-\udcff]')


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _ESCAPES:
        return _ESCAPES[char]
    code = ord(char)
    return f"\\{code - 0xDC00 if code >= 0xDC80 else code:03o}"


def quote_path(name: str) -> str:
    """name as it is, or in double quotes with C escapes when it holds a control character
    (or a byte that is not UTF-8)."""
    if _NEEDS_QUOTES.search(name) is None:
        return name
    return '"' + _QUOTED.sub(_escape, name) + '"'
