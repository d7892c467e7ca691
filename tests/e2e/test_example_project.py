"""The walk-through of examples/ml-project/README.md, with real git, the real `mlv` and the
example's real numpy scripts, in a temporary copy of the project with a folder remote.

It checks what the README promises: the pipeline runs once, then is up to date; a changed
param reruns only the stages that read it; params, metrics and checks compare commits; a
fresh checkout of v1 gets v1's exact model back from the remote; training again at v1 gives
the same model, bit for bit.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import git, mlv, run, xxh

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ml-project"
STAGES = ["prepare", "train", "evaluate"]

pytest.importorskip("numpy", reason="the example project needs numpy (pip install -e '.[test]')")


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example (without anything a run in place left behind) in a new git
    repository, after `mlv init`; `python` on PATH is the interpreter running the tests."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "python"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    repo = tmp_path / "demo"
    shutil.copytree(
        EXAMPLE,
        repo,
        ignore=shutil.ignore_patterns(
            "data", "model.npy", "metrics.json", "mlv.lock", "__pycache__", ".mlv", ".git*"
        ),
    )
    git("init", "-q", "-b", "main", cwd=repo)
    mlv("init", cwd=repo)
    return repo


def ran(out: str) -> list[str]:
    """The stages a `mlv repro` output says it ran, in order."""
    prefix = "Running stage '"
    return [
        line[len(prefix) :].split("'", 1)[0] for line in out.splitlines() if line.startswith(prefix)
    ]


def lines_with(out: str, text: str) -> list[str]:
    return [line for line in out.splitlines() if text in line]


def lock_at(repo: Path, rev: str | None = None) -> dict[str, Any]:
    text = (
        (repo / "mlv.lock").read_text()
        if rev is None
        else git("show", f"{rev}:mlv.lock", cwd=repo).stdout
    )
    doc: dict[str, Any] = yaml.safe_load(text)
    return doc


def model_hash_in(lock: dict[str, Any]) -> str:
    outs = lock["stages"]["train"]["outs"]
    assert [o["path"] for o in outs] == ["model.npy"], outs
    h: str = outs[0]["hash"]
    return h


def set_lr(repo: Path, old: str, new: str) -> None:
    params = repo / "params.yaml"
    text = params.read_text()
    assert f"  lr: {old} " in text, text
    params.write_text(text.replace(f"  lr: {old} ", f"  lr: {new} ", 1))


def commit(repo: Path, tag: str) -> str:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", tag, cwd=repo)
    git("tag", tag, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def test_example_project_walkthrough(demo: Path, tmp_path: Path) -> None:
    repo = demo
    store = tmp_path / "demo-store"
    mlv("remote", "add", "-d", "--local", "store", store, cwd=repo)

    # The raw data, made once and tracked with mlv add.
    python = shutil.which("python")
    assert python is not None and Path(python).parent == tmp_path / "bin"
    run("python", "make_dataset.py", cwd=repo)
    raw = sorted(p.name for p in (repo / "data" / "raw").iterdir())
    assert raw and all(name.endswith(".csv") for name in raw)
    assert sum(p.stat().st_size for p in (repo / "data" / "raw").iterdir()) < 1 << 20
    mlv("add", "data/raw", cwd=repo)

    # First repro: every stage runs, in order; mlv.lock records all three.
    first = mlv("repro", cwd=repo).stdout
    assert ran(first) == STAGES, first
    assert "is up to date" not in first
    assert "prepare: 2700 training rows, 900 test rows" in first  # the commands' own output
    lock_v1 = lock_at(repo)
    assert list(lock_v1["stages"]) == STAGES
    assert lock_v1["stages"]["train"]["params"] == {
        "params.yaml": {"train.epochs": 200, "train.l2": 0.001, "train.lr": 0.1}
    }
    model_v1 = model_hash_in(lock_v1)
    assert xxh((repo / "model.npy").read_bytes()) == model_v1
    metrics_v1 = json.loads((repo / "metrics.json").read_text())
    assert set(metrics_v1) == {"accuracy", "loss", "f1"}
    assert metrics_v1["accuracy"] >= 0.85, metrics_v1
    assert [m["path"] for m in lock_v1["stages"]["evaluate"]["metrics"]] == ["metrics.json"]

    # Nothing changed: nothing runs.
    second = mlv("repro", cwd=repo).stdout
    assert ran(second) == [], second
    for name in STAGES:
        assert f"Stage '{name}' is up to date" in second, second

    v1 = commit(repo, "v1")
    push = json.loads(mlv("push", "--json", cwd=repo).stdout)
    assert push["ok"] and push["transferred"]["objects"] > 0, push

    # A new learning rate: train and evaluate are out of date, prepare is not.
    set_lr(repo, "0.1", "0.3")
    dry = mlv("repro", "--dry", cwd=repo).stdout
    assert lines_with(dry, "Would run stage") == [
        "Would run stage 'train' (param train.lr changed)",
        "Would run stage 'evaluate' (stage 'train' would run first)",
    ], dry
    assert "Stage 'prepare' is up to date" in dry
    assert xxh((repo / "model.npy").read_bytes()) == model_v1  # --dry ran nothing
    third = mlv("repro", cwd=repo).stdout
    assert ran(third) == ["train", "evaluate"], third
    assert "Stage 'prepare' is up to date" in third
    lock_v2 = lock_at(repo)
    assert lock_v2["stages"]["prepare"] == lock_v1["stages"]["prepare"]
    model_v2 = model_hash_in(lock_v2)
    assert model_v2 != model_v1
    assert xxh((repo / "model.npy").read_bytes()) == model_v2

    # Params, metrics and checks against v1 (HEAD), before committing.
    pdiff = json.loads(mlv("params", "diff", "--json", cwd=repo).stdout)
    assert pdiff["params"] == {"params.yaml": {"train.lr": {"old": 0.1, "new": 0.3}}}, pdiff
    mdiff = json.loads(mlv("metrics", "diff", "--json", cwd=repo).stdout)
    metrics_v2 = json.loads((repo / "metrics.json").read_text())
    accuracy = mdiff["metrics"]["metrics.json"]["accuracy"]
    assert (accuracy["old"], accuracy["new"]) == (metrics_v1["accuracy"], metrics_v2["accuracy"])
    assert metrics_v2["loss"] <= metrics_v1["loss"] * 1.10  # what the check below needs
    check = mlv("metrics", "check", cwd=repo)
    assert "2 checks: 2 passed, 0 failed" in check.stdout, check.stdout
    pipeline_file = repo / "mlv.yaml"
    pipeline_text = pipeline_file.read_text()
    assert "- accuracy >= 0.85\n" in pipeline_text
    pipeline_file.write_text(pipeline_text.replace("accuracy >= 0.85", "accuracy >= 0.999"))
    failing = mlv("metrics", "check", cwd=repo, check=False)
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "FAIL" in failing.stdout and "1 failed" in failing.stdout, failing.stdout
    pipeline_file.write_text(pipeline_text)
    assert mlv("metrics", "check", cwd=repo, check=False).returncode == 0

    v2 = commit(repo, "v2")
    assert json.loads(mlv("push", "--json", cwd=repo).stdout)["ok"]

    # exp show: both commits, with their learning rates and metrics.
    shown = json.loads(mlv("exp", "show", "--json", cwd=repo).stdout)
    by_commit = {row["commit"]: row for row in shown["rows"]}
    assert {v1, v2} <= set(by_commit), shown["rows"]
    for commit_id, lr, metrics in ((v1, 0.1, metrics_v1), (v2, 0.3, metrics_v2)):
        row = by_commit[commit_id]
        assert row["params"]["params.yaml"]["train.lr"] == lr, row
        assert row["metrics"]["metrics.json"] == metrics, row
    lr_column = [c for c in shown["columns"] if c["name"] == "train.lr"]
    assert lr_column and lr_column[0]["type"] == "param" and lr_column[0]["changed"]

    dag = mlv("dag", cwd=repo).stdout.splitlines()
    assert [line.split()[0] for line in dag] == STAGES, dag
    assert dag[1].split("<-")[1].split(",")[0].strip() == "prepare", dag

    # v1's learning rate again: the run cache has that run, nothing is trained.
    set_lr(repo, "0.3", "0.1")
    back = mlv("repro", cwd=repo).stdout
    assert ran(back) == [], back
    assert "Restored stage 'train' from the run cache" in back, back
    assert "Restored stage 'evaluate' from the run cache" in back, back
    assert xxh((repo / "model.npy").read_bytes()) == model_v1
    assert json.loads((repo / "metrics.json").read_text()) == metrics_v1
    git("reset", "-q", "--hard", cwd=repo)

    # v1 as a fresh clone sees it: no model and an empty cache; pull brings v1's back.
    git("checkout", "-q", "v1", cwd=repo)
    (repo / "model.npy").unlink()
    shutil.rmtree(repo / ".mlv" / "cache")
    pulled = mlv("pull", cwd=repo)
    assert "Fetched" in pulled.stdout, pulled.stdout
    status = json.loads(mlv("status", "--json", cwd=repo).stdout)
    assert status["clean"], status
    assert {t["path"] for t in status["targets"]} >= {"data/raw", "data/prepared", "model.npy"}
    assert xxh((repo / "model.npy").read_bytes()) == model_v1 == model_hash_in(lock_at(repo))
    again = mlv("repro", cwd=repo).stdout
    assert ran(again) == [] and "Restored" not in again, again
    for name in STAGES:
        assert f"Stage '{name}' is up to date" in again, again

    # Training again at v1 writes the same model, bit for bit: mlv.lock does not change.
    forced = mlv("repro", "--force", "train", cwd=repo).stdout
    assert "train" in ran(forced) and "evaluate" not in ran(forced), forced
    assert xxh((repo / "model.npy").read_bytes()) == model_v1
    assert lock_at(repo) == lock_at(repo, "v1")
    assert git("status", "--porcelain", cwd=repo).stdout == ""
