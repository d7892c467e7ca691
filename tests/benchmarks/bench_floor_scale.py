#!/usr/bin/env python3
"""The filesystem's floor per file at several scales, alternating: does a small file cost
more to copy, link or store as a cache object at 1,000,000 files than at 20,000?

usage: bench_floor_scale.py [--reps 2] [--work DIR] N [N ...]

For each N, DIR/srcN is made first (if absent): N files of 1 KiB, 1,000 to a folder, as
bench_million.py makes them. Then for each repetition, for each N (the order rotated by
one each repetition): `cp -r srcN`, `cp -al srcN`, and a bare Python loop writing every
file as a cache object (read, xxh3-128, a temporary in one of 256 fan-out folders renamed
into place, one process: bench_million.py's BARE_OBJECTS), each after `sync` and a
one-second pause. Nothing is deleted while timing (every copy stays under DIR/out, and
the caller removes DIR afterwards: on a disk that discards deleted blocks, creating files
after a mass deletion is several times slower for minutes). Prints one JSON line per
repetition and N, with seconds and microseconds per file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench_million import BARE_OBJECTS


def make(src: str, n: int) -> None:
    pad = bytes(range(256)) * 5
    for i in range(n):
        folder = os.path.join(src, f"d{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(folder)
        head = b"file %d\n" % i
        with open(os.path.join(folder, f"f{i:07d}"), "wb") as fh:
            fh.write(head + pad[: 1024 - len(head)])


def timed(cmd: list[str]) -> float:
    subprocess.run(["sync"], check=True)
    time.sleep(1)
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", type=int, nargs="+")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--work", default="/tmp/mlv-bench/floor-scale")
    a = ap.parse_args()
    for n in a.files:
        src = os.path.join(a.work, f"src{n}")
        if not os.path.isdir(src):
            make(src, n)
    out = os.path.join(a.work, "out")
    os.makedirs(out, exist_ok=True)
    for r in range(a.reps):
        shift = r % len(a.files)
        for n in a.files[shift:] + a.files[:shift]:
            src = os.path.join(a.work, f"src{n}")
            row: dict[str, float] = {"rep": r, "files": n, "load": os.getloadavg()[0]}
            row["cp_r"] = timed(["cp", "-r", src, f"{out}/r{r}-cpr-{n}"])
            row["cp_al"] = timed(["cp", "-al", src, f"{out}/r{r}-cpal-{n}"])
            row["objects"] = timed([sys.executable, "-c", BARE_OBJECTS, src, f"{out}/r{r}-obj-{n}"])
            for key in ("cp_r", "cp_al", "objects"):
                row[key + "_us"] = round(row[key] / n * 1e6, 1)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
