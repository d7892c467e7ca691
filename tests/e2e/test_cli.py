"""The command line itself: --help everywhere, --version, -q, -C, python -m mlv."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_error, mlv, write_files

COMMANDS = [
    "init",
    "add",
    "status",
    "verify",
    "commit",
    "checkout",
    "unprotect",
    "rm",
    "mv",
    "remote",
    "push",
    "fetch",
    "pull",
    "diff",
    "ls",
    "du",
    "log",
    "get",
    "import",
    "update",
    "gc",
    "install",
    "stage",
    "repro",
    "dag",
    "params",
    "metrics",
    "plots",
    "exp",
    "config",
    "cache",
]

# Every option issue 2 names, by command.
OPTIONS = {
    "init": ["--no-scm", "--force"],
    "status": ["--json", "--check"],
    "checkout": ["--force", "--relink"],
    "rm": ["--outs"],
    "config": ["--global", "--local", "--unset"],
    "add": ["--wait-for-lock"],
    "push": [
        "--remote",
        "--jobs",
        "--rev",
        "--all-branches",
        "--all-tags",
        "--all-commits",
        "--json",
    ],
    "fetch": [
        "--remote",
        "--jobs",
        "--rev",
        "--all-branches",
        "--all-tags",
        "--all-commits",
        "--json",
    ],
    "pull": ["--remote", "--jobs", "--rev", "--all-commits", "--json", "--force"],
    "remote add": ["--default", "--local"],
    # issue 4
    "diff": ["--json", "--md"],
    "ls": ["--rev", "-R", "--json"],
    "du": ["--rev"],
    "log": ["-n"],
    "gc": [
        "--workspace",
        "--all-branches",
        "--all-tags",
        "--all-commits",
        "--rev",
        "--remote",
        "--dry-run",
        "--force",
    ],
    "get": ["--rev", "-o"],
    "import": ["--rev", "-o"],
    "update": ["--rev"],
    "install": ["--uninstall"],
    # issue 5
    "verify": [
        "--workspace",
        "--cache",
        "--remote",
        "--rev",
        "--all-commits",
        "--rehash",
        "--sample",
        "--full",
        "--json",
    ],
    "remote modify": ["--local", "--unset"],
    "plots show": ["--out", "--open", "--json"],
    "plots diff": ["--targets", "--out", "--open", "--json"],
}


def test_main_help_lists_every_command(tmp_path: Path) -> None:
    proc = mlv("--help", cwd=tmp_path)
    assert proc.stdout.startswith("Usage: mlv")
    commands = proc.stdout.split("Commands:")[1]
    listed = [line.split()[0] for line in commands.strip().splitlines()]
    assert listed == COMMANDS
    for flag in ("--version", "-v", "-q"):
        assert flag in proc.stdout
    assert proc.stderr == ""


@pytest.mark.parametrize(
    "command",
    [
        *COMMANDS,
        "cache dir",
        "remote add",
        "remote modify",
        "remote list",
        "remote remove",
        "remote default",
        "plots show",
        "plots diff",
    ],
)
def test_command_help(tmp_path: Path, command: str) -> None:
    # outside any repository: help never needs one
    proc = mlv(*command.split(), "--help", cwd=tmp_path)
    assert proc.stdout.startswith(f"Usage: mlv {command}")
    assert proc.stderr == ""
    for option in OPTIONS.get(command, []):
        assert option in proc.stdout, option
    assert mlv(*command.split(), "-h", cwd=tmp_path).stdout == proc.stdout


def test_version(tmp_path: Path) -> None:
    from importlib.metadata import version

    expected = f"mlv {version('mlv')}\n"
    assert mlv("--version", cwd=tmp_path).stdout == expected
    proc = subprocess.run(
        [sys.executable, "-m", "mlv", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, expected, "")


def test_python_m_mlv_runs_commands(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"f.txt": "f"})
    proc = subprocess.run(
        [sys.executable, "-m", "mlv", "add", "f.txt"],
        cwd=mlv_repo,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (mlv_repo / "f.txt.mlv").is_file()


def test_quiet_prints_nothing_on_success(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a", "f.txt": "f"})
    runs = [
        ["add", "data", "f.txt"],
        ["status"],
        ["status", "--check"],
        ["commit"],
        ["checkout"],
        ["unprotect", "data"],
        ["mv", "f.txt", "g.txt"],
        ["rm", "g.txt"],
        ["config", "cache.type", "copy"],
        ["cache", "dir", ".mlv/cache"],
    ]
    for args in runs:
        proc = mlv("-q", *args, cwd=mlv_repo)
        assert (proc.stdout, proc.stderr) == ("", ""), args
    # errors still show under -q
    assert_error(mlv("-q", "add", "missing", cwd=mlv_repo, check=False), 2, "missing")


def test_quiet_after_the_command_name(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"f.txt": "f"})
    proc = mlv("add", "f.txt", "-q", cwd=mlv_repo, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_verbose_error_has_traceback_only_with_v(mlv_repo: Path) -> None:
    (mlv_repo / "bad.mlv").write_text("version: 9\n")
    plain = mlv("checkout", "bad.mlv", cwd=mlv_repo, check=False)
    assert_error(plain, 1, "bad.mlv")
    verbose = mlv("-v", "checkout", "bad.mlv", cwd=mlv_repo, check=False)
    assert verbose.returncode == 1
    assert verbose.stderr.splitlines()[0] == plain.stderr.strip()
    assert "Traceback" in verbose.stderr


def test_dash_c_runs_elsewhere(mlv_repo: Path, tmp_path: Path) -> None:
    write_files(mlv_repo, {"f.txt": "f"})
    mlv("-C", str(mlv_repo), "add", "f.txt", cwd=tmp_path)
    assert (mlv_repo / "f.txt.mlv").is_file()
    assert_error(mlv("-C", str(tmp_path / "nope"), "status", cwd=tmp_path, check=False), 2, "nope")


def test_output_is_plain_in_pipes(mlv_repo: Path) -> None:
    write_files(mlv_repo, {f"data/{i}.txt": str(i) for i in range(50)})
    proc = mlv("add", "data", cwd=mlv_repo)
    assert "\x1b" not in proc.stdout + proc.stderr  # no colours or progress bars
    assert "\r" not in proc.stdout + proc.stderr
    assert proc.stderr == ""
