"""`mlv repro -j N` (independent stages at once), `always_changed` and `frozen` stages,
with real git and real shell commands. Overlap is proven from the times the commands
write, never from how long a run took."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from helpers import MLV, assert_error, git, mlv, write_files
from prebuilt import make_mlv_repo


def _timed(name: str, seconds: float) -> str:
    """A command that writes its start and end times (ns) and says hello on both streams."""
    return (
        f"date +%s%N > {name}.start; echo hello from {name}; echo to stderr >&2;"
        f" sleep {seconds}; date +%s%N > {name}.end"
    )


def _write(repo: Path, stages: dict[str, dict[str, object]]) -> None:
    (repo / "mlv.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))


def _ns(repo: Path, name: str) -> int:
    return int((repo / name).read_text())


INDEPENDENT = {
    "a": {"cmd": _timed("a", 0.5), "outs": ["a.start", "a.end"]},
    "b": {"cmd": _timed("b", 0.5), "outs": ["b.start", "b.end"]},
    "join": {
        "cmd": "date +%s%N > join.start; cat a.end b.end > join.txt",
        "deps": ["a.end", "b.end"],
        "outs": ["join.start", "join.txt"],
    },
}


def test_independent_stages_overlap_and_what_needs_them_waits(mlv_repo: Path) -> None:
    _write(mlv_repo, INDEPENDENT)
    proc = mlv("repro", "-j", "2", cwd=mlv_repo)
    a = (_ns(mlv_repo, "a.start"), _ns(mlv_repo, "a.end"))
    b = (_ns(mlv_repo, "b.start"), _ns(mlv_repo, "b.end"))
    assert a[0] < b[1] and b[0] < a[1]  # the two commands ran at the same time
    assert _ns(mlv_repo, "join.start") >= max(a[1], b[1])  # join waited for both
    # each line of a command comes whole, prefixed with its stage, on its own stream
    assert "[a] hello from a\n" in proc.stdout and "[b] hello from b\n" in proc.stdout
    assert "[a] to stderr\n" in proc.stderr and "[b] to stderr\n" in proc.stderr
    assert "[a] > date" in proc.stdout
    assert "Stages: 3 ran, 0 up to date." in proc.stdout
    lock = yaml.safe_load((mlv_repo / "mlv.lock").read_text())
    assert list(lock["stages"]) == ["a", "b", "join"]  # mlv.yaml's order, not finishing order
    assert "mlv.lock" in git("diff", "--cached", "--name-only", cwd=mlv_repo).stdout
    assert "3 up to date" in mlv("repro", "-j", "2", cwd=mlv_repo).stdout


def test_the_lock_of_j2_is_the_lock_of_j1(tmp_path: Path) -> None:
    stages = {f"s{i}": {"cmd": f"echo {i} > out{i}.txt", "outs": [f"out{i}.txt"]} for i in range(5)}
    stages["all"] = {
        "cmd": "cat out*.txt > all.txt; echo '{\"n\": 5}' > m.json",
        "deps": [f"out{i}.txt" for i in range(5)],
        "outs": ["all.txt"],
        "metrics": ["m.json"],
    }
    locks = []
    for jobs in ("1", "3"):
        repo = make_mlv_repo(tmp_path / f"j{jobs}")
        _write(repo, stages)
        mlv("repro", "-j", jobs, cwd=repo)
        locks.append((repo / "mlv.lock").read_bytes())
        assert (repo / "all.txt").read_text() == "0\n1\n2\n3\n4\n"
    assert locks[0] == locks[1]


FAILING = {
    "fails": {"cmd": "sleep 0.2; exit 3", "outs": ["f.txt"]},
    "slow": {"cmd": "sleep 0.8; echo s > s.txt", "outs": ["s.txt"]},
    "child": {"cmd": "cat f.txt > c.txt", "deps": ["f.txt"], "outs": ["c.txt"]},
    "other": {"cmd": "echo o > o.txt", "outs": ["o.txt"]},
}


def test_a_failure_stops_what_needs_it_and_running_stages_finish(mlv_repo: Path) -> None:
    _write(mlv_repo, FAILING)
    proc = mlv("repro", "-j", "2", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "stage 'fails' failed: `sleep 0.2; exit 3` ended with exit code 3" in proc.stderr
    # slow was running when fails failed: it finished and is recorded; nothing new started
    assert (mlv_repo / "s.txt").read_text() == "s\n"
    assert not (mlv_repo / "o.txt").exists()
    assert "Stages: 1 ran, 0 up to date, 1 failed, 2 not run." in proc.stdout
    assert list(yaml.safe_load((mlv_repo / "mlv.lock").read_text())["stages"]) == ["slow"]
    # with --keep-going the others run; what needs the failed stage is skipped
    proc = mlv("repro", "-j", "2", "--keep-going", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "stage 'child' not run: stage 'fails' it needs failed" in proc.stderr
    assert (mlv_repo / "o.txt").read_text() == "o\n"
    assert list(yaml.safe_load((mlv_repo / "mlv.lock").read_text())["stages"]) == [
        "slow",
        "other",
    ]
    # the failure's hint, once the command is fixed, runs it
    FAILING["fails"]["cmd"] = "echo f > f.txt"
    _write(mlv_repo, FAILING)
    mlv("repro", "fails", cwd=mlv_repo)
    assert "Stages: 1 ran" in mlv("repro", "-j", "2", cwd=mlv_repo).stdout  # child


def test_ctrl_c_stops_every_running_stage(mlv_repo: Path) -> None:
    _write(
        mlv_repo,
        {
            "x": {"cmd": "echo $$ > x.pid; sleep 30; echo x > x.txt", "outs": ["x.txt"]},
            "y": {"cmd": "echo $$ > y.pid; sleep 30 & wait; echo y > y.txt", "outs": ["y.txt"]},
        },
    )
    proc = subprocess.Popen(
        [MLV, "repro", "-j", "2"], cwd=mlv_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 20
    while not ((mlv_repo / "x.pid").exists() and (mlv_repo / "y.pid").exists()):
        assert time.monotonic() < deadline, "the stages did not start"
        time.sleep(0.05)
    time.sleep(0.2)  # the sleeps are running
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert b"error: interrupted" in err
    for name in ("x", "y"):
        group = int((mlv_repo / f"{name}.pid").read_text())
        with pytest.raises(ProcessLookupError):
            _signal_live(group)
        assert not (mlv_repo / f"{name}.txt").exists()
    assert not (mlv_repo / "mlv.lock").exists()


def _signal_live(group: int) -> None:
    """Raise ProcessLookupError unless a process of the group runs (zombies do not)."""
    os.killpg(group, 0)
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if fields[2] == str(group) and fields[0] not in ("Z", "X"):
                return
    raise ProcessLookupError


# ---- always_changed and frozen ----------------------------------------------------------


def test_an_always_changed_stage_runs_every_time_and_its_children_only_on_change(
    mlv_repo: Path,
) -> None:
    stages = {
        "fetch": {
            "cmd": "echo run >> fetch.log; cat source.txt > fetched.txt",
            "outs": ["fetched.txt"],
            "always_changed": True,
        },
        "use": {
            "cmd": "echo run >> use.log; cat fetched.txt > used.txt",
            "deps": ["fetched.txt"],
            "outs": ["used.txt"],
        },
    }
    write_files(mlv_repo, {"source.txt": "v1\n", ".gitignore": "/*.log\n"})
    _write(mlv_repo, stages)
    mlv("repro", cwd=mlv_repo)
    proc = mlv("repro", cwd=mlv_repo)
    assert "Running stage 'fetch' (always changed)" in proc.stdout
    assert "Stage 'use' is up to date" in proc.stdout  # same output: nothing downstream
    assert "would run" in mlv("repro", "--dry", cwd=mlv_repo).stdout
    (mlv_repo / "source.txt").write_text("v2\n")  # not a dep: only running sees it
    mlv("repro", cwd=mlv_repo)
    assert (mlv_repo / "used.txt").read_text() == "v2\n"
    (mlv_repo / "source.txt").write_text("v1\n")  # a run seen before: still run, not restored
    proc = mlv("repro", cwd=mlv_repo)
    assert "Restored stage 'fetch'" not in proc.stdout
    assert (mlv_repo / "fetch.log").read_text().split() == ["run"] * 4
    # use ran with v1 before: restored from the run cache (it is not always_changed)
    assert "Restored stage 'use' from the run cache" in proc.stdout
    assert (mlv_repo / "used.txt").read_text() == "v1\n"
    assert (mlv_repo / "use.log").read_text().split() == ["run"] * 2


def test_a_frozen_stage_never_runs_its_outputs_are_restored(mlv_repo: Path) -> None:
    stages = {
        "train": {
            "cmd": "echo run >> train.log; cat data.txt > model.txt",
            "deps": ["data.txt"],
            "outs": ["model.txt"],
            "frozen": True,
        },
        "score": {
            "cmd": "wc -c < model.txt > score.txt",
            "deps": ["model.txt"],
            "outs": ["score.txt"],
        },
    }
    write_files(mlv_repo, {"data.txt": "v1\n", ".gitignore": "/*.log\n"})
    _write(mlv_repo, stages)
    # never run: refused, and the hint (unfreeze, then repro) works
    proc = mlv("repro", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    hint = "remove `frozen: true` from stage 'train' in mlv.yaml, then run `mlv repro train`"
    assert "stage 'train' is frozen but has never run" in proc.stderr and hint in proc.stderr
    stages["train"]["frozen"] = False
    _write(mlv_repo, stages)
    mlv("repro", "train", cwd=mlv_repo)
    stages["train"]["frozen"] = True
    _write(mlv_repo, stages)
    mlv("repro", cwd=mlv_repo)
    assert (mlv_repo / "train.log").read_text() == "run\n"
    # a changed dep, even with --force: not run; its lock entry stays
    lock_before = yaml.safe_load((mlv_repo / "mlv.lock").read_text())["stages"]["train"]
    (mlv_repo / "data.txt").write_text("v2\n")
    proc = mlv("repro", "--force", cwd=mlv_repo)
    assert "Stage 'train' is frozen; its outputs are as mlv.lock records" in proc.stdout
    assert (mlv_repo / "train.log").read_text() == "run\n"
    assert (mlv_repo / "model.txt").read_text() == "v1\n"
    assert yaml.safe_load((mlv_repo / "mlv.lock").read_text())["stages"]["train"] == lock_before
    # a deleted output is restored as mlv.lock records it, still without running
    (mlv_repo / "model.txt").unlink()
    assert "Would restore stage 'train'" in mlv("repro", "--dry", cwd=mlv_repo).stdout
    proc = mlv("repro", cwd=mlv_repo)
    assert "Restored stage 'train' from the cache" in proc.stdout
    assert (mlv_repo / "model.txt").read_text() == "v1\n"
    assert (mlv_repo / "train.log").read_text() == "run\n"
    # an edit by hand is refused as for any stage
    (mlv_repo / "model.txt").unlink()
    (mlv_repo / "model.txt").write_text("mine\n")
    proc = mlv("repro", "train", cwd=mlv_repo, check=False)
    assert_error(proc, 1, "model.txt holds content that mlv did not produce")


def test_a_frozen_stage_whose_output_the_cache_lacks_names_mlv_pull_which_works(
    mlv_repo: Path, tmp_path: Path
) -> None:
    stages = {
        "train": {"cmd": "cat data.txt > model.txt", "deps": ["data.txt"], "outs": ["model.txt"]}
    }
    write_files(mlv_repo, {"data.txt": "v1\n"})
    _write(mlv_repo, stages)
    mlv("repro", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
    stages["train"]["frozen"] = True
    _write(mlv_repo, stages)
    digest = yaml.safe_load((mlv_repo / "mlv.lock").read_text())["stages"]["train"]["outs"][0]
    hex_ = digest["hash"].split(":")[1]
    (mlv_repo / ".mlv/cache/xxh128" / hex_[:2] / hex_[2:]).unlink()
    (mlv_repo / "model.txt").unlink()
    proc = mlv("repro", cwd=mlv_repo, check=False)
    assert_error(
        proc, 1, "stage 'train' is frozen", "run `mlv pull model.txt` to fetch it from the remote"
    )
    mlv("pull", "model.txt", cwd=mlv_repo)
    assert (mlv_repo / "model.txt").read_text() == "v1\n"
    assert "Stage 'train' is frozen; its outputs are as mlv.lock records" in (
        mlv("repro", cwd=mlv_repo).stdout
    )


def _wait_for(path: Path, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_mlv_commit_while_a_stage_runs_is_kept_and_never_records_a_half_output(
    mlv_repo: Path, jobs: str
) -> None:
    """repro lets go of the repository lock while commands run: an `mlv commit` of another
    stage's edited output then is not undone by repro's next mlv.lock write, and the
    output of the stage still running is refused (it is half written)."""
    slow = (
        "echo part1 > slow.txt; touch started; while [ ! -f go ]; do sleep 0.02; done;"
        " echo part2 >> slow.txt"
    )
    _write(
        mlv_repo,
        {
            "slow": {"cmd": slow, "outs": ["slow.txt"]},
            "b": {"cmd": "echo b > b.txt", "outs": ["b.txt"]},
        },
    )
    (mlv_repo / "go").write_text("")
    mlv("repro", cwd=mlv_repo)
    (mlv_repo / "go").unlink()
    (mlv_repo / "started").unlink()
    proc = subprocess.Popen(
        [MLV, "repro", "-f", "-j", jobs, "slow"],
        cwd=mlv_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(mlv_repo / "started")
        (mlv_repo / "b.txt").write_text("edited by hand\n")
        assert "Recorded b.txt" in mlv("commit", "b.txt", cwd=mlv_repo).stdout
        assert_error(mlv("commit", "slow.txt", cwd=mlv_repo, check=False), 1, "is running")
        assert "slow.txt" not in mlv("commit", cwd=mlv_repo).stdout  # all: skipped, not half
        assert (mlv_repo / "slow.txt").read_text() == "part1\n"
    finally:
        (mlv_repo / "go").write_text("")
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    lock = yaml.safe_load((mlv_repo / "mlv.lock").read_text())
    outs = {s["outs"][0]["path"]: s["outs"][0]["size"] for s in lock["stages"].values()}
    assert outs == {"slow.txt": 12, "b.txt": len("edited by hand\n")}
    assert "2 up to date" in mlv("repro", cwd=mlv_repo).stdout


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_what_a_failed_or_interrupted_command_left_does_not_block_the_next_run(
    mlv_repo: Path, jobs: str
) -> None:
    """mlv cleared the outs before the command ran, so what a failing or interrupted
    command left there is no one's work: the next run (the error's own hint) replaces it
    without --force. An edit made to it since is still refused."""
    _write(
        mlv_repo,
        {
            "f": {"cmd": "echo partial > f.txt; test -f ok", "outs": ["f.txt"]},
            "slow": {
                "cmd": "echo half > s.txt; touch started; [ ! -f hang ] || sleep 30;"
                " echo whole >> s.txt",
                "outs": ["s.txt"],
            },
        },
    )
    failed = mlv("repro", "-j", jobs, "f", cwd=mlv_repo, check=False)
    assert_error(failed, 1, "run `mlv repro f` again")
    (mlv_repo / "ok").write_text("")
    assert "1 ran" in mlv("repro", "-j", jobs, "f", cwd=mlv_repo).stdout  # the hint works
    (mlv_repo / "hang").write_text("")
    proc = subprocess.Popen(
        [MLV, "repro", "-j", jobs, "slow"],
        cwd=mlv_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(mlv_repo / "started")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert (mlv_repo / "s.txt").read_text() == "half\n"
    (mlv_repo / "hang").unlink()
    assert "1 ran" in mlv("repro", "-j", jobs, "slow", cwd=mlv_repo).stdout
    assert (mlv_repo / "s.txt").read_text() == "half\nwhole\n"
    (mlv_repo / "ok").unlink()
    mlv("repro", "-j", jobs, "f", cwd=mlv_repo, check=False)  # fails again, leaves f.txt
    (mlv_repo / "f.txt").write_text("edited\n")
    (mlv_repo / "ok").write_text("")
    assert_error(mlv("repro", "f", cwd=mlv_repo, check=False), 1, "did not produce")
    # a command that wrote one of two outs: the one it wrote does not block its fix
    two = {"cmd": "echo one-$$ > one.txt", "outs": ["one.txt", "two.txt"]}
    _write(mlv_repo, {"two": two})
    failed = mlv("repro", "-j", jobs, cwd=mlv_repo, check=False)
    assert failed.returncode == 1 and "did not produce its output two.txt" in failed.stderr
    _write(mlv_repo, {"two": dict(two, cmd="echo one-$$ > one.txt; echo 2 > two.txt")})
    assert "1 ran" in mlv("repro", "-j", jobs, cwd=mlv_repo).stdout


def test_a_command_writing_no_newline_is_passed_on_in_bounded_parts(mlv_repo: Path) -> None:
    """Under -j a stage's output is read a line at a time: output without a newline (tqdm's
    \\r updates for hours, a binary blob) came as one line held whole in memory (400 MB
    printed: 1.2 GB). It comes in parts of at most 64 KiB now, every byte of it."""
    _write(
        mlv_repo,
        {
            "a": {"cmd": "head -c 300000 /dev/zero | tr '\\0' x; echo; echo done"},
            "b": {"cmd": "echo b"},
        },
    )
    proc = mlv("repro", "-j", "2", cwd=mlv_repo)
    parts = [line[len("[a] ") :] for line in proc.stdout.splitlines() if line.startswith("[a] x")]
    assert "".join(parts) == "x" * 300000
    assert max(len(p) for p in parts) <= 64 << 10
    assert "[a] done" in proc.stdout


def test_a_frozen_stage_restores_only_its_own_outs_whatever_mlv_lock_names(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """A clone's mlv.lock may record any path for a frozen stage: only the outs of mlv.yaml
    are checked to lie inside the repository, so one that names others (outside it, inside
    .git) is refused, never restored there (it wrote the cached object to both)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    write_files(mlv_repo, {"src.txt": "payload\n"})
    mlv("add", "src.txt", cwd=mlv_repo)
    pointer = yaml.safe_load((mlv_repo / "src.txt.mlv").read_text())
    _write(mlv_repo, {"f": {"cmd": "echo hi > out.txt", "outs": ["out.txt"], "frozen": True}})
    rel = os.path.relpath(outside / "pwned.txt", mlv_repo)
    hostile = [
        {"path": p, "hash": pointer["hash"], "size": pointer["size"]}
        for p in ("out.txt", rel, ".git/hooks/post-checkout")
    ]
    lock = {"version": 1, "stages": {"f": {"cmd": "echo hi > out.txt", "outs": hostile}}}
    (mlv_repo / "mlv.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    for jobs in ("1", "2"):
        proc = mlv("repro", "-j", jobs, cwd=mlv_repo, check=False)
        assert proc.returncode == 1
        assert "is frozen and mlv.lock records other outputs for it" in proc.stderr
    assert list(outside.iterdir()) == []
    assert not (mlv_repo / ".git/hooks/post-checkout").exists()
    assert not (mlv_repo / "out.txt").exists()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_finished_stage_waits_for_the_lock_to_record_itself(mlv_repo: Path, jobs: str) -> None:
    """Another mlv holding the repository lock longer than its wait (3 s) when the commands
    end: repro waits to record them, saying so. It reported the finished stage failed, and
    went on without the lock (writing mlv.lock)."""
    import fcntl

    _write(mlv_repo, {"a": {"cmd": "echo a > a.txt; touch started; sleep 0.5", "outs": ["a.txt"]}})
    proc = subprocess.Popen(
        [MLV, "repro", "-j", jobs],
        cwd=mlv_repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(mlv_repo / "started")
    fd = os.open(mlv_repo / ".mlv/tmp/lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as another mlv writing in this repository
        time.sleep(4)
    finally:
        os.close(fd)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "Stages: 1 ran" in out
    assert "waiting for another mlv process to let go of the repository lock" in err
    assert "a.txt" in (mlv_repo / "mlv.lock").read_text()
