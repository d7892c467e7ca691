"""`mlv://`: an fsspec filesystem over a repository at a revision.

    import pandas as pd
    df = pd.read_csv("mlv://data/train.csv", storage_options={"repo": ".", "rev": "v1.0"})

    import fsspec
    fs = fsspec.filesystem("mlv", repo="https://github.com/org/project", rev="main")
    fs.ls("data")

Registered with fsspec through the `fsspec.specs` entry point. Paths are relative to the
repository root. Read-only: files are served from the cache (fetched and verified first).
The one module outside mlv/storage that imports fsspec: it adapts a View to fsspec's API.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fsspec.spec import AbstractFileSystem

from mlv.core.view import Node, View

_KIND = {"file": "file", "dir": "directory"}


class MlvFileSystem(AbstractFileSystem):  # type: ignore[misc]
    protocol = "mlv"
    cachable = False  # a workspace view or a branch name can move: always build afresh
    root_marker = ""

    def __init__(
        self,
        repo: str | None = None,
        rev: str | None = None,
        remote: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from mlv.api import view_of

        self._stack = contextlib.ExitStack()
        self.view: View = self._stack.enter_context(view_of(repo, rev, remote))

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        path = path[len("mlv://") :] if path.startswith("mlv://") else path
        return path.strip("/")

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        nodes = self.view.ls(self._strip_protocol(path))
        if detail:
            return [_info(n) for n in nodes]
        return [n.path for n in nodes]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        from mlv.errors import UsageError

        try:
            return _info(self.view.info(self._strip_protocol(path)))
        except UsageError as e:
            raise FileNotFoundError(path) from e

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:
        if mode != "rb":
            raise PermissionError("mlv:// is read-only")
        return self.view.open(self._strip_protocol(path))

    def close(self) -> None:
        self._stack.close()


def _info(node: Node) -> dict[str, Any]:
    return {
        "name": node.path,
        "size": node.size if node.size is not None else 0,
        "type": _KIND[node.kind],
        "hash": node.hash,
        "tracked": node.tracked,
    }
