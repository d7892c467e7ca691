"""One root error with a user message and a hint; the CLI maps it to one line and an exit code.

Anything that is not an MlvError reaching the CLI boundary is a bug and shows a traceback
only with -v.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class MlvError(Exception):
    """A failure the user can act on. `str(e)` is the one-line message."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}: {self.hint}"
        return self.message


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
