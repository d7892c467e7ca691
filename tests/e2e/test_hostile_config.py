"""Hostile YAML and config from a clone: alias bombs, absurd nesting, secrets, and options
that would make a storage library run a command or read a local file.

Every command here reads files that `git clone` brought: they must fail with one line that
names the file, quickly and in little memory, and never act on what they refuse.
"""

from __future__ import annotations

import json
import resource
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from helpers import MLV, assert_error, commit_all, mlv, write_files

LIMIT = 512 << 20  # address space for a command reading a bomb: a billion laughs needs GBs


def _limited(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`mlv ARGS` with at most 512 MiB of address space; fails the test past 60 s."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    start = time.monotonic()
    proc = subprocess.run(
        [MLV, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap,
        check=False,
    )
    elapsed = time.monotonic() - start
    assert elapsed < 20, f"mlv {' '.join(args)} took {elapsed:.0f} s"
    return proc


def _refused(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """One line on stderr naming what was refused: an error (exit 1), or a warning when the
    command reports unreadable params and metrics files and goes on (exit 0)."""
    if proc.returncode != 0:
        return assert_error(proc, 1, *needles)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "lol" not in proc.stdout
    if proc.stdout.startswith("{"):  # --json: the reason is in "errors"
        lines = [json.dumps(json.loads(proc.stdout)["errors"])]
    else:  # a line for each revision that holds the file
        lines = proc.stderr.splitlines()
        assert lines and all(line.startswith("warning: ") for line in lines), proc.stderr
    for needle in needles:
        assert all(needle in line for line in lines), f"{needle!r} not in {lines!r}"
    return lines[0]


def _bomb(indent: str = "", levels: int = 9, width: int = 10) -> str:
    """Mapping lines whose last key names 10**9 copies of 'lol' through aliases."""
    lines = [f"{indent}l0: &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"{indent}l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    lines.append(f"{indent}bomb: *a{levels - 1}")
    return "\n".join(lines) + "\n"


CONFIG_BOMB = "core:\n  remote: store\nremote:\n  store:\n    url: ../store\n" + _bomb("    ")


@pytest.mark.parametrize(
    "args",
    [
        ("remote", "list", "--json"),
        ("remote", "list"),
        ("config", "remote.store.url"),
        ("config", "remote.store.bomb"),
        ("status",),
        ("pull",),
        ("push",),
    ],
    ids=" ".join,
)
def test_alias_bomb_in_the_committed_config_is_one_line(mlv_repo: Path, args: tuple[str]) -> None:
    write_files(mlv_repo, {"data.txt": "tracked"})
    mlv("add", "data.txt", cwd=mlv_repo)
    (mlv_repo / ".mlv" / "config.yaml").write_text(CONFIG_BOMB)
    line = assert_error(_limited(*args, cwd=mlv_repo), 1, ".mlv/config.yaml", "aliases")
    assert "100,000" in line


def test_alias_bomb_in_the_local_and_global_config(mlv_repo: Path, isolated_env: Path) -> None:
    (mlv_repo / ".mlv" / "config.local.yaml").write_text(CONFIG_BOMB)
    assert_error(_limited("remote", "list", "--json", cwd=mlv_repo), 1, "config.local.yaml")
    (mlv_repo / ".mlv" / "config.local.yaml").unlink()
    (isolated_env / ".config" / "mlv").mkdir(parents=True)
    (isolated_env / ".config" / "mlv" / "config.yaml").write_text(CONFIG_BOMB)
    assert_error(_limited("remote", "list", "--json", cwd=mlv_repo), 1, "mlv/config.yaml")


PIPELINE = {"stages": {"train": {"cmd": "echo trained", "params": ["lr", "bomb"]}}}


def _pipeline_repo(repo: Path, params: str, name: str = "params.yaml") -> None:
    pipeline = PIPELINE
    if name != "params.yaml":
        pipeline = {"stages": {"train": {"cmd": "echo trained", "params": [{name: ["lr"]}]}}}
    first = '{"lr": 0.1}' if name.endswith(".json") else "lr: 0.1\n"
    write_files(repo, {"mlv.yaml": yaml.safe_dump(pipeline), name: first})
    commit_all(repo, "pipeline")
    (repo / name).write_text(params)


@pytest.mark.parametrize(
    "args",
    [("repro", "--dry"), ("params", "diff"), ("params", "diff", "--json"), ("exp", "show")],
    ids=" ".join,
)
def test_alias_bomb_in_params_yaml_is_one_line(mlv_repo: Path, args: tuple[str]) -> None:
    _pipeline_repo(mlv_repo, "lr: 0.2\n" + _bomb())
    line = _refused(_limited(*args, cwd=mlv_repo), "params.yaml", "aliases")
    assert "100,000" in line


def test_alias_bomb_in_a_committed_params_yaml(mlv_repo: Path) -> None:
    """Read from git's objects, not the workspace: params diff HEAD~1 HEAD."""
    _pipeline_repo(mlv_repo, "lr: 0.2\n" + _bomb())
    commit_all(mlv_repo, "bomb")
    for args in (("params", "diff", "HEAD~1", "HEAD"), ("exp", "show")):
        _refused(_limited(*args, cwd=mlv_repo), "params.yaml", "aliases")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("mlv.yaml", "stages:\n  train:\n    cmd: echo hi\n" + _bomb("    ")),
        ("mlv.lock", "version: 1\n" + _bomb()),
        ("metrics.yaml", "acc: 0.9\n" + _bomb()),
    ],
    ids=["mlv.yaml", "mlv.lock", "metrics.yaml"],
)
def test_alias_bomb_in_pipeline_files(mlv_repo: Path, name: str, text: str) -> None:
    pipeline = {"stages": {"train": {"cmd": "echo hi", "metrics": ["metrics.yaml"]}}}
    write_files(mlv_repo, {"mlv.yaml": yaml.safe_dump(pipeline), "metrics.yaml": "acc: 1\n"})
    commit_all(mlv_repo, "pipeline")
    (mlv_repo / name).write_text(text)
    args = ("metrics", "show") if name == "metrics.yaml" else ("repro", "--dry")
    _refused(_limited(*args, cwd=mlv_repo), name, "aliases")


def test_alias_bomb_in_a_pointer(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data.mlv": "version: 1\npath: data\n" + _bomb()})
    assert_error(_limited("status", cwd=mlv_repo), 1, "data.mlv", "aliases")


def test_an_alias_to_its_own_collection_is_refused(mlv_repo: Path) -> None:
    _pipeline_repo(mlv_repo, "lr: 0.2\nbomb: &loop [1, *loop]\n")
    _refused(_limited("params", "diff", cwd=mlv_repo), "params.yaml", "alias")


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("params.yaml", "lr: 0.1\nbomb: " + "[" * 100_000 + "]" * 100_000 + "\n"),
        ("params.yaml", "lr: 0.1\nbomb:\n  " + "- " * 50_000 + "x\n"),
        ("params.json", '{"lr": 0.1, "bomb": ' + "[" * 100_000 + "]" * 100_000 + "}"),
        ("params.json", '{"lr": 0.1, "bomb": ' + "[" * 500 + "]" * 500 + "}"),
    ],
    ids=["yaml flow", "yaml block", "json deep", "json 500"],
)
def test_absurd_nesting_is_one_line(mlv_repo: Path, name: str, text: str) -> None:
    """libyaml's composer recursed until the process died (SIGSEGV) on 50,000 levels."""
    _pipeline_repo(mlv_repo, text, name)
    line = _refused(_limited("params", "diff", cwd=mlv_repo), name, "nested")
    assert "100 levels" in line


def test_anchors_and_merges_in_params_still_work(mlv_repo: Path) -> None:
    """Hand-written params use `<<: *defaults`: well within the bound."""
    pipeline = {"stages": {"train": {"cmd": "echo hi", "params": ["small", "large"]}}}
    base = "defaults: &d {lr: 0.1, layers: [64, 64], dropout: 0.1}\n"
    write_files(
        mlv_repo,
        {
            "mlv.yaml": yaml.safe_dump(pipeline),
            "params.yaml": base + "small:\n  <<: *d\nlarge:\n  <<: *d\n  lr: 0.01\n",
        },
    )
    commit_all(mlv_repo, "params")
    (mlv_repo / "params.yaml").write_text(base + "small:\n  <<: *d\nlarge:\n  <<: *d\n  lr: 0.02\n")
    out = _limited("params", "diff", "--json", cwd=mlv_repo)
    assert out.returncode == 0, out.stderr
    assert "large.lr" in out.stdout and "small.lr" not in out.stdout
