"""Which names and paths mlv may write: the one place for the rules that keep a hostile
pointer, tree, mlv.yaml or command-line path out of git's folder and mlv's own.

A component names `.git` when git itself would take it for `.git` on some file system:
any case (`.GIT`), with trailing dots or spaces or an NTFS stream suffix (`.git.`,
`.git::$INDEX_ALLOCATION`), the NTFS short name `git~1`, or with the code points that HFS+
ignores (`.g\\u200cit`). That is what git's verify_path refuses with core.protectNTFS and
core.protectHFS, applied everywhere, whatever the platform: a repository is cloned on many.
`.mlv` (and its short name `mlv~1`) is refused the same way, in any folder: a `.mlv` below
the root is what commands run in that folder take for their repository (its
config.local.yaml for this machine's settings).

Control characters (a newline above all) are refused in paths that mlv writes into a
.gitignore line: a newline splits the line, and git's escaping cannot express one.
"""

from __future__ import annotations

GIT_DIR = ".git"
MLV_DIR = ".mlv"

# Code points HFS+ ignores when it compares names (git's is_hfs_dotgit skips the same).
_HFS_IGNORABLE = dict.fromkeys(
    [*range(0x200C, 0x2010), *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)
_CONTROL = frozenset(chr(c) for c in [*range(0x20), 0x7F])

INSIDE_GIT = "is inside .git"
INSIDE_MLV = "is inside .mlv"
CONTROL = "contains a newline or another control character"
TOO_LONG = "has a name longer than 255 bytes"
NAME_MAX = 255  # bytes in one file name: ext4, xfs, btrfs, APFS


def _fold(name: str) -> str:
    """name as a case-insensitive NTFS or HFS+ volume would compare it."""
    if not name.isascii():
        name = name.translate(_HFS_IGNORABLE)
    return name.lower().partition(":")[0].rstrip(". ")


def is_git_name(name: str) -> bool:
    """Would git take this single path component for its own folder `.git`?"""
    return _fold(name) in (".git", "git~1")


def is_mlv_name(name: str) -> bool:
    """Would a case-insensitive volume take this component for `.mlv`?"""
    return _fold(name) in (".mlv", "mlv~1")


def has_control(text: str) -> bool:
    """A C0 control character or DEL (newline, carriage return, tab, escape...)."""
    return not _CONTROL.isdisjoint(text)


def problem(path: str, line: bool = True) -> str | None:
    """Why mlv must not write at path, a /-separated path (INSIDE_GIT, INSIDE_MLV or
    CONTROL), or None when it may. line: the path goes into a .gitignore line too (a tracked
    path or a stage out), so control characters are refused. A `.mlv` component is refused
    at any depth: a pointer `sub/x.mlv` naming `.mlv/config.local.yaml` planted the config
    that `cd sub && mlv push` took for this machine's (its proxy_command ran)."""
    parts = path.split("/")
    if any(is_git_name(p) for p in parts):
        return INSIDE_GIT
    if any(is_mlv_name(p) for p in parts):
        return INSIDE_MLV
    if line and has_control(path):
        return CONTROL
    if any(
        len(p) > NAME_MAX // 4 and len(p.encode("utf-8", "surrogateescape")) > NAME_MAX
        for p in parts
    ):
        return TOO_LONG  # a checkout would stop on a raw "[Errno 36] File name too long"
    return None


def refusing(reason: str, what: str = "a path") -> str:
    """The refusal's second half for a reason problem() gave ("refusing a pointer that
    writes into git's folder")."""
    if reason == INSIDE_GIT:
        return f"refusing {what} that writes into git's folder"
    if reason == INSIDE_MLV:
        return f"refusing {what} that writes into mlv's own folder"
    if reason == TOO_LONG:
        return f"refusing {what} whose name no file system here can hold"
    return f"refusing {what} whose name a .gitignore line cannot hold"
