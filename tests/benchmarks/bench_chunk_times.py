#!/usr/bin/env python3
"""Push and fetch of one fresh large file to a folder remote: chunked against `chunking
false` (mlv 0.1's one key per object), alternating, the issue-16 time goals (<= 1.1x).

usage: bench_chunk_times.py FILE [--reps 7] [--work DIR] [--mlv PATH] [--v2 FILE] [--old PATH]

One repository holds FILE; two folder remotes differ only in `chunking`. Each repetition
times, for each remote in turn: a push into an emptied remote, then a fetch into a clone
whose cache lost the object (the pushed remote is kept for it). With --v2 (a second
version of FILE, e.g. `make_data.py model2`), it also times the fetch of v2 into a clone
holding v1 in its cache. Before every timed command: `sync` and one second's pause, so
that the last command's write-back does not land on the next one. Prints each run, then
medians and the ratios chunked / unchunked of wall time. With --old (the `mlv` of an
install of mlv 0.1, e.g. `git archive 5441922`, the last commit before packs and chunks),
a third variant: that mlv's own repository of FILE pushing to and fetching from a plain
folder remote, alternating with the other two, and the ratios chunked / mlv 0.1.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import time


def run(cmd: list[str], cwd: str) -> str:
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def timed(cmd: list[str], cwd: str) -> float:
    subprocess.run(["sync"], check=True)
    time.sleep(1)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def object_path(repo: str, pointer: str) -> str:
    with open(os.path.join(repo, pointer)) as fh:
        hexpart = re.search(r"xxh128:([0-9a-f]{32})", fh.read()).group(1)  # type: ignore[union-attr]
    return os.path.join(repo, ".mlv", "cache", "xxh128", hexpart[:2], hexpart[2:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--v2")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--work", default="/tmp/mlv-bench/chunk-times")
    ap.add_argument("--mlv", default=shutil.which("mlv") or "mlv")
    ap.add_argument("--old", help="the mlv of an mlv 0.1 install: a third variant")
    a = ap.parse_args()
    mlv = a.mlv
    shutil.rmtree(a.work, ignore_errors=True)
    repo = os.path.join(a.work, "repo")
    os.makedirs(repo)
    run(["git", "init", "-q"], repo)
    run([mlv, "init", "-q"], repo)
    shutil.copyfile(a.file, os.path.join(repo, "model.bin"))
    run([mlv, "add", "-q", "model.bin"], repo)
    remotes = {
        "chunked": os.path.join(a.work, "r-chunked"),
        "unchunked": os.path.join(a.work, "r-loose"),
    }
    for name, url in remotes.items():
        run([mlv, "remote", "add", name, url], repo)
    run([mlv, "remote", "modify", "unchunked", "chunking", "false"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "v1"], repo)
    clone = os.path.join(a.work, "clone")
    run(["git", "clone", "-q", repo, clone], a.work)
    obj = object_path(clone, "model.bin.mlv")
    # name -> (mlv, repository, clone, object in the clone's cache)
    variants = {name: (mlv, repo, clone, obj) for name in remotes}
    if a.old:
        old_repo = os.path.join(a.work, "old-repo")
        os.makedirs(old_repo)
        run(["git", "init", "-q"], old_repo)
        run([a.old, "init", "-q"], old_repo)
        shutil.copyfile(a.file, os.path.join(old_repo, "model.bin"))
        run([a.old, "add", "-q", "model.bin"], old_repo)
        remotes["mlv 0.1"] = os.path.join(a.work, "r-old")
        run([a.old, "remote", "add", "-d", "old", remotes["mlv 0.1"]], old_repo)
        run(["git", "add", "-A"], old_repo)
        run(["git", "commit", "-qm", "v1"], old_repo)
        old_clone = os.path.join(a.work, "old-clone")
        run(["git", "clone", "-q", old_repo, old_clone], a.work)
        variants["mlv 0.1"] = (a.old, old_repo, old_clone, object_path(old_clone, "model.bin.mlv"))
    times: dict[str, list[float]] = {}
    for rep in range(a.reps):
        order = list(remotes) if rep % 2 == 0 else list(reversed(remotes))
        for name in order:
            tool, home, copy, obj = variants[name]
            remote = [] if name == "mlv 0.1" else ["-r", name]
            shutil.rmtree(remotes[name], ignore_errors=True)
            push = timed([tool, "push", "-q", *remote], home)
            if os.path.exists(obj):
                os.chmod(obj, 0o644)
                os.unlink(obj)
            fetch = timed([tool, "fetch", "-q", *remote], copy)
            times.setdefault(f"push {name}", []).append(push)
            times.setdefault(f"fetch {name}", []).append(fetch)
            print(f"rep {rep} {name}: push {push:.3f} s, fetch {fetch:.3f} s", flush=True)
    if a.v2:
        os.chmod(os.path.join(repo, "model.bin"), 0o644)
        shutil.copyfile(a.v2, os.path.join(repo, "model.bin"))
        run([mlv, "add", "-q", "model.bin"], repo)
        run(["git", "commit", "-qam", "v2"], repo)
        for name in ("chunked", "unchunked"):
            run([mlv, "push", "-q", "-r", name], repo)
        run(["git", "pull", "-q"], clone)
        obj2 = object_path(clone, "model.bin.mlv")
        for rep in range(a.reps):
            order = ["chunked", "unchunked"][:: 1 if rep % 2 == 0 else -1]
            for name in order:
                if os.path.exists(obj2):
                    os.chmod(obj2, 0o644)
                    os.unlink(obj2)
                fetch = timed([mlv, "fetch", "-q", "-r", name], clone)
                times.setdefault(f"fetch v2 {name}", []).append(fetch)
                print(f"rep {rep} {name}: fetch of v2 with v1 cached {fetch:.3f} s", flush=True)
    print("\n| step | chunked | unchunked | chunked / unchunked |\n|---|---|---|---|")
    for step in ("push", "fetch", "fetch v2"):
        if f"{step} chunked" not in times:
            continue
        c = statistics.median(times[f"{step} chunked"])
        u = statistics.median(times[f"{step} unchunked"])
        print(f"| {step} | {c:.3f} s | {u:.3f} s | {c / u:.2f}x |")
    if "push mlv 0.1" in times:
        print("\n| step | chunked | mlv 0.1 | chunked / mlv 0.1 |\n|---|---|---|---|")
        for step in ("push", "fetch"):
            c = statistics.median(times[f"{step} chunked"])
            o = statistics.median(times[f"{step} mlv 0.1"])
            print(f"| {step} | {c:.3f} s | {o:.3f} s | {c / o:.2f}x |")


if __name__ == "__main__":
    main()
