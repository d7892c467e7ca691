"""A stage that logs with dvclive (DVC's metrics logger, the real package) under mlv repro.

dvclive, left alone in a git repository, runs `dvc init` there (.dvc/, .dvcignore, staged)
and saves each run as a DVC experiment (refs/exps/...). Under mlv it must do neither, and
what it writes (dvclive/metrics.json, dvclive/plots/metrics/*.tsv) must be what `mlv
metrics` and `mlv plots` read.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import commit_all, git, mlv, write_files

pytest.importorskip("dvclive", reason="dvclive is a test dependency: pip install -e '.[test]'")

PY = sys.executable

TRAIN = """\
import yaml
from dvclive import Live

lr = yaml.safe_load(open("params.yaml"))["lr"]
with Live() as live:
    for epoch in range(3):
        live.log_metric("loss", round(1.0 / (1 + lr * epoch), 4))
        live.log_metric("acc", round(epoch * lr / 10, 4))
        live.next_step()
"""

PIPELINE = {
    "stages": {
        "train": {
            "cmd": f"{PY} train.py",
            "deps": ["train.py"],
            "params": ["lr"],
            "metrics": ["dvclive/metrics.json"],
            "plots": [{"dvclive/plots": {"x": "step"}}],
        }
    }
}


def _dvc_traces(repo: Path) -> list[str]:
    """What dvclive would have left of DVC: its folders and files, refs/exps, staged files."""
    found = [name for name in (".dvc", ".dvcignore") if (repo / name).exists()]
    found += git("for-each-ref", "refs/exps", cwd=repo).stdout.split()
    staged = git("diff", "--cached", "--name-only", cwd=repo).stdout.split()
    found += [f for f in staged if f.startswith((".dvc", ".dvcignore"))]
    return found


@pytest.fixture
def project(mlv_repo: Path) -> Path:
    write_files(
        mlv_repo,
        {
            "train.py": TRAIN,
            "params.yaml": "lr: 1\n",
            "mlv.yaml": yaml.safe_dump(PIPELINE, sort_keys=False),
        },
    )
    commit_all(mlv_repo, "project")
    return mlv_repo


def _metrics(repo: Path, *args: str) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = json.loads(
        mlv("metrics", "show", "--json", *args, cwd=repo).stdout
    )
    return shown


def test_dvclive_runs_without_making_a_dvc_repository(project: Path) -> None:
    mlv("repro", cwd=project)
    assert _dvc_traces(project) == []
    assert (project / "dvclive" / "metrics.json").is_file()
    assert sorted(p.name for p in (project / "dvclive/plots/metrics").iterdir()) == [
        "acc.tsv",
        "loss.tsv",
    ]
    commit_all(project, "lr 1")

    write_files(project, {"params.yaml": "lr: 3\n"})
    mlv("repro", cwd=project)
    assert _dvc_traces(project) == []

    # dvclive's files are what mlv metrics and mlv plots read, at each revision
    (workspace, head) = _metrics(project, "--rev", "HEAD")
    assert workspace["metrics"]["dvclive/metrics.json"] == {"loss": 0.1429, "acc": 0.6, "step": 2}
    assert head["metrics"]["dvclive/metrics.json"] == {"loss": 0.3333, "acc": 0.2, "step": 2}

    data = json.loads(mlv("plots", "diff", "--json", cwd=project).stdout)
    assert data["errors"] == []
    loss = {
        s["rev"]: s["points"]
        for p in data["plots"]
        if p["id"] == "dvclive/plots/metrics/loss.tsv"
        for s in p["series"]
    }
    assert loss == {
        "HEAD": [[0, 1.0], [1, 0.5], [2, 0.3333]],
        "workspace": [[0, 1.0], [1, 0.25], [2, 0.1429]],
    }
    page = mlv("plots", "diff", cwd=project).stdout.strip()
    assert Path(page).read_text().count("<polyline") == 4  # loss and acc, two revisions each


def test_the_users_own_sitecustomize_still_runs(project: Path, tmp_path: Path) -> None:
    """mlv's start-up hook shadows any sitecustomize on the stage's path: it must run it."""
    own = tmp_path / "site"
    write_files(
        own,
        {
            "sitecustomize.py": "import os, sys\nopen(os.environ['MARK'], 'a').write('ran\\n')\n"
            "sys.path.append('/added/by/sitecustomize')\n"
        },
    )
    mark = tmp_path / "mark"
    show = "import sys; open(sys.argv[1], 'a').write(repr(sys.path[-1]) + '\\n')"
    pipeline = dict(PIPELINE)
    pipeline["stages"] = dict(PIPELINE["stages"])
    pipeline["stages"]["path"] = {"cmd": f'{PY} -c "{show}" "$MARK"', "always_changed": True}
    write_files(project, {"mlv.yaml": yaml.safe_dump(pipeline, sort_keys=False)})
    mlv("repro", cwd=project, env={"PYTHONPATH": str(own), "MARK": str(mark)})
    # it ran (once per Python process), and what it did to sys.path stayed done
    assert mark.read_text().splitlines() == ["ran", "ran", "'/added/by/sitecustomize'"]
    assert _dvc_traces(project) == []
