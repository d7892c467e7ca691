#!/usr/bin/env python3
"""`mlv add` of a 1,000,000-file directory: wall time and peak memory; then `mlv status`.

usage: bench_million.py [--files N] [--work DIR] [--mlv PATH]
Files are 1,000 to a folder, each with distinct content (so every one is a cache object).
Peak memory is the maximum resident set size reported by GNU time (`/usr/bin/time -v`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time


def timed(cmd: list[str], cwd: str) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one command."""
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], cwd=cwd, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return wall, rss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--work", default="/tmp/mlv-bench/million")
    ap.add_argument("--mlv", default=shutil.which("mlv") or "mlv")
    a = ap.parse_args()
    repo = os.path.join(a.work, "repo")
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([a.mlv, "init"], cwd=repo, check=True, capture_output=True)
    data = os.path.join(repo, "data")
    t = time.perf_counter()
    for i in range(a.files):
        folder = os.path.join(data, f"d{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(folder)
        with open(os.path.join(folder, f"f{i:07d}"), "wb") as fh:
            fh.write(b"file %d\n" % i)
    print(f"created {a.files} files in {time.perf_counter() - t:.1f} s", flush=True)
    subprocess.run(["sync"], check=True)
    for label, cmd in (
        ("add", [a.mlv, "add", "data"]),
        ("status (first)", [a.mlv, "status"]),
        ("status", [a.mlv, "status"]),
        ("status (again)", [a.mlv, "status"]),
    ):
        wall, rss = timed(cmd, repo)
        print(
            f"{label:16} {wall:8.2f} s  peak RSS {rss / 1024:8.1f} MiB   ({' '.join(cmd)})",
            flush=True,
        )


if __name__ == "__main__":
    main()
