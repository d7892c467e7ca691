"""Hard-link checkout of an existing repository against `cp -al`, and optionally against
another mlv source tree (A/B), alternating ("Local speed at the floor", issue 17).

usage: bench_hardlink_ab.py REPO [--reps 3] [--old SRC] [--python PY]

REPO is an mlv repository with `cache.type hardlink` whose tracked folder `data` is checked
out (bench_floor.py makes 20,000 files; `make_data.py` or a loop of small files more). Each
repetition, in an order that alternates: `rm -rf REPO/data` (untimed), `sync`, a second's
pause, then `PY -m mlv checkout -q` timed, with the mlv importable by PY (new) and, with
--old, with PYTHONPATH=SRC (a `git archive` of an older commit's `mlv/` folder); then
`cp -al REPO/data` into a scratch folder next to REPO, timed the same way (and removed).
Prints each repetition, then medians of wall time and of CPU time (user + system of the
process and its children: the link helper) and the ratios. Run with
`env -u PYTHONDONTWRITEBYTECODE` so that the sources' bytecode is cached as installed.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--old", help="PYTHONPATH of the mlv to compare with")
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args()
    repo = os.path.abspath(a.repo)
    scratch = repo.rstrip("/") + "-cpal"
    env = dict(os.environ)
    kinds = ["new", "old"] if a.old else ["new"]
    wall: dict[str, list[float]] = {k: [] for k in [*kinds, "cp_al"]}
    cpu: dict[str, list[float]] = {k: [] for k in wall}

    def timed(kind: str, cmd: list[str], run_env: dict[str, str]) -> None:
        subprocess.run(["sync"], check=True)
        time.sleep(1)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=repo, env=run_env)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            sys.exit(f"{kind}: {' '.join(cmd)} failed ({proc.returncode})")
        wall[kind].append(seconds)
        cpu[kind].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)

    for rep in range(a.reps):
        order = kinds if rep % 2 == 0 else kinds[::-1]
        for kind in order:
            shutil.rmtree(os.path.join(repo, "data"), ignore_errors=True)
            run_env = dict(env)
            if kind == "old":
                run_env["PYTHONPATH"] = a.old
            timed(kind, [a.python, "-m", "mlv", "checkout", "-q"], run_env)
        shutil.rmtree(scratch, ignore_errors=True)
        timed("cp_al", ["cp", "-al", os.path.join(repo, "data"), scratch], env)
        shutil.rmtree(scratch)
        shown = ", ".join(f"{k} {v[-1]:.3f} s" for k, v in wall.items())
        print(f"rep {rep}: {shown} (load {os.getloadavg()[0]:.1f})", flush=True)
    for kind, values in wall.items():
        print(
            f"{kind}: median {statistics.median(values):.3f} s "
            f"({', '.join(f'{v:.3f}' for v in values)}), "
            f"CPU median {statistics.median(cpu[kind]):.3f} s"
        )
    floor = statistics.median(wall["cp_al"])
    for kind in kinds:
        per_rep = ", ".join(f"{x / y:.2f}" for x, y in zip(wall[kind], wall["cp_al"], strict=True))
        print(f"{kind} / cp -al: {statistics.median(wall[kind]) / floor:.2f}x ({per_rep})")
    if a.old:
        print(f"new / old: {statistics.median(wall['new']) / statistics.median(wall['old']):.2f}")


if __name__ == "__main__":
    main()
