"""`mlv stage add`, `mlv repro` and `mlv dag`: fixes from a black-box review (real git,
the CLI run as a subprocess). Stage commands append to runs.log when they really run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from helpers import assert_error, commit_all, git, index_files, mlv, staged


def logged(repo: Path) -> list[str]:
    path = repo / "runs.log"
    return path.read_text().split() if path.exists() else []


def lock(repo: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((repo / "mlv.lock").read_text())
    return doc


def ignore_runs_log(repo: Path) -> None:
    (repo / ".gitignore").write_text("runs.log\n")


# ---- 1. outputs below a symbolic link --------------------------------------------------


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


# ---- 2 and 3. param values compare with their type; NaN is NaN ---------------------------


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


# ---- 4. the cache flag of an out -----------------------------------------------------------


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


# ---- 5. --dry predicts refusals -------------------------------------------------------------


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


# ---- 6. exit codes ---------------------------------------------------------------------------


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


# ---- 7. messages -------------------------------------------------------------------------------


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
