"""What mlv writes, and through which door: one module (mlv/cli/output.py) owns stdout and
stderr, rich is imported only to draw on a terminal, names with control characters are
quoted as git quotes them, and Ctrl-C ends a command with one line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import MLV, commit_all, mlv, object_path, write_files, xxh

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


NL_NAME = "x\ny"  # a file name holding a newline: printed raw it forges a second line
QUOTED_ESC = '"a\\033[31mred\\033[0m.txt"'  # how git and mlv print ESC_NAME
QUOTED_NL = '"x\\ny"'
DATA_ESC = '"data/a\\033[31mred\\033[0m.txt"'


def _hostile_repo(repo: Path) -> None:
    """A committed tracked folder holding names with control characters, then both edited."""
    files = {f"data/{ESC_NAME}": "x", f"data/{NL_NAME}": "n", "data/b.txt": "y"}
    write_files(repo, files)
    mlv("add", "data", cwd=repo)
    commit_all(repo)
    (repo / "data" / ESC_NAME).write_text("changed")
    (repo / "data" / NL_NAME).write_text("changed too")


def _no_raw_names(*texts: str) -> None:
    for text in texts:
        assert "\x1b" not in text, text
        assert "\nx" not in text and "y\n" not in text.replace(QUOTED_NL, ""), text


def test_ls_status_du_and_diff_quote_names_with_control_characters(mlv_repo: Path) -> None:
    """A cloned repository's names cannot write to the terminal or forge lines: a name with a
    control character is printed in double quotes with C escapes, as git's core.quotePath
    prints it (ls used to print it raw, ESC and newline included); other names unchanged."""
    _hostile_repo(mlv_repo)
    ls = mlv("ls", "data", cwd=mlv_repo)
    assert ls.stdout == f"{QUOTED_ESC}\nb.txt\n{QUOTED_NL}\n"
    status = mlv("status", cwd=mlv_repo, check=False)
    assert f"    modified: {DATA_ESC}\n" in status.stdout
    assert '    modified: "data/x\\ny"\n' in status.stdout
    assert len(status.stdout.splitlines()) == 3  # the target's line and one per file
    du = mlv("du", "data", cwd=mlv_repo).stdout
    assert f"  {DATA_ESC}\n" in du and '  "data/x\\ny"\n' in du
    assert len(du.splitlines()) == 4
    diff = mlv("diff", cwd=mlv_repo).stdout
    assert f"    {DATA_ESC}  (" in diff and '    "data/x\\ny"  (' in diff
    md = mlv("diff", "--md", cwd=mlv_repo).stdout
    assert '| modified | "data/x\\ny" |' in md
    _no_raw_names(ls.stdout, status.stdout, status.stderr, du, diff, md)
    # --json keeps the names as they are (JSON escapes them)
    assert json.loads(mlv("ls", "data", "--json", cwd=mlv_repo).stdout)[2]["path"] == (
        f"data/{NL_NAME}"
    )
    assert mlv("ls", "--data-only", cwd=mlv_repo).stdout == "data/\n"  # ordinary: unchanged


def test_checkout_verify_and_push_lists_quote_names(mlv_repo: Path, tmp_path: Path) -> None:
    """The per-file lists of checkout, verify and push (on stderr or stdout) quote a name
    with a control character: one line per file, no ESC byte."""
    _hostile_repo(mlv_repo)
    checkout = mlv("checkout", cwd=mlv_repo, check=False)
    assert checkout.returncode == 1
    assert f"    {DATA_ESC}\n" in checkout.stderr
    assert '    "data/x\\ny"\n' in checkout.stderr
    assert len(checkout.stderr.splitlines()) == 3, checkout.stderr
    verify = mlv("verify", cwd=mlv_repo, check=False)
    assert verify.returncode == 1
    assert '"data/x\\ny"  expected ' in verify.stdout
    _no_raw_names(checkout.stdout, checkout.stderr, verify.stdout, verify.stderr)
    # push: the cache lacks the object of a name with a newline
    mlv("checkout", "--force", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)
    lost = xxh(b"n")
    object_path(mlv_repo, lost).unlink()
    push = mlv("push", cwd=mlv_repo, check=False)
    assert push.returncode == 1
    assert f'{lost}  "data/x\\ny"\n' in push.stderr
    _no_raw_names(push.stdout, push.stderr)


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
