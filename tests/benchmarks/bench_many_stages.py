#!/usr/bin/env python3
"""`repro` of a pipeline of many small stages: the first run, and a run with nothing to do.

usage: bench_many_stages.py [--stages 1000] [--reps 3] [--work DIR] [--no-dvc]

Tools: env MLV=/path/mlv and DVC=/path/dvc (or on PATH; --no-dvc leaves DVC out). Each tool
gets a git repository with STAGES stages: stage i copies src/i.txt to out/i.txt and, except
every tenth, also reads out/(i-1).txt, so the graph is 100 chains of 10. Timed once: the
first `repro` (every stage runs); then REPS times, tools alternating: `repro` with nothing
changed (checked to run nothing). What this measures is the per-stage overhead of the
tool (graph building, lock file writing, hashing of deps and outs), not the commands.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def sh(cmd: str, cwd: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, shell=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout + proc.stderr


def pipeline(stages: int) -> str:
    lines = ["stages:"]
    for i in range(stages):
        deps = [f"src/{i}.txt"] + ([f"out/{i - 1}.txt"] if i % 10 else [])
        lines += [
            f"  s{i}:",
            f"    cmd: cp src/{i}.txt out/{i}.txt",
            f"    deps: [{', '.join(deps)}]",
            f"    outs: [out/{i}.txt]",
        ]
    return "\n".join(lines) + "\n"


def setup(tool: str, exe: str, work: str, stages: int) -> str:
    repo = os.path.join(work, tool)
    os.makedirs(os.path.join(repo, "src"))
    os.makedirs(os.path.join(repo, "out"))
    sh("git init -q && git config user.email b@b && git config user.name b", repo)
    sh(f"{exe} init -q", repo)
    for i in range(stages):
        with open(os.path.join(repo, "src", f"{i}.txt"), "w") as fh:
            fh.write(f"{i}\n")
    name = "dvc.yaml" if tool == "dvc" else "mlv.yaml"
    with open(os.path.join(repo, name), "w") as fh:
        fh.write(pipeline(stages))
    sh("git add -A && git commit -qm pipeline", repo)
    return repo


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stages", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work")
    ap.add_argument("--no-dvc", action="store_true")
    args = ap.parse_args()
    tools = {"mlv": os.environ.get("MLV", "mlv")}
    if not args.no_dvc:
        tools["dvc"] = os.environ.get("DVC", "dvc")
    work = args.work or tempfile.mkdtemp(prefix="bench-stages-")
    if args.work:
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
    results: dict[tuple[str, str], list[float]] = {}
    repos = {}
    for tool, exe in tools.items():
        repos[tool] = setup(tool, exe, work, args.stages)
        seconds, _ = sh(f"{exe} repro", repos[tool])
        sh("git add -A && git commit -qm run", repos[tool])
        results[(tool, "first_run")] = [seconds]
        print(json.dumps({"tool": tool, "step": "first_run", "seconds": round(seconds, 2)}))
    for _ in range(args.reps):
        for tool, exe in tools.items():
            seconds, out = sh(f"{exe} repro", repos[tool])
            ran = "Running stage" in out or ("ran," in out and " 0 ran" not in out)
            assert not ran, out[-2000:]
            results.setdefault((tool, "noop"), []).append(seconds)
            print(json.dumps({"tool": tool, "step": "noop", "seconds": round(seconds, 2)}))
    print(f"\n{args.stages} stages, medians (s):")
    for step in ("first_run", "noop"):
        row = {t: statistics.median(results[(t, step)]) for t in tools}
        ratio = f"  dvc/mlv {row['dvc'] / row['mlv']:.1f}x" if "dvc" in row else ""
        print(f"  {step:10}" + "".join(f"  {t} {v:7.2f}" for t, v in row.items()) + ratio)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
