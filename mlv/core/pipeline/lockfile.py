"""mlv.lock: what each stage last ran with and produced, committed next to mlv.yaml.

    version: 1
    stages:
      train:
        cmd: python train.py
        deps:
        - path: data/prepared
          hash: xxh128:...
          size: 52428800
          files: 1000
        params:
          params.yaml:
            train.lr: 0.1
        outs:
        - path: model.bin
          hash: xxh128:...
          size: 1048576
        - path: summary.txt             # an out git tracks (`cache: false` in mlv.yaml)
          hash: xxh128:...
          size: 120
          cache: false                  # absent: cached
        metrics:
        - path: metrics.json
          hash: xxh128:...
          size: 61

Paths are repository-relative. A stage is up to date when its command, the hashes of its
deps, its param values (type included: 0 is not false) and the hashes and cache flags of its
outs are what this file records. mlv writes
it whole, atomically, in a fixed order, so that a `git diff` of it reads well; mlv refuses a
newer version rather than rewrite it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from mlv import yamlio
from mlv.core.pipeline import params as params_mod
from mlv.core.pipeline.spec import LOCK_FILE
from mlv.errors import PipelineError, rpath
from mlv.objects import hashing

LOCK_VERSION = 1
_FIX = "restore it with git, or delete it and run `mlv repro`"


@dataclass(frozen=True)
class Recorded:
    """A dep or out as it was: its hash (a file's, or a directory's top tree), size, files."""

    path: str
    hash: str
    size: int
    files: int | None = None  # directories only
    cache: bool = True  # outs only: False for an out git tracks (`cache: false`)

    @property
    def kind(self) -> str:
        return "file" if self.files is None else "dir"

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": self.path, "hash": self.hash, "size": self.size}
        if self.files is not None:
            doc["files"] = self.files
        if not self.cache:
            doc["cache"] = False
        return doc


@dataclass(frozen=True, eq=False)
class LockedStage:
    cmd: str
    deps: tuple[Recorded, ...] = ()
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # file -> key -> value
    outs: tuple[Recorded, ...] = ()
    metrics: tuple[Recorded, ...] = ()

    def __eq__(self, other: object) -> bool:
        """Equal when mlv.lock would say the same: param values compare by type and value
        (params.canonical: 0 is not False, NaN is NaN), not by Python's ==."""
        if not isinstance(other, LockedStage):
            return NotImplemented
        return (
            self.cmd == other.cmd
            and self.deps == other.deps
            and self.outs == other.outs
            and self.metrics == other.metrics
            and same_params(self.params, other.params)
        )

    __hash__ = None  # type: ignore[assignment]  # holds a dict: not hashable

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"cmd": self.cmd}
        if self.deps:
            doc["deps"] = [d.to_dict() for d in self.deps]
        if self.params:
            doc["params"] = {f: dict(sorted(v.items())) for f, v in sorted(self.params.items())}
        if self.outs:
            doc["outs"] = [o.to_dict() for o in self.outs]
        if self.metrics:
            doc["metrics"] = [m.to_dict() for m in self.metrics]
        return doc


def same_params(a: dict[str, dict[str, Any]], b: dict[str, dict[str, Any]]) -> bool:
    """Two `params` sections (file -> key -> value) hold the same values, type included."""
    return params_mod.canonical(a) == params_mod.canonical(b)


@dataclass
class Lock:
    stages: dict[str, LockedStage] = field(default_factory=dict)


def load(root: str) -> Lock:
    """The lock of the repository at root; empty when there is none."""
    text = read_bytes(root)
    return Lock() if text is None else parse(text, rpath(LOCK_FILE))


def read_bytes(root: str) -> bytes | None:
    """mlv.lock's bytes as they are on disk, None when there is none."""
    try:
        from mlv.core.workspace import refuse_link_out
        from mlv.util import localfs

        refuse_link_out(root, LOCK_FILE)  # a clone's mlv.lock -> a file of the user's
        return localfs.read_small(os.path.join(root, LOCK_FILE))
    except FileNotFoundError:
        return None


def parse(text: str | bytes, where: str = LOCK_FILE) -> Lock:
    try:
        doc = yamlio.loads(text)
    except yamlio.LimitError as e:
        raise PipelineError(f"{where}: {e}", _FIX) from None
    except yamlio.YAMLError:
        raise PipelineError(f"{where} is not valid YAML", _FIX) from None
    if doc is None:
        return Lock()
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):
        raise PipelineError(f"{where}: not an mlv lock file (no `version`)", _FIX)
    if doc["version"] > LOCK_VERSION:
        raise PipelineError(
            f"{where}: lock format version {doc['version']} is newer than this mlv "
            f"understands (version {LOCK_VERSION})",
            "upgrade mlv",
        )
    stages_doc = doc.get("stages") or {}
    if not isinstance(stages_doc, dict):
        raise PipelineError(f"{where}: `stages` must be a mapping", _FIX)
    stages = {}
    for name, body in stages_doc.items():
        stages[str(name)] = _stage(body, f"{where}: stage '{name}'")
    return Lock(stages)


def _stage(body: Any, at: str) -> LockedStage:
    if not isinstance(body, dict) or not isinstance(body.get("cmd"), str):
        raise PipelineError(f"{at}: malformed (no `cmd`)", _FIX)
    params = body.get("params") or {}
    if not isinstance(params, dict) or not all(isinstance(v, dict) for v in params.values()):
        raise PipelineError(f"{at}: `params` must map files to key: value", _FIX)
    return LockedStage(
        body["cmd"],
        tuple(_recorded(d, at) for d in _entries(body, "deps", at)),
        {str(f): dict(v) for f, v in params.items()},
        tuple(_recorded(o, at) for o in _entries(body, "outs", at)),
        tuple(_recorded(m, at) for m in _entries(body, "metrics", at)),
    )


def _entries(body: dict[str, Any], key: str, at: str) -> list[Any]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise PipelineError(f"{at}: `{key}` must be a list", _FIX)
    return value


def _recorded(doc: Any, at: str) -> Recorded:
    if not isinstance(doc, dict):
        raise PipelineError(f"{at}: malformed entry {doc!r}", _FIX)
    path, hash_id, size = doc.get("path"), doc.get("hash"), doc.get("size")
    files = doc.get("files")
    if (
        not isinstance(path, str)
        or not hashing.is_hash(hash_id)
        or not isinstance(size, int)
        or isinstance(size, bool)
        or not (files is None or (isinstance(files, int) and not isinstance(files, bool)))
    ):
        raise PipelineError(f"{at}: malformed entry for {path!r}", _FIX)
    cache = doc.get("cache", True)
    if not isinstance(cache, bool):
        raise PipelineError(f"{at}: `cache` of {path!r} must be true or false", _FIX)
    return Recorded(path, str(hash_id), size, files, cache)


def dumps(lock: Lock) -> str:
    return Renderer().render(lock)


class Renderer:
    """Renders mlv.lock, re-rendering only the stages that changed since its last call: a
    run rewrites the lock after every stage, and dumping all of it each time made a run of
    a thousand stages spend minutes in the YAML emitter. Each stage is dumped on its own,
    2 columns narrower, and indented under `stages:`: the same text as one dump of the
    whole document (tests/unit/test_lockfile.py compares them)."""

    def __init__(self) -> None:
        self._memo: dict[str, tuple[LockedStage, str]] = {}

    def render(self, lock: Lock) -> str:
        head = yamlio.dumps({"version": LOCK_VERSION})
        if not lock.stages:
            return head + "stages: {}\n"
        parts = [head, "stages:\n"]
        for name, stage in lock.stages.items():
            known = self._memo.get(name)
            if known is None or known[0] != stage:
                text = yamlio.dumps({name: stage.to_dict()}, width=78)
                lines = text.splitlines(keepends=True)
                known = (stage, "".join(line if line == "\n" else "  " + line for line in lines))
                self._memo[name] = known
            parts.append(known[1])
        return "".join(parts)


def write(
    root: str, lock: Lock, order: list[str] | None = None, renderer: Renderer | None = None
) -> bytes:
    """Write mlv.lock atomically; stages in `order` (mlv.yaml's) first, the rest after.
    Returns the bytes written. A renderer kept between writes makes each one cheap."""
    from mlv.util import localfs

    if order is not None:
        ranked = [n for n in order if n in lock.stages]
        ranked += [n for n in lock.stages if n not in ranked]
        lock = Lock({n: lock.stages[n] for n in ranked})
    data = (renderer or Renderer()).render(lock).encode("utf-8")
    localfs.write_bytes_atomic(os.path.join(root, LOCK_FILE), data)
    return data
