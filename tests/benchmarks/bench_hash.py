#!/usr/bin/env python3
"""Hashing throughput of one large file through mlv's code paths.

usage: bench_hash.py FILE [REPS]
- hash_file: streamed 4 MiB reads (used for workspace files: status, commit);
- mmap: the path add and checkout use on files mlv just wrote (hash while copying);
- add: `Cache.ingest` of the file into a scratch cache (copy + hash), bytes per second.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time

from mlv.objects import hashing
from mlv.objects.store import Cache, hash_path_mmap


def rate(fn, size: int, reps: int) -> str:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return f"{size / med / 1e9:6.2f} GB/s (median {med:.3f} s of {reps})"


def main() -> None:
    path = sys.argv[1]
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    size = os.path.getsize(path)
    print(f"{path}: {size / 2**20:.0f} MiB")
    print("hash_file ", rate(lambda: hashing.hash_file("xxh128", path), size, reps))
    print("mmap      ", rate(lambda: hash_path_mmap("xxh128", path), size, reps))
    scratch = tempfile.mkdtemp(dir=os.path.dirname(os.path.abspath(path)))
    try:

        def ingest() -> None:
            shutil.rmtree(os.path.join(scratch, "c"), ignore_errors=True)
            Cache(os.path.join(scratch, "c"), "xxh128", ("copy",)).ingest(path, size)

        print("add(copy) ", rate(ingest, size, reps))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
