"""One root error with a user message and a hint; the CLI maps it to one line and an exit code.

Anything that is not an MlvError reaching the CLI boundary is a bug and shows a traceback
only with -v.

Paths in messages: core names a path of the repository with `rpath(rel)` (rel relative to
the root), which marks it in the text. The CLI shows a marked path relative to the current
folder, as its other text output (`mlv add s` in d/ hints "run `mlv commit s`", a command
that works from there); `str(e)`, --json and any other reader see the path relative to the
root, as it was written. Core never looks at the current folder for this.
"""

from __future__ import annotations

from collections.abc import Callable

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# Delimits a marked path on both sides: NUL, which no file name can hold, survives f-strings,
# concatenation and an error message wrapped into another.
_MARK = "\0"


def rpath(rel: str) -> str:
    """rel, a path relative to the repository root, marked for a message or a warning: the
    CLI shows it relative to the current folder, show_paths() without a show as it is."""
    return f"{_MARK}{rel}{_MARK}"


def show_paths(text: str, show: Callable[[str], str] | None = None) -> str:
    """text with each path that rpath() marked in it shown by show (root-relative path ->
    text), or unmarked, as it was written, without a show."""
    if _MARK not in text:
        return text
    parts = text.split(_MARK)
    if show is None:
        return "".join(parts)
    return "".join(show(p) if i % 2 else p for i, p in enumerate(parts))


class MlvError(Exception):
    """A failure the user can act on. `str(e)`, message and hint name paths relative to the
    repository root, for any reader; marked_message and marked_hint keep the paths rpath()
    marked in them (an error wrapped into another passes those on), and text() is the
    marked line that the CLI shows (show_paths)."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.marked_message = message
        self.marked_hint = hint

    @property
    def message(self) -> str:
        return show_paths(self.marked_message)

    @message.setter
    def message(self, value: str) -> None:
        self.marked_message = value

    @property
    def hint(self) -> str | None:
        return None if self.marked_hint is None else show_paths(self.marked_hint)

    @hint.setter
    def hint(self, value: str | None) -> None:
        self.marked_hint = value

    def text(self) -> str:
        """The one-line message with its marked paths (see show_paths)."""
        if self.marked_hint:
            return f"{self.marked_message}: {self.marked_hint}"
        return self.marked_message

    def __str__(self) -> str:
        return show_paths(self.text())


def text_of(e: BaseException) -> str:
    """An error's line for a result that the CLI prints: an MlvError's text() (its paths
    marked), anything else as str() shows it."""
    return e.text() if isinstance(e, MlvError) else str(e)


class UsageError(MlvError):
    """The command was asked for something that makes no sense (exit 2)."""

    exit_code = EXIT_USAGE


class NotARepoError(MlvError):
    """No .mlv/ above the current folder."""


class ConfigError(MlvError):
    """A config file or key is wrong; the message names the file and key."""


class LockedError(MlvError):
    """Another mlv process holds the repository lock."""


class PointerError(MlvError):
    """A pointer file is malformed, from a newer mlv, or points outside the repository."""


class ObjectMissingError(MlvError):
    """An object named by a pointer or tree is not in the cache."""


class ObjectCorruptError(MlvError):
    """An object's content does not match its name."""


class TreeError(MlvError):
    """A tree object is malformed or names an unsafe path."""


class CacheError(MlvError):
    """The cache cannot be written (permissions, a read-only file system)."""


class GitError(MlvError):
    """A git command failed or the repository is in a state mlv cannot work with."""


class WorkspaceError(MlvError):
    """The workspace holds something mlv will not touch (unsaved edits, unreadable files)."""


class RemoteError(MlvError):
    """A remote failed or is misconfigured."""


class PipelineError(MlvError):
    """mlv.yaml or mlv.lock is wrong, or a stage cannot be run as asked."""
