"""Every `--json` example in docs/commands.md and docs/remotes.md has the keys that the
command really prints, and no fewer: each example is parsed and compared, key by key and
level by level, with the output of the command it documents, run where that output has
the example's parts (lists that are not empty where the example's are not).

A new example in those pages fails test_every_example_is_checked until it has a runner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import commit_all, git, mlv, object_path, remove_remote_object, write_files, xxh

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("commands.md", "remotes.md")

# Keys whose values are mappings keyed by the user's data (file names, option names,
# param keys): their own keys are not part of the shape.
FREE = {"options", "params", "metrics", "errors", "corrupt_objects", "corrupt_hashes"}
FREE |= {"unreadable"}


def examples() -> dict[tuple[str, str, int], Any]:
    """(page, heading, n-th json block under it) -> the parsed example."""
    found: dict[tuple[str, str, int], Any] = {}
    for page in PAGES:
        text = (DOCS / page).read_text(encoding="utf-8")
        heading = ""
        count = 0
        pattern = r"^(#{2,4} [^\n]*)$|^```json\n(.*?)^```$"
        for m in re.finditer(pattern, text, re.M | re.S):
            if m.group(1):
                heading, count = m.group(1).lstrip("# ").strip(), 0
                continue
            block = m.group(2).strip()
            if block.startswith('"'):  # a fragment: one key of a bigger document
                block = "{" + block + "}"
            try:
                found[(page, heading, count)] = json.loads(block)
            except json.JSONDecodeError as e:
                raise AssertionError(f"{page}, {heading}: example is not JSON: {e}") from None
            count += 1
    return found


def compare(doc: Any, real: Any, where: str = "$") -> list[str]:
    """Where real differs in shape from doc: keys missing or extra, a mapping or list where
    the other has something else. Lists: every element of real against the first of doc,
    when both have one. null in doc stands for any value."""
    if doc is None:
        return []
    if isinstance(doc, dict):
        if not isinstance(real, dict):
            return [f"{where}: documented an object, got {type(real).__name__}"]
        if where.rsplit(".", 1)[-1] in FREE:
            return []
        problems = [f"{where}.{k}: documented, not printed" for k in doc.keys() - real.keys()]
        problems += [f"{where}.{k}: printed, not documented" for k in real.keys() - doc.keys()]
        for k in doc.keys() & real.keys():
            problems += compare(doc[k], real[k], f"{where}.{k}")
        return problems
    if isinstance(doc, list):
        if not isinstance(real, list):
            return [f"{where}: documented a list, got {type(real).__name__}"]
        if not doc:
            return []
        return [p for i, item in enumerate(real) for p in compare(doc[0], item, f"{where}[{i}]")]
    if isinstance(real, dict | list):
        return [f"{where}: documented a {type(doc).__name__}, got {type(real).__name__}"]
    return []


def test_compare_finds_differences() -> None:
    """The comparison itself can fail: a missing key, an extra key, a list for an object."""
    doc = {"a": 1, "b": [{"c": 1}], "options": {"x": 1}}
    assert compare(doc, {"a": 2, "b": [{"c": 3}], "options": {"y": 2}}) == []
    assert compare(doc, {"a": 2, "b": [{"d": 3}], "options": {}}) == [
        "$.b[0].c: documented, not printed",
        "$.b[0].d: printed, not documented",
    ]
    assert compare(doc, {"b": {}, "options": {}, "z": 0}) == [
        "$.a: documented, not printed",
        "$.z: printed, not documented",
        "$.b: documented a list, got dict",
    ]


# ---- scenarios ------------------------------------------------------------------------


def _json(*args: str, cwd: Path, ok: bool = True) -> Any:
    proc = mlv(*args, "--json", cwd=cwd, check=ok)
    return json.loads(proc.stdout)


def _project(repo: Path, tmp_path: Path, push: bool = True) -> Path:
    """data/ (two subfolders), model.bin and params.yaml, committed; remote 'store' the
    default, pushed to unless push is False. Returns the remote's folder."""
    write_files(
        repo,
        {
            "data/images/cats/c1.jpg": "cat 1",
            "data/images/cats/c2.jpg": "cat 2",
            "data/images/dogs/d1.jpg": "dog 1",
            "data/labels.csv": "a,b\n",
            "model.bin": "model v1",
            "params.yaml": "train:\n  lr: 0.1\n",
            "metrics.json": '{"accuracy": 0.9}',
        },
    )
    mlv("add", "data", "model.bin", cwd=repo)
    store = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(store), cwd=repo)
    commit_all(repo, "v1")
    if push:
        mlv("push", cwd=repo)
    return store


def run_add(repo: Path, tmp_path: Path) -> Any:
    write_files(repo, {"model.pt": "weights"})
    return _json("add", "model.pt", cwd=repo)


def run_status(repo: Path, tmp_path: Path) -> Any:
    _project(repo, tmp_path, push=False)
    write_files(repo, {"data/images/cats/c1.jpg": "changed", "data/images/cats/c9.jpg": "new"})
    (repo / "data/images/dogs/d1.jpg").unlink()
    return _json("status", cwd=repo)


def run_status_remote(repo: Path, tmp_path: Path) -> Any:
    _project(repo, tmp_path, push=False)
    return _json("status", "--remote", "store", cwd=repo)


def run_verify(repo: Path, tmp_path: Path) -> Any:
    store = _project(repo, tmp_path)
    remove_remote_object(store, xxh(b"dog 1"))
    return _json("verify", "--workspace", "--cache", "--remote", "--full", cwd=repo, ok=False)


def run_checkout(repo: Path, tmp_path: Path) -> Any:
    _project(repo, tmp_path, push=False)
    (repo / "data/images/cats/c1.jpg").unlink()
    write_files(repo, {"data/images/cats/c2.jpg": "not in the cache"})
    return _json("checkout", cwd=repo, ok=False)


def run_remote_list(repo: Path, tmp_path: Path) -> Any:
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=repo)
    mlv("remote", "modify", "store", "jobs", "4", cwd=repo)
    return json.loads(mlv("remote", "list", "--json", cwd=repo).stdout)


def run_repack(repo: Path, tmp_path: Path) -> Any:
    store = tmp_path / "store"
    write_files(repo, {"data/a": "a", "data/b": "b"})
    mlv("add", "data", cwd=repo)
    mlv("remote", "add", "-d", "store", str(store), cwd=repo)
    mlv("remote", "modify", "store", "pack_threshold", "0", cwd=repo)
    mlv("push", cwd=repo)
    mlv("remote", "modify", "store", "pack_threshold", "4MiB", cwd=repo)
    return _json("remote", "repack", "store", cwd=repo)


def run_push(repo: Path, tmp_path: Path) -> Any:
    _project(repo, tmp_path, push=False)
    return _json("push", cwd=repo)


def run_push_failed(repo: Path, tmp_path: Path) -> Any:
    """A push that cannot send a file (not in the cache), so not its folder's tree either."""
    _project(repo, tmp_path, push=False)
    object_path(repo, xxh(b"dog 1")).unlink()
    return _json("push", cwd=repo, ok=False)


def run_run_cache(repo: Path, tmp_path: Path) -> Any:
    _project(repo, tmp_path, push=False)
    return {"run_cache": _json("push", "--run-cache", cwd=repo)["run_cache"]}


def run_pull(repo: Path, tmp_path: Path) -> Any:
    _project(repo, tmp_path)
    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    return _json("pull", "model.bin", cwd=clone)


def run_diff(repo: Path, tmp_path: Path) -> Any:
    _project(repo, tmp_path, push=False)
    (repo / "data/images/cats/c1.jpg").unlink()
    write_files(repo, {"data/images/cats/c3.jpg": "cat 3", "model.bin": "model v2"})
    (repo / "data/labels.csv").rename(repo / "data/labels2.csv")
    mlv("add", "data", "model.bin", cwd=repo)
    return _json("diff", "HEAD", cwd=repo)


def run_gc(repo: Path, tmp_path: Path) -> Any:
    _project(repo, tmp_path, push=False)
    write_files(repo, {"model.bin": "model v2"})
    mlv("add", "model.bin", cwd=repo)
    return _json("gc", "-w", cwd=repo)


def run_params_diff(repo: Path, tmp_path: Path) -> Any:
    _project(repo, tmp_path, push=False)
    write_files(repo, {"params.yaml": "train:\n  lr: 0.3\n"})
    return _json("params", "diff", cwd=repo)


def run_exp_show(repo: Path, tmp_path: Path) -> Any:
    _project(repo, tmp_path, push=False)
    write_files(
        repo, {"mlv.yaml": "stages:\n  train:\n    cmd: 'true'\n    metrics: [metrics.json]\n"}
    )
    commit_all(repo, "stages")
    return _json("exp", "show", cwd=repo)


def run_plots(repo: Path, tmp_path: Path) -> Any:
    write_files(
        repo,
        {
            "mlv.yaml": "plots:\n  - logs/loss.csv\n  - confusion.png\n  - roc.json\n",
            "logs/loss.csv": "step,loss\n0,1.0\n1,0.5\n",
            "confusion.png": b"\x89PNG\r\n\x1a\n",
            "roc.json": "{not json",
        },
    )
    commit_all(repo, "plots")
    return _json("plots", "diff", cwd=repo)


RUNNERS: dict[tuple[str, str, int], Callable[[Path, Path], Any]] = {
    ("commands.md", "`mlv add`", 0): run_add,
    ("commands.md", "`mlv status`", 0): run_status,
    ("commands.md", "status --remote", 0): run_status_remote,
    ("commands.md", "`mlv verify`", 0): run_verify,
    ("commands.md", "`mlv checkout`", 0): run_checkout,
    ("commands.md", "`mlv remote`", 0): run_remote_list,
    ("commands.md", "`mlv remote repack`", 0): run_repack,
    ("commands.md", "`mlv push`", 0): run_push,
    ("commands.md", "`mlv pull`", 0): run_pull,
    ("commands.md", "`mlv diff`", 0): run_diff,
    ("commands.md", "`mlv gc`", 0): run_gc,
    ("commands.md", "`mlv params diff`", 0): run_params_diff,
    ("commands.md", "`mlv exp show`", 0): run_exp_show,
    ("commands.md", "`mlv plots`", 0): run_plots,
    ("remotes.md", "`--json` output", 0): run_push_failed,
    ("remotes.md", "`--json` output", 1): run_run_cache,
    ("remotes.md", "`--json` output", 2): run_status_remote,
}


def test_every_example_is_checked() -> None:
    unchecked = sorted(set(examples()) - set(RUNNERS))
    assert not unchecked, f"--json examples without a runner in this file: {unchecked}"


@pytest.mark.parametrize("key", sorted(RUNNERS), ids=lambda k: f"{k[0]}:{k[1]}:{k[2]}")
def test_example_matches_output(key: tuple[str, str, int], mlv_repo: Path, tmp_path: Path) -> None:
    doc = examples()[key]
    real = RUNNERS[key](mlv_repo, tmp_path)
    assert compare(doc, real) == [], json.dumps(real, indent=1)
