"""docs/getting-started.md, run as written: every `$` line of its console blocks, in order,
in an empty folder, with real git and the real `mlv`; what each command printed is compared
with what the guide shows under it.

A command the guide shows no output for is only required to succeed. Under an `mlv`
command (and `cat`), the guide shows all of the output, line for line, after hashes, commit
ids, dates and the temporary folder are replaced by placeholders; under a `git` command,
the lines it shows (mlv's, from the hooks) must come out in that order among git's own. A
command whose shown output has an `error:` line must fail; every other one must succeed.

`mlv` commands without shell syntax run in-process (tests/helpers.py), the others in bash,
with the installed `mlv` first on PATH (the git hooks run it).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import MLV, mlv

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"
SHOWN_HOME = "/home/you"  # where the guide's example folder lives
SHELL_SYNTAX = set("|&;<>()$`*?[]{}\\\"'")


@dataclass
class Step:
    line: int  # of the `$` line in the guide
    command: str
    shown: list[str] = field(default_factory=list)


def steps(text: str) -> list[Step]:
    """The `$` lines of the ```console blocks and the lines shown under each."""
    found: list[Step] = []
    in_block = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_block = line.strip() == "```console"
        elif in_block and line.startswith("$ "):
            found.append(Step(number, line[2:]))
        elif in_block:
            assert found, f"getting-started.md:{number}: output before any command"
            found[-1].shown.append(line)
    return found


def normal(text: str, work: Path) -> list[str]:
    """Lines without what differs from run to run: the folder, hashes and commit ids (7 or
    more hex digits), dates and times; trailing spaces dropped."""
    text = text.replace(str(work), SHOWN_HOME)
    text = re.sub(r"\b[0-9a-f]{7,}\b", "<hex>", text)
    text = re.sub(r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b", "<date>", text)
    return [line.rstrip() for line in text.splitlines()]


def _run(part: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """One command of a `$` line (no `&&` in it): exit code and output (stdout, then
    stderr for an in-process mlv; merged as they came for bash)."""
    if part.startswith("mlv ") and not SHELL_SYNTAX & set(part.split("#", 1)[0]):
        proc = mlv(*shlex.split(part, comments=True)[1:], cwd=cwd, check=False)
        return proc.returncode, proc.stdout + proc.stderr
    proc = subprocess.run(
        ["bash", "-c", part],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode, proc.stdout


def _in_order(wanted: list[str], got: list[str]) -> bool:
    rest = iter(got)
    return all(any(line == g for g in rest) for line in wanted)


def test_the_getting_started_guide_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path.resolve() / "work"
    work.mkdir()
    for name in ("AUTHOR", "COMMITTER"):  # the name the guide's `mlv log` shows
        monkeypatch.setenv(f"GIT_{name}_NAME", "You")
        monkeypatch.setenv(f"GIT_{name}_EMAIL", "you@example.com")
    monkeypatch.setenv("PATH", f"{Path(MLV).parent}{os.pathsep}{os.environ['PATH']}")
    env = dict(os.environ)
    cwd = work
    all_steps = steps(GUIDE.read_text())
    assert len(all_steps) > 40
    for step in all_steps:
        where = f"getting-started.md:{step.line}: $ {step.command}"
        code, out = 0, ""
        for part in step.command.split(" && "):
            words = shlex.split(part, comments=True)
            if words[:1] == ["cd"]:
                cwd = (cwd / words[1]).resolve()
                assert cwd.is_dir(), where
                continue
            code, text = _run(part, cwd, env)
            out += text
            if code != 0:
                break
        shown = normal("\n".join(step.shown), work)
        got = normal(out, work)
        fails = any(line.startswith("error:") for line in step.shown)
        assert (code != 0) == fails, f"{where}\nexited {code}:\n{out}"
        if not step.shown:
            continue
        if step.command.startswith("git "):
            assert _in_order(shown, got), f"{where}\nshown:\n{shown}\nprinted:\n{got}"
        else:
            assert got == shown, f"{where}\nprinted:\n" + "\n".join(got)
    # where the guide ends: back in the first repository, the data as the last commit says
    assert cwd == work / "project"
    assert mlv("status", "--check", cwd=cwd).returncode == 0
    assert mlv("status", "--check", cwd=work / "copy").returncode == 0


@pytest.mark.slow
def test_the_quickstart_script_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """examples/quickstart.sh, the README's first set-up command, end to end (about 15 s:
    it checks every version byte for byte, so it runs in CI and with --run-slow)."""
    script = GUIDE.parents[1] / "examples" / "quickstart.sh"
    env = dict(
        os.environ,
        PATH=f"{Path(MLV).parent}{os.pathsep}{os.environ['PATH']}",
        TMPDIR=str(tmp_path / "tmp"),
    )
    (tmp_path / "tmp").mkdir()
    proc = subprocess.run(
        [str(script)], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.rstrip().endswith("quickstart OK")
    assert list((tmp_path / "tmp").iterdir()) == []  # its temporary folder removed
