"""Matcher for `.mlvignore` files, which use exactly the gitignore syntax (`man gitignore`).

Users already know gitignore, so an `.mlvignore` must mean what the same `.gitignore` would: each
pattern is translated to a regex that follows git's own matcher (dir.c and wildmatch.c),
including its corner cases. Matching works on the UTF-8 bytes of paths because git's does:
`?` matches one byte, so it does not match `é` (two bytes) while `??` does.

All patterns of an `IgnoreRules` are compiled into one regex per kind of path (file or folder),
so `is_ignored` costs one regex call however many patterns there are.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

IGNORE_FILE = ".mlvignore"

_STAR, _QMARK, _LBRACKET, _BACKSLASH, _SLASH, _RBRACKET, _DASH, _COLON = b"*?[\\/]-:"
_WILDCARDS = b"*?[\\"  # git's "glob special" characters: a pattern is literal up to the first one

_DIGITS = range(0x30, 0x3A)
_UPPER = range(0x41, 0x5B)
_LOWER = range(0x61, 0x7B)
# git's ctype is ASCII-only and locale-independent (git-compat-util.h), e.g. no \v in space.
_POSIX_CLASSES: dict[bytes, frozenset[int]] = {
    b"alnum": frozenset([*_DIGITS, *_UPPER, *_LOWER]),
    b"alpha": frozenset([*_UPPER, *_LOWER]),
    b"blank": frozenset(b" \t"),
    b"cntrl": frozenset([*range(0x20), 0x7F]),
    b"digit": frozenset(_DIGITS),
    b"graph": frozenset(range(0x21, 0x7F)),
    b"lower": frozenset(_LOWER),
    b"print": frozenset(range(0x20, 0x7F)),
    b"punct": frozenset(c for c in range(0x21, 0x7F) if not chr(c).isalnum()),
    b"space": frozenset(b" \t\n\r"),
    b"upper": frozenset(_UPPER),
    b"xdigit": frozenset(b"0123456789abcdefABCDEF"),
}
_ALL_BYTES = frozenset(range(256))
_LITERAL = [re.escape(bytes([c])) for c in range(256)]

# The regexes run on the subject `name NUL path` (see `_subject`): NUL cannot occur in a path,
# so it splits the two parts, and no wildcard may match it.
_ANY = b"[^\\x00]"  # any byte of the path, `/` included (for `**`)
_IN_NAME = b"[^/\\x00]"  # any byte of one path component (for `*`, `?`)


def _trim_trailing_spaces(line: str) -> str:
    """Drop trailing spaces unless backslash-escaped, as git's trim_trailing_spaces()."""
    last_space = -1
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == " ":
            if last_space < 0:
                last_space = i
        elif c == "\\":
            i += 1
            if i == n:
                return line  # a trailing lone backslash keeps everything (git does the same)
            last_space = -1
        else:
            last_space = -1
        i += 1
    return line if last_space < 0 else line[:last_space]


def _parse_class(pat: bytes, i: int) -> tuple[frozenset[int], int] | None:
    """Parse the bracket expression starting at pat[i] == "[" exactly like git's wildmatch.

    Returns the bytes it matches (before excluding "/") and the index after the closing "]",
    or None when git would abort the match (unterminated class, unknown [:name:]): such a
    pattern never matches anything.
    """
    n = len(pat)

    def at(k: int) -> int:
        return pat[k] if k < n else 0  # NUL plays git's end-of-string role

    i += 1
    ch = at(i)
    negated = ch in b"!^"
    if negated:
        i += 1
        ch = at(i)
    members: set[int] = set()
    prev = 0
    while True:  # git's do { ... } while (prev = ch, (ch = *++p) != ']'): "[]a]" includes "]"
        if not ch:
            return None
        if ch == _BACKSLASH:
            i += 1
            ch = at(i)
            if not ch:
                return None
            members.add(ch)
        elif ch == _DASH and prev and at(i + 1) and at(i + 1) != _RBRACKET:
            i += 1
            ch = at(i)
            if ch == _BACKSLASH:
                i += 1
                ch = at(i)
                if not ch:
                    return None
            members.update(range(prev, ch + 1))  # empty when reversed, e.g. "[z-a]" is {z}
            ch = 0  # a range end cannot start another range
        elif ch == _LBRACKET and at(i + 1) == _COLON:
            start = i + 2
            end = pat.find(b"]", start)
            if end < 0:
                return None
            if end - start < 2 or pat[end - 1] != _COLON:
                members.add(_LBRACKET)  # not "[:name:]": a literal "[" and go on after it
            else:
                posix = _POSIX_CLASSES.get(pat[start : end - 1])
                if posix is None:
                    return None
                members |= posix
                i = end
                ch = 0
        else:
            members.add(ch)
        prev = ch
        i += 1
        ch = at(i)
        if ch == _RBRACKET:
            break
    return (_ALL_BYTES - members if negated else frozenset(members)), i + 1


def _class_regex(members: Iterable[int]) -> bytes:
    """A regex character class for a set of bytes, written as runs of \\xHH ranges."""
    out: list[bytes] = []
    run_start = run_end = -2
    for c in [*sorted(members), -2]:
        if c == run_end + 1:
            run_end = c
            continue
        if run_start >= 0:
            out.append(b"\\x%02x" % run_start)
            if run_end > run_start:
                out.append(b"-\\x%02x" % run_end)
        run_start = run_end = c
    return b"[" + b"".join(out) + b"]"


def _translate(pat: bytes, wild_start: int, pathname: bool) -> bytes | None:
    """Translate a glob to a regex with git's wildmatch semantics, None if it never matches.

    `pathname`: the pattern contains a slash, so git matches it against the whole path with
    WM_PATHNAME, where "**" is special. Otherwise it is matched against the last component
    only, where every run of "*" means the same. git strips the literal head of a pattern
    (up to `wild_start`) before calling wildmatch, and wildmatch treats "**" at the start of
    what it gets as a real "**": so in git "a**/b" also matches "a/x/b". We do the same.
    """
    out: list[bytes] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == _STAR:
            j = i + 1
            while j < n and pat[j] == _STAR:
                j += 1
            if (
                pathname
                and j - i > 1
                and (i == wild_start or pat[i - 1] == _SLASH)
                and (j == n or pat[j] == _SLASH or pat[j : j + 2] == b"\\/")
            ):
                if j < n and pat[j] == _SLASH:  # "**/": zero or more folders
                    out.append(b"(?:" + _ANY + b"*/)?")
                    j += 1
                else:  # trailing "/**" (or "**\/"): anything, slashes included
                    out.append(_ANY + b"*")
            else:
                out.append(_IN_NAME + b"*")
            i = j
        elif c == _QMARK:
            out.append(_IN_NAME)
            i += 1
        elif c == _LBRACKET:
            parsed = _parse_class(pat, i)
            if parsed is None:
                return None
            members, i = parsed
            allowed = members - {0, _SLASH}  # a class never matches "/" (WM_PATHNAME)
            if not allowed:
                return None
            out.append(_class_regex(allowed))
        elif c == _BACKSLASH:
            if i + 1 == n:
                return None  # a trailing backslash matches nothing in git
            out.append(_LITERAL[pat[i + 1]])
            i += 2
        else:
            out.append(_LITERAL[c])
            i += 1
    return b"".join(out)


@dataclass(frozen=True)
class IgnorePattern:
    """One compiled pattern: `regex` is its alternative in the combined matcher."""

    pattern: str  # the pattern as git sees it (comment-free, trailing spaces trimmed)
    base: str  # folder of the ignore file it came from, "" for the matching root
    negated: bool
    dir_only: bool
    regex: bytes

    @classmethod
    def parse(cls, line: str, base: str) -> IgnorePattern | None:
        """Compile one line of an ignore file; None for blank lines, comments and patterns
        that can never match (such as "!", "/" or an unterminated "[")."""
        if not line or line[0] == "#":
            return None
        line = line[:-1] if line[-1] == "\r" else line
        line = _trim_trailing_spaces(line.split("\0", 1)[0])  # git stops at a NUL byte
        body = line
        negated = body.startswith("!")
        if negated:
            body = body[1:]
        dir_only = body.endswith("/")
        if dir_only:
            body = body[:-1]
        raw = body.encode("utf-8", "surrogateescape")
        base_bytes = (base + "/").encode("utf-8", "surrogateescape") if base else b""
        if b"/" in raw:
            # Anchored: matched against the path relative to `base`; one leading "/" dropped.
            raw = raw[1:] if raw.startswith(b"/") else raw
            wild_start = min([raw.find(bytes([c])) % (len(raw) + 1) for c in _WILDCARDS])
            glob = _translate(raw, wild_start, pathname=True)
            if glob is None or not raw:
                return None
            regex = _ANY + b"*\\x00" + re.escape(base_bytes) + glob + b"\\Z"
        else:
            # Unanchored: matched against the last component of any path below `base`.
            glob = _translate(raw, 0, pathname=False)
            if glob is None or not raw:
                return None
            regex = glob + b"\\x00" + re.escape(base_bytes)
        return cls(line, base, negated, dir_only, regex)


@dataclass(frozen=True)
class _Matcher:
    """All patterns for one kind of path as a single regex.

    The alternatives are in reverse order, so the first that matches is git's winner (the last
    matching pattern); `negated[m.lastindex]` tells whether it re-includes. Without negated
    patterns any match means ignored, so the groups (and the lookup) are left out.
    """

    regex: re.Pattern[bytes]
    negated: tuple[bool, ...] | None

    @classmethod
    def build(cls, patterns: Sequence[IgnorePattern]) -> _Matcher | None:
        while patterns and patterns[0].negated:
            patterns = patterns[1:]  # a leading "!" pattern has nothing to re-include
        if not patterns:
            return None
        if not any(p.negated for p in patterns):
            return cls(re.compile(b"|".join(b"(?:%s)" % p.regex for p in patterns)), None)
        ordered = patterns[::-1]
        regex = re.compile(b"|".join(b"(%s)" % p.regex for p in ordered))
        return cls(regex, (False, *(p.negated for p in ordered)))


def _normalize_base(base: str) -> str:
    base = base.replace(os.sep, "/").strip("/")
    return "" if base == "." else base


@dataclass(frozen=True)
class IgnoreRules:
    """Ordered gitignore patterns, each anchored at the folder of the file it came from.

    Immutable, so a walk can keep one instance per folder level and share it between siblings.
    """

    patterns: tuple[IgnorePattern, ...] = ()
    _file_matcher: _Matcher | None = field(init=False, repr=False, compare=False)
    _dir_matcher: _Matcher | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        files = [p for p in self.patterns if not p.dir_only]
        object.__setattr__(self, "_file_matcher", _Matcher.build(files))
        object.__setattr__(self, "_dir_matcher", _Matcher.build(self.patterns))

    @classmethod
    def empty(cls) -> IgnoreRules:
        """Rules that ignore nothing: the start of a walk."""
        return cls()

    def with_lines(self, lines: Iterable[str], base: str) -> IgnoreRules:
        """New rules: these patterns (from a file in folder `base`, a posix path relative to
        the matching root, "" for the root itself) after the existing ones.

        `lines` may keep their line endings; a single string is split into lines.
        """
        if isinstance(lines, str):
            lines = lines.split("\n")
        base = _normalize_base(base)
        added: list[IgnorePattern] = []
        for number, line in enumerate(lines):
            if number == 0 and line.startswith("\ufeff"):
                line = line[1:]  # git skips a UTF-8 byte order mark
            pattern = IgnorePattern.parse(line[:-1] if line.endswith("\n") else line, base)
            if pattern is not None:
                added.append(pattern)
        if not added:
            return self
        return IgnoreRules((*self.patterns, *added))

    def with_file(self, path: os.PathLike[str] | str, base: str) -> IgnoreRules:
        """Reads the file if it exists (returns self unchanged if it does not).

        Like git, a folder or a missing parent counts as no file; other read errors raise,
        because silently dropping ignore rules could version data the user meant to exclude.
        """
        try:
            with open(path, "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return self
        return self.with_lines(data.decode("utf-8", "surrogateescape").split("\n"), base)

    def is_ignored(self, relpath: str, is_dir: bool) -> bool:
        """relpath: posix path relative to the matching root. Last matching pattern wins
        (a `!` pattern re-includes). Does not look at parent directories: the caller walks
        top-down and does not descend into ignored folders (as git does)."""
        matcher = self._dir_matcher if is_dir else self._file_matcher
        if matcher is None:
            return False
        path = relpath.encode("utf-8", "surrogateescape")
        match = matcher.regex.match(_subject(path))
        if match is None:
            return False
        return matcher.negated is None or not matcher.negated[match.lastindex or 0]

    def __bool__(self) -> bool:
        """True when there is at least one pattern (that can match anything)."""
        return bool(self.patterns)


def _subject(path: bytes) -> bytes:
    """`name NUL path`: unanchored patterns, usually most of them, then fail or match on the
    first bytes of the name instead of searching for the last "/" of the path."""
    return path[path.rfind(b"/") + 1 :] + b"\0" + path
