#!/usr/bin/env python3
"""`mlv add` of a 1,000,000-file directory: wall time and peak memory; then `mlv status`,
and checkout of the deleted data, copied and then hardlinked, each followed by `mlv status`.

usage: bench_million.py [--files N] [--work DIR] [--mlv PATH]
Files are 1,000 to a folder, each with distinct content (so every one is a cache object).
Steps, each timed as a whole command after `sync` and a one-second pause: `mlv add data`,
`mlv status` three times, `rm -rf data`, `mlv checkout` (default cache.type: a copy
without reflinks), `mlv status` (the first after that checkout), then (untimed)
`mlv config cache.type hardlink`, and `rm -rf data`, `mlv checkout` (hardlinks),
`mlv status`, and `cp -al data` (the floor of that checkout). Peak memory is the maximum
resident set size reported by GNU time (`/usr/bin/time -v`). Each step also prints its
microseconds per file (seconds / N * 1e6), to compare with the same step at 20,000 files
(bench_floor.py).
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
    """(wall seconds, peak RSS in KiB) of one command, after `sync` and a pause."""
    subprocess.run(["sync"], check=True)
    time.sleep(1)
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], cwd=cwd, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return wall, int(found.group(1)) if found else -1


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
    hardlink = [a.mlv, "config", "cache.type", "hardlink"]
    for label, cmd in (
        ("add", [a.mlv, "add", "data"]),
        ("status (first)", [a.mlv, "status"]),
        ("status", [a.mlv, "status"]),
        ("status (again)", [a.mlv, "status"]),
        ("rm -rf data", ["rm", "-rf", "data"]),
        ("checkout (copy)", [a.mlv, "checkout"]),
        ("status (checkout)", [a.mlv, "status"]),
        ("", hardlink),
        ("rm -rf data", ["rm", "-rf", "data"]),
        ("checkout (hardlink)", [a.mlv, "checkout"]),
        ("status (hardlink)", [a.mlv, "status"]),
        ("cp -al (floor)", ["cp", "-al", "data", "data-cp-al"]),
    ):
        if not label:
            subprocess.run(cmd, cwd=repo, check=True, capture_output=True)
            print(f"{'(untimed)':20} {' '.join(cmd)}", flush=True)
            continue
        wall, rss = timed(cmd, repo)
        print(
            f"{label:20} {wall:8.2f} s  {wall / a.files * 1e6:8.1f} us/file  "
            f"peak RSS {rss / 1024:8.1f} MiB   ({' '.join(cmd)})",
            flush=True,
        )


if __name__ == "__main__":
    main()
