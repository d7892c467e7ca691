"""Stage outputs as tracked data, with real git: mlv.lock records the cached outs of each
stage where a pointer file would, and status, checkout, push, pull, gc, diff, log and ls
see them; commands that write pointers refuse them; `--run-cache` moves run-cache entries.

mlv.yaml and mlv.lock are written by hand here (not by `mlv repro`): the objects they name
get into the cache through `mlv add` followed by `mlv rm`, which leaves the data and the
cache objects in place.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import (
    assert_error,
    commit_all,
    git,
    mlv,
    object_path,
    read_pointer,
    remote_objects,
    snapshot,
    status_json,
    write_files,
    xxh,
)
from prebuilt import Prebuilt, make_mlv_repo

PIPELINE = {
    "stages": {
        "train": {
            "cmd": "python train.py",
            "deps": ["train.py"],
            "outs": ["model.bin", "out", {"notes.txt": {"cache": False}}],
            "metrics": ["metrics.json"],
        }
    }
}

V1: dict[str, bytes | str | None] = {
    "model.bin": b"weights v1",
    "out/a.txt": b"a v1",
    "out/b.txt": b"b v1",
    "out/sub/c.txt": b"c v1",
}
V2: dict[str, bytes | str | None] = {
    "model.bin": b"weights v2",
    "out/a.txt": b"a v2",
    "out/b.txt": b"b v1",
    "out/sub/c.txt": b"c v1",
    "out/sub/d.txt": b"d v2",
}


def recorded(repo: Path, paths: list[str]) -> list[dict[str, Any]]:
    """Store the workspace's paths in the cache (mlv add, then mlv rm: data and objects
    stay) and return them as mlv.lock records them. mlv.yaml and mlv.lock step aside
    meanwhile: add refuses the outs they name."""
    aside = [p for p in (repo / "mlv.yaml", repo / "mlv.lock") if p.exists()]
    for p in aside:
        p.rename(p.with_name(p.name + ".aside"))
    mlv("add", *paths, cwd=repo)
    found = []
    for path in paths:
        doc = read_pointer(repo / f"{path}.mlv")
        row = {"path": path, "hash": doc["hash"], "size": doc["size"]}
        if doc["kind"] == "dir":
            row["files"] = doc["files"]
        found.append(row)
    mlv("rm", *paths, cwd=repo)
    for p in aside:
        p.with_name(p.name + ".aside").rename(p)
    return found


def write_lock(repo: Path, outs: list[dict[str, Any]]) -> None:
    notes = (repo / "notes.txt").read_bytes()
    metrics = (repo / "metrics.json").read_bytes()
    lock = {
        "version": 1,
        "stages": {
            "train": {
                "cmd": "python train.py",
                "deps": [{"path": "train.py", "hash": xxh(b"print(1)\n"), "size": 9}],
                "outs": [
                    *outs,
                    {"path": "notes.txt", "hash": xxh(notes), "size": len(notes)},
                ],
                "metrics": [{"path": "metrics.json", "hash": xxh(metrics), "size": len(metrics)}],
            }
        },
    }
    (repo / "mlv.lock").write_text(yaml.safe_dump(lock, sort_keys=False), encoding="utf-8")


def produce(repo: Path, files: dict[str, bytes | str | None]) -> list[dict[str, Any]]:
    """What a run of stage train would leave: its outs in the workspace and the cache,
    mlv.lock naming them, the cached outs ignored by git."""
    for path in ("model.bin", "out"):
        target = repo / path
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    write_files(repo, files)
    outs = recorded(repo, ["model.bin", "out"])
    write_lock(repo, outs)
    (repo / ".gitignore").write_text("/model.bin\n/out\n", encoding="utf-8")
    return outs


@pytest.fixture(scope="module")
def built_pipeline_repo(module_env: Path) -> Prebuilt:
    """A repository whose stage train has run once (committed), plus a pointer data.mlv."""
    mlv_repo = make_mlv_repo(module_env / "repo")
    write_files(
        mlv_repo,
        {
            "train.py": "print(1)\n",
            "notes.txt": "trained\n",
            "metrics.json": '{"acc": 0.9}\n',
            "data/raw.csv": "x,y\n",
        },
    )
    (mlv_repo / "mlv.yaml").write_text(yaml.safe_dump(PIPELINE), encoding="utf-8")
    mlv("add", "data", cwd=mlv_repo)
    produce(mlv_repo, V1)
    commit_all(mlv_repo, "stage train, run 1")
    return Prebuilt(module_env)


@pytest.fixture
def pipeline_repo(built_pipeline_repo: Prebuilt, tmp_path: Path) -> Path:
    """built_pipeline_repo, copied for each test to tmp_path/repo."""
    return built_pipeline_repo.copy_into(tmp_path) / "repo"


def targets_of(repo: Path, *paths: str) -> dict[str, dict[str, Any]]:
    return {t["path"]: t for t in status_json(repo, *paths)["targets"]}


def test_lock_file_names_agree_with_the_pipeline_module() -> None:
    from mlv.core import targets
    from mlv.core.pipeline import spec

    assert (targets.LOCK_FILE, targets.PIPELINE_FILE) == (spec.LOCK_FILE, spec.PIPELINE_FILE)


# ---- status and checkout ----------------------------------------------------------------


def test_status_shows_cached_outs_with_mlv_lock_as_their_pointer(pipeline_repo: Path) -> None:
    repo = pipeline_repo
    found = targets_of(repo)
    assert set(found) == {"data", "model.bin", "out"}  # not notes.txt (cache: false), metrics
    assert found["model.bin"]["pointer"] == "mlv.lock"
    assert found["out"]["pointer"] == "mlv.lock"
    assert all(t["status"] == "clean" for t in found.values())
    assert git("status", "--porcelain", cwd=repo).stdout == ""  # outs are ignored by git

    (repo / "out/a.txt").write_bytes(b"edited")
    (repo / "out/sub/c.txt").unlink()
    (repo / "model.bin").unlink()
    found = targets_of(repo)
    assert found["out"]["status"] == "modified"
    assert found["out"]["modified"] == ["out/a.txt"]
    assert found["out"]["deleted"] == ["out/sub/c.txt"]
    assert found["model.bin"]["status"] == "missing"
    assert found["data"]["status"] == "clean"
    assert set(targets_of(repo, "out/sub")) == {"out/sub"}
    assert set(targets_of(repo, "mlv.lock")) == {"model.bin", "out"}
    text = mlv("status", cwd=repo).stdout
    assert "missing      model.bin" in text and "modified     out" in text


def snapshot_of(files: dict[str, bytes | str | None], top: str) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for path, content in files.items():
        if not path.startswith(top + "/"):
            continue
        rel = path[len(top) + 1 :]
        parts = rel.split("/")
        for i in range(1, len(parts)):
            out["/".join(parts[:i])] = "<dir>"
        assert isinstance(content, bytes)
        out[rel] = content
    return out


def test_checkout_restores_outs_and_keeps_unsaved_edits(pipeline_repo: Path) -> None:
    repo = pipeline_repo
    (repo / "model.bin").unlink()
    shutil.rmtree(repo / "out/sub")
    (repo / "out/a.txt").write_bytes(b"unsaved")
    proc = mlv("checkout", cwd=repo, check=False)
    assert proc.returncode == 1  # the unsaved edit is listed and left alone
    assert "out/a.txt" in proc.stdout + proc.stderr
    assert (repo / "model.bin").read_bytes() == b"weights v1"
    assert (repo / "out/sub/c.txt").read_bytes() == b"c v1"
    assert (repo / "out/a.txt").read_bytes() == b"unsaved"
    mlv("checkout", "--force", "out", cwd=repo)
    assert snapshot(repo / "out") == snapshot_of(V1, "out")
    (repo / "model.bin").unlink()
    mlv("checkout", "mlv.lock", cwd=repo)  # naming the lock names every out it records
    assert (repo / "model.bin").read_bytes() == b"weights v1"


def test_a_malformed_lock_is_reported_like_a_broken_pointer(pipeline_repo: Path) -> None:
    repo = pipeline_repo
    (repo / "mlv.lock").write_text("version: 1\nstages:\n  train: [", encoding="utf-8")
    proc = mlv("status", "--json", cwd=repo, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    found = {t["path"]: t for t in json.loads(proc.stdout)["targets"]}
    assert found["mlv.lock"]["status"] == "error" and found["mlv.lock"]["pointer"] == "mlv.lock"
    assert found["data"]["status"] == "clean"
    mlv("checkout", "data", cwd=repo)  # a broken lock blocks only what needs it
    assert_error(mlv("checkout", cwd=repo, check=False), 1, "mlv.lock")
    assert_error(mlv("gc", "-w", cwd=repo, check=False), 1, "mlv.lock", "gc cannot tell")

    (repo / "mlv.lock").write_text(
        "version: 1\nstages:\n  train:\n    cmd: x\n    outs:\n"
        "    - {path: ../escape, hash: 'xxh128:00000000000000000000000000000000', size: 1}\n",
        encoding="utf-8",
    )
    assert_error(mlv("checkout", cwd=repo, check=False), 1, "mlv.lock", "../escape")
    (repo / "mlv.lock").write_text("version: 1\nstages:\n  train:\n    cmd: x\n    outs: 3\n")
    assert_error(mlv("status", "mlv.lock", cwd=repo, check=False), 1, "mlv.lock")


def test_an_out_no_longer_in_mlv_yaml_counts_as_cached(pipeline_repo: Path) -> None:
    repo = pipeline_repo
    (repo / "mlv.yaml").write_text("stages: {}\n", encoding="utf-8")
    assert set(targets_of(repo)) == {"data", "model.bin", "out", "notes.txt"}


# ---- commands that write pointers ---------------------------------------------------------


def test_add_rm_mv_refuse_stage_outs_commit_records_them_and_unprotect_works(
    pipeline_repo: Path,
) -> None:
    repo = pipeline_repo
    before = snapshot(repo)
    hint = "run `mlv commit` to record its changes in mlv.lock"
    assert_error(
        mlv("add", "model.bin", cwd=repo, check=False),
        2,
        "model.bin is an output of stage 'train' (mlv.lock)",
        hint,
    )
    assert_error(mlv("add", "out/sub", cwd=repo, check=False), 2, "inside out", hint)
    assert_error(mlv("add", "notes.txt", cwd=repo, check=False), 2, "stage 'train'", hint)
    assert_error(
        mlv("rm", "out", cwd=repo, check=False),
        2,
        "out is an output of stage 'train'",
        "remove it from the outs of stage 'train' in mlv.yaml",
    )
    assert_error(
        mlv("mv", "model.bin", "model2.bin", cwd=repo, check=False),
        2,
        "model.bin is an output of stage 'train'",
        "mlv.yaml",
    )
    assert snapshot(repo) == before  # nothing was written

    # a stage declared but never run: mlv.yaml names its outs
    doc = yaml.safe_load((repo / "mlv.yaml").read_text(encoding="utf-8"))
    doc["stages"]["eval"] = {"cmd": "python eval.py", "outs": ["eval.txt"]}
    (repo / "mlv.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    (repo / "eval.txt").write_text("x", encoding="utf-8")
    assert_error(
        mlv("add", "eval.txt", cwd=repo, check=False),
        2,
        "eval.txt is an output of stage 'eval' (mlv.yaml)",
        "mlv repro eval",
    )

    # commit of everything records a modified out in mlv.lock, as `dvc commit` does
    unchanged = json.loads(mlv("commit", "--json", "out", cwd=repo).stdout)
    assert [(r["path"], r["changed"]) for r in unchanged] == [("model.bin", False), ("out", False)]
    (repo / "out/a.txt").unlink()
    (repo / "out/a.txt").write_bytes(b"changed")
    (repo / "data/raw.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    done = json.loads(mlv("commit", "--json", cwd=repo).stdout)
    assert sorted(r["path"] for r in done if r["changed"]) == ["data", "out"]
    assert targets_of(repo)["out"]["status"] == "clean"
    assert (repo / "out/a.txt").read_bytes() == b"changed"

    mlv("config", "cache.type", "hardlink", cwd=repo)
    (repo / "model.bin").unlink()
    mlv("checkout", "model.bin", cwd=repo)
    assert os.stat(repo / "model.bin").st_nlink == 2
    mlv("unprotect", "model.bin", cwd=repo)
    assert os.stat(repo / "model.bin").st_nlink == 1
    (repo / "model.bin").write_bytes(b"editable")


# ---- remotes ------------------------------------------------------------------------------


def clone(repo: Path, where: Path) -> Path:
    git("clone", "-q", str(repo), str(where), cwd=repo.parent)
    return where


def test_push_and_pull_move_outs_to_a_fresh_clone(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = pipeline_repo
    store = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(store), cwd=repo)
    commit_all(repo, "remote")
    out = json.loads(mlv("push", "--json", cwd=repo).stdout)
    assert out["ok"] and out["transferred"]["objects"] > 0
    assert xxh(b"weights v1") in remote_objects(store)
    assert xxh(b"c v1") in remote_objects(store)
    status = json.loads(mlv("status", "--remote", "store", "--json", cwd=repo).stdout)
    assert status["pushed"] and {t["pointer"] for t in status["targets"]} >= {"mlv.lock"}

    other = clone(repo, tmp_path / "other")
    assert not (other / "model.bin").exists()
    mlv("pull", cwd=other)
    assert (other / "model.bin").read_bytes() == b"weights v1"
    assert snapshot(other / "out") == snapshot(repo / "out")
    assert all(t["status"] == "clean" for t in status_json(other)["targets"])

    # a revision's outs: --rev pushes the old run's objects too
    produce(repo, V2)
    commit_all(repo, "stage train, run 2")
    shutil.rmtree(store)
    mlv("push", "--rev", "HEAD~1", cwd=repo)
    assert xxh(b"weights v1") in remote_objects(store)
    assert xxh(b"weights v2") in remote_objects(store)
    git("pull", "-q", cwd=other)
    mlv("fetch", "--rev", "HEAD~1", "out", cwd=other)
    assert object_path(other, xxh(b"d v2")).is_file()


def run_entry(outs: list[dict[str, Any]]) -> bytes:
    return json.dumps({"version": 1, "outs": outs, "metrics": []}).encode()


def test_run_cache_push_then_fetch_into_a_fresh_clone(pipeline_repo: Path, tmp_path: Path) -> None:
    repo = pipeline_repo
    store = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(store), cwd=repo)
    commit_all(repo, "remote")
    write_files(repo, {"extra/e.txt": "run cache only", "extra/f/g.txt": "deep"})
    extra = recorded(repo, ["extra"])
    shutil.rmtree(repo / "extra")
    key = "ab" + "12" * 31
    broken_key = "cd" + "34" * 31
    cache = repo / ".mlv" / "cache"
    entry = run_entry(extra)
    write_files(cache, {f"runs/{key[:2]}/{key[2:]}": entry})
    gone = [{"path": "lost.bin", "hash": xxh(b"never stored"), "size": 12}]
    write_files(cache, {f"runs/{broken_key[:2]}/{broken_key[2:]}": run_entry(gone)})

    plain = json.loads(mlv("push", "--json", cwd=repo).stdout)
    assert "run_cache" not in plain and not (store / "runs").exists()
    assert xxh(b"deep") not in remote_objects(store)

    out = json.loads(mlv("push", "--run-cache", "--json", cwd=repo).stdout)
    assert out["ok"], out
    assert out["run_cache"]["transferred"] == 1
    assert out["run_cache"]["incomplete"] == [broken_key]  # its object is not in the cache
    assert (store / "runs" / key[:2] / key[2:]).read_bytes() == entry
    assert not (store / "runs" / broken_key[:2]).exists()
    assert xxh(b"deep") in remote_objects(store)
    assert extra[0]["hash"] in remote_objects(store)
    again = json.loads(mlv("push", "--run-cache", "--json", cwd=repo).stdout)
    assert again["run_cache"]["transferred"] == 0 and again["run_cache"]["skipped"] == 1
    text = mlv("push", "--run-cache", cwd=repo)
    assert "0 run-cache entries; 1 already on the remote" in text.stdout
    assert "1 run-cache entry left out" in text.stderr

    # gc of the remote never deletes run-cache entries (nor any key outside ALGO/)
    mlv("gc", "-w", "-r", "store", "--force", cwd=repo)
    assert (store / "runs" / key[:2] / key[2:]).is_file()

    other = clone(repo, tmp_path / "other")
    plain = json.loads(mlv("fetch", "--json", cwd=other).stdout)
    assert not (other / ".mlv/cache/runs").exists()
    # the remote entry names objects gc just deleted: push them again, then fetch
    (store / "runs" / key[:2] / key[2:]).unlink()
    mlv("push", "--run-cache", cwd=repo)
    got = json.loads(mlv("fetch", "--run-cache", "--json", cwd=other).stdout)
    assert got["ok"] and got["run_cache"]["transferred"] == 1, got
    local = other / ".mlv/cache/runs" / key[:2] / key[2:]
    assert local.read_bytes() == entry
    assert object_path(other, xxh(b"deep")).read_bytes() == b"deep"
    assert object_path(other, xxh(b"run cache only")).is_file()
    again = json.loads(mlv("pull", "--run-cache", "--json", cwd=other).stdout)
    assert again["run_cache"] == {
        "transferred": 0,
        "skipped": 1,
        "incomplete": [],
        "invalid": [],
        "failed": [],
    }


def test_run_cache_fetch_skips_entries_whose_objects_the_remote_lacks(
    pipeline_repo: Path, tmp_path: Path
) -> None:
    repo = pipeline_repo
    store = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(store), cwd=repo)
    commit_all(repo, "remote")
    key = "ef" + "56" * 31
    missing = [{"path": "lost.bin", "hash": xxh(b"nowhere"), "size": 7}]
    write_files(store, {f"runs/{key[:2]}/{key[2:]}": run_entry(missing), "runs/zz/bad": "{"})
    write_files(store, {"runs/xx/not-json": "nope", "README": "not mlv's"})
    got = json.loads(mlv("fetch", "--run-cache", "--json", cwd=repo).stdout)
    assert got["ok"], got
    assert got["run_cache"]["incomplete"] == [key]
    assert sorted(got["run_cache"]["invalid"]) == ["xxnot-json", "zzbad"]
    assert not (repo / ".mlv/cache/runs").exists()


# ---- gc -----------------------------------------------------------------------------------


def test_gc_keeps_outs_of_the_workspace_index_and_kept_revisions(pipeline_repo: Path) -> None:
    repo = pipeline_repo
    v1 = yaml.safe_load((repo / "mlv.lock").read_text())
    produce(repo, V2)
    commit_all(repo, "stage train, run 2")
    only_v1 = [xxh(b"weights v1"), xxh(b"a v1")]
    both = [xxh(b"b v1"), xxh(b"c v1")]
    only_v2 = [xxh(b"weights v2"), xxh(b"a v2"), xxh(b"d v2")]

    mlv("gc", "-A", cwd=repo)
    assert all(object_path(repo, h).is_file() for h in only_v1 + both + only_v2)

    # the index holds run 1's lock, the workspace run 2's: gc -w keeps both
    v2_text = (repo / "mlv.lock").read_text()
    (repo / "mlv.lock").write_text(yaml.safe_dump(v1, sort_keys=False))
    git("add", "mlv.lock", cwd=repo)
    (repo / "mlv.lock").write_text(v2_text)
    mlv("gc", "-w", cwd=repo)
    assert all(object_path(repo, h).is_file() for h in only_v1 + both + only_v2)

    git("reset", "-q", "mlv.lock", cwd=repo)
    out = json.loads(mlv("gc", "-w", "--json", cwd=repo).stdout)
    assert out["removed"] >= len(only_v1)
    assert not any(object_path(repo, h).exists() for h in only_v1)
    assert all(object_path(repo, h).is_file() for h in both + only_v2)
    assert all(t["status"] == "clean" for t in status_json(repo)["targets"])


# ---- history ------------------------------------------------------------------------------


def test_diff_log_and_ls_see_outs(pipeline_repo: Path) -> None:
    repo = pipeline_repo
    produce(repo, V2)
    commit_all(repo, "stage train, run 2")
    out = json.loads(mlv("diff", "--json", "HEAD~1", "HEAD", cwd=repo).stdout)
    assert [a["path"] for a in out["added"]] == ["out/sub/d.txt"]
    assert sorted(m["path"] for m in out["modified"]) == ["model.bin", "out/a.txt"]
    assert out["deleted"] == [] and out["unknown"] == []
    assert json.loads(mlv("diff", "--json", cwd=repo).stdout)["modified"] == []
    (repo / "out/b.txt").write_bytes(b"b edited")
    work = json.loads(mlv("diff", "--json", cwd=repo).stdout)
    assert [m["path"] for m in work["modified"]] == ["out/b.txt"]

    heads = [git("rev-parse", r, cwd=repo).stdout.strip() for r in ("HEAD", "HEAD~1")]
    log = json.loads(mlv("log", "model.bin", "--json", cwd=repo).stdout)
    assert [v["commit"] for v in log] == heads
    assert log[0]["hash"] == xxh(b"weights v2")
    sub = json.loads(mlv("log", "out/sub/c.txt", "--json", cwd=repo).stdout)
    assert [v["commit"] for v in sub] == heads[1:]  # unchanged by run 2

    listed = mlv("ls", "-R", "--data-only", "--rev", "HEAD~1", cwd=repo).stdout.split()
    assert "model.bin" in listed and "out/sub/c.txt" in listed and "out/sub/d.txt" not in listed
