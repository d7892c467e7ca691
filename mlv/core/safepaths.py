"""No write through a symbolic link.

A repository can commit a symbolic link (`link -> /elsewhere`) and a pointer, tree or
stage out whose path runs through it (`link/payload`). Following the link would let a cloned
repository make mlv write, replace or delete files outside it. So no folder on the way to a
path that mlv writes, replaces or deletes in the work tree may be a symbolic link: each
folder is checked with lstat, one component at a time from the repository root (which is
trusted, as the user chose it), never by resolving the path once and comparing strings.

The final component may be a link only where mlv replaces the link itself (a rename over
it, or an unlink), which never touches what it points to.

A Guard remembers the folders it has verified, so a checkout of many files costs one set
look-up per file and one lstat per folder. A folder that does not exist yet ends the walk:
mlv creates it (and what is below it) as a real folder.

The checks assume that nothing else changes the work tree while mlv runs (the threat is a
committed link, not a concurrent process).
"""

from __future__ import annotations

import os
import stat as stat_mod

from mlv.errors import WorkspaceError


def link_error(rel: str, link_rel: str, root: str, force: bool = False) -> WorkspaceError:
    """The one-line refusal: rel is what mlv was to write, link_rel the link on its way
    (or rel itself). force: the hint offers --force, which replaces the link itself."""
    try:
        to = os.readlink(os.path.join(root, link_rel))
    except OSError:
        to = "?"
    named = f"'{link_rel}' is a symbolic link" if link_rel != rel else "is a symbolic link"
    remove = f"remove the link (`git rm {link_rel}`, or `rm {link_rel}` if git does not track it)"
    return WorkspaceError(
        f"{rel}: {named} (to {to}): mlv does not write through links",
        f"{remove}, or use --force to replace the link (never what it points to)"
        if force
        else f"{remove} or move the pointer",
    )


def is_link(root: str, rel: str) -> bool:
    """Is the final component of rel a symbolic link (dangling or not)?"""
    try:
        return stat_mod.S_ISLNK(os.lstat(os.path.join(root, rel)).st_mode)
    except OSError:
        return False


class Guard:
    """Checks paths below root for symbolic links on the way, remembering verified folders."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._real: set[str] = {""}  # folders (relative) seen to be real folders

    def parents(self, rel: str) -> None:
        """Raise WorkspaceError if a folder above rel is a symbolic link."""
        parent = rel.rpartition("/")[0]
        if parent in self._real:
            return
        parts = parent.split("/")
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i])
            if folder in self._real:
                continue
            try:
                mode = os.lstat(os.path.join(self.root, folder)).st_mode
            except (FileNotFoundError, NotADirectoryError):
                return  # mlv makes the rest as real folders
            if stat_mod.S_ISLNK(mode):
                raise link_error(rel, folder, self.root)
            if not stat_mod.S_ISDIR(mode):
                return  # a file where a folder should be: the write fails on its own
            self._real.add(folder)

    def path(self, rel: str) -> None:
        """Raise WorkspaceError if rel or a folder above it is a symbolic link."""
        self.parents(rel)
        if rel and is_link(self.root, rel):
            raise link_error(rel, rel, self.root)


def check_parents(root: str, rel: str) -> None:
    """Raise WorkspaceError if a folder above rel is a symbolic link (one-off check)."""
    Guard(root).parents(rel)


def check_path(root: str, rel: str) -> None:
    """Raise WorkspaceError if rel or a folder above it is a symbolic link (one-off check)."""
    Guard(root).path(rel)


def check_data(root: str, rel: str) -> None:
    """For a tracked path that mlv reads and may relink or replace in place (commit,
    unprotect, rm): no link above it, and not itself a link to a folder (a link to a file
    is followed for its content and replaced by a rename, never written through)."""
    Guard(root).parents(rel)
    if rel and is_link(root, rel) and os.path.isdir(os.path.join(root, rel)):
        raise link_error(rel, rel, root)
