#!/usr/bin/env python3
"""`mlv repro -j 2` against `mlv repro -j 1` and `dvc repro` on a pipeline of independent
stages that each burn a fixed amount of CPU (about 1 s on one core), and against the bare
commands run one after another and two at a time (`xargs -P 2`): the floor.

usage: bench_parallel.py [--stages 4] [--work N | --sleep S] [--reps 5] [--out FILE]

--sleep S: each stage sleeps S seconds instead of computing (what is measured is then the
scheduling alone, unaffected by how busy the CPUs are).

Tools: env DVC=/path/dvc MLV=/path/mlv (or on PATH). Each tool gets its own git repository
with the same stages (dvc.yaml for DVC, mlv.yaml for mlv; every stage writes one small
output, no deps between stages), run once untimed. Timed, REPS times, the runs rotating so
that machine drift hits all alike: `repro -f` (every stage runs; DVC has no -j). The work
is a fixed loop, not a fixed time, so a busy machine makes every column slower alike.
Prints one JSON line per measurement and a table of medians (and ranges).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BURN_PY = """import sys
n = 0
for i in range(int(sys.argv[1])):
    n += i * i
with open(sys.argv[2], "w") as f:
    f.write(str(n))
"""
BURN = "python3 burn.py {work} {out}"
SLEEP = "sleep {work} && echo done > {out}"


def sh(args: list[str], cwd: str) -> None:
    subprocess.run(args, cwd=cwd, check=True, capture_output=True)


def setup(root: str, tool: str, exe: str, stages: int, work: str, burn: str) -> str:
    repo = os.path.join(root, tool)
    os.makedirs(repo)
    sh(["git", "init", "-q", "-b", "main"], repo)
    sh(["git", "commit", "-q", "--allow-empty", "-m", "init"], repo)
    sh([exe, "init", "-q"], repo)
    with open(os.path.join(repo, "burn.py"), "w") as f:
        f.write(BURN_PY)
    lines = ["stages:"]
    for i in range(stages):
        cmd = burn.format(work=work, out=f"out{i}.txt")
        lines += [f"  s{i}:", f"    cmd: {cmd}", f"    outs: [out{i}.txt]"]
    name = "dvc.yaml" if tool == "dvc" else "mlv.yaml"
    with open(os.path.join(repo, name), "w") as f:
        f.write("\n".join(lines) + "\n")
    sh([exe, "repro"], repo)  # untimed: every stage runs once
    sh(["git", "add", "-A"], repo)
    sh(["git", "commit", "-q", "-m", "ran"], repo)
    return repo


def timed(args: list[str], cwd: str, shell: bool = False) -> float:
    start = time.perf_counter()
    command: str | list[str] = args[0] if shell else args
    subprocess.run(command, cwd=cwd, check=True, capture_output=True, shell=shell)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", type=int, default=4)
    ap.add_argument("--work", type=int, default=12_000_000, help="loop length of one stage")
    ap.add_argument("--sleep", type=float, help="seconds each stage sleeps instead")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out")
    opts = ap.parse_args()
    mlv = os.environ.get("MLV") or shutil.which("mlv") or sys.exit("mlv not found")
    dvc = os.environ.get("DVC") or shutil.which("dvc")
    burn, work = (SLEEP, str(opts.sleep)) if opts.sleep else (BURN, str(opts.work))
    root = tempfile.mkdtemp(prefix="bench-parallel-")
    try:
        repos = {"mlv": setup(root, "mlv", mlv, opts.stages, work, burn)}
        if dvc:
            repos["dvc"] = setup(root, "dvc", dvc, opts.stages, work, burn)
        cmds = [burn.format(work=work, out="/dev/null")] * opts.stages
        with open(os.path.join(root, "burn.py"), "w") as f:
            f.write(BURN_PY)
        floor = os.path.join(root, "cmds.txt")
        with open(floor, "w") as f:
            f.write("\0".join(cmds))
        runs = {
            "commands, one after another": (["xargs -0 -P 1 -I{} sh -c {} < " + floor], root, True),
            "commands, two at a time": (["xargs -0 -P 2 -I{} sh -c {} < " + floor], root, True),
            "mlv repro -f -j 1": ([mlv, "repro", "-f", "-j", "1"], repos["mlv"], False),
            "mlv repro -f -j 2": ([mlv, "repro", "-f", "-j", "2"], repos["mlv"], False),
        }
        if dvc:
            runs["dvc repro -f"] = ([dvc, "repro", "-f"], repos["dvc"], False)
        found: dict[str, list[float]] = {k: [] for k in runs}
        out = open(opts.out, "a") if opts.out else None  # noqa: SIM115
        for rep in range(opts.reps):
            names = list(runs)
            names = names[rep % len(names) :] + names[: rep % len(names)]  # rotate
            for name in names:
                args, cwd, shell = runs[name]
                seconds = timed(args, cwd, shell)
                found[name].append(seconds)
                line = json.dumps({"run": name, "rep": rep, "seconds": round(seconds, 3)})
                print(line, flush=True)
                if out:
                    out.write(line + "\n")
        cores = os.cpu_count()
        what = f"sleep {work} s" if opts.sleep else f"loop {opts.work:,}"
        print(f"\n{opts.stages} stages, {what}, {opts.reps} reps, {cores} cores")
        print("| run | median | range |\n|---|---|---|")
        for name, times in found.items():
            median, low, high = statistics.median(times), min(times), max(times)
            print(f"| {name} | {median:.2f} s | {low:.2f}-{high:.2f} s |")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
