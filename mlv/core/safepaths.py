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

from mlv import git
from mlv.errors import WorkspaceError, rpath
from mlv.objects import hashing

MLV_DIR = ".mlv"  # mlv.core.repo's (which imports this module)


def link_error(rel: str, link_rel: str, root: str, force: bool = False) -> WorkspaceError:
    """The one-line refusal: rel is what mlv was to write, link_rel the link on its way
    (or rel itself). force: the hint offers --force, which replaces the link itself."""
    try:
        to = os.readlink(os.path.join(root, link_rel))
    except OSError:
        to = "?"
    named = f"'{rpath(link_rel)}' is a symbolic link" if link_rel != rel else "is a symbolic link"
    shown = rpath(link_rel)
    remove = f"remove the link (`git rm -f {shown}`, or `rm {shown}` if git does not track it)"
    if force:
        hint = f"{remove}, or use --force to replace the link (never what it points to)"
    elif link_rel.split("/")[0] == MLV_DIR:
        hint = f"{remove}; mlv makes its own folders again"
    else:
        hint = f"{remove} or move the pointer"
    return WorkspaceError(
        f"{rpath(rel)}: {named} (to {to}): mlv does not write through links", hint
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


def check_own_folders(root: str, cache_dir: str | None = None) -> None:
    """Refuse symbolic links where mlv keeps its own files inside the repository: .mlv,
    .mlv/tmp (lock, state database), and, for a cache inside the repository, its algorithm
    and shard folders, where a committed link (`.mlv/cache/xxh128/ab -> ~/.bashrc.d`)
    would have a pull write objects outside. The cache folder itself may be a link the
    user made (to a larger disk), but not one that git tracks. A few lstat calls and one
    listing per algorithm; git is asked only when the cache folder is a link."""
    for rel in (MLV_DIR, f"{MLV_DIR}/tmp"):
        if is_link(root, rel):
            raise link_error(rel, rel, root)
    if cache_dir is None:
        return
    inside = os.path.relpath(cache_dir, root)
    if inside == os.curdir or inside.startswith(os.pardir) or os.path.isabs(inside):
        return  # this machine's config chose it: no commit can put links there
    inside = inside.replace(os.sep, "/")
    Guard(root).parents(inside)
    scm = git.dot_git(root) is not None  # a work tree's root or a folder below it
    if is_link(root, inside) and scm and git.tracked(root, [inside]):
        raise link_error(inside, inside, root)
    for sub in (*hashing.ALGORITHMS, "tmp", "runs"):
        if is_link(cache_dir, sub):
            raise link_error(f"{inside}/{sub}", f"{inside}/{sub}", root)
    for algo in hashing.ALGORITHMS:
        try:
            with os.scandir(os.path.join(cache_dir, algo)) as shards:
                for shard in shards:
                    if shard.is_symlink():
                        rel = f"{inside}/{algo}/{shard.name}"
                        raise link_error(rel, rel, root)
        except (FileNotFoundError, NotADirectoryError):
            pass
