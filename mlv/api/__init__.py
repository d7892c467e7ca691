"""Read versioned data from Python without checking it out.

    import mlv.api
    with mlv.api.open("data/train.csv", rev="v1.0", mode="r") as f:
        header = f.readline()
    weights = mlv.api.read("models/model.pt", repo="https://github.com/org/project")

`repo` is a local repository path (default: the one around the current folder) or any git
URL; `rev` a commit, branch or tag (default: the workspace's pointers for a local
repository, the default branch for a URL). Objects come from the cache when it has them,
else from `remote` (default: the repository's default remote); everything is checked
against its hash before it is returned. `mlv.api.fs.MlvFileSystem` (the `mlv://` protocol
for fsspec, pandas, pyarrow...) serves the same paths.

Errors are `mlv.errors.MlvError` (message and hint), as on the command line.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from mlv.core.view import Node, View

__all__ = ["Node", "get_url", "ls", "open", "read"]


@contextmanager
def view_of(
    repo: str | None = None, rev: str | None = None, remote: str | None = None
) -> Iterator[View]:
    """A View of a repository at a revision, closed (remote, temporary cache) on exit."""
    from mlv.core.repo import MLV_DIR, Repo, find_root

    if repo is None or os.path.isdir(os.path.join(repo, MLV_DIR)):
        local = Repo(find_root(repo or os.getcwd()))
        try:
            view = View.of_repo(local, rev, remote)
            try:
                yield view
            finally:
                view.close()
        finally:
            local.close()
        return
    from mlv.core.external import open_source
    from mlv.errors import NotARepoError, UsageError

    if remote is not None:
        raise UsageError(
            "remote= applies to local repositories",
            "another repository's objects come from its own default remote",
        )
    try:
        here: Repo | None = Repo(find_root(os.getcwd()))
    except NotARepoError:
        here = None  # objects go through a temporary cache
    try:
        with open_source(repo, rev, here.cache if here else None) as source:
            yield source.view
    finally:
        if here is not None:
            here.close()


def open(  # the name users expect, like io.open
    path: str,
    repo: str | None = None,
    rev: str | None = None,
    remote: str | None = None,
    mode: str = "rb",
    encoding: str | None = None,
) -> IO[Any]:
    """A tracked file of any revision, opened for reading ("rb" or "r").

    The object is brought into the cache (from the remote if needed, verified) and opened
    there; use it as a context manager. A plain file git tracks can be opened too.
    """
    if mode not in ("r", "rb", "rt"):
        raise ValueError(f"mode {mode!r}: mlv.api.open only reads ('r' or 'rb')")
    with view_of(repo, rev, remote) as view:
        binary = view.open(_clean(path))
    if mode == "rb":
        return binary
    return io.TextIOWrapper(binary, encoding=encoding or "utf-8")


def read(
    path: str,
    repo: str | None = None,
    rev: str | None = None,
    remote: str | None = None,
    mode: str = "r",
    encoding: str | None = None,
) -> Any:
    """The whole content of a tracked file: str for mode "r", bytes for "rb"."""
    with open(path, repo, rev, remote, mode, encoding) as f:
        return f.read()


def get_url(
    path: str, repo: str | None = None, rev: str | None = None, remote: str | None = None
) -> str:
    """Where the object of a tracked file (or a directory's tree) lives on the remote: the
    URL of its own key (a loose object: files of the remote's pack_threshold or more).

    Nothing is downloaded and a loose object's presence is not checked; credentials are not
    part of the URL. An object stored inside a pack has no URL of its own: UsageError,
    naming the pack and the byte range (read it with `mlv.api.open`).
    """
    from mlv.errors import UsageError
    from mlv.objects.remote import key_of

    with view_of(repo, rev, remote) as view:
        node = view.info(_clean(path))
        if node.hash is None:
            raise UsageError(f"{path}: not data tracked by mlv", "get_url needs a tracked path")
        store = view.objects.remote()
        if store is None:
            raise UsageError("no remote is configured", "pass remote=NAME or set a default remote")
        packed = store.packed_at(node.hash)
        if packed is not None:
            raise UsageError(
                f"{path}: stored inside {packed} on remote '{store.name}', with no URL of its own",
                "read it with mlv.api.open or mlv.api.read",
            )
        return f"{store.url.rstrip('/')}/{key_of(node.hash)}"


def ls(
    path: str = "",
    repo: str | None = None,
    rev: str | None = None,
    recursive: bool = False,
    remote: str | None = None,
) -> list[dict[str, Any]]:
    """Entries at path: dicts with path, kind (file|dir), tracked (mlv|git|folder), size,
    files and hash, as `mlv ls --json` prints them."""
    with view_of(repo, rev, remote) as view:
        where = _clean(path)
        nodes = list(view.walk(where)) if recursive else view.ls(where)
    return [
        {
            "path": n.path,
            "kind": n.kind,
            "tracked": n.tracked,
            "size": n.size,
            "files": n.files,
            "hash": n.hash,
        }
        for n in nodes
    ]


def _clean(path: str) -> str:
    return path.replace(os.sep, "/").strip("/") if path not in ("", ".", "/") else ""
