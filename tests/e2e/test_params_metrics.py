"""params diff, metrics show/diff/check and exp show, on real git histories.

The tests write params and metrics files directly (no stage runs): what these commands
read is what mlv.yaml declares, as of each revision, from git's objects or the workspace.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import assert_error, commit_all, git, mlv, write_files

PIPELINE = {
    "stages": {
        "train": {
            "cmd": "python train.py",
            "params": ["train", "seed"],
            "metrics": ["metrics.json"],
        },
        "evaluate": {
            "cmd": "python evaluate.py",
            "params": [{"eval.yaml": ["threshold"]}],
            "metrics": ["eval/scores.yaml"],
        },
    },
    "checks": ["accuracy >= 0.90", "loss <= baseline.loss * 1.05"],
}


def _params(lr: float, epochs: int, seed: int, unused: int = 0) -> str:
    return yaml.safe_dump(
        {"train": {"lr": lr, "epochs": epochs}, "seed": seed, "unused": unused}, sort_keys=False
    )


def _metrics(accuracy: float, loss: float, f1: float, note: str = "ok") -> str:
    return json.dumps({"accuracy": accuracy, "loss": loss, "eval": {"f1": f1}, "note": note})


def _head(repo: Path, rev: str = "HEAD") -> str:
    return git("rev-parse", rev, cwd=repo).stdout.strip()


@pytest.fixture
def history(mlv_repo: Path) -> dict[str, str]:
    """v1 (tag) -> v2 (tag) -> v3 on main, branch `exp` from v2; the workspace edits v3's files.

    Returns the commit ids by name.
    """
    repo = mlv_repo
    write_files(
        repo,
        {
            "mlv.yaml": yaml.safe_dump(PIPELINE, sort_keys=False),
            "params.yaml": _params(0.1, 10, 1, unused=1),
            "eval.yaml": "threshold: 0.5\nother: 1\n",
            "metrics.json": _metrics(0.88, 0.40, 0.5),
            "eval/scores.yaml": "auc: 0.7\n",
        },
    )
    commit_all(repo, "v1")
    git("tag", "v1", cwd=repo)
    write_files(
        repo,
        {
            "params.yaml": _params(0.2, 10, 1, unused=2),
            "metrics.json": _metrics(0.91, 0.30, 0.6),
        },
    )
    commit_all(repo, "v2")
    git("tag", "v2", cwd=repo)
    git("branch", "exp", cwd=repo)
    write_files(
        repo,
        {
            "params.yaml": _params(0.3, 10, 1, unused=3),
            "eval.yaml": "threshold: 0.6\nother: 2\n",
            "metrics.json": _metrics(0.93, 0.30, 0.6),
            "eval/scores.yaml": "auc: 0.8\n",
        },
    )
    commit_all(repo, "v3")
    git("tag", "v3", cwd=repo)
    git("checkout", "-q", "exp", cwd=repo)
    write_files(repo, {"params.yaml": _params(0.05, 20, 1), "metrics.json": _metrics(0.8, 1, 0)})
    commit_all(repo, "exp run")
    ids = {"exp": _head(repo)}
    git("checkout", "-q", "main", cwd=repo)
    ids.update({"v1": _head(repo, "v1"), "v2": _head(repo, "main~1"), "v3": _head(repo)})
    ids["init"] = _head(repo, "v1~1")
    # the workspace: new params and metrics, not committed
    write_files(
        repo,
        {
            "params.yaml": _params(0.3, 10, 2, unused=9),
            "metrics.json": _metrics(0.95, 0.31, 0.6, note="new"),
        },
    )
    return ids


def _json(*args: str, cwd: Path) -> Any:
    proc = mlv(*args, "--json", cwd=cwd)
    assert proc.stderr == "", proc.stderr
    return json.loads(proc.stdout)


def _lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


# ---- params diff -----------------------------------------------------------------------


def test_params_diff_json_md_and_text(mlv_repo: Path, history: dict[str, str]) -> None:
    repo = mlv_repo
    doc = _json("params", "diff", cwd=repo)
    assert doc == {
        "a": {"rev": "HEAD", "commit": history["v3"]},
        "b": {"rev": "workspace", "commit": None},
        "params": {"params.yaml": {"seed": {"old": 1, "new": 2}}},
        "errors": {},
    }
    # `unused` changed too, but no stage lists it
    text = mlv("params", "diff", cwd=repo).stdout
    assert _lines(text) == [["Path", "Param", "Old", "New"], ["params.yaml", "seed", "1", "2"]]
    md = mlv("params", "diff", "--md", cwd=repo).stdout.splitlines()
    assert md[0] == "| Path | Param | Old | New |"
    assert md[1].startswith("|--")
    assert md[2:] == ["| params.yaml | seed | 1 | 2 |"]


def test_params_diff_between_commits(mlv_repo: Path, history: dict[str, str]) -> None:
    doc = _json("params", "diff", "v1", "main", cwd=mlv_repo)
    assert doc["a"] == {"rev": "v1", "commit": history["v1"]}
    assert doc["b"] == {"rev": "main", "commit": history["v3"]}
    assert doc["params"] == {
        "params.yaml": {"train.lr": {"old": 0.1, "new": 0.3}},
        "eval.yaml": {"threshold": {"old": 0.5, "new": 0.6}},
    }
    # --all lists the unchanged ones too (a key naming a mapping stands for its leaves)
    doc = _json("params", "diff", "v1", "v2", "--all", cwd=mlv_repo)
    assert doc["params"] == {
        "params.yaml": {
            "train.lr": {"old": 0.1, "new": 0.2},
            "train.epochs": {"old": 10, "new": 10},
            "seed": {"old": 1, "new": 1},
        },
        "eval.yaml": {"threshold": {"old": 0.5, "new": 0.5}},
    }
    # one revision: against the workspace
    doc = _json("params", "diff", "exp", cwd=mlv_repo)
    assert doc["params"]["params.yaml"] == {
        "train.lr": {"old": 0.05, "new": 0.3},
        "train.epochs": {"old": 20, "new": 10},
        "seed": {"old": 1, "new": 2},
    }
    out = mlv("params", "diff", "v2", "exp", cwd=mlv_repo).stdout
    assert ["params.yaml", "train.epochs", "10", "20"] in _lines(out)
    assert mlv("params", "diff", "v3", "v3", cwd=mlv_repo).stdout == "No params changed.\n"


def test_params_without_a_pipeline_are_all_of_params_yaml(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"params.yaml": "lr: 0.1\nmodel:\n  depth: 3\n"})
    commit_all(mlv_repo, "params")
    write_files(mlv_repo, {"params.yaml": "lr: 0.2\nmodel:\n  depth: 3\n  width: 8\n"})
    doc = _json("params", "diff", cwd=mlv_repo)
    assert doc["params"] == {
        "params.yaml": {"lr": {"old": 0.1, "new": 0.2}, "model.width": {"old": None, "new": 8}}
    }


def test_params_diff_errors(mlv_repo: Path, history: dict[str, str]) -> None:
    assert_error(mlv("params", "diff", "nope", cwd=mlv_repo, check=False), 1, "nope")
    proc = mlv("params", "diff", "--json", "--bogus", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "--bogus")


# ---- metrics show ----------------------------------------------------------------------


def test_metrics_show_workspace_and_revisions(mlv_repo: Path, history: dict[str, str]) -> None:
    out = mlv("metrics", "show", cwd=mlv_repo).stdout
    assert _lines(out) == [
        ["Revision", "Path", "accuracy", "loss", "eval.f1", "note", "auc"],
        ["workspace", "metrics.json", "0.95", "0.31", "0.6", "new", "-"],
        ["workspace", "eval/scores.yaml", "-", "-", "-", "-", "0.8"],
    ]
    doc = _json("metrics", "show", "--rev", "v1", "--rev", "exp", cwd=mlv_repo)
    assert [(d["rev"], d["commit"]) for d in doc] == [
        ("workspace", None),
        ("v1", history["v1"]),
        ("exp", history["exp"]),
    ]
    assert doc[1]["metrics"] == {
        "metrics.json": {"accuracy": 0.88, "loss": 0.4, "eval.f1": 0.5, "note": "ok"},
        "eval/scores.yaml": {"auc": 0.7},
    }
    assert doc[2]["metrics"]["metrics.json"]["loss"] == 1
    assert all(d["errors"] == {} for d in doc)


def test_metrics_show_all_commits(mlv_repo: Path, history: dict[str, str]) -> None:
    doc = _json("metrics", "show", "--all-commits", cwd=mlv_repo)
    commits = [d["commit"] for d in doc]
    assert commits[0] is None
    assert set(commits[1:]) == {history[n] for n in ("init", "v1", "v2", "v3", "exp")}
    assert len(commits) == 6
    by_commit = {d["commit"]: d for d in doc}
    assert by_commit[history["init"]]["metrics"] == {}
    assert by_commit[history["v2"]]["metrics"]["metrics.json"]["accuracy"] == 0.91
    md = mlv("metrics", "show", "-A", "--md", cwd=mlv_repo).stdout.splitlines()
    assert md[0] == "| Revision | Path | accuracy | loss | eval.f1 | note | auc |"
    # a commit a branch or tag names is shown by that name (a branch first), else its hash
    assert "| v2 | metrics.json | 0.91 | 0.3 | 0.6 | ok | - |" in md
    assert f"| {history['init'][:7]} | metrics.json |" not in md  # no metrics there
    assert "| exp | metrics.json | 0.8 | 1 | 0 | ok | - |" in md


def test_metrics_show_reports_unreadable_files(mlv_repo: Path, history: dict[str, str]) -> None:
    write_files(mlv_repo, {"metrics.json": "{not json"})
    proc = mlv("metrics", "show", cwd=mlv_repo)
    assert proc.stderr == "warning: metrics.json: not valid JSON\n"
    proc = mlv("metrics", "show", "--json", cwd=mlv_repo)
    assert json.loads(proc.stdout)[0]["errors"] == {"metrics.json": "metrics.json: not valid JSON"}


# ---- metrics diff ----------------------------------------------------------------------


def test_metrics_diff_absolute_and_relative(mlv_repo: Path, history: dict[str, str]) -> None:
    doc = _json("metrics", "diff", "v1", "v3", cwd=mlv_repo)
    assert doc["a"] == {"rev": "v1", "commit": history["v1"]}
    assert doc["metrics"] == {
        "metrics.json": {
            "accuracy": {"old": 0.88, "new": 0.93, "change": 0.05, "relative": 0.0568181818182},
            "loss": {"old": 0.4, "new": 0.3, "change": -0.1, "relative": -0.25},
            "eval.f1": {"old": 0.5, "new": 0.6, "change": 0.1, "relative": 0.2},
        },
        "eval/scores.yaml": {
            "auc": {"old": 0.7, "new": 0.8, "change": 0.1, "relative": 0.142857142857}
        },
    }
    # HEAD against the workspace; a string leaf is shown, not subtracted
    doc = _json("metrics", "diff", cwd=mlv_repo)
    assert doc["metrics"]["metrics.json"] == {
        "accuracy": {"old": 0.93, "new": 0.95, "change": 0.02, "relative": 0.0215053763441},
        "loss": {"old": 0.3, "new": 0.31, "change": 0.01, "relative": 0.0333333333333},
        "note": {"old": "ok", "new": "new", "change": None, "relative": None},
    }
    out = mlv("metrics", "diff", cwd=mlv_repo).stdout
    assert _lines(out) == [
        ["Path", "Metric", "Old", "New", "Change", "Relative"],
        ["metrics.json", "accuracy", "0.93", "0.95", "+0.02", "+2.15%"],
        ["metrics.json", "loss", "0.3", "0.31", "+0.01", "+3.33%"],
        ["metrics.json", "note", "ok", "new", "-", "-"],
    ]
    md = mlv("metrics", "diff", "--md", cwd=mlv_repo).stdout.splitlines()
    assert md[0] == "| Path | Metric | Old | New | Change | Relative |"
    assert md[2] == "| metrics.json | accuracy | 0.93 | 0.95 | +0.02 | +2.15% |"


def test_metrics_diff_relative_is_null_from_zero_or_missing(mlv_repo: Path) -> None:
    write_files(
        mlv_repo,
        {
            "mlv.yaml": yaml.safe_dump({"stages": {"s": {"cmd": "x", "metrics": ["m.json"]}}}),
            "m.json": json.dumps({"a": 0, "b": 2}),
        },
    )
    commit_all(mlv_repo, "m")
    write_files(mlv_repo, {"m.json": json.dumps({"a": 3, "c": 1})})
    doc = _json("metrics", "diff", cwd=mlv_repo)
    assert doc["metrics"] == {
        "m.json": {
            "a": {"old": 0, "new": 3, "change": 3, "relative": None},
            "b": {"old": 2, "new": None, "change": None, "relative": None},
            "c": {"old": None, "new": 1, "change": None, "relative": None},
        }
    }
    doc = _json("metrics", "diff", "--all", "HEAD", "HEAD", cwd=mlv_repo)
    assert doc["metrics"]["m.json"]["a"] == {"old": 0, "new": 0, "change": 0, "relative": None}
    assert mlv("metrics", "diff", "HEAD", "HEAD", cwd=mlv_repo).stdout == "No metrics changed.\n"


# ---- metrics check ---------------------------------------------------------------------


def test_metrics_check_fails_against_head_and_passes_against_v1(
    mlv_repo: Path, history: dict[str, str]
) -> None:
    # loss 0.32 > HEAD's 0.30 * 1.05, but <= v1's 0.40 * 1.05
    write_files(mlv_repo, {"metrics.json": _metrics(0.95, 0.32, 0.6)})
    proc = mlv("metrics", "check", cwd=mlv_repo, check=False)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    rows = proc.stdout.splitlines()
    assert rows[0].split() == ["Check", "Values", "Result", "Reason"]
    assert rows[1].split() == ["accuracy", ">=", "0.90", "accuracy=0.95", "pass"]
    assert rows[2].split() == [
        "loss", "<=", "baseline.loss", "*", "1.05", "loss=0.32,", "baseline.loss=0.3", "FAIL",
    ]  # fmt: skip
    assert rows[3] == f"2 checks: 1 passed, 1 failed (baseline HEAD = {history['v3'][:7]})"

    proc = mlv("metrics", "check", "--baseline", "v1", "--json", cwd=mlv_repo)
    assert proc.returncode == 0
    assert json.loads(proc.stdout) == {
        "baseline": {"rev": "v1", "commit": history["v1"]},
        "passed": True,
        "checks": [
            {
                "check": "accuracy >= 0.90",
                "passed": True,
                "values": {"accuracy": 0.95},
                "reason": None,
            },
            {
                "check": "loss <= baseline.loss * 1.05",
                "passed": True,
                "values": {"loss": 0.32, "baseline.loss": 0.4},
                "reason": None,
            },
        ],
        "errors": {},
    }
    proc = mlv("metrics", "check", "--json", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["passed"] is False
    md = mlv("metrics", "check", "--md", cwd=mlv_repo, check=False)
    assert md.returncode == 1
    assert md.stdout.splitlines()[0] == "| Check | Values | Result | Reason |"


def test_metrics_check_missing_metric_and_division_by_zero_fail(mlv_repo: Path) -> None:
    write_files(
        mlv_repo,
        {
            "mlv.yaml": yaml.safe_dump(
                {
                    "stages": {"s": {"cmd": "x", "metrics": ["m.json"]}},
                    "checks": ["acc / zero > 1", "f1 > 0.5", "acc > 0.5"],
                }
            ),
            "m.json": json.dumps({"acc": 0.9, "zero": 0}),
        },
    )
    git("add", "m.json", cwd=mlv_repo)  # a metrics file is printed once git tracks it
    proc = mlv("metrics", "check", "--json", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["baseline"] is None  # no check names baseline.X: HEAD is not read
    assert [(c["passed"], c["reason"]) for c in doc["checks"]] == [
        (False, "division by zero in acc / zero"),
        (False, "no metric f1"),
        (True, None),
    ]


def test_metrics_check_without_checks(mlv_repo: Path) -> None:
    proc = mlv("metrics", "check", cwd=mlv_repo)
    assert proc.stdout == "No checks: mlv.yaml declares no `checks:`.\n"
    doc = _json("metrics", "check", cwd=mlv_repo)
    assert doc == {"baseline": None, "passed": True, "checks": [], "errors": {}}


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("__import__('os').system('touch pwned') == 0", "function calls are not allowed"),
        ("accuracy >= ", "not a valid expression"),
        ("max(accuracy, loss) > 1", "function calls are not allowed"),
        ("accuracy.__class__ == 1", "names starting with __ are not allowed"),
        ("(1).real > 0", "attribute access is allowed only on names"),
        ("accuracy", "not a condition"),
        ("9", "not a condition"),
        ("True", "the constant True is not allowed"),
        ("False", "the constant False is not allowed"),
        ("accuracy > 0.5 or True", "the constant True is not allowed"),
        ("1 < 2", "it names no metric"),
    ],
)
def test_metrics_check_bad_expression_is_one_line(
    mlv_repo: Path, history: dict[str, str], expr: str, why: str
) -> None:
    doc = dict(PIPELINE, checks=["accuracy >= 0.5", expr])
    write_files(mlv_repo, {"mlv.yaml": yaml.safe_dump(doc)})
    proc = mlv("metrics", "check", cwd=mlv_repo, check=False)
    assert_error(proc, 1, f'mlv.yaml: check "{expr.strip()}"', why)
    assert proc.stdout == ""
    assert not (mlv_repo / "pwned").exists()


# ---- exp show --------------------------------------------------------------------------


def test_exp_show_rows_and_changed_columns_first(mlv_repo: Path, history: dict[str, str]) -> None:
    doc = _json("exp", "show", cwd=mlv_repo)
    assert (
        [(r["rev"], r["commit"]) for r in doc["rows"]]
        == [
            ("workspace", None),
            ("main", history["v3"]),  # branch main and tag v3: the branch names it
            ("v2", history["v2"]),
            ("v1", history["v1"]),
            (history["init"][:7], history["init"]),  # no branch, no tag: its short hash
        ]
    )  # the branch `exp` is not on HEAD's history
    names = [(c["name"], c["type"], c["changed"]) for c in doc["columns"]]
    assert names == [
        ("accuracy", "metric", True),
        ("loss", "metric", True),
        ("eval.f1", "metric", True),
        ("note", "metric", True),
        ("auc", "metric", True),
        ("train.lr", "param", True),
        ("seed", "param", True),
        ("threshold", "param", True),
        ("train.epochs", "param", False),
    ]
    assert doc["columns"][0] == {
        "name": "accuracy",
        "type": "metric",
        "file": "metrics.json",
        "key": "accuracy",
        "changed": True,
    }
    top = doc["rows"][1]
    assert top["subject"] == "v3" and isinstance(top["time"], int)
    assert top["params"] == {
        "params.yaml": {"train.lr": 0.3, "train.epochs": 10, "seed": 1},
        "eval.yaml": {"threshold": 0.6},
    }
    assert top["metrics"]["eval/scores.yaml"] == {"auc": 0.8}

    # two rows: what changed is judged between them
    out = mlv("exp", "show", "-n", "1", cwd=mlv_repo).stdout.splitlines()
    assert out[0].split() == [
        "Rev", "Created", "accuracy", "loss", "note", "seed",
        "eval.f1", "auc", "train.lr", "train.epochs", "threshold",
    ]  # fmt: skip
    assert len(out) == 3
    assert out[1].split() == [
        "workspace", "-", "0.95", "0.31", "new", "2", "0.6", "0.8", "0.3", "10", "0.6",
    ]  # fmt: skip
    assert out[2].split()[0] == "main"


def test_exp_show_sort_and_all_commits(mlv_repo: Path, history: dict[str, str]) -> None:
    doc = _json("exp", "show", "--all-commits", "--sort-by", "accuracy", cwd=mlv_repo)
    order = [r["commit"] for r in doc["rows"]]
    assert order == [
        history["exp"],  # 0.8
        history["v1"],  # 0.88
        history["v2"],  # 0.91
        history["v3"],  # 0.93
        None,  # 0.95
        history["init"],  # no value: last
    ]
    doc = _json(
        "exp", "show", "-A", "--sort-by", "params.yaml:train.lr", "--sort-order", "desc",
        cwd=mlv_repo,
    )  # fmt: skip
    lrs = [r["params"].get("params.yaml", {}).get("train.lr") for r in doc["rows"]]
    assert lrs == [0.3, 0.3, 0.2, 0.1, 0.05, None]
    proc = mlv("exp", "show", "--sort-by", "nope", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "--sort-by nope", "accuracy")
    proc = mlv("exp", "show", "-n", "2", "--all-commits", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "cannot be combined")


def test_exp_show_csv_and_md(mlv_repo: Path, history: dict[str, str]) -> None:
    out = mlv("exp", "show", "--csv", cwd=mlv_repo).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["rev"] for r in rows] == [
        "workspace",
        "main",
        "v2",
        "v1",
        history["init"][:7],
    ]
    assert list(rows[0])[:6] == [
        "rev",
        "commit",
        "time",
        "subject",
        "metrics.json:accuracy",
        "metrics.json:loss",
    ]
    assert rows[0]["commit"] == "" and rows[1]["commit"] == history["v3"]
    assert rows[1]["subject"] == "v3" and rows[1]["time"].endswith("+00:00")
    assert rows[0]["params.yaml:seed"] == "2"
    assert rows[2]["metrics.json:accuracy"] == "0.91"
    assert rows[4]["metrics.json:accuracy"] == ""  # before the pipeline
    md = mlv("exp", "show", "--md", "-n", "1", cwd=mlv_repo).stdout.splitlines()
    assert md[0].startswith("| Rev | Created | accuracy | loss |")
    assert md[2].startswith("| workspace | - | 0.95 | 0.31 |")
    proc = mlv("exp", "show", "--csv", "--json", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "--csv")


def test_exp_show_before_the_first_commit(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    mlv("init", cwd=repo)
    write_files(repo, {"params.yaml": "lr: 0.1\n"})
    doc = _json("exp", "show", cwd=repo)  # git does not track it yet: not printed
    assert [r["rev"] for r in doc["rows"]] == ["workspace"]
    assert doc["rows"][0]["params"] == {}
    why = doc["rows"][0]["errors"]["params.yaml"]
    assert why.startswith("params.yaml: git does not track it (untracked)")
    assert why.endswith("if it is yours to version, run `git add params.yaml`")
    git("add", "params.yaml", cwd=repo)  # the hint, as it says
    doc = _json("exp", "show", cwd=repo)
    assert doc["rows"][0]["params"] == {"params.yaml": {"lr": 0.1}}
    assert doc["rows"][0]["errors"] == {}


# ---- NaN and infinity, the stash, ambiguous keys, conflicting flags --------------------


def _strict_json(text: str) -> Any:
    """json.loads that refuses NaN and Infinity, as JSON.parse does."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


def test_nan_and_infinity_are_strict_json_and_unchanged_nan_is_no_change(
    mlv_repo: Path,
) -> None:
    pipeline = {
        "stages": {"s": {"cmd": "x", "params": ["lr"], "metrics": ["m.json", "m.yaml"]}},
        "checks": ["d > 0", "not d < 0", "big > 1", "big - big < 1", "acc > 0.5"],
    }
    write_files(
        mlv_repo,
        {
            "mlv.yaml": yaml.safe_dump(pipeline),
            "params.yaml": "lr: .nan\n",
            "m.json": '{"d": NaN, "big": Infinity, "acc": 0.9}',
            "m.yaml": "small: -.inf\n",
        },
    )
    commit_all(mlv_repo, "nan")
    write_files(mlv_repo, {"m.json": '{"d": NaN, "big": Infinity, "acc": 0.95}'})

    out = mlv("metrics", "diff", cwd=mlv_repo).stdout
    assert _lines(out) == [
        ["Path", "Metric", "Old", "New", "Change", "Relative"],
        ["m.json", "acc", "0.9", "0.95", "+0.05", "+5.56%"],
    ]  # the unchanged NaN (and infinities) are no change
    doc = _strict_json(mlv("metrics", "diff", "--json", "--all", cwd=mlv_repo).stdout)
    assert doc["metrics"]["m.json"]["d"] == {
        "old": "NaN", "new": "NaN", "change": None, "relative": None,
    }  # fmt: skip
    assert doc["metrics"]["m.json"]["big"]["new"] == "Infinity"
    assert doc["metrics"]["m.yaml"]["small"]["new"] == "-Infinity"
    assert _strict_json(mlv("metrics", "diff", "--json", cwd=mlv_repo).stdout)["metrics"] == {
        "m.json": {"acc": {"old": 0.9, "new": 0.95, "change": 0.05, "relative": 0.0555555555556}}
    }
    shown = _strict_json(mlv("metrics", "show", "--json", "-A", cwd=mlv_repo).stdout)
    assert shown[0]["metrics"]["m.json"] == {"d": "NaN", "big": "Infinity", "acc": 0.95}
    exp = _strict_json(mlv("exp", "show", "--json", cwd=mlv_repo).stdout)
    assert exp["rows"][1]["metrics"]["m.yaml"] == {"small": "-Infinity"}
    assert exp["rows"][1]["params"] == {"params.yaml": {"lr": "NaN"}}
    assert [c["name"] for c in exp["columns"] if c["changed"]] == ["acc"]
    params = _strict_json(mlv("params", "diff", "--json", "--all", cwd=mlv_repo).stdout)
    assert params["params"] == {"params.yaml": {"lr": {"old": "NaN", "new": "NaN"}}}
    assert mlv("params", "diff", cwd=mlv_repo).stdout == "No params changed.\n"

    proc = mlv("metrics", "check", "--json", cwd=mlv_repo, check=False)
    assert proc.returncode == 1, proc.stderr
    report = _strict_json(proc.stdout)
    assert [(c["passed"], c["reason"]) for c in report["checks"]] == [
        (False, "d is NaN (in m.json)"),
        (False, "d is NaN (in m.json)"),  # `not` does not turn NaN into a pass
        (True, None),
        (False, "big - big is NaN"),
        (True, None),
    ]
    assert report["checks"][0]["values"] == {"d": "NaN"}
    text = mlv("metrics", "check", cwd=mlv_repo, check=False).stdout
    assert "d is NaN (in m.json)" in text


def test_all_commits_leave_out_the_stash(mlv_repo: Path, history: dict[str, str]) -> None:
    git("stash", "-q", cwd=mlv_repo)
    git("stash", "apply", "-q", cwd=mlv_repo)  # the stash ref stays, the workspace is back
    stash = {_head(mlv_repo, "stash@{0}"), _head(mlv_repo, "stash@{0}^2")}
    want = {history[n] for n in ("init", "v1", "v2", "v3", "exp")}
    doc = _json("metrics", "show", "--all-commits", cwd=mlv_repo)
    assert {d["commit"] for d in doc[1:]} == want and len(doc) == 6
    doc = _json("exp", "show", "-A", cwd=mlv_repo)
    assert {r["commit"] for r in doc["rows"][1:]} == want and len(doc["rows"]) == 6
    assert not stash & {r["commit"] for r in doc["rows"]}
    assert not [r for r in doc["rows"] if (r["subject"] or "").startswith(("WIP on", "index on"))]
    # a detached HEAD is still shown
    git("checkout", "-q", "--detach", "main", cwd=mlv_repo)
    git("commit", "-q", "--allow-empty", "-m", "detached", cwd=mlv_repo)
    doc = _json("exp", "show", "-A", cwd=mlv_repo)
    assert _head(mlv_repo) in {r["commit"] for r in doc["rows"]}


def test_metrics_check_key_in_two_files_fails_that_check_only(mlv_repo: Path) -> None:
    write_files(
        mlv_repo,
        {
            "mlv.yaml": yaml.safe_dump(
                {
                    "stages": {"s": {"cmd": "x", "metrics": ["m1.json", "m2.yaml"]}},
                    "checks": ["acc > 0.5", "loss < 1"],
                }
            ),
            "m1.json": json.dumps({"acc": 0.9, "loss": 0.5}),
            "m2.yaml": "acc: 0.8\n",
        },
    )
    git("add", "m1.json", "m2.yaml", cwd=mlv_repo)  # printed once git tracks them
    proc = mlv("metrics", "check", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr
    rows = proc.stdout.splitlines()
    assert rows[1].split()[:5] == ["acc", ">", "0.5", "acc=-", "FAIL"]
    assert "acc is in both m1.json and m2.yaml: rename it in one file" in rows[1]
    assert rows[2].split()[-1] == "pass"
    assert rows[3] == "2 checks: 1 passed, 1 failed"
    proc = mlv("metrics", "check", "--json", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["checks"] == [
        {
            "check": "acc > 0.5",
            "passed": False,
            "values": {"acc": None},
            "reason": "acc is in both m1.json and m2.yaml: rename it in one file",
        },
        {"check": "loss < 1", "passed": True, "values": {"loss": 0.5}, "reason": None},
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("params", "diff", "--json", "--md"),
        ("metrics", "show", "--md", "--json"),
        ("metrics", "diff", "--json", "--md"),
        ("metrics", "check", "--json", "--md"),
        ("exp", "show", "--json", "--md"),
    ],
)
def test_conflicting_format_flags_are_usage_errors(
    mlv_repo: Path, history: dict[str, str], args: tuple[str, ...]
) -> None:
    proc = mlv(*args, cwd=mlv_repo, check=False)
    assert_error(proc, 2, "choose one of", "--json", "--md")
    assert proc.stdout == ""


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("metrics", "check", "--baseline", ""), "--baseline"),
        (("metrics", "check", "--baseline", " "), "--baseline"),
        (("metrics", "diff", ""), "revision A"),
        (("metrics", "diff", "HEAD", ""), "revision B"),
        (("params", "diff", ""), "revision A"),
        (("metrics", "show", "--rev", ""), "--rev"),
    ],
)
def test_an_empty_revision_is_a_usage_error(
    mlv_repo: Path, history: dict[str, str], args: tuple[str, ...], what: str
) -> None:
    proc = mlv(*args, cwd=mlv_repo, check=False)
    assert_error(proc, 2, f"{what} is empty")
