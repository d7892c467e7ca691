#!/usr/bin/env python3
"""`mlv add` of a 1,000,000-file directory: wall time and peak memory; then `mlv status`,
and checkout of the deleted data, copied and then hardlinked, each followed by `mlv status`.

usage: bench_million.py [--files N] [--bytes B] [--work DIR] [--mlv PATH]
Files are 1,000 to a folder, B bytes each (1,024: the issue's "1 KiB files"; runs before
--bytes wrote 8-14, as `--bytes 0` does), each with distinct content (so every one is a
cache object).
Steps, each timed as a whole command after `sync` and a one-second pause: `cp -r data`
to a folder beside the repository (the floor of a copy add in the data's own layout); a
bare Python loop writing every file as a cache object (read, xxh3-128, a temporary in one
of 256 fan-out folders renamed into place: the floor of the cache's layout, one process);
`mlv add data`; `mlv status` three times; (untimed) `rm -rf` of the two floors' copies
(the disk would not hold them all at a million files); `rm -rf data`; `mlv checkout`
(default cache.type: a copy without reflinks); `mlv status` (the first after that
checkout); `cp -r data` again (the floor of that checkout, on the disk as the deletions
left it); then (untimed) `mlv config cache.type hardlink`, and `rm -rf data`, `mlv
checkout` (hardlinks), `mlv status`, and `cp -al data` (the floor of that checkout). Peak
memory is the maximum resident set size reported by GNU time (`/usr/bin/time -v`). Each
step also prints its microseconds per file (seconds / N * 1e6), to compare with the same
steps at 20,000 files (`--files 20000`: the same layout and sizes). Nothing is deleted
before the add's steps, so on a disk that discards deleted blocks, as this project's VM
does, those are timed on a quiet disk (if the disk was quiet at the start) and the
checkouts are not (their floors are timed right after them, in the same state).
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


BARE_OBJECTS = r"""
import os, sys, xxhash
src, dst = sys.argv[1], sys.argv[2]
made, n = set(), 0
for top, folders, names in os.walk(src):
    folders.sort()
    for name in sorted(names):
        with open(os.path.join(top, name), "rb") as fh:
            data = fh.read()
        h = xxhash.xxh3_128_hexdigest(data)
        d = f"{dst}/{h[:2]}"
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        tmp = f"{d}/.tmp{n}-{h[2:20]}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        os.write(fd, data)
        os.fstat(fd)
        os.close(fd)
        os.replace(tmp, f"{d}/{h[2:]}")
        n += 1
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--bytes", type=int, default=1024)
    ap.add_argument("--work", default="/tmp/mlv-bench/million")
    ap.add_argument("--mlv", default=shutil.which("mlv") or "mlv")
    a = ap.parse_args()
    repo = os.path.join(a.work, "repo")
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(repo)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([a.mlv, "init"], cwd=repo, check=True, capture_output=True)
    data = os.path.join(repo, "data")
    pad = bytes(range(256)) * (a.bytes // 256 + 1)
    t = time.perf_counter()
    for i in range(a.files):
        folder = os.path.join(data, f"d{i // 1000:04d}")
        if i % 1000 == 0:
            os.makedirs(folder)
        head = b"file %d\n" % i
        with open(os.path.join(folder, f"f{i:07d}"), "wb") as fh:
            fh.write(head + pad[: max(0, a.bytes - len(head))])
    print(f"created {a.files} files in {time.perf_counter() - t:.1f} s", flush=True)
    hardlink = [a.mlv, "config", "cache.type", "hardlink"]
    for label, cmd in (
        ("cp -r (floor)", ["cp", "-r", "data", os.path.join(a.work, "floor-add")]),
        (
            "objects (floor)",
            [sys.executable, "-c", BARE_OBJECTS, "data", os.path.join(a.work, "floor-objects")],
        ),
        ("add", [a.mlv, "add", "data"]),
        ("status (first)", [a.mlv, "status"]),
        ("status", [a.mlv, "status"]),
        ("status (again)", [a.mlv, "status"]),
        (
            "",
            ["rm", "-rf", os.path.join(a.work, "floor-add"), os.path.join(a.work, "floor-objects")],
        ),
        ("rm -rf data", ["rm", "-rf", "data"]),
        ("checkout (copy)", [a.mlv, "checkout"]),
        ("status (checkout)", [a.mlv, "status"]),
        ("cp -r (floor)", ["cp", "-r", "data", os.path.join(a.work, "floor-checkout")]),
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
        shown = " ".join("BARE_OBJECTS" if arg == BARE_OBJECTS else arg for arg in cmd)
        print(
            f"{label:20} {wall:8.2f} s  {wall / a.files * 1e6:8.1f} us/file  "
            f"peak RSS {rss / 1024:8.1f} MiB   ({shown})",
            flush=True,
        )


if __name__ == "__main__":
    main()
