"""DVC's templating in mlv.yaml (vars, ${...}, foreach, matrix), end to end with real git and
real commands.

The pipeline is the example of docs/pipelines.md, "Moving from DVC", read from that page
(the blocks after `<!-- example: FILE -->`), so the documented port is the tested one. Each
script logs $MLV_STAGE to runs.log when it runs, so a test can tell which stages ran.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import assert_error, commit_all, git, mlv, write_files
from prebuilt import Prebuilt, make_mlv_repo

DOCS = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"

SCRIPTS = {
    "prepare.py": (
        "import os, sys\n"
        "name, out = sys.argv[1:]\n"
        "os.makedirs(os.path.dirname(out), exist_ok=True)\n"
        "rows = {'iris': 4, 'wine': 3}[name]\n"
        "open(out, 'w').write(''.join(f'{name},{i}\\n' for i in range(rows)))\n"
        "open('runs.log', 'a').write(os.environ['MLV_STAGE'] + '\\n')\n"
    ),
    "train.py": (
        "import json, os, sys, yaml\n"
        "model, lr, _, seed, out = sys.argv[1:]\n"
        "epochs = yaml.safe_load(open('params.yaml'))['train']['epochs']\n"
        "rows = sum(1 for f in ('data/iris.csv', 'data/wine.csv') for _ in open(f))\n"
        "os.makedirs(os.path.dirname(out), exist_ok=True)\n"
        "doc = {'model': model, 'lr': float(lr), 'seed': int(seed), 'epochs': epochs,\n"
        "       'rows': rows}\n"
        "json.dump(doc, open(out, 'w'), sort_keys=True)\n"
        "open('runs.log', 'a').write(os.environ['MLV_STAGE'] + '\\n')\n"
    ),
    "evaluate.py": (
        "import json, os, sys\n"
        "model, outdir = sys.argv[1:]\n"
        "m = json.load(open(model))\n"
        "os.makedirs(outdir, exist_ok=True)\n"
        "loss = [round(1 / (1 + step * m['lr']), 4) for step in range(m['epochs'])]\n"
        "json.dump({'loss': loss[-1], 'rows': m['rows']}, open(outdir + '/metrics.json', 'w'))\n"
        "open(outdir + '/loss.csv', 'w').write('step,loss\\n' + ''.join(\n"
        "    f'{s},{v}\\n' for s, v in enumerate(loss)))\n"
        "open('runs.log', 'a').write(os.environ['MLV_STAGE'] + '\\n')\n"
    ),
}

PREPARE = ["prepare@iris", "prepare@wine"]
TRAIN = ["train@linear-0.1", "train@linear-0.01", "train@tree-0.1", "train@tree-0.01"]
EVALUATE = ["evaluate@fast", "evaluate@careful"]


def example(name: str) -> str:
    """The code block that follows `<!-- example: NAME -->` in docs/pipelines.md."""
    text = DOCS.read_text()
    found = re.search(
        rf"<!-- example: {re.escape(name)} -->\n```[a-z]*\n(.*?)\n```", text, re.DOTALL
    )
    assert found, f"docs/pipelines.md has no example {name}"
    return found.group(1) + "\n"


def python_on_path(tmp: Path) -> dict[str, str | None]:
    """An environment whose `python` is the interpreter running the tests (the example's
    commands say `python`, as a dvc.yaml does)."""
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    link = bindir / "python"
    if not link.exists():
        link.symlink_to(sys.executable)
    return {"PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}


def ran(repo: Path) -> list[str]:
    log = repo / "runs.log"
    lines = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


def lock(repo: Path) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((repo / "mlv.lock").read_text())
    return doc


@pytest.fixture(scope="module")
def built(module_env: Path) -> Prebuilt:
    """A DVC project (the documented example, dvc.yaml and params.yaml, committed) in an
    mlv repository, not yet renamed."""
    repo = make_mlv_repo(module_env / "repo")
    write_files(
        repo,
        {
            **SCRIPTS,
            "params.yaml": example("params.yaml"),
            "dvc.yaml": example("dvc.yaml"),
            ".gitignore": "runs.log\n",
        },
    )
    commit_all(repo, "a DVC project")
    return Prebuilt(module_env)


@pytest.fixture
def repo(built: Prebuilt, tmp_path: Path) -> Path:
    return built.copy_into(tmp_path) / "repo"


@pytest.fixture
def ported(repo: Path, tmp_path: Path) -> Path:
    """The example after step 2 of the port: dvc.yaml renamed to mlv.yaml."""
    git("mv", "dvc.yaml", "mlv.yaml", cwd=repo)
    return repo


def test_the_documented_dvc_yaml_runs_after_a_rename(ported: Path, tmp_path: Path) -> None:
    repo, env = ported, python_on_path(tmp_path)
    out = mlv("repro", cwd=repo, env=env).stdout
    assert sorted(ran(repo)) == sorted(PREPARE + TRAIN + EVALUATE)
    assert "Running stage 'prepare@iris'" in out
    assert "> python prepare.py iris data/iris.csv" in out
    # mlv.lock records the expanded stages, commands as they ran, in file order
    stages = lock(repo)["stages"]
    assert list(stages) == PREPARE + TRAIN + EVALUATE
    assert stages["train@tree-0.01"]["cmd"] == (
        "python train.py tree 0.01 --seed 1 models/tree-0.01.json"
    )
    assert stages["train@tree-0.01"]["params"] == {"params.yaml": {"train.epochs": 5}}
    assert stages["evaluate@careful"]["cmd"] == (
        "python evaluate.py models/tree-0.01.json results/careful"
    )
    # the outputs are where the interpolated paths say; metrics and plots tracked by git
    assert (repo / "data/wine.csv").read_text() == "wine,0\nwine,1\nwine,2\n"
    assert yaml.safe_load((repo / "models/linear-0.1.json").read_text())["rows"] == 7
    assert [m["path"] for m in stages["evaluate@fast"]["metrics"]] == ["results/fast/metrics.json"]
    careful_outs = {o["path"]: o.get("cache", True) for o in stages["evaluate@careful"]["outs"]}
    assert careful_outs == {"results/careful/loss.csv": False}
    assert "results/fast/loss.csv" not in (repo / ".gitignore").read_text()
    # status sees the cached outs only (mlv.lock says loss.csv is git's, whatever the
    # template needs to be read)
    status = json.loads(mlv("status", "--json", cwd=repo).stdout)
    assert status["clean"]
    assert sorted(t["path"] for t in status["targets"]) == sorted(
        [f"data/{d}.csv" for d in ("iris", "wine")]
        + [f"models/{n.partition('@')[2]}.json" for n in TRAIN]
    )
    shown = mlv("metrics", "show", "--json", cwd=repo).stdout
    assert "results/careful/metrics.json" in shown
    drawn = json.loads(mlv("plots", "show", "--json", "-o", tmp_path / "page", cwd=repo).stdout)
    assert drawn["errors"] == []
    plots = {p["id"]: p for p in drawn["plots"]}
    assert list(plots) == ["results/fast/loss.csv", "results/careful/loss.csv", "loss"]
    both = plots["loss"]
    assert both["title"] == "Loss of both evaluations"
    assert [s["file"] for s in both["series"]] == [
        "results/fast/loss.csv",
        "results/careful/loss.csv",
    ]
    assert both["series"][1]["points"][:2] == [[0, 1.0], [1, 0.9901]]
    mlv("plots", "show", "-o", tmp_path / "page", cwd=repo)
    assert "Loss of both evaluations" in (tmp_path / "page" / "index.html").read_text()

    # nothing changed: nothing runs
    assert "Stages: 0 ran" in mlv("repro", cwd=repo, env=env).stdout
    assert ran(repo) == []


def test_outputs_dvc_left_need_force_the_first_time(ported: Path, tmp_path: Path) -> None:
    """Step 3 of the port: what DVC produced is content mlv did not produce."""
    repo, env = ported, python_on_path(tmp_path)
    write_files(repo, {"data/iris.csv": "made by dvc\n"})
    proc = mlv("repro", cwd=repo, env=env, check=False)
    assert proc.returncode == 1
    assert "data/iris.csv holds content that mlv did not produce" in proc.stderr
    assert "mlv repro --force" in proc.stderr
    mlv("repro", "--force", cwd=repo, env=env)
    assert sorted(ran(repo)) == sorted(PREPARE + TRAIN + EVALUATE)
    assert (repo / "data/iris.csv").read_text().startswith("iris,0")


def test_a_value_used_only_in_a_command_reruns_its_stages(ported: Path, tmp_path: Path) -> None:
    repo, env = ported, python_on_path(tmp_path)
    mlv("repro", cwd=repo, env=env)
    ran(repo)
    params = (repo / "params.yaml").read_text().replace("seed: 1", "seed: 2")
    (repo / "params.yaml").write_text(params)
    dry = mlv("repro", "--dry", cwd=repo, env=env).stdout
    assert "Would run stage 'train@tree-0.1' (cmd changed)" in dry, dry
    mlv("repro", cwd=repo, env=env)
    # train's command holds the seed; evaluate reads what train wrote (the seed is in it)
    assert sorted(ran(repo)) == sorted(TRAIN + EVALUATE)
    assert lock(repo)["stages"]["train@linear-0.1"]["cmd"].endswith(
        "--seed 2 models/linear-0.1.json"
    )
    # a listed param changes every stage of the group that lists it
    (repo / "params.yaml").write_text(params.replace("epochs: 5", "epochs: 6"))
    mlv("repro", cwd=repo, env=env)
    assert sorted(ran(repo)) == sorted(TRAIN + EVALUATE)


def test_repro_of_one_generated_stage_or_of_a_group(ported: Path, tmp_path: Path) -> None:
    repo, env = ported, python_on_path(tmp_path)
    mlv("repro", "train@tree-0.01", cwd=repo, env=env)
    assert sorted(ran(repo)) == sorted([*PREPARE, "train@tree-0.01"])
    assert list(lock(repo)["stages"]) == [*PREPARE, "train@tree-0.01"]
    # a group's name stands for all its stages (and what they need), as in DVC
    mlv("repro", "evaluate", cwd=repo, env=env)
    assert sorted(ran(repo)) == sorted(["train@linear-0.1", *EVALUATE])
    # a matrix group is a group too
    mlv("repro", "train", cwd=repo, env=env)
    assert sorted(ran(repo)) == sorted(["train@linear-0.01", "train@tree-0.1"])
    # and -s (this stage alone) takes a group's name
    mlv("repro", "-s", "-f", "prepare", cwd=repo, env=env)
    assert sorted(ran(repo)) == PREPARE


def test_metrics_of_a_commit_read_its_templated_pipeline(ported: Path, tmp_path: Path) -> None:
    """A revision's mlv.yaml is expanded with that revision's params.yaml."""
    repo, env = ported, python_on_path(tmp_path)
    mlv("repro", cwd=repo, env=env)
    commit_all(repo, "ported")
    params = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(params.replace("epochs: 5", "epochs: 9"))
    mlv("repro", cwd=repo, env=env)
    commit_all(repo, "more epochs")
    shown = json.loads(mlv("metrics", "show", "--json", "--rev", "HEAD~1", cwd=repo).stdout)
    old = next(r for r in shown if r["rev"] == "HEAD~1")
    assert old["errors"] == {}
    assert old["metrics"]["results/careful/metrics.json"]["rows"] == 7
    diff = mlv("params", "diff", "HEAD~1", "HEAD", cwd=repo).stdout
    assert "train.epochs" in diff and "9" in diff, diff


def test_unknown_generated_names_are_bad_usage(ported: Path) -> None:
    for args in (["repro", "train@nope"], ["dag", "train@nope"], ["repro", "tra"]):
        proc = mlv(*args, cwd=ported, check=False)
        assert_error(proc, 2, f"no stage named '{args[1]}'", "train@* (4)", "prepare@* (2)")


def test_dag_shows_the_generated_stages(ported: Path) -> None:
    lines = mlv("dag", cwd=ported).stdout.splitlines()
    rows = {line.split()[0]: line for line in lines}
    assert list(rows) == PREPARE + TRAIN + EVALUATE
    assert rows["train@tree-0.1"].endswith("<- prepare@iris, prepare@wine")
    assert rows["evaluate@careful"].endswith("<- train@tree-0.01")
    # a generated stage, and a group, selected by name
    only = mlv("dag", "evaluate@fast", cwd=ported).stdout.splitlines()
    assert [line.split()[0] for line in only] == [*PREPARE, "train@linear-0.1", "evaluate@fast"]
    dot = mlv("dag", "--dot", "--downstream", "train", cwd=ported).stdout
    assert '"train@tree-0.01" -> "evaluate@careful";' in dot
    assert "prepare@iris" not in dot
    listed = mlv("stage", "list", "--json", cwd=ported).stdout
    assert '"name": "evaluate@fast"' in listed


def test_plots_of_the_example_are_expanded(ported: Path) -> None:
    """The plots of the example as the pipeline reads them: each evaluation's loss.csv a
    plot output with its properties, and the top-level plot's files interpolated."""
    from mlv.core.pipeline import spec

    pipe = spec.load(str(ported))
    careful = pipe.stages["evaluate@careful"]
    assert [(p.id, dict(p.props)) for p in careful.plots] == [
        ("results/careful/loss.csv", {"x": "step", "y": "loss"})
    ]
    ((top,),) = [pipe.plots]
    assert top.id == "loss"
    assert dict(top.props)["y"] == {
        "results/fast/loss.csv": "loss",
        "results/careful/loss.csv": "loss",
    }


def test_stage_add_keeps_the_templates(ported: Path, tmp_path: Path) -> None:
    repo, env = ported, python_on_path(tmp_path)
    mlv("stage", "add", "report", "-d", "results", "-o", "report.txt", "--",
        "cat results/fast/metrics.json > report.txt", cwd=repo)  # fmt: skip
    doc = yaml.safe_load((repo / "mlv.yaml").read_text())
    assert doc["vars"] == [{"out": "results"}]
    assert doc["stages"]["prepare"]["foreach"] == "${datasets}"
    assert doc["stages"]["train"]["matrix"]["model"] == "${models}"
    assert doc["stages"]["report"]["cmd"] == "cat results/fast/metrics.json > report.txt"
    mlv("repro", "report", cwd=repo, env=env)
    assert '"loss"' in (repo / "report.txt").read_text()
    # a group's name is taken
    proc = mlv("stage", "add", "train", "--", "true", cwd=repo, check=False)
    assert_error(proc, 1, "stage 'train' already exists", "--force")


# ---- hostile and broken files --------------------------------------------------------


def broken(repo: Path, mlv_yaml: str, files: dict[str, str] | None = None) -> str:
    """The one-line error `mlv repro --dry` gives for this mlv.yaml."""
    write_files(repo, {"mlv.yaml": mlv_yaml, **(files or {})})
    return assert_error(mlv("repro", "--dry", cwd=repo, check=False), 1)


def test_a_missing_value_names_the_stage_and_the_sources(repo: Path) -> None:
    line = broken(repo, "vars:\n  - a: 1\nstages:\n  train:\n    cmd: echo ${lr}\n")
    assert "mlv.yaml: stage 'train': cmd: ${lr} is not defined in params.yaml or vars" in line
    line = broken(repo, "stages:\n  t:\n    foreach: [a]\n    do:\n      cmd: echo ${item.lr}\n")
    assert "stage 't@a': cmd: ${item.lr} is not defined: item (a string) has no 'lr'" in line


def test_interpolated_paths_cannot_leave_the_repository(repo: Path) -> None:
    line = broken(
        repo,
        "stages:\n  t:\n    cmd: touch x\n    outs:\n      - ${up}/x\n",
        {"params.yaml": "up: ..\n"},
    )
    assert "stage 't': outs: '../x' is outside the repository" in line
    line = broken(
        repo,
        "stages:\n  t:\n    foreach: ['../../etc']\n    do:\n      cmd: x\n"
        "      deps:\n        - ${item}\n",
    )
    assert "would make the stage name" in line  # '/' cannot be in a name
    line = broken(
        repo,
        "stages:\n  t:\n    foreach: {a: ../../etc}\n    do:\n      cmd: x\n      wdir: ${item}\n",
    )
    assert "stage 't@a': wdir: '../../etc' is outside the repository" in line
    for path in ("../secret.yaml", "/etc/passwd", ".git/config", ".mlv/config.yaml"):
        line = broken(repo, f"vars:\n  - {path}\nstages:\n  t:\n    cmd: x\n")
        assert "mlv.yaml: vars:" in line and repr(path) in line, line
    assert not (repo / "x").exists()


def test_huge_expansions_are_refused_before_they_are_built(repo: Path) -> None:
    dims = "\n".join(f"      d{i}: [a, b, c, d, e, f, g, h, i, j]" for i in range(30))
    line = broken(repo, f"stages:\n  t:\n    matrix:\n{dims}\n    cmd: echo ${{key}}\n")
    assert "refused: stage 't': the matrix makes more than 10,000 stages" in line
    line = broken(repo, "stages:\n  t:\n    foreach: ${n}\n    do: {cmd: x}\n",
                  {"params.yaml": "n: [" + ", ".join(map(str, range(20_000))) + "]\n"})  # fmt: skip
    assert "foreach over 20,000 entries" in line


def test_an_alias_bomb_through_foreach_is_refused(repo: Path) -> None:
    """Each alias is within the YAML bound, but foreach copies `do` once per item: the
    expansion's own bound stops it."""
    text = "\n".join(
        [
            "vars:",
            "  - x: &x [" + ", ".join(["v"] * 5000) + "]",
            "  - big: &big {a: *x, b: *x, c: *x, d: *x, e: *x, f: *x, g: *x, h: *x}",
            "stages:",
            "  t:",
            "    foreach: [" + ", ".join(map(str, range(5000))) + "]",
            "    do:",
            "      cmd: echo ${item}",
            "      desc: *big",
        ]
    )
    line = broken(repo, text + "\n")
    assert "refused" in line and "more than 1,000,000 values" in line


def test_no_recursion_and_no_evaluation(repo: Path, tmp_path: Path) -> None:
    # vars cannot interpolate (so no cycle can be written)
    line = broken(repo, "vars:\n  - a: ${b}\n  - b: ${a}\nstages:\n  t:\n    cmd: x\n")
    assert "mlv.yaml: vars: `${...}` is not allowed in `vars`" in line
    # a value holding ${...} is inserted as it is, never interpolated again
    write_files(
        repo,
        {
            "params.yaml": "a: '${b}'\nb: '${a}'\n",
            "mlv.yaml": "stages:\n  t:\n    cmd: echo '${a}' > out.txt\n    outs: [out.txt]\n",
        },
    )
    mlv("repro", cwd=repo)
    assert (repo / "out.txt").read_text() == "${b}\n"
    # ${...} names values; it evaluates nothing
    line = broken(repo, "stages:\n  t:\n    cmd: echo ${__import__('os').system('id')}\n")
    assert "is not a reference" in line or "is not defined" in line
    line = broken(repo, "stages:\n  t:\n    cmd: echo ${train}\n", {"params.yaml": "x: 1\n"})
    assert "${train} is not defined in params.yaml" in line


def test_values_defined_twice_and_reserved_names(repo: Path) -> None:
    line = broken(
        repo,
        "vars:\n  - train: {lr: 1}\nstages:\n  t:\n    cmd: x\n",
        {"params.yaml": "train:\n  lr: 0.1\n"},
    )
    assert "'train.lr' from vars is already defined by params.yaml" in line
    line = broken(
        repo,
        "stages:\n  t:\n    foreach: [a]\n    do:\n      vars: [{item: 1}]\n      cmd: x\n",
    )
    assert "defines 'item', which foreach and matrix set" in line
    line = broken(repo, "stages:\n  t@1:\n    cmd: x\n")
    assert "'@' is kept for the stages that foreach and matrix generate" in line
    line = broken(repo, "stages:\n  t:\n    foreach: [1, '1']\n    do: {cmd: x}\n")
    assert "stage t@1 is generated twice" in line


def test_a_params_file_linked_out_of_the_repository_is_not_read(repo: Path, tmp_path: Path) -> None:
    """The clone chose the link: reading through it would put a file of the user's (a
    secret) into commands, mlv.lock and messages. A link inside the repository is fine."""
    secret = tmp_path / "secret.yaml"
    secret.write_text("token: s3cr3t\n")
    (repo / "conf").mkdir()
    (repo / "conf" / "link.yaml").symlink_to(secret)
    (repo / "up").symlink_to(tmp_path)
    (repo / "inside.yaml").write_text("token: fine\n")
    (repo / "conf" / "here.yaml").symlink_to("../inside.yaml")
    (repo / "conf" / "git.yaml").symlink_to("../.git/config")
    stage = "stages:\n  t:\n    cmd: echo ${token} > out.txt\n    outs: [out.txt]\n"
    for entry, where in (
        ("conf/link.yaml", "out of the repository"),
        ("up/secret.yaml", "out of the repository"),
        ("conf/git.yaml", "to .git/config"),
    ):
        write_files(repo, {"mlv.yaml": f"vars: [{entry}]\n{stage}"})
        for args in (("repro",), ("dag",), ("stage", "list"), ("exp", "show")):
            line = assert_error(mlv(*args, cwd=repo, check=False), 1)
            assert f"mlv.yaml: vars: {entry} is a symbolic link {where}, not followed" in line
            assert "s3cr3t" not in line
    assert not (repo / "out.txt").exists()
    (repo / "params.yaml").unlink()
    (repo / "params.yaml").symlink_to(secret)
    line = broken(repo, stage)
    assert "mlv.yaml: params.yaml is a symbolic link out of the repository" in line
    (repo / "params.yaml").unlink()
    write_files(repo, {"mlv.yaml": f"vars: [conf/here.yaml]\n{stage}"})
    mlv("repro", cwd=repo)
    assert (repo / "out.txt").read_text() == "fine\n"
