#!/usr/bin/env python3
"""mlv vs DVC on history: `diff A B` between two commits of one dataset that differ in 10
files, `diff` of HEAD against an unchanged workspace, and `ls -R` of an old revision.

usage: bench_diff.py DATASET_DIR [--reps 5] [--work DIR] [--out FILE]
Tools: env DVC=/path/dvc MLV=/path/mlv (or on PATH). Each tool gets its own repository
with the dataset added and committed, then 10 files in 10 different folders changed and
committed. The timed commands alternate between the tools so that machine drift hits both
alike. Prints one JSON line per measurement and a table of medians with the ratio mlv/dvc.
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


def sh(cmd: str, cwd: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} in {cwd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}")
    return elapsed


def changed_files(data: str, count: int = 10) -> list[str]:
    """One file in each of the first `count` folders (or files at the top)."""
    picked: list[str] = []
    for folder in sorted(os.listdir(data)):
        path = os.path.join(data, folder)
        if os.path.isdir(path):
            names = sorted(os.listdir(path))
            if names:
                picked.append(f"{folder}/{names[len(names) // 2]}")
        if len(picked) == count:
            break
    return picked


def setup(tool: str, exe: str, data: str, work: str) -> str:
    repo = os.path.join(work, tool)
    os.makedirs(repo)
    sh("git init -q && git config user.email b@b && git config user.name bench", repo)
    sh(f"{exe} init -q", repo)
    sh(f"cp -r {data} {repo}/data", repo)
    sh(f"{exe} add data && git add -A && git commit -qm one", repo)
    if tool == "mlv":
        sh(f"{exe} unprotect data", repo)
    for rel in changed_files(os.path.join(repo, "data")):
        path = os.path.join(repo, "data", rel)
        with open(path, "ab") as fh:
            fh.write(b"changed")
    cmd = f"{exe} commit -q" if tool == "mlv" else f"{exe} commit -q -f"
    sh(f"{cmd} && git add -A && git commit -qm two", repo)
    return repo


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--work")
    parser.add_argument("--out")
    args = parser.parse_args()
    tools = {"dvc": os.environ.get("DVC", "dvc"), "mlv": os.environ.get("MLV", "mlv")}
    work = args.work or tempfile.mkdtemp(prefix="bench-diff-")
    os.makedirs(work, exist_ok=True)
    repos = {
        tool: setup(tool, exe, os.path.abspath(args.data), work) for tool, exe in tools.items()
    }
    cases = {
        "diff HEAD~1 HEAD": {t: f"{e} diff HEAD~1 HEAD --json" for t, e in tools.items()},
        "diff (workspace)": {t: f"{e} diff --json" for t, e in tools.items()},
        "ls -R --rev HEAD~1": {
            "dvc": f"{tools['dvc']} ls -R --rev HEAD~1 . data",
            "mlv": f"{tools['mlv']} ls -R --rev HEAD~1 data",
        },
    }
    # the answers must agree before anything is timed
    out = subprocess.run(
        f"{tools['mlv']} diff HEAD~1 HEAD --json",
        cwd=repos["mlv"],
        shell=True,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert len(json.loads(out)["modified"]) == 10, out[:500]
    times: dict[tuple[str, str], list[float]] = {}
    lines = []
    for case, cmds in cases.items():
        for rep in range(args.reps):
            order = ["dvc", "mlv"] if rep % 2 == 0 else ["mlv", "dvc"]
            for tool in order:
                t = sh(cmds[tool], repos[tool])
                times.setdefault((case, tool), []).append(t)
                line = json.dumps({"case": case, "tool": tool, "rep": rep, "seconds": round(t, 3)})
                lines.append(line)
                print(line, flush=True)
    print(f"\n{'case':<22}{'dvc s':>9}{'mlv s':>9}{'mlv/dvc':>9}")
    for case in cases:
        d = statistics.median(times[(case, "dvc")])
        m = statistics.median(times[(case, "mlv")])
        print(f"{case:<22}{d:>9.2f}{m:>9.2f}{m / d:>9.3f}")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
