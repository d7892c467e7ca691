"""A pull request cannot make mlv print a file of the CI job's that git does not track.

CI writes its secret (`gcp-key.json`, ignored) into the work tree, then posts the table of
`mlv params diff --md` to the pull request. Before the fix the pull request's mlv.yaml
could name that file as a params (or metrics, or plots) file, or make `params.yaml` a
committed link to it, and the table held the private key (review finding 5). Now the
workspace's values are printed only from files git tracks or whose bytes mlv.lock or a
pointer records; anything else is a warning line naming the file, with a hint that works.
`mlv repro` still reads an untracked params.yaml: it runs the pipeline's commands anyway.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import commit_all, git, mlv, write_files

SECRET = "-----BEGIN PRIVATE KEY-----SECRETSECRET"
KEY = json.dumps({"type": "service_account", "private_key": SECRET, "acc": 0.5}) + "\n"
BASE = "stages:\n  train:\n    cmd: 'true'\n    params: [lr]\n"

# Each prints the workspace's values of the files mlv.yaml names; the last has top-level
# plots, so `plots show` reads them too.
PRINTERS = [
    ("params", "diff", "HEAD~1", "--md"),
    ("params", "diff", "HEAD~1", "--json", "--all"),
    ("metrics", "show", "--md"),
    ("metrics", "diff", "HEAD~1", "--json"),
    ("metrics", "check", "--json"),
    ("exp", "show", "--json"),
    ("plots", "show", "--json"),
]


def _clone_with_key(tmp_path: Path, hostile: dict[str, str], link: bool = False) -> Path:
    """The CI job's clone of a repository whose last commit is the pull request's change
    (hostile files, or params.yaml made a link to gcp-key.json), with the key written."""
    src = tmp_path / "src"
    src.mkdir(parents=True)
    git("init", "-q", "-b", "main", cwd=src)
    mlv("init", cwd=src)
    write_files(src, {".gitignore": "gcp-key.json\n", "params.yaml": "lr: 0.1\n", "mlv.yaml": BASE})
    commit_all(src, "base")
    write_files(src, hostile)
    if link:
        (src / "params.yaml").unlink()
        os.symlink("gcp-key.json", src / "params.yaml")
    commit_all(src, "the pull request")
    ci = tmp_path / "ci"
    git("clone", "-q", str(src), str(ci), cwd=tmp_path)
    (ci / "gcp-key.json").write_text(KEY)
    assert git("status", "--porcelain", cwd=ci).stdout == ""  # git: clean
    return ci


ROUTES = {
    # (a) mlv.yaml names the key file: as params, metrics and a plot
    "named": dict(
        hostile={
            "mlv.yaml": "stages:\n  train:\n    cmd: 'true'\n"
            "    params: [lr, {gcp-key.json: [private_key]}]\n    metrics: [gcp-key.json]\n"
            "plots: [gcp-key.json]\n"
        },
        link=False,
        line="gcp-key.json: git does not track it (ignored) and mlv records no such content",
    ),
    # (b) params.yaml becomes a committed link to it
    "link": dict(
        hostile={"mlv.yaml": BASE.replace("[lr]", "[lr, private_key]")},
        link=True,
        line="params.yaml: a symbolic link to gcp-key.json, which git does not track (ignored)",
    ),
    # (c) and its mlv.lock claims the key file as a stage's output: it cannot know the hash
    "lock": dict(
        hostile={
            "mlv.yaml": "stages:\n  train:\n    cmd: 'true'\n    params: [lr]\n"
            "    metrics: [gcp-key.json]\n",
            "mlv.lock": "version: 1\nstages:\n  train:\n    cmd: 'true'\n    outs: []\n"
            "    metrics:\n    - path: gcp-key.json\n      hash: xxh128:" + "0" * 32 + "\n"
            "      size: 10\n",
        },
        link=False,
        line="gcp-key.json: git does not track it (ignored) and mlv records no such content",
    ),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_the_key_is_never_printed(tmp_path: Path, route: str) -> None:
    r = ROUTES[route]
    ci = _clone_with_key(tmp_path, r["hostile"], r["link"])  # type: ignore[arg-type]
    for args in PRINTERS:
        proc = mlv(*args, cwd=ci, check=False)
        seen = proc.stdout + proc.stderr
        pages = ci / "mlv_plots"
        if pages.exists():
            seen += "".join(
                p.read_text("utf-8", "replace") for p in pages.rglob("*") if p.is_file()
            )
        assert SECRET not in seen and "private_key" not in proc.stdout, (args, seen)
        assert "Traceback" not in seen
        assert proc.returncode in (0, 1), (args, proc.stderr)  # metrics check: no metric
        if args[0] != "plots" or route == "named":  # plots reads no params file
            assert r["line"] in seen, (args, seen)
    # the table still shows what git tracks
    if route != "link":
        assert (
            "| params.yaml | lr |"
            in mlv("params", "diff", "HEAD~1", "--md", "--all", cwd=ci).stdout
        )


def test_the_hints_version_the_file(tmp_path: Path) -> None:
    """The hint is for a user who means it: `git add -f FILE` makes a params file the
    repository's, as it does a stage's output that never ran (`mlv commit`, for an edited
    output: test_the_everyday_flow)."""
    params_only = {"mlv.yaml": BASE.replace("[lr]", "[lr, {gcp-key.json: [private_key]}]")}
    ci = _clone_with_key(tmp_path / "a", params_only)
    proc = mlv("params", "diff", "HEAD~1", cwd=ci)
    hint = "if it is yours to version, run `git add -f gcp-key.json`"
    assert f"warning: {ROUTES['named']['line']}" in proc.stderr and hint in proc.stderr
    git("add", "-f", "gcp-key.json", cwd=ci)
    proc = mlv("params", "diff", "HEAD~1", "--json", cwd=ci)
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["params"]["gcp-key.json"]["private_key"]["new"] == SECRET

    as_metrics = {"mlv.yaml": BASE + "    metrics: [gcp-key.json]\n"}  # an output, never run
    ci = _clone_with_key(tmp_path / "b", as_metrics)
    proc = mlv("metrics", "show", cwd=ci)
    assert "if it is yours to version, run `git add -f gcp-key.json`" in proc.stderr
    git("add", "-f", "gcp-key.json", cwd=ci)
    assert SECRET in mlv("metrics", "show", cwd=ci).stdout


def test_the_link_hint_versions_its_target(tmp_path: Path) -> None:
    ci = _clone_with_key(tmp_path, ROUTES["link"]["hostile"], link=True)  # type: ignore[arg-type]
    proc = mlv("params", "diff", "HEAD~1", cwd=ci)
    assert "run `git add -f gcp-key.json`" in proc.stderr
    git("add", "-f", "gcp-key.json", cwd=ci)
    assert SECRET in mlv("params", "diff", "HEAD~1", cwd=ci).stdout


def test_the_everyday_flow(mlv_repo: Path) -> None:
    """A new params.yaml runs in repro before `git add`; the outputs repro records are shown
    (a cached plot folder through its tree in the cache); an edited output is shown again
    after the `mlv commit` its warning names; a link to a file git tracks is followed."""
    write_files(
        mlv_repo,
        {
            "gen.py": "import json, os, sys\n"
            "lr = open('params.yaml').read().split()[-1]\n"
            "json.dump({'acc': float(lr)}, open('m.json', 'w'))\n"
            "os.makedirs('logs', exist_ok=True)\n"
            "open('logs/loss.csv', 'w').write('step,loss\\n0,1\\n1,0.5\\n')\n",
            "mlv.yaml": "stages:\n  train:\n    cmd: python gen.py\n    params: [lr]\n"
            "    metrics: [m.json]\n    plots: [logs]\n",
        },
    )
    git("add", "gen.py", "mlv.yaml", ".mlv", cwd=mlv_repo)
    git("commit", "-q", "-m", "pipeline", cwd=mlv_repo)
    write_files(mlv_repo, {"params.yaml": "lr: 0.75\n"})  # not added yet
    mlv("repro", cwd=mlv_repo)  # reads it: its own workspace
    shown = json.loads(mlv("metrics", "show", "--json", cwd=mlv_repo).stdout)
    assert shown[0]["metrics"] == {"m.json": {"acc": 0.75}}  # recorded in mlv.lock
    plots = json.loads(mlv("plots", "show", "--json", cwd=mlv_repo).stdout)
    assert plots["errors"] == [] and plots["plots"][0]["series"][0]["points"] == [[0, 1], [1, 0.5]]
    proc = mlv("params", "diff", cwd=mlv_repo)
    assert "params.yaml: git does not track it (untracked)" in proc.stderr
    assert "run `git add params.yaml`" in proc.stderr
    git("add", "params.yaml", cwd=mlv_repo)  # the hint
    proc = mlv("params", "diff", "--json", cwd=mlv_repo)
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["params"]["params.yaml"]["lr"]["new"] == 0.75

    (mlv_repo / "logs" / "loss.csv").write_text("step,loss\n0,2\n")  # by hand, not by repro
    proc = mlv("plots", "show", "--json", cwd=mlv_repo)
    why = json.loads(proc.stdout)["errors"][0]["error"]
    assert why.startswith("logs/loss.csv: git does not track it (ignored)")
    assert why.endswith("run `mlv commit`")
    mlv("commit", cwd=mlv_repo)  # the hint
    plots = json.loads(mlv("plots", "show", "--json", cwd=mlv_repo).stdout)
    assert plots["errors"] == [] and plots["plots"][0]["series"][0]["points"] == [[0, 2]]

    (mlv_repo / "conf").mkdir()
    os.replace(mlv_repo / "params.yaml", mlv_repo / "conf" / "params.yaml")
    os.symlink("conf/params.yaml", mlv_repo / "params.yaml")
    git("add", "-A", cwd=mlv_repo)  # a committed link to a file git tracks
    proc = mlv("params", "diff", "HEAD", "--json", "--all", cwd=mlv_repo)
    assert proc.stderr == ""
    assert json.loads(proc.stdout)["params"]["params.yaml"]["lr"]["new"] == 0.75


def test_data_mlv_tracks_is_shown_as_recorded(mlv_repo: Path, tmp_path: Path) -> None:
    """A params file inside a folder `mlv add` tracks is shown while its bytes are those the
    pointer records; edited, it is refused with `mlv commit`, which records it again. A
    pointer the pull request commits for the key file vouches for nothing."""
    write_files(
        mlv_repo,
        {
            "conf/p.yaml": "lr: 3\n",
            "mlv.yaml": "stages:\n  s:\n    cmd: 'true'\n    params: [{conf/p.yaml: [lr]}]\n",
        },
    )
    mlv("add", "conf", cwd=mlv_repo)
    commit_all(mlv_repo, "tracked by mlv")

    def new_lr() -> tuple[object, str]:
        proc = mlv("params", "diff", "--all", cwd=mlv_repo)
        row = [line.split() for line in proc.stdout.splitlines() if line.startswith("conf/")]
        return (row[0][3] if row else None, proc.stderr)

    assert new_lr() == ("3", "")
    (mlv_repo / "conf" / "p.yaml").write_text("lr: 4\n")
    value, warning = new_lr()
    assert value is None and "conf/p.yaml: git does not track it (ignored)" in warning
    assert warning.rstrip().endswith("run `mlv commit`")
    mlv("commit", cwd=mlv_repo)  # the hint
    assert new_lr() == ("4", "")

    ci = _clone_with_key(
        tmp_path,
        {
            "mlv.yaml": BASE.replace("[lr]", "[lr, {gcp-key.json: [private_key]}]"),
            "gcp-key.json.mlv": "version: 1\npath: gcp-key.json\nkind: file\n"
            "hash: xxh128:" + "0" * 32 + "\nsize: 10\n",
        },
    )
    proc = mlv("params", "diff", "HEAD~1", "--md", cwd=ci)
    assert SECRET not in proc.stdout + proc.stderr
    assert "gcp-key.json: git does not track it (ignored)" in proc.stderr
