"""`mlv stage add/list`, `mlv repro` and `mlv dag` with real git and real shell commands.

Stage commands append a line to runs.log (outside every output) each time they really run,
so the tests can tell a run from a skip or a restore from the run cache.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import (
    MLV,
    assert_error,
    commit_all,
    git,
    index_files,
    mlv,
    object_path,
    staged,
    write_files,
    xxh,
)
from prebuilt import Prebuilt, make_mlv_repo

PY = sys.executable


def logged(repo: Path) -> list[str]:
    path = repo / "runs.log"
    return path.read_text().split() if path.exists() else []


def lock(repo: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((repo / "mlv.lock").read_text())
    return doc


def pipeline(repo: Path) -> Path:
    """raw (tracked by mlv) -> prepare -> prepared/ -> train -> model.bin + metrics.json;
    report reads params only. Each stage logs its name to runs.log when it runs."""
    write_files(
        repo,
        {
            "raw/a.csv": "1\n2\n3\n4\n",
            "raw/b.csv": "5\n6\n",
            "params.yaml": "prepare:\n  scale: 2\ntrain:\n  lr: 0.1\n  epochs: 3\n",
            "prepare.py": (
                "import os, yaml\n"
                "p = yaml.safe_load(open('params.yaml'))['prepare']\n"
                "os.makedirs('prepared', exist_ok=True)\n"
                "for name in sorted(os.listdir('raw')):\n"
                "    rows = [int(x) * p['scale'] for x in open('raw/' + name).read().split()]\n"
                "    open('prepared/' + name, 'w').write(' '.join(map(str, rows)))\n"
                "open('runs.log', 'a').write('prepare\\n')\n"
            ),
            "train.py": (
                "import json, os, yaml\n"
                "p = yaml.safe_load(open('params.yaml'))['train']\n"
                "total = sum(int(x) for f in sorted(os.listdir('prepared'))\n"
                "            for x in open('prepared/' + f).read().split())\n"
                "model = total * p['lr'] * p['epochs']\n"
                "open('model.bin', 'wb').write(f'{model:.6f}'.encode())\n"
                "json.dump({'acc': 0.5 + p['lr']}, open('metrics.json', 'w'))\n"
                "open('runs.log', 'a').write('train\\n')\n"
            ),
        },
    )
    mlv("add", "raw", cwd=repo)
    mlv(
        "stage", "add", "prepare", "-d", "raw", "-d", "prepare.py", "-p", "prepare.scale",
        "-o", "prepared", "--", PY, "prepare.py", cwd=repo,
    )  # fmt: skip
    mlv(
        "stage", "add", "train", "-d", "prepared", "-d", "train.py", "-p", "train",
        "-o", "model.bin", "-M", "metrics.json", "--", f"{PY} train.py", cwd=repo,
    )  # fmt: skip
    mlv(
        "stage", "add", "report", "-p", "train.epochs", "-O", "report.txt", "--",
        "echo epochs > report.txt && echo report >> runs.log", cwd=repo,
    )  # fmt: skip
    (repo / ".gitignore").write_text((repo / ".gitignore").read_text() + "runs.log\n")
    return repo


@pytest.fixture(scope="module")
def built_pipeline(module_env: Path) -> Prebuilt:
    pipeline(make_mlv_repo(module_env / "repo"))
    return Prebuilt(module_env)


@pytest.fixture
def repo(built_pipeline: Prebuilt, tmp_path: Path) -> Path:
    """pipeline() in a repository at tmp_path/repo (built once, copied for each test)."""
    return built_pipeline.copy_into(tmp_path) / "repo"


def test_stage_add_writes_the_stage_and_list_shows_it(repo: Path) -> None:
    doc = yaml.safe_load((repo / "mlv.yaml").read_text())
    assert doc["stages"]["prepare"] == {
        "cmd": f"{PY} prepare.py",
        "deps": ["raw", "prepare.py"],
        "params": ["prepare.scale"],
        "outs": ["prepared"],
    }
    assert doc["stages"]["train"]["cmd"] == f"{PY} train.py"  # one word: kept as typed
    assert doc["stages"]["report"]["outs"] == [{"report.txt": {"cache": False}}]
    assert "mlv.yaml" in staged(repo)
    listed = json.loads(mlv("stage", "list", "--json", cwd=repo).stdout)
    assert [s["name"] for s in listed] == ["prepare", "train", "report"]
    assert listed[1]["needs"] == ["prepare"] and listed[1]["metrics"] == ["metrics.json"]
    text = mlv("stage", "list", cwd=repo).stdout
    assert "prepare" in text and "prepared" in text

    assert_error(mlv("stage", "add", "train", "--", "true", cwd=repo, check=False), 1, "--force")
    overlap = mlv("stage", "add", "loop", "-d", "model.bin", "-o", "raw2", "-o", "prepared/x",
                "--", "true", cwd=repo, check=False)  # fmt: skip
    assert_error(overlap, 1, "prepared/x", "overlaps", "prepare")
    tracked = mlv("stage", "add", "t", "-o", "raw", "--", "true", cwd=repo, check=False)
    assert_error(tracked, 1, "raw.mlv", "mlv rm raw.mlv")
    before = (repo / "mlv.yaml").read_text()
    assert_error(mlv("stage", "add", "x", "-p", ":k", "--", "true", cwd=repo, check=False), 2)
    assert (repo / "mlv.yaml").read_text() == before  # refused: nothing written

    # run from a sub-folder: the stage works there
    (repo / "sub").mkdir()
    mlv("stage", "add", "local", "-o", "here.txt", "--", "echo hi > here.txt", cwd=repo / "sub")
    local = yaml.safe_load((repo / "mlv.yaml").read_text())["stages"]["local"]
    assert local["wdir"] == "sub" and local["outs"] == ["here.txt"]
    mlv("repro", "local", cwd=repo)
    assert (repo / "sub/here.txt").read_text() == "hi\n"
    assert lock(repo)["stages"]["local"]["outs"][0]["path"] == "sub/here.txt"


def test_repro_runs_stages_in_order_then_nothing(repo: Path) -> None:
    first = mlv("repro", cwd=repo)
    assert logged(repo) == ["prepare", "train", "report"]
    for name in ("prepare", "train", "report"):
        assert f"Running stage '{name}' (not in mlv.lock yet)" in first.stdout
    assert "Stages: 3 ran, 0 up to date." in first.stdout
    stages = lock(repo)["stages"]
    model = (repo / "model.bin").read_bytes()
    assert model == b"12.600000"  # (2+4+6+8+10+12) * 0.1 * 3
    assert stages["train"]["outs"] == [{"path": "model.bin", "hash": xxh(model), "size": 9}]
    assert stages["train"]["metrics"][0]["hash"] == xxh((repo / "metrics.json").read_bytes())
    assert stages["train"]["params"] == {"params.yaml": {"train": {"lr": 0.1, "epochs": 3}}}
    assert stages["prepare"]["outs"][0]["files"] == 2
    assert stages["report"]["params"] == {"params.yaml": {"train.epochs": 3}}
    assert object_path(repo, xxh(model)).is_file()  # cached outs are in the cache
    ignored = (repo / ".gitignore").read_text().splitlines()
    assert "/prepared" in ignored and "/model.bin" in ignored
    assert "/metrics.json" not in ignored and "/report.txt" not in ignored  # git tracks them
    assert "mlv.lock" in staged(repo)
    status = json.loads(mlv("status", "--json", cwd=repo).stdout)
    assert all(t["status"] == "clean" for t in status["targets"]), status

    before = (repo / "mlv.lock").stat().st_mtime_ns
    again = mlv("repro", cwd=repo)
    assert logged(repo) == ["prepare", "train", "report"]  # nothing ran
    for name in ("prepare", "train", "report"):
        assert f"Stage '{name}' is up to date" in again.stdout
    assert "mlv.lock updated" not in again.stdout
    assert (repo / "mlv.lock").stat().st_mtime_ns == before


def test_only_stages_whose_inputs_changed_run(repo: Path) -> None:
    mlv("repro", cwd=repo)
    commit_all(repo, "v1")
    # a param only train reads (lr): prepare and report stay
    (repo / "params.yaml").write_text("prepare:\n  scale: 2\ntrain:\n  lr: 0.2\n  epochs: 3\n")
    dry = mlv("repro", "--dry", cwd=repo)
    assert "Would run stage 'train' (param train.lr changed)" in dry.stdout
    assert "Stage 'prepare' is up to date" in dry.stdout
    assert logged(repo) == ["prepare", "train", "report"]
    out = mlv("repro", cwd=repo)
    assert logged(repo)[3:] == ["train"]
    assert "Stage 'report' is up to date" in out.stdout
    # data: prepare, then train (its dep prepared changed)
    mlv("unprotect", "raw", cwd=repo)
    (repo / "raw/b.csv").write_text("5\n6\n7\n")
    dry = mlv("repro", "--dry", cwd=repo)
    assert "Would run stage 'train' (stage 'prepare' would run first)" in dry.stdout
    out = mlv("repro", cwd=repo)
    assert "Running stage 'prepare' (dep raw changed)" in out.stdout
    assert "Running stage 'train' (dep prepared changed)" in out.stdout
    assert logged(repo)[4:] == ["prepare", "train"]
    # cmd of report: only report
    doc = yaml.safe_load((repo / "mlv.yaml").read_text())
    doc["stages"]["report"]["cmd"] = "echo epochs! > report.txt && echo report >> runs.log"
    (repo / "mlv.yaml").write_text(yaml.safe_dump(doc))
    out = mlv("repro", cwd=repo)
    assert "Running stage 'report' (cmd changed)" in out.stdout
    assert logged(repo)[6:] == ["report"]


def test_selection_force_downstream_and_single_item(repo: Path) -> None:
    mlv("repro", cwd=repo)
    mlv("repro", "train", "--force", cwd=repo)  # forces what train needs too, like DVC
    assert logged(repo)[3:] == ["prepare", "train"]
    mlv("repro", "-f", "-s", "train", cwd=repo)
    assert logged(repo)[5:] == ["train"]
    out = mlv("repro", "prepare", "--downstream", "--force", cwd=repo)
    assert logged(repo)[6:] == ["prepare", "train"]
    assert "report" not in out.stdout
    bad = mlv("repro", "nope", cwd=repo, check=False)
    assert_error(bad, 2, "no stage named 'nope'", "prepare, train, report")


def test_run_cache_restores_outputs_without_running(repo: Path) -> None:
    mlv("repro", cwd=repo)
    v1_model = (repo / "model.bin").read_bytes()
    (repo / "params.yaml").write_text("prepare:\n  scale: 2\ntrain:\n  lr: 0.3\n  epochs: 3\n")
    mlv("repro", cwd=repo)
    assert logged(repo)[3:] == ["train"]
    assert (repo / "model.bin").read_bytes() != v1_model
    # back to lr 0.1: the same inputs ran before, so the outputs come back without a run
    (repo / "params.yaml").write_text("prepare:\n  scale: 2\ntrain:\n  lr: 0.1\n  epochs: 3\n")
    out = mlv("repro", cwd=repo)
    assert "Restored stage 'train' from the run cache (param train.lr changed)" in out.stdout
    assert logged(repo)[4:] == []
    assert (repo / "model.bin").read_bytes() == v1_model
    assert json.loads((repo / "metrics.json").read_text()) == {"acc": 0.6}
    assert lock(repo)["stages"]["train"]["outs"][0]["hash"] == xxh(v1_model)
    # --no-run-cache runs it anyway
    (repo / "params.yaml").write_text("prepare:\n  scale: 2\ntrain:\n  lr: 0.3\n  epochs: 3\n")
    mlv("repro", "--no-run-cache", cwd=repo)
    assert logged(repo)[4:] == ["train"]

    # an out deleted: its inputs are those mlv.lock records, so it comes back from there
    ran = len(logged(repo))
    (repo / "model.bin").unlink()
    out = mlv("repro", cwd=repo)
    assert (
        "Restored stage 'train' from the cache, as mlv.lock records it (out model.bin missing)"
        in out.stdout
    )
    assert len(logged(repo)) == ran
    assert (
        xxh((repo / "model.bin").read_bytes()) == lock(repo)["stages"]["train"]["outs"][0]["hash"]
    )

    # an out edited by hand: refused, as checkout refuses to overwrite unsaved work
    os.chmod(repo / "model.bin", 0o644)
    (repo / "model.bin").write_bytes(b"hand edit")
    dry = mlv("repro", "--dry", cwd=repo, check=False)  # --dry predicts the refusal
    assert_error(dry, 1, "model.bin holds content that mlv did not produce", "--force")
    refused = mlv("repro", cwd=repo, check=False)
    assert_error(refused, 1, "model.bin holds content that mlv did not produce", "--force")
    assert (repo / "model.bin").read_bytes() == b"hand edit"
    # --force replaces it, keeping the edit in the cache under its (printed) hash
    out = mlv("repro", "--force", "-s", "train", cwd=repo)
    assert "hand edit" not in (repo / "model.bin").read_text()
    assert object_path(repo, xxh(b"hand edit")).is_file()
    assert xxh(b"hand edit") in out.stderr

    # a file made outside mlv where a new stage writes: refused the same way
    (repo / "hand.txt").write_text("precious")
    mlv("stage", "add", "gen", "-o", "hand.txt", "--", "echo gen > hand.txt", cwd=repo)
    refused = mlv("repro", "gen", cwd=repo, check=False)
    assert_error(refused, 1, "hand.txt holds content that mlv did not produce")
    assert (repo / "hand.txt").read_text() == "precious"


def test_dry_predicts_restores_and_what_depends_on_them(repo: Path) -> None:
    mlv("repro", cwd=repo)
    (repo / "params.yaml").write_text("prepare:\n  scale: 2\ntrain:\n  lr: 0.3\n  epochs: 3\n")
    mlv("repro", cwd=repo)
    (repo / "params.yaml").write_text("prepare:\n  scale: 2\ntrain:\n  lr: 0.1\n  epochs: 3\n")
    dry = mlv("repro", "--dry", cwd=repo)
    assert "Would restore stage 'train' from the run cache (param train.lr changed)" in dry.stdout
    assert "Stages: 0 would run, 1 would be restored, 2 up to date." in dry.stdout
    # a removed stage leaves mlv.lock at the next repro, even with nothing to run
    doc = yaml.safe_load((repo / "mlv.yaml").read_text())
    del doc["stages"]["report"]
    (repo / "mlv.yaml").write_text(yaml.safe_dump(doc))
    out = mlv("repro", cwd=repo)
    assert "report" not in lock(repo)["stages"]
    assert "dropped stage(s) report from mlv.lock" in out.stderr


def test_outputs_that_would_destroy_the_repository_are_refused(mlv_repo: Path) -> None:
    for out in (".", "./", "mlv.yaml", "mlv.lock"):
        bad = mlv("stage", "add", "wipe", "-o", out, "--", "true", cwd=mlv_repo, check=False)
        assert_error(bad, 1, "an output cannot be")
        assert not (mlv_repo / "mlv.yaml").exists()
    (mlv_repo / "mlv.yaml").write_text("stages:\n  wipe: {cmd: 'true', outs: [.]}\n")
    assert_error(mlv("repro", cwd=mlv_repo, check=False), 1, "the repository root")
    assert (mlv_repo / ".git").is_dir() and (mlv_repo / ".mlv").is_dir()


def test_a_stage_cannot_run_the_pipeline(mlv_repo: Path) -> None:
    mlv("stage", "add", "rec", "-o", "r.txt", "--", "mlv repro rec; echo x > r.txt",
        cwd=mlv_repo)  # fmt: skip
    out = mlv("repro", cwd=mlv_repo, timeout=60)
    assert "mlv repro cannot run inside stage 'rec'" in out.stderr
    assert out.stdout.count("Running stage 'rec'") == 1


def test_a_failed_stage_leaves_the_lock_of_the_others(repo: Path) -> None:
    mlv("repro", cwd=repo)
    before = lock(repo)["stages"]
    (repo / "params.yaml").write_text("prepare:\n  scale: 3\ntrain:\n  lr: 0.1\n  epochs: 4\n")
    (repo / "train.py").write_text("import sys\nprint('boom'); sys.exit(3)\n")
    failed = mlv("repro", cwd=repo, check=False)
    assert failed.returncode == 1
    assert "boom" in failed.stdout  # the command's own output streamed
    assert_error(failed, 1, "stage 'train' failed", "exit code 3", "mlv repro train")
    after = lock(repo)["stages"]
    assert after["prepare"] != before["prepare"]  # completed: recorded
    assert after["prepare"]["params"] == {"params.yaml": {"prepare.scale": 3}}
    assert after["train"] == before["train"]  # failed: untouched
    assert after["report"] == before["report"]  # not run after the failure
    assert "Stages: 1 ran, 0 up to date, 1 failed, 1 not run." in failed.stdout
    # --keep-going: report does not need train, so it runs
    kept = mlv("repro", "-k", cwd=repo, check=False)
    assert kept.returncode == 1
    assert "Running stage 'report' (param train.epochs changed)" in kept.stdout
    assert lock(repo)["stages"]["report"]["params"] == {"params.yaml": {"train.epochs": 4}}
    # a cached out that git tracks: refused before anything runs
    git("add", "-f", "prepared/a.csv", cwd=repo)
    runs = len(logged(repo))
    in_git = mlv("repro", "-f", "-s", "prepare", cwd=repo, check=False)
    assert_error(in_git, 1, "output prepared is tracked by git", "git rm -r --cached")
    assert len(logged(repo)) == runs
    git("rm", "-r", "-q", "--cached", "prepared", cwd=repo)
    # a stage that does not write its out
    (repo / "train.py").write_text("print('no model')\n")
    missing = mlv("repro", "train", cwd=repo, check=False)
    assert_error(missing, 1, "stage 'train' did not produce its output model.bin")


def test_pipeline_errors_are_one_line(mlv_repo: Path) -> None:
    repo = mlv_repo
    cases = {
        "a: {cmd: 'cp b a', deps: [b], outs: [a]}\n  b: {cmd: 'cp a b', deps: [a], outs: [b]}":
            "the stages form a cycle: a -> b -> a",
        "a: {cmd: 'true', outs: [x]}\n  b: {cmd: 'true', outs: [x]}":
            "output x of stage 'b' is also an output of stage 'a'",
        "a: {cmd: 'true', deps: [x/y], outs: [x]}": "stage 'a' depends on its own output x",
        "a: {cmd: 'true', deps: [nothere], outs: [x]}":
            "stage 'a': dependency nothere does not exist",
        "a: {cmd: 'true', params: [lr], outs: [x]}":
            "parameters file params.yaml does not exist",
        "a: {cmd: 'true', outz: [x]}": "unknown key(s) outz",
        "a: {cmd: 'true'}\n  a: {cmd: 'false'}": "line 3: 'a' is given twice",
    }  # fmt: skip
    for body, needle in cases.items():
        (repo / "mlv.yaml").write_text(f"stages:\n  {body}\n")
        assert_error(mlv("repro", cwd=repo, check=False), 1, needle)
        assert not (repo / "mlv.lock").exists()
    (repo / "mlv.yaml").unlink()
    assert_error(mlv("repro", cwd=repo, check=False), 1, "no stages", "mlv stage add")
    # a dep mlv tracks but that is not checked out: the hint says how to get it
    write_files(repo, {"raw/a": "1"})
    mlv("add", "raw", cwd=repo)
    shutil.rmtree(repo / "raw")
    (repo / "mlv.yaml").write_text("stages:\n  a: {cmd: 'true', deps: [raw], outs: [x]}\n")
    assert_error(mlv("repro", cwd=repo, check=False), 1, "mlv checkout raw")


def test_dag_plain_dot_and_mermaid(repo: Path) -> None:
    plain = mlv("dag", cwd=repo).stdout.splitlines()
    assert plain == ["prepare", "train    <- prepare", "report"]
    dot = mlv("dag", "--dot", cwd=repo).stdout
    assert '"prepare" -> "train";' in dot and dot.startswith("strict digraph {")
    both = mlv("dag", "--dot", "--mermaid", cwd=repo, check=False)
    assert_error(both, 2, "--dot and --mermaid exclude each other")
    mermaid = mlv("dag", "--mermaid", "train", cwd=repo).stdout.splitlines()
    assert mermaid == ["flowchart TD", '  s0["prepare"]', '  s1["train"]', "  s0 --> s1"]


def test_a_teammate_reuses_runs_through_the_remote(repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(store), cwd=repo)
    mlv("repro", cwd=repo)
    commit_all(repo, "v1")
    git("tag", "v1", cwd=repo)
    v1_model = (repo / "model.bin").read_bytes()
    (repo / "params.yaml").write_text("prepare:\n  scale: 2\ntrain:\n  lr: 0.5\n  epochs: 3\n")
    mlv("repro", cwd=repo)
    commit_all(repo, "v2")
    mlv("push", "--run-cache", "-a", cwd=repo)

    other = tmp_path / "clone"
    git("clone", "-q", str(repo), str(other), cwd=tmp_path)
    mlv("pull", "--run-cache", cwd=other)
    assert json.loads(mlv("status", "--json", cwd=other).stdout)["targets"]
    assert mlv("repro", cwd=other).stdout.count("is up to date") == 3
    # the teammate tries lr 0.1 again: v1's run is in the run cache they pulled
    (other / "params.yaml").write_text("prepare:\n  scale: 2\ntrain:\n  lr: 0.1\n  epochs: 3\n")
    out = mlv("repro", cwd=other)
    assert "Restored stage 'train' from the run cache" in out.stdout
    assert logged(other) == []
    assert (other / "model.bin").read_bytes() == v1_model
    # and an old commit checks out to outputs that are up to date
    git("checkout", "-q", "v1", "--", "params.yaml", "mlv.lock", cwd=other)
    mlv("checkout", cwd=other)
    assert mlv("repro", "--dry", cwd=other).stdout.count("is up to date") == 3


def test_persistent_outputs_are_never_written_through_cache_links(mlv_repo: Path) -> None:
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    (mlv_repo / "mlv.yaml").write_text(
        "stages:\n  p:\n    cmd: mkdir -p ck && echo step >> ck/state\n"
        "    outs: [{ck: {persist: true}}]\n"
    )
    mlv("repro", cwd=mlv_repo)
    first = object_path(mlv_repo, xxh(b"step\n"))
    assert first.read_bytes() == b"step\n"
    mlv("repro", "-f", cwd=mlv_repo)
    assert (mlv_repo / "ck/state").read_text() == "step\nstep\n"  # persisted, appended
    assert first.read_bytes() == b"step\n"  # the cache object was not written through
    assert object_path(mlv_repo, xxh(b"step\nstep\n")).is_file()


# ---- outputs below a symbolic link -----------------------------------------------------------


def test_an_output_below_a_symlinked_folder_is_refused(mlv_repo: Path, tmp_path: Path) -> None:
    repo = mlv_repo
    outside = tmp_path / "outside"
    outside.mkdir()
    (repo / "lnk").symlink_to(outside)
    add = mlv("stage", "add", "s", "-o", "lnk/file", "--", "echo new > lnk/file",
              cwd=repo, check=False)  # fmt: skip
    assert_error(add, 1, "output lnk/file lies below lnk, a symbolic link", "real folder")
    assert not (repo / "mlv.yaml").exists()
    # metrics are outputs too; and a deeper link
    (repo / "real").mkdir()
    (repo / "real/deep").symlink_to(outside)
    add = mlv("stage", "add", "m", "-M", "real/deep/m.json", "--", "true", cwd=repo, check=False)
    assert_error(add, 1, "output real/deep/m.json lies below real/deep, a symbolic link")

    # written by hand into mlv.yaml: repro (forced, dry or not) refuses before touching it
    (repo / "mlv.yaml").write_text(
        "stages:\n  s: {cmd: 'echo new > lnk/file && echo s >> runs.log', outs: [lnk/file]}\n"
    )
    for args in (["repro", "-f"], ["repro"], ["repro", "--dry"]):
        out = mlv(*args, cwd=repo, check=False)
        assert_error(out, 1, "stage 's': output lnk/file lies below lnk, a symbolic link")
    assert list(outside.iterdir()) == []  # nothing written there, no .gitignore either
    assert logged(repo) == []
    assert not (repo / "mlv.lock").exists()


def test_a_command_that_makes_its_output_folder_a_link_fails(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """The command itself links the folder away: what it writes is its business, but mlv
    saves nothing there and writes no .gitignore beyond the link."""
    repo = mlv_repo
    outside = tmp_path / "outside"
    outside.mkdir()
    mlv("stage", "add", "s", "-o", "d/out.txt", "--",
        f"ln -s '{outside}' d && echo x > d/out.txt", cwd=repo)  # fmt: skip
    out = mlv("repro", cwd=repo, check=False)
    assert_error(out, 1, "stage 's': output d/out.txt lies below d, a symbolic link")
    assert sorted(p.name for p in outside.iterdir()) == ["out.txt"]  # no .gitignore
    assert not (repo / "mlv.lock").exists()


# ---- param values compare with their type; NaN is NaN ----------------------------------------


def ignore_runs_log(repo: Path) -> None:
    (repo / ".gitignore").write_text("runs.log\n")


def test_a_param_that_changes_type_is_a_change(mlv_repo: Path) -> None:
    repo = mlv_repo
    ignore_runs_log(repo)
    (repo / "params.yaml").write_text("use_aug: 0\nopt: {lr: 1, beta: 2}\n")
    (repo / "p.json").write_text('{"seed": 1}')
    mlv("stage", "add", "t", "-p", "use_aug,opt", "-p", "p.json:seed", "-o", "out.txt", "--",
        "echo x > out.txt && echo t >> runs.log", cwd=repo)  # fmt: skip
    mlv("repro", cwd=repo)
    assert logged(repo) == ["t"]
    steps = [
        ("use_aug: false\nopt: {lr: 1, beta: 2}\n", '{"seed": 1}', "param use_aug changed"),
        ("use_aug: false\nopt: {lr: 1.0, beta: 2}\n", '{"seed": 1}', "param opt.lr changed"),
        ("use_aug: false\nopt: {lr: 1.0, beta: 2}\n", '{"seed": true}', "param seed changed"),
        ("use_aug: false\nopt: {lr: 1.0, beta: 2}\n", '{"seed": 1.0}', "param seed changed"),
        ("use_aug: 'false'\nopt: {lr: 1.0, beta: 2}\n", '{"seed": 1.0}', "param use_aug changed"),
    ]
    for i, (yaml_text, json_text, reason) in enumerate(steps, start=2):
        (repo / "params.yaml").write_text(yaml_text)
        (repo / "p.json").write_text(json_text)
        dry = mlv("repro", "--dry", cwd=repo)
        assert f"Would run stage 't' ({reason})" in dry.stdout, dry.stdout
        out = mlv("repro", "--no-run-cache", cwd=repo)
        assert f"Running stage 't' ({reason})" in out.stdout, out.stdout
        assert len(logged(repo)) == i
        assert "is up to date" in mlv("repro", cwd=repo).stdout  # recorded with its type
    params = lock(repo)["stages"]["t"]["params"]
    assert params["params.yaml"] == {"use_aug": "false", "opt": {"lr": 1.0, "beta": 2}}
    assert isinstance(params["params.yaml"]["opt"]["lr"], float)
    assert isinstance(params["p.json"]["seed"], float)


def test_a_nan_param_equals_a_recorded_nan(mlv_repo: Path) -> None:
    repo = mlv_repo
    ignore_runs_log(repo)
    (repo / "params.yaml").write_text("use_aug: .nan\nopt: {w: .nan}\n")
    mlv("stage", "add", "t", "-p", "use_aug,opt", "-o", "out.txt", "--",
        "echo x > out.txt && echo t >> runs.log", cwd=repo)  # fmt: skip
    mlv("repro", cwd=repo)
    for _ in range(2):
        again = mlv("repro", cwd=repo)
        assert "Stage 't' is up to date" in again.stdout, again.stdout
    assert logged(repo) == ["t"]
    # only the output differs: the message says so, and names no param
    (repo / "out.txt").unlink()
    out = mlv("repro", cwd=repo)
    assert (
        "Restored stage 't' from the cache, as mlv.lock records it (out out.txt missing)\n"
        in out.stdout
    ), out.stdout
    assert logged(repo) == ["t"]


# ---- the cache flag of an out ----------------------------------------------------------------


def test_switching_an_out_between_cached_and_git_tracked(mlv_repo: Path) -> None:
    repo = mlv_repo
    mlv("stage", "add", "z", "-o", "z.txt", "--", "echo z > z.txt && echo z >> runs.log",
        cwd=repo)  # fmt: skip
    mlv("repro", cwd=repo)
    assert (repo / ".gitignore").read_text() == "/z.txt\n"
    git("add", "-f", "runs.log", cwd=repo)  # keep .gitignore holding the out's line only
    commit_all(repo, "cached")

    doc = yaml.safe_load((repo / "mlv.yaml").read_text())
    doc["stages"]["z"]["outs"] = [{"z.txt": {"cache": False}}]
    (repo / "mlv.yaml").write_text(yaml.safe_dump(doc))
    dry = mlv("repro", "--dry", cwd=repo)
    assert "Would update stage 'z' in mlv.lock" in dry.stdout
    assert "(out z.txt cache changed)" in dry.stdout
    out = mlv("repro", cwd=repo)
    assert "Updated stage 'z' in mlv.lock; its outputs were in place (out z.txt cache changed)" in (
        out.stdout
    )
    assert logged(repo) == ["z"]  # nothing ran
    assert lock(repo)["stages"]["z"]["outs"][0]["cache"] is False
    assert not (repo / ".gitignore").exists()  # its only line was the out's
    assert ".gitignore" in staged(repo) and ".gitignore" not in index_files(repo)
    assert not os.path.islink(repo / "z.txt")
    assert "z.txt" in git("status", "--porcelain", cwd=repo).stdout  # git sees it now
    assert "is up to date" in mlv("repro", cwd=repo).stdout
    git("add", "z.txt", cwd=repo)
    commit_all(repo, "git tracks z.txt")

    # back to cached: git still tracks the file, so that is refused until it lets go
    doc["stages"]["z"]["outs"] = ["z.txt"]
    (repo / "mlv.yaml").write_text(yaml.safe_dump(doc))
    refused = mlv("repro", cwd=repo, check=False)
    assert_error(refused, 1, "output z.txt is tracked by git", "git rm -r --cached")
    dry = mlv("repro", "--dry", cwd=repo, check=False)
    assert_error(dry, 1, "output z.txt is tracked by git")
    git("rm", "-q", "--cached", "z.txt", cwd=repo)
    out = mlv("repro", cwd=repo)
    assert "(out z.txt cache changed)" in out.stdout
    assert logged(repo) == ["z"]
    assert (repo / ".gitignore").read_text() == "/z.txt\n"
    assert ".gitignore" in staged(repo)
    assert "cache" not in lock(repo)["stages"]["z"]["outs"][0]
    assert "is up to date" in mlv("repro", cwd=repo).stdout


def test_a_run_of_a_git_tracked_out_takes_it_out_of_gitignore(mlv_repo: Path) -> None:
    """The cache flag changed together with an input: the command runs, and the out that
    git is to track leaves .gitignore."""
    repo = mlv_repo
    ignore_runs_log(repo)
    mlv("stage", "add", "z", "-o", "z.txt", "--", "echo z > z.txt", cwd=repo)
    mlv("repro", cwd=repo)
    assert "/z.txt" in (repo / ".gitignore").read_text().splitlines()
    (repo / "mlv.yaml").write_text(
        "stages:\n  z: {cmd: 'echo zz > z.txt', outs: [{z.txt: {cache: false}}]}\n"
    )
    out = mlv("repro", cwd=repo)
    assert "Running stage 'z' (cmd changed, out z.txt cache changed)" in out.stdout
    assert (repo / ".gitignore").read_text() == "runs.log\n"
    assert lock(repo)["stages"]["z"]["outs"][0]["cache"] is False


# ---- --dry predicts refusals -----------------------------------------------------------------


def test_dry_predicts_the_refusal_to_replace_hand_made_content(mlv_repo: Path) -> None:
    repo = mlv_repo
    (repo / "raw").mkdir()
    (repo / "raw/a").write_text("1\n")
    mlv("add", "raw", cwd=repo)
    mlv("stage", "add", "prepare", "-d", "raw", "-o", "data/prepared", "--",
        "mkdir -p data/prepared && cp raw/a data/prepared/", cwd=repo)  # fmt: skip
    mlv("repro", cwd=repo)
    os.chmod(repo / "data/prepared", 0o755)
    (repo / "data/prepared/mine.txt").write_text("by hand")
    dry = mlv("repro", "--dry", cwd=repo, check=False)
    line = assert_error(dry, 1, "data/prepared holds content that mlv did not produce")
    assert "Stages: 0 would run, 0 up to date, 1 failed." in dry.stdout
    real = mlv("repro", cwd=repo, check=False)
    assert assert_error(real, 1) == line  # the same one line
    assert (repo / "data/prepared/mine.txt").read_text() == "by hand"
    # --force would replace it: --dry --force says what would run
    forced = mlv("repro", "--dry", "--force", cwd=repo)
    assert "Would run stage 'prepare' (forced" in forced.stdout


# ---- exit codes and messages -----------------------------------------------------------------


def test_unknown_and_invalid_stage_names_are_bad_usage(mlv_repo: Path) -> None:
    repo = mlv_repo
    mlv("stage", "add", "a", "-o", "a.txt", "--", "echo a > a.txt", cwd=repo)
    for args in (["repro", "nosuch"], ["repro", "-s", "nosuch"], ["dag", "nosuch"]):
        assert_error(mlv(*args, cwd=repo, check=False), 2, "no stage named 'nosuch'", "a")
    bad = mlv("stage", "add", "bad name", "--", "echo", cwd=repo, check=False)
    assert_error(bad, 2, "invalid stage name 'bad name'", "letters, digits")
    # a bad name in mlv.yaml itself is a broken file, not bad usage
    (repo / "mlv.yaml").write_text("stages:\n  'bad name': {cmd: 'true'}\n")
    assert_error(mlv("repro", cwd=repo, check=False), 1, "stage 'bad name': invalid name")


def test_params_and_lock_errors_say_what_to_do(mlv_repo: Path) -> None:
    repo = mlv_repo
    mlv("stage", "add", "a", "-p", "nofile.yaml:k", "-o", "a.txt", "--", "echo a > a.txt",
        cwd=repo)  # fmt: skip
    assert_error(
        mlv("repro", cwd=repo, check=False),
        1,
        "parameters file nofile.yaml does not exist",
        "create it with the key k",
    )
    (repo / "nofile.yaml").write_text("other: 1\n")
    assert_error(mlv("repro", cwd=repo, check=False), 1, "nofile.yaml: no parameter 'k'")
    (repo / "nofile.yaml").write_text("k: 1\n")
    mlv("repro", cwd=repo)

    mlv("stage", "add", "b", "-p", "lr", "-o", "b.txt", "--", "echo b > b.txt", cwd=repo)
    (repo / "params.yaml").mkdir()
    is_dir = assert_error(
        mlv("repro", "b", cwd=repo, check=False), 1, "params.yaml is a folder", "move it away"
    )
    assert "Errno" not in is_dir
    (repo / "params.yaml").rmdir()

    (repo / "mlv.lock").write_text("version: 1\nstages:\n  a: {outs: []}\n")
    assert_error(
        mlv("repro", cwd=repo, check=False),
        1,
        "mlv.lock: stage 'a': malformed (no `cmd`)",
        "restore it with git, or delete it and run `mlv repro`",
    )
    (repo / "mlv.lock").write_text("version: 1\nstages:\n  a: {cmd: x, outs: [{path: 1}]}\n")
    assert_error(mlv("repro", cwd=repo, check=False), 1, "malformed entry", "`mlv repro`")


def _repro_until_pid(repo: Path, pid_file: Path) -> tuple[subprocess.Popen[str], int]:
    """`mlv repro` started in its own session, once its stage has written a pid to pid_file:
    the process and that pid. If it never does (30 s), its session is killed and the test
    fails."""
    proc = subprocess.Popen(
        [MLV, "repro"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        return proc, int(pid_file.read_text())
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise


def _running(pid: int) -> bool:
    """pid is a live process (a zombie, dead but not yet reaped by its parent, is not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rpartition(b")")[2].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:
        os.kill(pid, 0)  # no /proc: raises once the process is gone
        return True


@pytest.mark.parametrize(
    ("signum", "code", "whom"),
    [
        (signal.SIGINT, 130, "mlv"),  # kill -INT PID, a CI runner cancelling a job
        (signal.SIGTERM, 143, "mlv"),
        (signal.SIGINT, 130, "group"),  # Ctrl-C at a terminal: mlv's whole process group
    ],
)
def test_a_signal_to_mlv_stops_everything_its_stage_started(
    mlv_repo: Path, signum: int, code: int, whom: str
) -> None:
    """Only mlv gets the signal; the stage's shell, what it started in the background and
    what it waits for all end, and mlv's output reaches EOF at once (no grandchild keeps
    the pipe open)."""
    cmd = "sleep 60 & echo $! > bg.pid; echo started; sleep 60; touch o.txt"
    mlv("stage", "add", "slow", "-o", "o.txt", "--", cmd, cwd=mlv_repo)
    proc, background = _repro_until_pid(mlv_repo, mlv_repo / "bg.pid")
    try:
        time.sleep(0.3)  # the foreground `sleep 60` has started too
        sent = time.monotonic()
        if whom == "group":
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        try:
            out, err = proc.communicate(timeout=10)  # EOF: every writer of the pipes is gone
        except subprocess.TimeoutExpired:
            out, err = "", ""
        took = time.monotonic() - sent
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what mlv left behind, in its session
        if background and _running(background):
            os.kill(background, signal.SIGKILL)
        proc.communicate()
    assert took < 3, f"{took:.1f} s"
    assert proc.returncode == code, err
    assert "started" in out  # the stage's output streamed
    assert not _running(background)
    assert "Traceback" not in err
    expected = ["error: interrupted"] if signum == signal.SIGINT else []
    assert [line for line in err.splitlines() if line] == expected
    assert not (mlv_repo / "o.txt").exists()
    assert not (mlv_repo / "mlv.lock").exists()


def test_a_stage_that_ignores_the_signal_gets_a_grace_then_a_second_one_kills_it(
    mlv_repo: Path,
) -> None:
    """mlv waits for a stage that does not stop at once (it may be saving a checkpoint);
    a second Ctrl-C ends the wait: the stage is killed and mlv exits 130."""
    cmd = "trap '' INT; echo $$ > sh.pid; echo started; sleep 60; touch o.txt"
    mlv("stage", "add", "stubborn", "-o", "o.txt", "--", cmd, cwd=mlv_repo)
    proc, stage = _repro_until_pid(mlv_repo, mlv_repo / "sh.pid")
    try:
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        time.sleep(1)
        assert proc.poll() is None  # waiting for the stage
        assert _running(stage)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out, err = "", ""
        took = time.monotonic() - sent
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if stage and _running(stage):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(stage, signal.SIGKILL)
        proc.communicate()
    assert took < 2, f"{took:.1f} s"
    assert proc.returncode == 130, err
    assert "started" in out
    assert not _running(stage)
    assert [line for line in err.splitlines() if line] == ["error: interrupted"]
