"""A pull request's templated mlv.yaml cannot make mlv print a file of the CI job's.

`vars: [gcp-key.json]` (the job's ignored key file) with `foreach: ["${private_key}"]`
put the key into the stage names and commands that `mlv dag` and `mlv repro --dry` print.
Every command that loads mlv.yaml only to print now reads a vars file (or params.yaml)
only if git tracks it or mlv records its bytes (vouched.py); anything else is one error
line naming it, with the `git add` hint. A `mlv repro` that runs stages still reads an
untracked params.yaml: it runs the pipeline's commands anyway (docs/decisions.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import commit_all, git, mlv, write_files

SECRET = "SECRETSECRET"
KEY = json.dumps({"type": "service_account", "private_key": SECRET}) + "\n"
HOSTILE = (
    "vars: [gcp-key.json]\n"
    "stages:\n"
    "  s:\n"
    "    foreach: ['${private_key}']\n"
    "    do:\n"
    "      cmd: echo ${item} > out-${item}.txt\n"
    "      outs: ['out-${item}.txt']\n"
    "  t:\n"
    "    cmd: echo ${private_key}\n"
    "    metrics: [m.json]\n"
    "plots:\n"
    "  - m.json:\n"
    "      title: ${private_key}\n"
)
LINE = (
    "gcp-key.json: git does not track it (ignored) and mlv records no such content: "
    "its values are not printed"
)
HINT = "if it is yours to version, run `git add -f gcp-key.json`"

PRINTERS = [
    ("dag",),
    ("dag", "--mermaid"),
    ("repro", "--dry"),
    ("repro", "--dry", "s"),
    ("status",),
    ("stage", "list"),
    ("params", "diff", "HEAD~1", "--md"),
    ("metrics", "show", "--md"),
    ("exp", "show", "--json"),
    ("plots", "show"),
    ("plots", "show", "--json"),
]


def _clone_with_key(tmp_path: Path) -> Path:
    """The CI job's clone: the pull request's templated mlv.yaml, the key written."""
    src = tmp_path / "src"
    src.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=src)
    mlv("init", cwd=src)
    write_files(src, {".gitignore": "gcp-key.json\n", "params.yaml": "lr: 0.1\n"})
    commit_all(src, "base")
    write_files(src, {"mlv.yaml": HOSTILE, "m.json": '[{"x": 0, "y": 1}]\n'})
    commit_all(src, "the pull request")
    ci = tmp_path / "ci"
    git("clone", "-q", str(src), str(ci), cwd=tmp_path)
    (ci / "gcp-key.json").write_text(KEY)
    assert git("status", "--porcelain", cwd=ci).stdout == ""
    return ci


def _pages(ci: Path) -> str:
    pages = ci / "mlv_plots"
    if not pages.exists():
        return ""
    return "".join(p.read_text("utf-8", "replace") for p in pages.rglob("*") if p.is_file())


def test_vars_never_print_the_key(tmp_path: Path) -> None:
    ci = _clone_with_key(tmp_path)
    for args in PRINTERS:
        proc = mlv(*args, cwd=ci, check=False)
        seen = proc.stdout + proc.stderr + _pages(ci)
        assert SECRET not in seen, (args, seen)
        assert "Traceback" not in seen, (args, seen)
        if args[0] in ("dag", "repro", "stage", "params", "metrics", "exp"):
            assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
            assert LINE in proc.stderr and HINT in proc.stderr, (args, proc.stderr)
            assert len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        if args[0] == "plots":  # the page's plots come from mlv.yaml: none, and why
            assert LINE in seen and HINT in seen, (args, seen)
    assert not list(ci.glob("out-*")), "repro --dry ran nothing"


def test_the_hint_makes_dag_work(tmp_path: Path) -> None:
    """A user who means it versions the file; then the pipeline is theirs to print."""
    ci = _clone_with_key(tmp_path)
    assert HINT in mlv("dag", cwd=ci, check=False).stderr
    git("add", "-f", "gcp-key.json", cwd=ci)  # the hint
    proc = mlv("dag", cwd=ci)
    assert f"s@{SECRET}" in proc.stdout and proc.stderr == ""


def test_the_everyday_flow(mlv_repo: Path) -> None:
    """A user's new params.yaml, named in `vars`, runs in repro before `git add`; dag
    asks for `git add params.yaml`, and after it shows the stages."""
    write_files(
        mlv_repo,
        {
            "mlv.yaml": "vars: [params.yaml]\nstages:\n  train:\n"
            "    foreach: ${sizes}\n    do:\n"
            "      cmd: echo ${item} > out-${item}.txt\n      outs: ['out-${item}.txt']\n",
        },
    )
    git("add", "mlv.yaml", ".mlv", cwd=mlv_repo)
    git("commit", "-q", "-m", "pipeline", cwd=mlv_repo)
    write_files(mlv_repo, {"params.yaml": "sizes: [small, big]\n"})  # not added yet
    mlv("repro", cwd=mlv_repo)  # runs: its own workspace
    assert (mlv_repo / "out-big.txt").read_text() == "big\n"
    proc = mlv("dag", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "params.yaml: git does not track it (untracked)" in proc.stderr
    assert "run `git add params.yaml`" in proc.stderr
    git("add", "params.yaml", cwd=mlv_repo)  # the hint
    proc = mlv("dag", cwd=mlv_repo)
    assert "train@small" in proc.stdout and "train@big" in proc.stdout
    assert mlv("repro", "--dry", cwd=mlv_repo).stderr == ""
    status = mlv("status", cwd=mlv_repo)
    assert "Traceback" not in status.stdout + status.stderr


def test_vars_in_a_folder_mlv_records(mlv_repo: Path) -> None:
    """A vars file inside a folder `mlv add` tracks (git does not) is vouched for by the
    folder's tree in the cache; edited, it is refused with `mlv commit`, which makes the
    refusal go (the gate reads the cache)."""
    write_files(mlv_repo, {"conf/sizes.yaml": "sizes: [small]\n", "conf/other.txt": "x"})
    mlv("add", "conf", cwd=mlv_repo)
    write_files(
        mlv_repo,
        {
            "mlv.yaml": "vars: [conf/sizes.yaml]\nstages:\n  train:\n"
            "    foreach: ${sizes}\n    do:\n      cmd: echo ${item}\n",
        },
    )
    commit_all(mlv_repo, "pipeline")
    assert "train@small" in mlv("dag", cwd=mlv_repo).stdout
    (mlv_repo / "conf/sizes.yaml").write_text("sizes: [big]\n")
    proc = mlv("dag", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and "conf/sizes.yaml" in proc.stderr, proc.stderr
    assert "big" not in proc.stdout
    hint = proc.stderr.split("`")[-2]
    assert hint in ("mlv commit", "mlv commit conf"), proc.stderr
    mlv(*hint.split()[1:], cwd=mlv_repo)  # the hint
    assert "train@big" in mlv("dag", cwd=mlv_repo).stdout
