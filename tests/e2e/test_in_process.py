"""The tests' in-process runner (helpers.mlv) gives what the installed command gives, and
mlv.cli.main leaves the process as it found it, so that one command cannot change the next.

What only a process shows stays a process in the tests that need it: kills and signals
(test_kill_safety.py, the killed pushes in test_push_pull_folder.py and test_remote_sftp.py),
locks held by another process (test_lock.py), git hooks that start `mlv` (test_hooks.py),
`python -m mlv` (test_cli.py), start-up (below).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import mlv, mlv_process, write_files

from mlv import log
from mlv.cli import output


def _break_state_db(repo: Path) -> None:
    """A damaged state db: the next command says so in a debug line (-v) and starts anew."""
    (repo / ".mlv" / "tmp" / "state.db").write_bytes(b"not a database" * 100)


def _outcomes(repo: Path, runner: object) -> list[tuple[int, str, str]]:
    """Run the same commands, each kind of outcome the CLI has, and return what each gave."""
    run = runner  # mlv or mlv_process
    assert callable(run)
    results = []

    def step(*args: str, input: str | None = None) -> None:
        proc = run(*args, cwd=repo, check=False, input=input)
        results.append((proc.returncode, proc.stdout, proc.stderr))

    step()  # bare mlv: click's help, exit 2
    step("--bogus")  # click's usage error, as one line
    step("add", "--nope")
    step("--version")
    step("status", "--help")
    step("add", "missing.txt")  # an MlvError
    step("-v", "add", "data")  # debug lines on stderr
    step("status")  # none now
    step("status", "--json")
    step("-q", "commit")
    step("checkout", "nowhere.mlv")
    step("-v", "checkout", "bad.mlv")  # an error with its traceback
    step("-C", str(repo / "nope"), "status")
    step("-C", "data", "status")
    step("gc", "-w", input="y\n")  # stdin is no terminal: no prompt
    # a pipeline stage's own output (a child process writing to mlv's stdout and stderr)
    step(
        "stage", "add", "s", "-o", "out.txt", "--", "echo to-out; echo to-err >&2; echo x > out.txt"
    )
    step("repro")
    step("-v", "status")
    return results


def test_in_process_gives_what_the_process_gives(mlv_repo: Path, tmp_path: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a", "data/b.txt": "b", "bad.mlv": "version: 9\n"})
    mlv("add", "data", cwd=mlv_repo)
    pristine = tmp_path / "pristine"
    shutil.copytree(mlv_repo, pristine, symlinks=True)
    _break_state_db(mlv_repo)
    in_process = _outcomes(mlv_repo, mlv)
    # the same commands on the same repository at the same path, as processes
    shutil.rmtree(mlv_repo)
    shutil.copytree(pristine, mlv_repo, symlinks=True)
    _break_state_db(mlv_repo)
    processes = _outcomes(mlv_repo, mlv_process)
    assert in_process == processes
    codes = [code for code, _, _ in processes]
    assert codes[:3] == [2, 2, 2] and 0 in codes and 1 in codes
    assert any("debug: " in err for _, _, err in processes)
    repro = processes[-2]  # the stage's own lines, through the file descriptors mlv has
    assert repro[0] == 0 and "\nto-out\n" in repro[1] and repro[2] == "to-err\n", repro


def test_a_command_after_v_prints_no_debug_lines(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"f.txt": "f"})
    mlv("add", "f.txt", cwd=mlv_repo)
    for args, debug in ((["-v"], True), ([], False), (["-v"], True), (["-q"], False)):
        _break_state_db(mlv_repo)
        proc = mlv(*args, "status", cwd=mlv_repo)
        assert ("debug: mlv.objects.state: starting a new state db" in proc.stderr) == debug
        if not debug:
            assert proc.stderr == "", proc.stderr


def test_main_leaves_the_process_as_it_found_it(mlv_repo: Path, tmp_path: Path) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level, sys.argv, os.getcwd(), dict(os.environ))
    store = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(store), cwd=mlv_repo)
    mlv("remote", "modify", "--local", "store", "password", "hunter2-secret", cwd=mlv_repo)
    write_files(mlv_repo, {"f.txt": "f"})
    mlv("-v", "add", "f.txt", cwd=mlv_repo)
    mlv("-q", "-v", "push", cwd=mlv_repo, check=False)  # registers the remote's secrets
    mlv("-C", str(tmp_path), "--version", cwd=mlv_repo)
    assert (list(root.handlers), root.level, sys.argv, os.getcwd(), dict(os.environ)) == before
    assert not log._secrets  # the next command's -v logs hide only its own remotes' secrets
    assert not output.quiet()


def test_the_runner_honours_env_input_and_timeout(mlv_repo: Path) -> None:
    mlv("stage", "add", "s", "-o", "s.txt", "--", "echo s > s.txt", cwd=mlv_repo)
    inside = mlv("repro", cwd=mlv_repo, check=False, env={"MLV_STAGE": "outer"})
    assert "mlv repro cannot run inside stage 'outer'" in inside.stderr
    assert "MLV_STAGE" not in os.environ
    mlv("repro", cwd=mlv_repo)
    mlv("stage", "add", "slow", "-o", "o.txt", "--", "exec sleep 30", cwd=mlv_repo)
    with pytest.raises(subprocess.TimeoutExpired) as stopped:
        mlv("repro", cwd=mlv_repo, timeout=1)  # a Ctrl-C after a second
    assert str(stopped.value.stderr).splitlines()[-1] == "error: interrupted"
    assert "slow" not in (mlv_repo / "mlv.lock").read_text()
    mlv("stage", "add", "cat", "-o", "c.txt", "--", "cat > c.txt", cwd=mlv_repo)
    mlv("repro", "cat", cwd=mlv_repo, input="from stdin\n")
    assert (mlv_repo / "c.txt").read_text() == "from stdin\n"


def test_help_starts_without_the_heavy_modules(tmp_path: Path) -> None:
    """Start-up is a process's business: `mlv --help` imports no yaml, rich, fsspec, xxhash
    or logging (each costs start-up time every command pays)."""
    code = (
        "import sys\n"
        "from mlv.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'yaml', 'rich', 'fsspec', 'xxhash', 'logging', 'git'}\n"
        "print(sorted(heavy & {m.partition('.')[0] for m in sys.modules}), file=sys.stderr)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.stderr == "[]\n", proc.stderr
    assert "Commands:" in proc.stdout
