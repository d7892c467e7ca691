"""The run cache: what each run of a stage produced, keyed by exactly what it ran with.

`mlv repro` keeps, for each run of a stage, a small JSON entry at <cache>/runs/KEY[:2]/KEY[2:]
naming the objects the run produced: {"version": 1, "outs": [{"path", "hash", "size",
"files"?}], "metrics": [...]}. KEY is the xxh128 of a canonical JSON of the stage's command,
the path and hash of each dep, its param values and its outs' paths and cache flags: the
same inputs give the same key on any machine, so an entry pushed with `--run-cache` serves
a teammate's `repro`. A remote holds entries at the same keys. An entry goes into the cache
only once every object it names is there, and onto a remote only after those objects.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, TypeGuard

from mlv.objects import hashing
from mlv.objects import tree as tree_mod
from mlv.objects.store import Cache
from mlv.objects.tree import Entry
from mlv.util import localfs

RUNS = "runs"
RUN_ENTRY_VERSION = 1
_RUN_PART = re.compile(r"[A-Za-z0-9_-]+")


def run_key(
    cmd: str,
    deps: list[tuple[str, str]],
    params: dict[str, dict[str, Any]],
    outs: list[tuple[str, bool]],
) -> str:
    """The key of a run: deps as (path, hash), params as file -> key -> value, outs as
    (path, cached). Order of deps, params and outs does not matter."""
    doc = {
        "cmd": cmd,
        "deps": sorted([p, h] for p, h in deps),
        "params": params,
        "outs": sorted([p, c] for p, c in outs),
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashing.hash_bytes("xxh128", text.encode()).partition(":")[2]


def run_key_of(key: str) -> str | None:
    """The run key of a `runs/XX/REST` key (None when key is not one)."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] != RUNS or len(parts[1]) != 2:
        return None
    if not (_RUN_PART.fullmatch(parts[1]) and _RUN_PART.fullmatch(parts[2])):
        return None
    return parts[1] + parts[2]


def run_entry_key(key: str) -> str:
    """Where the entry of run key lives, in the cache (below its root) and on a remote."""
    return f"{RUNS}/{key[:2]}/{key[2:]}"


def entry_path(cache: Cache, key: str) -> str:
    return os.path.join(cache.root, *run_entry_key(key).split("/"))


def local_runs(cache: Cache) -> dict[str, str]:
    """run key -> file of every run-cache entry in the cache."""
    found: dict[str, str] = {}
    base = os.path.join(cache.root, RUNS)
    try:
        with os.scandir(base) as it:
            shards = sorted(e.name for e in it if e.is_dir(follow_symlinks=False))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for shard in shards:
        with os.scandir(os.path.join(base, shard)) as it:
            for entry in it:
                key = run_key_of(f"{RUNS}/{shard}/{entry.name}")
                if key is not None and entry.is_file(follow_symlinks=False):
                    found[key] = entry.path
    return found


def parse_run_entry(data: bytes) -> list[tuple[str, Entry]] | None:
    """(path, object) for each out and metric a run-cache entry names; None when data is not
    an entry of a version this mlv reads."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested absurdly deep
        return None
    if not isinstance(doc, dict) or doc.get("version") != RUN_ENTRY_VERSION:
        return None
    found: list[tuple[str, Entry]] = []
    for section in ("outs", "metrics"):
        rows = doc.get(section, [])
        if not isinstance(rows, list):
            return None
        for row in rows:
            if not isinstance(row, dict):
                return None
            path, hash_id = row.get("path"), row.get("hash")
            size, files = row.get("size"), row.get("files")
            if not isinstance(path, str) or not isinstance(hash_id, str):
                return None
            if not hashing.is_hash(hash_id) or not _count(size):
                return None
            if files is not None and not _count(files):
                return None
            kind = tree_mod.FILE if files is None else tree_mod.DIR
            name = path.rpartition("/")[2]
            found.append((path, Entry(kind, name, hash_id, size, 1 if files is None else files)))
    return found


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read(cache: Cache, key: str) -> list[tuple[str, Entry]] | None:
    """The outs of the entry for key in the cache; None when there is none (or unreadable)."""
    try:
        with open(entry_path(cache, key), "rb") as fh:
            return parse_run_entry(fh.read())
    except OSError:
        return None


def write(
    cache: Cache, key: str, outs: list[dict[str, Any]], metrics: list[dict[str, Any]]
) -> None:
    """Record a run (its objects must be in the cache already); read-only, atomic."""
    doc = {"version": RUN_ENTRY_VERSION, "outs": outs, "metrics": metrics}
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    path = entry_path(cache, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    localfs.write_bytes_atomic(path, data, 0o444)
