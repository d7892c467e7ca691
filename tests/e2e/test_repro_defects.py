"""Issue 18's pipeline defects, each against real git and real stage commands: a partly
deleted output folder is restored, a tracked input changed under a stage is recorded in its
pointer, hints name commands that work (and the tests run them), an ignored metrics file is
warned about, and mlv.lock's message says what happened to it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from helpers import assert_error, commit_all, git, mlv, read_pointer, staged, write_files
from prebuilt import Prebuilt, make_mlv_repo

PY = sys.executable

PIPELINE = {
    "stages": {
        "prepare": {
            "cmd": "mkdir -p eval/plots && cp data/data.xml eval/plots/a.txt"
            " && echo two > eval/plots/b.txt && echo $MLV_STAGE >> runs.log",
            "deps": ["data/data.xml"],
            "outs": ["eval/plots"],
        },
        "train": {
            "cmd": "cat eval/plots/a.txt eval/plots/b.txt > model.bin"
            " && echo '{\"acc\": 0.5}' > metrics.json && echo $MLV_STAGE >> runs.log",
            "deps": ["eval/plots"],
            "outs": ["model.bin"],
            "metrics": ["metrics.json"],
        },
    }
}


def runs(repo: Path) -> list[str]:
    log = repo / "runs.log"
    return log.read_text().split() if log.exists() else []


@pytest.fixture(scope="module")
def built(module_env: Path) -> Prebuilt:
    """data/data.xml tracked by a pointer; prepare -> eval/plots/ -> train -> model.bin;
    run once and committed."""
    repo = make_mlv_repo(module_env / "repo")
    write_files(repo, {"data/data.xml": "<rows>1</rows>\n", ".gitignore": "/runs.log\n"})
    mlv("add", "data/data.xml", cwd=repo)
    (repo / "mlv.yaml").write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    mlv("repro", cwd=repo)
    commit_all(repo, "v1")
    (repo / "runs.log").unlink()
    return Prebuilt(repo)


@pytest.fixture
def repo(built: Prebuilt, tmp_path: Path) -> Path:
    return built.copy(tmp_path / "repo")


def test_a_partly_deleted_output_folder_is_restored_not_refused(repo: Path) -> None:
    (repo / "eval/plots/a.txt").unlink()
    proc = mlv("repro", cwd=repo)
    assert "Restored stage 'prepare' from the cache" in proc.stdout
    assert (repo / "eval/plots/a.txt").read_text() == "<rows>1</rows>\n"
    assert runs(repo) == []  # nothing ran
    assert git("status", "--porcelain", cwd=repo).stdout == ""
    # a file the cache does not hold is still refused, and the refusal's hint works
    (repo / "eval/plots/b.txt").unlink()
    (repo / "eval/plots/new.txt").write_text("mine\n")
    proc = mlv("repro", cwd=repo, check=False)
    assert_error(proc, 1, "eval/plots holds content that mlv did not produce")
    assert (repo / "eval/plots/new.txt").read_text() == "mine\n"
    mlv("repro", "--force", "-s", "prepare", cwd=repo)
    assert runs(repo) == ["prepare"]


def test_a_tracked_input_changed_under_a_stage_is_recorded_in_its_pointer(repo: Path) -> None:
    (repo / "data/data.xml").write_text("<rows>2</rows>\n")
    dry = mlv("repro", "--dry", cwd=repo)
    assert "Would record data/data.xml in data/data.xml.mlv" in dry.stdout
    assert read_pointer(repo / "data/data.xml.mlv")["size"] == 15
    proc = mlv("repro", cwd=repo)
    assert "Recorded data/data.xml in data/data.xml.mlv: it changed" in proc.stdout
    assert runs(repo) == ["prepare", "train"]
    pointer = read_pointer(repo / "data/data.xml.mlv")
    lock = yaml.safe_load((repo / "mlv.lock").read_text())
    (dep,) = lock["stages"]["prepare"]["deps"]
    assert dep == {"path": "data/data.xml", "hash": pointer["hash"], "size": pointer["size"]}
    assert "data/data.xml.mlv" in staged(repo) and "mlv.lock" in staged(repo)
    # committed, the pointer and the lock agree: a clean status, nothing left to run
    commit_all(repo, "v2")
    assert "modified" not in mlv("status", cwd=repo).stdout
    assert "2 up to date" in mlv("repro", cwd=repo).stdout


def test_a_pointer_git_moved_is_not_recorded_back_over(repo: Path) -> None:
    """After `git pull` (or `git checkout`) brings a pointer to a new version before
    `mlv pull`/`mlv checkout` brings the data, the workspace holds the old version, one the
    cache has: repro refuses to record it over the pointer (that silently reverted the
    teammate's data) and names both ways out, which work."""
    (repo / "data/data.xml").write_text("<rows>2</rows>\n")
    mlv("repro", cwd=repo)
    commit_all(repo, "v2")
    git("checkout", "-q", "HEAD~1", cwd=repo)  # pointer and mlv.lock back to v1; data at v2
    v1 = read_pointer(repo / "data/data.xml.mlv")
    for args in (["repro"], ["repro", "--dry"], ["repro", "-j", "2"]):
        proc = mlv(*args, cwd=repo, check=False)
        assert_error(proc, 1, "data/data.xml holds another version", "mlv checkout data/data.xml")
    assert read_pointer(repo / "data/data.xml.mlv") == v1
    assert git("status", "--porcelain", cwd=repo).stdout == ""
    mlv("checkout", "data/data.xml", cwd=repo)  # the hint
    assert (repo / "data/data.xml").read_text() == "<rows>1</rows>\n"
    assert "Recorded" not in mlv("repro", cwd=repo).stdout
    (repo / "data/data.xml").write_text("<rows>2</rows>\n")  # the other way: keep v2
    mlv("commit", "data/data.xml", cwd=repo)
    assert "Recorded" not in mlv("repro", cwd=repo).stdout
    v2 = read_pointer(repo / "data/data.xml.mlv")
    assert v2["hash"] != v1["hash"]
    commit_all(repo, "v2 again")
    # the pointer alone taken back (`git checkout OLD -- PTR`): mlv.lock read v2
    git("checkout", "HEAD~1", "--", "data/data.xml.mlv", cwd=repo)
    assert read_pointer(repo / "data/data.xml.mlv") == v1
    assert_error(mlv("repro", cwd=repo, check=False), 1, "data/data.xml holds another version")
    assert read_pointer(repo / "data/data.xml.mlv") == v1


def test_the_lock_message_says_when_it_is_back_to_the_commit(repo: Path) -> None:
    (repo / "data/data.xml").write_text("<rows>2</rows>\n")
    mlv("repro", cwd=repo)
    (repo / "data/data.xml").write_text("<rows>1</rows>\n")
    proc = mlv("repro", cwd=repo)  # back to v1: restored from the run cache
    assert "`git commit` records this run" not in proc.stdout
    assert "mlv.lock updated and staged: it is again as the last commit records it" in (proc.stdout)
    assert git("status", "--porcelain", cwd=repo).stdout == ""
    proc = mlv("repro", "-f", "-s", "prepare", cwd=repo)  # same outputs: the lock is as it was
    assert "mlv.lock" not in proc.stdout


def test_status_of_an_edited_stage_output_hints_mlv_commit_which_records_it(repo: Path) -> None:
    (repo / "model.bin").unlink()  # a link into the cache: replace it, as an editor would
    (repo / "model.bin").write_bytes(b"tuned by hand\n")
    (repo / "metrics.json").write_text('{"acc": 0.9}\n')
    # what mlv add says for a stage output names mlv commit; mlv commit records it
    proc = mlv("add", "model.bin", cwd=repo, check=False)
    assert_error(proc, 2, "run `mlv commit` to record its changes in mlv.lock")
    assert "modified     model.bin" in mlv("status", cwd=repo).stdout
    proc = mlv("commit", cwd=repo)
    assert "Recorded model.bin -> mlv.lock" in proc.stdout
    assert (repo / "model.bin").read_bytes() == b"tuned by hand\n"  # kept, not overwritten
    assert runs(repo) == []
    lock = yaml.safe_load((repo / "mlv.lock").read_text())["stages"]["train"]
    assert lock["outs"][0]["size"] == len(b"tuned by hand\n")
    assert lock["metrics"][0]["size"] == len('{"acc": 0.9}\n')
    assert "mlv.lock" in staged(repo)
    assert "modified" not in mlv("status", cwd=repo).stdout
    assert "2 up to date" in mlv("repro", cwd=repo).stdout  # recorded: nothing to redo
    # a named output records its stage alone; a missing one says what to run, which works
    (repo / "model.bin").unlink()
    proc = mlv("commit", "model.bin", cwd=repo, check=False)
    assert_error(proc, 1, "output model.bin is missing", "run `mlv repro train`")
    mlv("repro", "train", cwd=repo)
    assert (repo / "model.bin").read_bytes() == b"tuned by hand\n"  # restored, not run
    assert runs(repo) == []


def test_a_clean_stage_output_missing_from_the_cache_is_stored_by_the_hinted_commit(
    repo: Path,
) -> None:
    lock = yaml.safe_load((repo / "mlv.lock").read_text())["stages"]["train"]
    digest = lock["outs"][0]["hash"].split(":")[1]
    obj = repo / ".mlv/cache/xxh128" / digest[:2] / digest[2:]
    (repo / "model.bin").write_bytes((repo / "model.bin").read_bytes())  # a copy of its own
    obj.unlink()
    proc = mlv("status", cwd=repo)
    assert "the cache lacks objects: `mlv commit` stores them" in proc.stdout
    proc = mlv("commit", cwd=repo)
    assert "Stored the objects missing from the cache for model.bin" in proc.stdout
    assert obj.is_file()
    assert "not in cache" not in mlv("status", cwd=repo).stdout


def test_checkout_of_a_hand_edited_output_hints_mlv_commit_which_keeps_it(repo: Path) -> None:
    (repo / "eval/plots/b.txt").unlink()
    (repo / "eval/plots/b.txt").write_text("edited\n")
    proc = mlv("checkout", cwd=repo, check=False)
    assert proc.returncode == 1
    assert "left alone (use --force to overwrite, or `mlv commit` to keep it)" in proc.stderr
    mlv("commit", cwd=repo)
    assert (repo / "eval/plots/b.txt").read_text() == "edited\n"
    assert "Workspace already matches" in mlv("checkout", cwd=repo).stdout
    assert "modified" not in mlv("status", cwd=repo).stdout


def test_checkout_of_an_old_commit_in_a_clone_hints_mlv_pull_which_fetches_it(
    repo: Path, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(store), cwd=repo)
    mlv("push", cwd=repo)
    commit_all(repo, "remote")
    git("tag", "v1", cwd=repo)
    (repo / "data/data.xml").write_text("<rows>2</rows>\n")
    mlv("repro", cwd=repo)
    mlv("push", cwd=repo)
    commit_all(repo, "v2")
    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    mlv("pull", cwd=clone)  # v2's objects only
    git("checkout", "-q", "v1", cwd=clone)
    proc = mlv("checkout", cwd=clone, check=False)
    assert proc.returncode == 1
    assert "missing from the cache (`mlv pull` fetches them from the remote" in proc.stderr
    mlv("pull", cwd=clone)
    assert (clone / "data/data.xml").read_text() == "<rows>1</rows>\n"
    assert (clone / "eval/plots/a.txt").read_text() == "<rows>1</rows>\n"
    assert "Workspace already matches" in mlv("checkout", cwd=clone).stdout


def test_a_metrics_file_git_ignores_is_warned_about_and_the_hint_tracks_it(
    mlv_repo: Path,
) -> None:
    repo = mlv_repo
    write_files(repo, {".gitignore": "/eval\n", "params.yaml": "acc: 0.5\n"})
    stage = {
        "cmd": f"{PY} -c \"import yaml, json; p = yaml.safe_load(open('params.yaml'));"
        " import os; os.makedirs('eval', exist_ok=True);"
        " json.dump({'acc': p['acc']}, open('eval/metrics.json', 'w'))\"",
        "params": ["acc"],
        "metrics": ["eval/metrics.json"],
    }
    (repo / "mlv.yaml").write_text(yaml.safe_dump({"stages": {"score": stage}}))
    proc = mlv("repro", cwd=repo)
    hint = "run `git add -f eval/metrics.json` to track it"
    assert (
        "warning: eval/metrics.json (a metrics file of stage 'score') is ignored by git"
    ) in proc.stderr
    assert hint in proc.stderr
    assert hint in mlv("metrics", "diff", cwd=repo).stderr  # where "nothing changed" shows
    git("add", "-f", "eval/metrics.json", cwd=repo)
    commit_all(repo, "v1")
    assert "ignored by git" not in mlv("repro", cwd=repo).stderr
    (repo / "params.yaml").write_text("acc: 0.75\n")
    mlv("repro", cwd=repo)
    diff = mlv("metrics", "diff", "--json", cwd=repo)
    assert '"old": 0.5' in diff.stdout and '"new": 0.75' in diff.stdout
    assert "ignored by git" not in diff.stderr


def test_status_hint_for_an_output_holding_another_recorded_version_runs(repo: Path) -> None:
    v1 = (repo / "model.bin").read_bytes()
    (repo / "data/data.xml").write_text("<rows>2</rows>\n")
    mlv("repro", cwd=repo)
    v2 = (repo / "model.bin").read_bytes()
    (repo / "model.bin").unlink()
    (repo / "model.bin").write_bytes(v1)  # the older version, which the cache holds
    proc = mlv("status", cwd=repo)
    line = next(x for x in proc.stdout.splitlines() if "model.bin" in x)
    assert line.startswith("modified")
    assert "run `mlv checkout` to match the pointer, or `mlv commit` to record it" in line
    mlv("checkout", "model.bin", cwd=repo)  # the first command of the hint
    assert (repo / "model.bin").read_bytes() == v2
    (repo / "model.bin").unlink()
    (repo / "model.bin").write_bytes(v1)
    mlv("commit", cwd=repo)  # the second
    assert (repo / "model.bin").read_bytes() == v1
    assert "modified" not in mlv("status", cwd=repo).stdout
    train = yaml.safe_load((repo / "mlv.lock").read_text())["stages"]["train"]
    assert train["outs"][0]["size"] == len(v1)


def test_commit_of_an_output_of_a_stage_removed_from_mlv_yaml_names_repro(repo: Path) -> None:
    doc = yaml.safe_load((repo / "mlv.yaml").read_text())
    del doc["stages"]["prepare"]
    (repo / "mlv.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = mlv("commit", "eval/plots", cwd=repo, check=False)
    assert_error(proc, 1, "stage 'prepare' is in mlv.lock but no longer in mlv.yaml",
                 "run `mlv repro` to drop it from mlv.lock")  # fmt: skip
    proc = mlv("repro", cwd=repo)
    assert "dropped stage(s) prepare from mlv.lock" in proc.stderr
    assert "prepare" not in yaml.safe_load((repo / "mlv.lock").read_text())["stages"]
