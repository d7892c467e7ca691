"""Loaded by Python at start-up in the commands of mlv's pipeline stages (mlv puts this
folder first on PYTHONPATH; mlv/core/pipeline/stage_env.py says why).

When the stage imports dvclive, its `get_dvc_repo` is replaced by one that finds no DVC
repository, so that `Live()` logs to its folder without running `dvc init` in the user's
git repository. Nothing else is touched; the sitecustomize this file shadows (a virtual
environment's, a distribution's) still runs.
"""

from __future__ import annotations

import importlib
import importlib.abc
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
_TARGET = "dvclive.dvc"


def _no_dvc_repo() -> None:
    return None


class _DvcliveFinder(importlib.abc.MetaPathFinder):
    """Finds dvclive.dvc as the other finders do, and patches it once it has run."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != _TARGET:
            return None
        others = [f for f in sys.meta_path if f is not self]
        for finder in others:
            find = getattr(finder, "find_spec", None)
            spec: ModuleSpec | None = find(name, path, target) if find is not None else None
            if spec is not None:
                break
        else:
            return None
        loader: Any = spec.loader
        run = getattr(loader, "exec_module", None)
        if run is None:
            return spec

        def exec_module(module: ModuleType) -> None:
            run(module)
            module.get_dvc_repo = _no_dvc_repo  # type: ignore[attr-defined]

        loader.exec_module = exec_module
        return spec


def _run_shadowed() -> None:
    """Import the next sitecustomize on sys.path, as Python would have without this one.
    This folder leaves sys.path for good (nothing else here is imported; PYTHONPATH still
    names it for child processes), so that what that sitecustomize does to sys.path (an
    entry added, as sitecustomize files are written for) stays as it did it."""
    mine = sys.modules.pop("sitecustomize", None)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    try:
        importlib.import_module("sitecustomize")
    except ImportError as e:
        if e.name != "sitecustomize":
            raise
        if mine is not None:
            sys.modules["sitecustomize"] = mine


if "dvclive.dvc" not in sys.modules:
    sys.meta_path.insert(0, _DvcliveFinder())
_run_shadowed()
