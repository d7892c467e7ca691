#!/usr/bin/env python3
"""`mlv add` (copy) of a folder by one or more mlv commands against `cp -r` of it,
alternating, with no deletion between the timed runs.

usage: bench_add_ab.py DATA --mlv CMD [--mlv CMD ...] [--reps 5] [--pause 2] [--work DIR]

Every repository (git init, mlv init, DATA copied in) and every destination is made before
the first timed run, and all are removed after the last: on this project's VM (ext4 with
discard) creating files right after deleting as many runs 5-15x slower for minutes, which
is what `bench_floor.py`'s small-file `cp -r` then measures (docs/performance.md, issue
17). Each repetition runs `cp -r DATA_COPY NEW` and each `CMD add data` in an order
rotated by one, with `sync` and a pause before each; wall time and CPU time (user +
system of the command and its children, a helper process included). Prints each
repetition, then medians, ratios to `cp -r` and the ratio per repetition.

A CMD is any executable that runs mlv, e.g. a script running an older commit's sources:
  git archive OLD mlv | tar -x -C /tmp/old
  printf '#!/bin/sh\\nPYTHONPATH=/tmp/old exec python -c "import sys; from mlv.cli import
  main; sys.argv[0] = \\"mlv\\"; main()" "$@"\\n' > /tmp/mlv-old; chmod +x /tmp/mlv-old
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time


def sh(cmd: list[str], cwd: str | None = None) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data")
    ap.add_argument("--mlv", action="append", required=True, help="an mlv command (repeat)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--pause", type=float, default=2.0)
    ap.add_argument("--work", default="/tmp/mlv-bench/add-ab")
    a = ap.parse_args()
    data, work = os.path.abspath(a.data), a.work
    tools = ["cp", *a.mlv]
    names = {t: t if t == "cp" else f"mlv{i}:{os.path.basename(t)}" for i, t in enumerate(tools)}
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    sh(["cp", "-r", data, f"{work}/src"])
    for rep in range(a.reps):
        for i, t in enumerate(a.mlv):
            repo = f"{work}/r{rep}-{i}"
            os.makedirs(repo)
            sh(["git", "init", "-q"], repo)
            sh([t, "init"], repo)
            sh(["cp", "-r", data, f"{repo}/data"])
    os.sync()
    time.sleep(5)
    wall: dict[str, list[float]] = {t: [] for t in tools}
    cpu: dict[str, list[float]] = {t: [] for t in tools}
    try:
        for rep in range(a.reps):
            k = rep % len(tools)
            for t in tools[k:] + tools[:k]:
                if t == "cp":
                    cmd, cwd = ["cp", "-r", f"{work}/src", f"{work}/cp{rep}"], work
                else:
                    cmd, cwd = [t, "add", "data"], f"{work}/r{rep}-{a.mlv.index(t)}"
                os.sync()
                time.sleep(a.pause)
                c0, t0 = os.times(), time.perf_counter()
                proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
                seconds, c1 = time.perf_counter() - t0, os.times()
                if proc.returncode:
                    sys.exit(f"{' '.join(cmd)} failed: {proc.stderr.strip()}")
                wall[t].append(seconds)
                cpu[t].append(
                    c1.children_user + c1.children_system - c0.children_user - c0.children_system
                )
            print(rep, " ".join(f"{names[t]}={wall[t][-1]:.3f}" for t in tools), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor = statistics.median(wall["cp"])
    for t in tools:
        m = statistics.median(wall[t])
        per = " ".join(f"{x / c:.2f}" for x, c in zip(wall[t], wall["cp"], strict=True))
        print(
            f"{names[t]}: median {m:.3f} s (cpu {statistics.median(cpu[t]):.3f} s), "
            f"runs {' '.join(f'{x:.3f}' for x in wall[t])}; / cp -r {m / floor:.2f}x, "
            f"per repetition {per}"
        )


if __name__ == "__main__":
    main()
