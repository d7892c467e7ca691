"""What mlv writes, and through which door: one module (mlv/cli/output.py) owns stdout and
stderr, rich is imported only to draw on a terminal, names are printed as they are, and
Ctrl-C ends a command with one line."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import MLV, commit_all, mlv, write_files

ESC_NAME = "a\x1b[31mred\x1b[0m.txt"  # a file name holding a terminal colour sequence


def test_ctrl_c_in_a_pipe_prints_one_line_and_exits_130(mlv_repo: Path) -> None:
    """A process is needed for a signal. click's own handler used to print an empty line on
    stderr before mlv's `error: interrupted`."""
    mlv("stage", "add", "slow", "-o", "o.txt", "--", "exec sleep 30", cwd=mlv_repo)
    proc = subprocess.Popen(
        [MLV, "repro"], cwd=mlv_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err == "error: interrupted\n"
    assert not (mlv_repo / "mlv.lock").exists()


def test_ls_and_status_print_names_as_they_are_in_a_pipe(mlv_repo: Path) -> None:
    """ls went out through click.echo, which strips colour sequences in a pipe, status
    through output.py, which does not: the same name came out two ways. Both now print the
    name as it is (what `ls | while read` needs; --json escapes it)."""
    write_files(mlv_repo, {f"data/{ESC_NAME}": "x", "data/b.txt": "y"})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo)
    (mlv_repo / "data" / ESC_NAME).write_text("changed")
    assert mlv("ls", "data", cwd=mlv_repo).stdout == f"{ESC_NAME}\nb.txt\n"
    status = mlv("status", cwd=mlv_repo, check=False).stdout
    assert f"    modified: data/{ESC_NAME}\n" in status


def test_commands_in_a_pipe_do_not_import_rich(mlv_repo: Path) -> None:
    """Start-up: rich is imported to draw a progress bar or a table on a terminal, never to
    print plain lines (status, ls, a metrics table, dag) into a pipe."""
    write_files(mlv_repo, {"data/a.txt": "a", "metrics.json": '{"acc": 0.5}'})
    mlv("add", "data", cwd=mlv_repo)
    stage = ["-d", "data", "-M", "metrics.json", "--", "echo hi"]
    mlv("stage", "add", "s", *stage, cwd=mlv_repo)
    commit_all(mlv_repo)
    code = (
        "import sys\n"
        "from mlv.cli import main\n"
        "for args in (['status'], ['ls', '-R'], ['metrics', 'show'],\n"
        "             ['dag'], ['stage', 'list']):\n"
        "    try:\n        main(args)\n    except SystemExit as e:\n"
        "        assert not e.code, (args, e.code)\n"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'rich'), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=mlv_repo, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "[]\n", proc.stderr
    assert "acc" in proc.stdout and "data/a.txt" in proc.stdout
