"""Matcher for `.mlvignore` files, which use exactly the gitignore syntax (`man gitignore`).

Users already know gitignore, so an `.mlvignore` must mean what the same `.gitignore` would: each
pattern is translated to a regex that follows git's own matcher (dir.c and wildmatch.c),
including its corner cases. Matching works on the UTF-8 bytes of paths because git's does:
`?` matches one byte, so it does not match `é` (two bytes) while `??` does.

`is_ignored` runs once per file of trees with millions of files, so all patterns of an
`IgnoreRules` are compiled into one regex per kind of path (file or folder), and a precheck on
the literal parts of the patterns (such as the ".pyc" of "*.pyc") rejects most paths that no
pattern matches without running it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from mlv.util import localfs

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
            if end == start or pat[end - 1] != _COLON:
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


_MAX_TAILS = 16  # "*.py[co]" has the tails ".pyc" and ".pyo"; more is not worth it


@dataclass(frozen=True)
class _Glob:
    """A translated glob: its regex, and for the precheck the literal text every match
    starts with (`head`) and the texts one of which every match ends with (`tails`)."""

    regex: bytes
    head: bytes
    tails: tuple[bytes, ...]


def _translate(pat: bytes, wild_start: int, pathname: bool) -> _Glob | None:
    """Translate a glob to a regex with git's wildmatch semantics, None if it never matches.

    `pathname`: the pattern contains a slash, so git matches it against the whole path with
    WM_PATHNAME, where "**" is special. Otherwise it is matched against the last component
    only, where every run of "*" means the same. git strips the literal head of a pattern
    (up to `wild_start`) before calling wildmatch, and wildmatch treats "**" at the start of
    what it gets as a real "**": so in git "a**/b" also matches "a/x/b". We do the same.
    """
    out: list[bytes] = []
    head: bytes | None = None
    tails: list[bytes] = [b""]
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if c == _BACKSLASH or c not in _WILDCARDS:
            if c == _BACKSLASH:
                if i + 1 == n:
                    return None  # a trailing backslash matches nothing in git
                i += 1
                c = pat[i]
            out.append(_LITERAL[c])
            tails = [t + bytes([c]) for t in tails]
            i += 1
            continue
        if head is None:
            head = tails[0]
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
            tails = [b""]
            i = j
        elif c == _QMARK:
            out.append(_IN_NAME)
            tails = [b""]
            i += 1
        else:
            parsed = _parse_class(pat, i)
            if parsed is None:
                return None
            members, i = parsed
            allowed = sorted(members - {0, _SLASH})  # a class never matches "/" (WM_PATHNAME)
            if not allowed:
                return None
            out.append(_class_regex(allowed))
            if len(tails) * len(allowed) <= _MAX_TAILS and allowed[-1] < 0x80:
                tails = [t + bytes([m]) for t in tails for m in allowed]
            else:
                tails = [b""]
    return _Glob(b"".join(out), tails[0] if head is None else head, tuple(tails))


def _hint(*literals: bytes) -> tuple[str, ...]:
    """The literals as text for str.startswith/endswith on paths; () (no hint) if one is
    empty or not valid UTF-8: then a wildcard may match part of a character, and the text
    test could reject a path that git matches."""
    try:
        texts = tuple(literal.decode("utf-8") for literal in literals)
    except UnicodeDecodeError:
        return ()
    return texts if all(texts) else ()


@dataclass(frozen=True)
class IgnorePattern:
    """One compiled pattern: `regex` is its alternative in the combined matcher.

    For the precheck, every path the pattern matches ends with one of `ends`, or starts with
    one of `starts`, or its last component starts with one of `name_starts` (at most one of
    them is set; none when the pattern has no literal part to test).
    """

    pattern: str  # the pattern as git sees it (comment-free, trailing spaces trimmed)
    base: str  # folder of the ignore file it came from, "" for the matching root
    negated: bool
    dir_only: bool
    regex: bytes
    ends: tuple[str, ...] = ()
    starts: tuple[str, ...] = ()
    name_starts: tuple[str, ...] = ()

    @property
    def hinted(self) -> bool:
        return bool(self.ends or self.starts or self.name_starts)

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
        base_dir = (base + "/").encode("utf-8", "surrogateescape") if base else b""
        if b"/" in raw:
            # Anchored: matched against the path relative to `base`; one leading "/" dropped.
            raw = raw[1:] if raw.startswith(b"/") else raw
            wild_start = next((k for k, c in enumerate(raw) if c in _WILDCARDS), len(raw))
            glob = _translate(raw, wild_start, pathname=True)
            if glob is None or not raw:
                return None
            regex = _ANY + b"*\\x00" + re.escape(base_dir) + glob.regex + b"\\Z"
            starts = _hint(base_dir + glob.head)
            ends = () if starts else _hint(*glob.tails)
            return cls(line, base, negated, dir_only, regex, ends=ends, starts=starts)
        # Unanchored: matched against the last component of any path below `base`.
        glob = _translate(raw, 0, pathname=False)
        if glob is None or not raw:
            return None
        regex = glob.regex + b"\\x00" + re.escape(base_dir)
        ends = _hint(*glob.tails)
        name_starts = () if ends else _hint(glob.head)
        starts = () if ends or name_starts else _hint(base_dir)
        return cls(line, base, negated, dir_only, regex, ends, starts, name_starts)


def _by_char(texts: Iterable[str], index: int) -> dict[str, tuple[str, ...]]:
    """Group texts by their first (index 0) or last (-1) character: one dict lookup then
    rules out most paths before the slower str.startswith/endswith with a tuple."""
    groups: dict[str, set[str]] = {}
    for text in texts:
        groups.setdefault(text[index], set()).add(text)
    return {char: tuple(sorted(group)) for char, group in groups.items()}


@dataclass(frozen=True)
class _Matcher:
    """All patterns for one kind of path (file or folder) as a single regex, plus a precheck.

    The alternatives are in reverse order, so the first that matches is git's winner (the last
    matching pattern); `negated[m.lastindex]` tells whether it re-includes. Without negated
    patterns any match means ignored, so the groups (and the lookup) are left out.

    Most paths match no pattern, and the precheck rejects most of those cheaply: a path can
    only be ignored if it passes the hint of a pattern that has one (see IgnorePattern) or
    matches `unhinted`, the regex of the patterns that have none. It is skipped when no
    pattern has a hint, as it could not rule anything out.
    """

    regex: re.Pattern[bytes]
    negated: tuple[bool, ...] | None
    precheck: bool
    ends: dict[str, tuple[str, ...]]
    starts: dict[str, tuple[str, ...]]
    name_starts: dict[str, tuple[str, ...]]
    unhinted: re.Pattern[bytes] | None

    @classmethod
    def build(cls, patterns: Sequence[IgnorePattern]) -> _Matcher | None:
        first = next((k for k, p in enumerate(patterns) if not p.negated), len(patterns))
        patterns = patterns[first:]  # a leading "!" pattern has nothing to re-include
        if not patterns:
            return None
        negated: tuple[bool, ...] | None = None
        if not any(p.negated for p in patterns):
            regex = re.compile(b"|".join(b"(?:%s)" % p.regex for p in patterns))
        else:
            ordered = patterns[::-1]
            regex = re.compile(b"|".join(b"(%s)" % p.regex for p in ordered))
            negated = (False, *(p.negated for p in ordered))
        # Negated patterns cannot make a path ignored, so the precheck leaves them out.
        positive = [p for p in patterns if not p.negated]
        unhinted = [p.regex for p in positive if not p.hinted]
        return cls(
            regex,
            negated,
            precheck=len(unhinted) < len(positive),
            ends=_by_char((text for p in positive for text in p.ends), -1),
            starts=_by_char((text for p in positive for text in p.starts), 0),
            name_starts=_by_char((text for p in positive for text in p.name_starts), 0),
            unhinted=re.compile(b"|".join(b"(?:%s)" % r for r in unhinted)) if unhinted else None,
        )

    def matches(self, relpath: str) -> bool:
        """Whether the last pattern matching `relpath` ignores it."""
        if not self.precheck:
            return self._last_match_ignores(_subject(relpath))
        texts = self.ends.get(relpath[-1:])
        if texts is not None and relpath.endswith(texts):
            return self._last_match_ignores(_subject(relpath))
        texts = self.starts.get(relpath[:1])
        if texts is not None and relpath.startswith(texts):
            return self._last_match_ignores(_subject(relpath))
        if self.name_starts:
            name = relpath[relpath.rfind("/") + 1 :]
            texts = self.name_starts.get(name[:1])
            if texts is not None and name.startswith(texts):
                return self._last_match_ignores(_subject(relpath))
        if self.unhinted is None:
            return False
        subject = _subject(relpath)
        if self.unhinted.match(subject) is None:
            return False
        return self.negated is None or self._last_match_ignores(subject)

    def _last_match_ignores(self, subject: bytes) -> bool:
        match = self.regex.match(subject)
        if match is None:
            return False
        return self.negated is None or not self.negated[match.lastindex or 0]


def _subject(relpath: str) -> bytes:
    """`name NUL path` in bytes: unanchored patterns, usually most of them, then fail or match
    on the first bytes of the name instead of searching for the last "/" of the path."""
    path = relpath.encode("utf-8", "surrogateescape")
    return path[path.rfind(b"/") + 1 :] + b"\0" + path


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
            data = localfs.read_small(os.fspath(path))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return self
        return self.with_lines(data.decode("utf-8", "surrogateescape").split("\n"), base)

    def is_ignored(self, relpath: str, is_dir: bool) -> bool:
        """relpath: posix path relative to the matching root. Last matching pattern wins
        (a `!` pattern re-includes). Does not look at parent directories: the caller walks
        top-down and does not descend into ignored folders (as git does)."""
        matcher = self._dir_matcher if is_dir else self._file_matcher
        return matcher is not None and matcher.matches(relpath)

    def __bool__(self) -> bool:
        """True when there is at least one pattern (that can match anything)."""
        return bool(self.patterns)
