"""A run whose `git add` never happened (killed, or git failed) leaves the pointer, the
.gitignore or mlv.lock written and unstaged: the next run of the same command stages them,
in the one `git add` it makes anyway (issue 13, item 10: import, update and repro, as add
and commit already do)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from helpers import commit_all, git, mlv, staged, write_files

PY = sys.executable


def _failing_git_add(folder: Path) -> dict[str, str | None]:
    """Variables for one mlv command whose `git add` fails (after mlv wrote its files);
    every other git command is the real one."""
    folder.mkdir(exist_ok=True)
    real = shutil.which("git")
    assert real is not None
    script = folder / "git"
    script.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = add ]; then echo "fatal: simulated failure" >&2; exit 128; fi\n'
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    return {"PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}


def _source(tmp_path: Path) -> Path:
    src = tmp_path / "source"
    src.mkdir()
    git("init", "-q", "-b", "main", cwd=src)
    mlv("init", "-q", cwd=src)
    write_files(src, {"model.bin": b"model v1"})
    mlv("add", "-q", "model.bin", cwd=src)
    commit_all(src, "v1")
    return src


def test_import_then_update_stage_what_a_failed_git_add_left(
    mlv_repo: Path, tmp_path: Path
) -> None:
    src = _source(tmp_path)
    write_files(mlv_repo, {"models/keep.txt": "kept"})
    commit_all(mlv_repo, "init")
    env = _failing_git_add(tmp_path / "fakebin")
    proc = mlv("import", str(src), "model.bin", "-o", "models/m.bin", cwd=mlv_repo, env=env,
               check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "simulated failure" in proc.stderr
    assert (mlv_repo / "models" / ".gitignore").read_text() == "/m.bin\n"
    assert (mlv_repo / "models" / "m.bin.mlv").is_file()
    assert staged(mlv_repo) == []
    # nothing moved upstream: update has nothing to do, yet it stages what import wrote
    proc = mlv("update", "models/m.bin", cwd=mlv_repo)
    assert staged(mlv_repo) == ["models/.gitignore", "models/m.bin.mlv"]
    commit_all(mlv_repo, "imported")

    # an update that moves the pointer, whose `git add` fails, then the same update again
    write_files(src, {"model.bin": b"model v2"})
    mlv("add", "-q", "model.bin", cwd=src)
    commit_all(src, "v2")
    git("rm", "-q", "--cached", "models/.gitignore", cwd=mlv_repo)  # as a lost .gitignore
    git("commit", "-q", "-m", "without .gitignore", cwd=mlv_repo)
    proc = mlv("update", "models/m.bin", cwd=mlv_repo, env=env, check=False)
    assert proc.returncode == 1
    assert staged(mlv_repo) == []
    mlv("update", "models/m.bin", cwd=mlv_repo)
    assert staged(mlv_repo) == ["models/.gitignore", "models/m.bin.mlv"]
    mlv("checkout", "models/m.bin", cwd=mlv_repo)  # a no-op update checks nothing out
    assert (mlv_repo / "models" / "m.bin").read_bytes() == b"model v2"


def test_import_rerun_stages_its_gitignore(mlv_repo: Path, tmp_path: Path) -> None:
    src = _source(tmp_path)
    commit_all(mlv_repo, "init")
    env = _failing_git_add(tmp_path / "fakebin")
    proc = mlv("import", str(src), "model.bin", cwd=mlv_repo, env=env, check=False)
    assert proc.returncode == 1
    assert staged(mlv_repo) == []
    mlv("import", str(src), "model.bin", cwd=mlv_repo)
    assert staged(mlv_repo) == [".gitignore", "model.bin.mlv"]
    assert (mlv_repo / "model.bin").read_bytes() == b"model v1"


def test_repro_rerun_stages_the_lock_and_gitignore(mlv_repo: Path, tmp_path: Path) -> None:
    write_files(mlv_repo, {"in.txt": "input\n"})
    mlv(
        "stage", "add", "copy", "-d", "in.txt", "-o", "out/copy.txt", "-M", "metrics.json",
        "--", f"{PY} -c \"import json, os, shutil; os.makedirs('out', exist_ok=True); "
        "shutil.copy('in.txt', 'out/copy.txt'); json.dump({'n': 1}, open('metrics.json', 'w'))\"",
        cwd=mlv_repo,
    )  # fmt: skip
    commit_all(mlv_repo, "pipeline")
    env = _failing_git_add(tmp_path / "fakebin")
    proc = mlv("repro", cwd=mlv_repo, env=env, check=False)
    assert proc.returncode == 1
    assert "simulated failure" in proc.stderr
    assert (mlv_repo / "out" / ".gitignore").read_text() == "/copy.txt\n"
    assert (mlv_repo / "mlv.lock").is_file()
    assert staged(mlv_repo) == []
    # everything is up to date: the rerun runs nothing and stages what the first run wrote
    proc = mlv("repro", cwd=mlv_repo)
    assert (mlv_repo / "out" / "copy.txt").read_text() == "input\n"
    assert staged(mlv_repo) == ["mlv.lock", "out/.gitignore"]
    # a dry run stages nothing
    git("reset", "-q", cwd=mlv_repo)
    mlv("repro", "--dry", cwd=mlv_repo)
    assert staged(mlv_repo) == []
