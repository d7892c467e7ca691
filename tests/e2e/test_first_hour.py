"""What a new user meets in the first hour (issue 19): a misspelled command gets a
suggestion and the help to read; shell completion lists the commands; progress bars show a
total and a rate that stays current while a batch is in flight; a pull that repairs the
cache writes no garbled line outside a terminal."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from helpers import MLV, commit_all, git, mlv, mlv_process, object_path, write_files, xxh

from mlv.cli.output import TerminalProgress
from mlv.core.progress import NullProgress, Total

# ---- did you mean -------------------------------------------------------------------------


def _usage_error(args: list[str], cwd: Path) -> str:
    """The one line of a usage error (exit 2), without its `error: `."""
    proc = mlv(*args, cwd=cwd, check=False)
    assert proc.returncode == 2, proc
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0].removeprefix("error: ")


def _hint(line: str) -> list[str]:
    """The command a line's `see `...`` names, as arguments."""
    found = re.search(r"see `mlv ([^`]*)`$", line)
    assert found is not None, line
    return found.group(1).split()


def test_a_misspelled_command_names_the_close_one_and_its_help(mlv_repo: Path) -> None:
    line = _usage_error(["statsu"], mlv_repo)
    assert line == "no such command 'statsu' (did you mean 'status'?): see `mlv status --help`"
    shown = mlv(*_hint(line), cwd=mlv_repo)  # the hint runs, and is status's help
    assert shown.stdout.startswith("Usage: mlv status ")

    # a subcommand of a group: the suggested subcommand's help
    line = _usage_error(["remote", "ad", "x", "y"], mlv_repo)
    assert line == "no such command 'ad' (did you mean 'add'?): see `mlv remote add --help`"
    assert mlv(*_hint(line), cwd=mlv_repo).stdout.startswith("Usage: mlv remote add ")

    # several close names: all of them, and the group's help, which lists them
    line = _usage_error(["stat"], mlv_repo)
    assert line == "no such command 'stat' (did you mean 'stage' or 'status'?): see `mlv --help`"
    listing = mlv(*_hint(line), cwd=mlv_repo).stdout
    assert "  stage " in listing and "  status " in listing

    # nothing close: no guess
    line = _usage_error(["xyzzy"], mlv_repo)
    assert line == "no such command 'xyzzy': see `mlv --help`"


def test_a_misspelled_option_reads_as_one_sentence(mlv_repo: Path) -> None:
    """click's own text was `no such option '--forc'. Did you mean '--force'?: see ...`."""
    line = _usage_error(["checkout", "--forc"], mlv_repo)
    assert line == "no such option '--forc' (did you mean '--force'?): see `mlv checkout --help`"
    assert "--force" in mlv(*_hint(line), cwd=mlv_repo).stdout
    line = _usage_error(["status", "--jsno"], mlv_repo)
    assert line == "no such option '--jsno' (did you mean '--json'?): see `mlv status --help`"
    line = _usage_error(["status", "--zzz"], mlv_repo)
    assert line == "no such option '--zzz': see `mlv status --help`"


# ---- shell completion ---------------------------------------------------------------------


def _complete(words: str, cword: int, cwd: Path) -> list[str]:
    """What bash's completion function gets from `mlv` for the words typed so far."""
    proc = mlv_process(
        cwd=cwd,
        env={"_MLV_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
    )
    assert proc.stderr == ""
    return proc.stdout.splitlines()


def test_completion_lists_commands_subcommands_and_options(mlv_repo: Path) -> None:
    assert _complete("mlv st", 1, mlv_repo) == ["plain,status", "plain,stage"]
    everything = {line.split(",", 1)[1] for line in _complete("mlv ", 1, mlv_repo)}
    assert {"init", "add", "status", "checkout", "push", "pull", "remote"} <= everything
    assert "plain,add" in _complete("mlv remote a", 2, mlv_repo)
    assert "plain,--force" in _complete("mlv checkout --f", 2, mlv_repo)


def test_zsh_completion_describes_commands_as_help_does(mlv_repo: Path) -> None:
    """zsh and fish show a description beside each command: the one `mlv --help` gives
    (click's own would take the first line of each command's docstring, importing them)."""
    proc = mlv_process(
        cwd=mlv_repo,
        env={"_MLV_COMPLETE": "zsh_complete", "COMP_WORDS": "mlv ", "COMP_CWORD": "1"},
    )
    lines = proc.stdout.splitlines()
    described = dict(zip(lines[1::3], lines[2::3], strict=True))
    listing = " ".join(mlv("--help", cwd=mlv_repo).stdout.split())  # as if never wrapped
    assert set(described) >= {"init", "add", "status", "push", "pull"}
    for name, text in described.items():
        assert f" {name} {' '.join(text.split())} " in f"{listing} ", name


def test_the_readme_bash_line_registers_the_completion(mlv_repo: Path) -> None:
    """The README's bash set-up line, as a user pastes it into ~/.bashrc."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    line = 'eval "$(_MLV_COMPLETE=bash_source mlv)"'
    saved = "_MLV_COMPLETE=bash_source mlv > ~/.mlv-complete.bash"
    assert line in readme and saved in readme
    env = dict(os.environ, PATH=f"{Path(MLV).parent}{os.pathsep}{os.environ['PATH']}")
    for script in (line, f"{saved}\nsource ~/.mlv-complete.bash"):
        proc = subprocess.run(
            [bash, "-c", f"{script}\ncomplete -p mlv"],
            cwd=mlv_repo,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "_mlv_completion" in proc.stdout and proc.stdout.rstrip().endswith(" mlv")


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_the_zsh_and_fish_scripts_name_mlv(mlv_repo: Path, shell: str) -> None:
    script = mlv_process(cwd=mlv_repo, env={"_MLV_COMPLETE": f"{shell}_source"}).stdout
    assert "_MLV_COMPLETE" in script and "mlv" in script
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert f"_MLV_COMPLETE={shell}_source mlv" in readme


# ---- progress -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_rate_stays_current_while_nothing_arrives() -> None:
    """A batch in flight reports nothing for seconds: the rate shown falls with every
    second of the wait (it used to stay at the last figure), the bytes stay."""
    clock = FakeClock()
    progress = TerminalProgress(transfer=True, clock=clock)
    progress.begin("fetch from store", 20)
    for _ in range(10):  # 2 MiB/s for 5 s
        clock.now += 0.5
        progress.advance(1, 1 << 20)
    assert progress.volume() == "10.0 MiB at 2.0 MiB/s"
    shown = []
    for _ in range(6):
        clock.now += 1
        shown.append(progress.volume())
    assert shown == [
        "10.0 MiB at 1.6 MiB/s",
        "10.0 MiB at 1.2 MiB/s",
        "10.0 MiB at 819.2 KiB/s",
        "10.0 MiB at 409.6 KiB/s",
        "10.0 MiB at 0 B/s",
        "10.0 MiB at 0 B/s",
    ]
    clock.now += 1  # the batch lands
    progress.advance(10, 10 << 20)
    assert progress.volume() == "20.0 MiB at 2.0 MiB/s"
    progress.end()


def test_the_bar_redraws_the_rate_between_reports() -> None:
    """On a terminal the bar itself recomputes the rate each time it is drawn (ten times a
    second): with no advance() at all, the drawn figure follows the clock."""
    from rich.console import Console

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=150, color_system=None)
    clock = FakeClock()
    with TerminalProgress(transfer=True, clock=clock, console=console) as progress:
        progress.begin("fetch from store", 4)
        clock.now += 1
        progress.advance(1, 4 << 20)
        _wait_for(screen, "4.0 MiB at 4.0 MiB/s")
        clock.now += 1  # a second with nothing reported
        _wait_for(screen, "4.0 MiB at 2.0 MiB/s")
        progress.end()


def test_the_bar_fits_an_80_column_terminal() -> None:
    """The rate is never wrapped: at 80 columns `MiB/s` went to a second line under the bar,
    which then took two lines of the terminal."""
    from rich.console import Console

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=80, color_system=None)
    clock = FakeClock()
    with TerminalProgress(transfer=True, clock=clock, console=console) as progress:
        progress.begin("fetch from store", 2001)
        clock.now += 1
        progress.advance(1543, 455 << 20)
        _wait_for(screen, "455.0 MiB at 455.0 MiB/s")
        progress.end()
    drawn = screen.getvalue().replace("\r", "\n")
    frame = next(x for x in drawn.splitlines() if "455.0 MiB at" in x)
    assert "1543/2001 files 455.0 MiB at 455.0 MiB/s" in frame, drawn
    assert not any(x.strip() == "MiB/s" for x in drawn.splitlines()), drawn


def _wait_for(screen: io.StringIO, text: str) -> None:
    deadline = time.monotonic() + 20
    while text not in screen.getvalue():
        assert time.monotonic() < deadline, f"never drawn: {text!r}\n{screen.getvalue()!r}"
        time.sleep(0.05)


def test_plain_lines_name_what_they_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Off a terminal a transfer prints a line every PLAIN_EVERY seconds; work reported
    outside begin()/end() prints none (pull's repair of a corrupt cache object printed
    `: 1 files, 2.9 KiB at 5 B/s`)."""
    clock = FakeClock()
    progress = TerminalProgress(transfer=True, clock=clock)
    clock.now += 30
    progress.advance(1, 3000)  # never begun: nothing to say
    assert capsys.readouterr().err == ""
    progress.begin("fetch from store", 3)
    clock.now += 5
    progress.advance(1, 1000)
    assert capsys.readouterr().err == ""  # not 10 s yet
    clock.now += 5
    progress.advance(1, 1000)
    assert capsys.readouterr().err == "fetch from store: 2/3 files, 2.0 KiB at 200 B/s\n"
    progress.end()


def test_pull_repairing_a_corrupt_object_prints_no_stray_line(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """The repair is reported as its own piece of work, `fetch again from store`, so its
    plain progress line (if it lasts 10 s) names it; a short one prints nothing."""
    payload = os.urandom(3000)
    write_files(mlv_repo, {"data/a.bin": payload, "data/b.txt": "b"})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    mlv("remote", "add", "-d", "store", tmp_path / "store", cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
    obj = object_path(mlv_repo, xxh(payload))
    obj.chmod(0o644)
    obj.write_bytes(b"X" + payload[1:])
    shutil.rmtree(mlv_repo / "data")
    proc = mlv("pull", cwd=mlv_repo)
    assert "Replaced 1 corrupt object(s) in the cache from 'store'." in proc.stdout
    assert proc.stderr == ""
    assert (mlv_repo / "data" / "a.bin").read_bytes() == payload


def _on_terminal(args: list[str], cwd: Path) -> tuple[str, str]:
    """`mlv ARGS` with stderr on a pseudo-terminal 160 columns wide and stdout in a pipe:
    what it drew on the terminal, and its stdout."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR", "COLUMNS")}
    env["TERM"] = "xterm"
    proc = subprocess.Popen(
        [MLV, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    drawn = bytearray()
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read().decode()
    assert proc.wait(timeout=120) == 0, drawn.decode(errors="replace")
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", drawn.decode(errors="replace")), out


def test_add_bar_shows_how_many_files_there_are(mlv_repo: Path) -> None:
    """The hashing bar had no total (`5000/? files`): add counts a new folder's files
    first (honouring .mlvignore) when a bar shows the count."""
    files: dict[str, bytes | str | None] = {
        f"data/d{i % 20}/{i}.bin": os.urandom(64) for i in range(3000)
    }
    files.update({f"data/skip/{i}.tmp": "x" for i in range(50)})
    files["data/.mlvignore"] = "*.tmp\n"
    write_files(mlv_repo, files)
    drawn, _ = _on_terminal(["add", "data"], mlv_repo)
    totals = set(re.findall(r"\d+/([0-9?]+) files", drawn))
    assert totals == {"3001"}, drawn[-2000:]  # 3000 files and the .mlvignore itself
    git("commit", "-q", "-m", "v1", cwd=mlv_repo)


def test_a_transfer_bar_is_drawn_on_stderr_and_stdout_stays_plain(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """`mlv fetch | tee log` at a terminal: the bar (files, bytes, rate) on the terminal,
    the summary alone in the pipe (the bar was drawn on stdout's console before)."""
    write_files(mlv_repo, {f"data/{i}.bin": os.urandom(2048) for i in range(300)})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    mlv("remote", "add", "-d", "store", tmp_path / "store", cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
    shutil.rmtree(mlv_repo / ".mlv" / "cache")
    drawn, out = _on_terminal(["fetch"], mlv_repo)
    assert re.fullmatch(
        r"Fetched 301 objects \(\S+ KiB\) from 'store'; 0 already in the cache.\n", out
    )
    assert re.search(r"fetch from store .* \d+/300 files .* at .*/s", drawn), drawn


class Recorder(NullProgress):
    """A Progress that keeps what it was told: (files, nbytes) of each advance, and where
    in them each piece of work began."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[int, int]] = []
        self.begun: dict[str, int] = {}

    def begin(self, what: str, total: Total = None) -> None:
        self.begun[what] = len(self.events)

    def advance(self, files: int = 1, nbytes: int = 0) -> None:
        self.events.append((files, nbytes))


def test_a_fetch_reports_the_bytes_of_each_batch_as_they_arrive(
    mlv_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packed objects come in batches of ranges (96 MiB: 5-7 s on a slow link); the bytes
    of each batch are reported as they arrive, before its objects are checked and counted,
    so the bar's bytes and rate move between batches instead of only when a batch ends."""
    from mlv.core import transfer
    from mlv.core.repo import Repo
    from mlv.core.selection import Revisions
    from mlv.objects.packs import packed

    data = {f"data/{i:03d}.bin": os.urandom(16 << 10) for i in range(240)}  # 3.75 MiB
    write_files(mlv_repo, dict(data))
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    mlv("remote", "add", "-d", "store", tmp_path / "store", cwd=mlv_repo)
    mlv("remote", "modify", "store", "pack_size", "1MiB", cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
    shutil.rmtree(mlv_repo / ".mlv" / "cache")
    monkeypatch.setattr(packed, "READ_BATCH", 1 << 20)  # a batch a pack, as 96 MiB is 3 packs
    monkeypatch.chdir(mlv_repo)
    recorder = Recorder()
    repo = Repo.open()
    try:
        summary = transfer.run_fetch(repo, None, [], Revisions(), None, recorder)
    finally:
        repo.close()
    assert summary.transferred == 241 and not summary.failed
    files_phase = recorder.events[recorder.begun["fetch from store"] :]
    kinds = "".join("b" if files == 0 else "f" for files, _ in files_phase)
    assert re.fullmatch(r"(b+f+){4,}", kinds), kinds  # bytes, then its objects; 4+ times
    arrived = sum(n for files, n in files_phase if files == 0)
    assert arrived >= sum(len(b) for b in data.values())
    assert all(n == 0 for files, n in files_phase if files != 0)  # counted once
    assert sum(files for files, _ in files_phase) == 240
    mlv("checkout", cwd=mlv_repo)
    assert all((mlv_repo / rel).read_bytes() == content for rel, content in data.items())
