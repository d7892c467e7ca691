#!/usr/bin/env python3
"""Local add, checkout and status against their floors ("Local speed at the floor").

usage: bench_floor.py DATA_DIR [--reps 3] [--work DIR] [--mlv PATH] [--dvc PATH]
                      [--cases copy,hardlink,status] [--out FILE.jsonl]
       bench_floor.py --table FILE.jsonl

DATA_DIR is a folder of small files (`make_data.py small DIR [N]`) or of large ones
(`make_data.py large DIR 2 512`); the same steps serve both. Tools come from --mlv/--dvc,
else env MLV/DVC, else PATH; without DVC the status comparison is left out.

Each repetition runs these units, in an order rotated by one each repetition, so that
drift of the machine hits every unit alike (the floors are measured in the same minute as
the tools):
  floor  `cp -r DATA work/cp` (copy case; removed untimed)
  mlv    fresh git repo, `mlv init`, DATA copied in (untimed), default cache.type
         (reflink,copy: a copy on a filesystem without reflinks), then
         `mlv add data`; `mlv status` twice (both timed: first, and "status after add");
         `rm -rf data` (untimed); `mlv checkout` (copy); `mlv status` (first status after
         checkout); `mlv config cache.type hardlink`; `rm -rf data`; `mlv checkout`
         (hardlink); `mlv status`; then the hardlink floors on the folder that checkout
         made, in alternating order:
           `cp -al repo/data work/cpal`
           the bare os.link loop: a small Python process that makes the folders of data/
           and hard-links into them, under data/'s file names, the cache objects
           (.mlv/cache/...) that the checkout linked (found untimed beforehand by
           matching inodes of repo/data's files with the cache's files, and written to a
           list the process reads); a file whose inode is in no cache file is linked from
           its repo/data path instead (the same inode; the count is printed)
  dvc    fresh git repo, `dvc init -q`, DATA copied in, `dvc add data`, `dvc status`
         twice (both timed), `rm -rf data`, `dvc checkout`, `dvc status` (status case)
Before every timed command: `sync` and a one-second pause, so that write-back from the
last step does not land on the next. Every timed command runs as its own process under
`/usr/bin/time -f '%e %M'`: wall time (perf_counter around it) and peak RSS.

Prints one JSON line per measurement (tool, step, rep, seconds, peak_rss_kb, and the
data's files and bytes) to stdout and to --out, then markdown tables: medians (with peak
RSS and microseconds per file) and the goals' ratios, each as the ratio of medians and
per repetition.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

CASES = ("copy", "hardlink", "status")
DVC_ENV = {**os.environ, "DVC_NO_ANALYTICS": "1"}

LINK_LOOP = """\
import os, sys
root = sys.argv[2]
os.mkdir(root)
with open(sys.argv[1]) as fh:
    for line in fh:
        kind, a, *b = line.rstrip("\\n").split("\\t")
        if kind == "D":
            os.mkdir(os.path.join(root, a))
        else:
            os.link(a, os.path.join(root, b[0]))
"""

Record = dict[str, Any]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: list[str], cwd: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} in {cwd} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc.stdout


def rmtree(path: str) -> None:
    if os.path.lexists(path):
        subprocess.run(["rm", "-rf", path], check=True)


def timed(
    cmd: list[str], cwd: str, env: dict[str, str] | None = None, shown: str = ""
) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in KiB, output) of one command, after `sync` and a pause."""
    subprocess.run(["sync"], check=True)
    time.sleep(1)
    log(f"# timed in {cwd}: {shown or ' '.join(cmd)}")
    with tempfile.NamedTemporaryFile("r", prefix="time-", suffix=".txt") as tf:
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%e %M", "-o", tf.name, *cmd],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - start
        lines = tf.read().split("\n")
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} in {cwd} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    rss = int([ln for ln in lines if ln.strip()][-1].split()[1])
    return wall, rss, proc.stdout + proc.stderr


def git_init(repo: str) -> None:
    os.makedirs(repo)
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "bench@example.com"], repo)
    run(["git", "config", "user.name", "bench"], repo)


def link_list(repo: str, out: str) -> tuple[int, int]:
    """Write the link loop's list for repo/data; (files from cache objects, from data/)."""
    cache: dict[tuple[int, int], str] = {}
    for root, _, files in os.walk(os.path.join(repo, ".mlv", "cache")):
        for name in files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            cache[(st.st_dev, st.st_ino)] = path
    data = os.path.join(repo, "data")
    from_cache = from_data = 0
    with open(out, "w") as fh:
        for root, dirs, files in os.walk(data):
            dirs.sort()
            rel = os.path.relpath(root, data)
            for d in dirs:
                fh.write(f"D\t{os.path.normpath(os.path.join(rel, d))}\n")
            for name in sorted(files):
                path = os.path.join(root, name)
                st = os.lstat(path)
                src = cache.get((st.st_dev, st.st_ino))
                if src is None:
                    src = path
                    from_data += 1
                else:
                    from_cache += 1
                fh.write(f"L\t{src}\t{os.path.normpath(os.path.join(rel, name))}\n")
    return from_cache, from_data


class Bench:
    def __init__(self, a: argparse.Namespace, data: str, mlv: str, dvc: str | None) -> None:
        self.a = a
        self.data = data
        self.mlv = mlv
        self.dvc = dvc
        self.cases = set(a.cases.split(","))
        unknown = self.cases - set(CASES)
        if unknown:
            sys.exit(f"unknown cases: {', '.join(sorted(unknown))} (known: {', '.join(CASES)})")
        self.work = os.path.abspath(a.work)
        self.files, self.bytes = 0, 0
        for root, _, files in os.walk(data):
            for name in files:
                self.files += 1
                self.bytes += os.lstat(os.path.join(root, name)).st_size
        self.records: list[Record] = []
        self.out = open(a.out, "w") if a.out else None  # noqa: SIM115

    def record(self, tool: str, step: str, rep: int, seconds: float, rss: int) -> None:
        rec: Record = {
            "tool": tool,
            "step": step,
            "rep": rep,
            "seconds": round(seconds, 4),
            "peak_rss_kb": rss,
            "files": self.files,
            "bytes": self.bytes,
        }
        self.records.append(rec)
        line = json.dumps(rec)
        print(line, flush=True)
        if self.out:
            self.out.write(line + "\n")
            self.out.flush()

    def time_step(
        self,
        tool: str,
        step: str,
        rep: int,
        cmd: list[str],
        cwd: str,
        env: dict[str, str] | None = None,
        shown: str = "",
    ) -> str:
        wall, rss, output = timed(cmd, cwd, env, shown)
        self.record(tool, step, rep, wall, rss)
        return output

    def units(self) -> list[str]:
        units = []
        if "copy" in self.cases:
            units.append("cp_r")
        units.append("mlv")
        if self.dvc and "status" in self.cases:
            units.append("dvc")
        return units

    def run(self) -> None:
        os.makedirs(self.work, exist_ok=True)
        units = self.units()
        for rep in range(self.a.reps):
            k = rep % len(units)
            for unit in units[k:] + units[:k]:
                log(f"# rep {rep}: {unit}")
                {"cp_r": self.unit_cp, "mlv": self.unit_mlv, "dvc": self.unit_dvc}[unit](rep)
        if self.out:
            self.out.close()
        print()
        print(tables(self.records))

    def unit_cp(self, rep: int) -> None:
        """cp -r right after deleting a copy of the same data, as `mlv checkout` follows
        `rm -rf data`: on this project's disk (ext4 with discard) creating files right
        after deleting as many ran 5-8x slower than on a quiet disk, for cp as for mlv."""
        dest = os.path.join(self.work, "cp")
        if not os.path.exists(dest):
            run(["cp", "-r", self.data, dest], self.work)
        rmtree(dest)
        self.time_step("floor", "cp_r", rep, ["cp", "-r", self.data, dest], self.work)

    def fresh_repo(self, name: str, init: list[str], env: dict[str, str] | None = None) -> str:
        repo = os.path.join(self.work, name)
        rmtree(repo)
        git_init(repo)
        run(init, repo, env)
        run(["cp", "-r", self.data, os.path.join(repo, "data")], repo)
        return repo

    def unit_mlv(self, rep: int) -> None:
        mlv = self.mlv
        repo = self.fresh_repo("mlv", [mlv, "init"])
        data = os.path.join(repo, "data")
        self.time_step("mlv", "add", rep, [mlv, "add", "data"], repo)
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-qm", "data"], repo)
        status = "status" in self.cases
        if status:
            self.time_step("mlv", "status_after_add_first", rep, [mlv, "status"], repo)
            out = self.time_step("mlv", "status_after_add", rep, [mlv, "status"], repo)
            log(f"# mlv status: {out.strip()[:300]}")
        if "copy" in self.cases or status:
            rmtree(data)
            self.time_step("mlv", "checkout_copy", rep, [mlv, "checkout"], repo)
            if status:
                out = self.time_step("mlv", "status_after_checkout", rep, [mlv, "status"], repo)
                log(f"# mlv status: {out.strip()[:300]}")
        if "hardlink" in self.cases:
            run([mlv, "config", "cache.type", "hardlink"], repo)
            rmtree(data)
            self.time_step("mlv", "checkout_hardlink", rep, [mlv, "checkout"], repo)
            if status:
                out = self.time_step(
                    "mlv", "status_after_hardlink_checkout", rep, [mlv, "status"], repo
                )
                log(f"# mlv status: {out.strip()[:300]}")
            self.hardlink_floors(repo, rep)
        rmtree(repo)

    def hardlink_floors(self, repo: str, rep: int) -> None:
        listing = os.path.join(self.work, "links.txt")
        from_cache, from_data = link_list(repo, listing)
        log(f"# link loop: {from_cache} files from cache objects, {from_data} from data/ paths")
        cpal = os.path.join(self.work, "cpal")
        links = os.path.join(self.work, "links")
        loop = [sys.executable, "-c", LINK_LOOP, listing, links]
        floors = [
            ("cp_al", ["cp", "-al", os.path.join(repo, "data"), cpal], cpal, ""),
            ("link_loop", loop, links, f"{sys.executable} -c LINK_LOOP {listing} {links}"),
        ]
        if rep % 2:
            floors.reverse()
        for step, cmd, dest, shown in floors:
            rmtree(dest)
            self.time_step("floor", step, rep, cmd, self.work, shown=shown)
            rmtree(dest)
        os.unlink(listing)

    def unit_dvc(self, rep: int) -> None:
        dvc = self.dvc
        assert dvc is not None
        env = DVC_ENV
        repo = self.fresh_repo("dvc", [dvc, "init", "-q"], env)
        self.time_step("dvc", "add", rep, [dvc, "add", "data"], repo, env)
        run(["git", "add", "-A"], repo)
        run(["git", "commit", "-qm", "data"], repo)
        self.time_step("dvc", "status_after_add_first", rep, [dvc, "status"], repo, env)
        out = self.time_step("dvc", "status_after_add", rep, [dvc, "status"], repo, env)
        log(f"# dvc status: {out.strip()[:300]}")
        rmtree(os.path.join(repo, "data"))
        self.time_step("dvc", "checkout", rep, [dvc, "checkout"], repo, env)
        out = self.time_step("dvc", "status_after_checkout", rep, [dvc, "status"], repo, env)
        log(f"# dvc status: {out.strip()[:300]}")
        rmtree(repo)


def by_rep(records: list[Record], tool: str, step: str) -> dict[int, Record]:
    return {r["rep"]: r for r in records if r["tool"] == tool and r["step"] == step}


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def goal_rows(records: list[Record]) -> Iterator[str]:
    files = records[0]["files"]
    size = records[0]["bytes"]
    large = files <= 64 and size / max(files, 1) >= 64 << 20
    copy_goal = 1.1 if large else 1.3

    def secs(tool: str, step: str) -> dict[int, float]:
        return {k: r["seconds"] for k, r in by_rep(records, tool, step).items()}

    cp_r = secs("floor", "cp_r")
    cp_al, loop = secs("floor", "cp_al"), secs("floor", "link_loop")
    link_floor = {k: min(v, loop[k]) for k, v in cp_al.items() if k in loop}
    # (label, numerator per rep, denominator per rep, goal, at most (True) or at least)
    rows: list[tuple[str, dict[int, float], dict[int, float], float, bool]] = [
        ("mlv add / cp -r", secs("mlv", "add"), cp_r, copy_goal, True),
        ("mlv checkout (copy) / cp -r", secs("mlv", "checkout_copy"), cp_r, copy_goal, True),
        (
            "mlv checkout (hardlink) / min(cp -al, link loop)",
            secs("mlv", "checkout_hardlink"),
            link_floor,
            1.3,
            True,
        ),
        (
            "status after add: DVC / mlv",
            secs("dvc", "status_after_add"),
            secs("mlv", "status_after_add"),
            8.0,
            False,
        ),
        (
            "status after checkout: DVC / mlv",
            secs("dvc", "status_after_checkout"),
            secs("mlv", "status_after_checkout"),
            8.0,
            False,
        ),
    ]
    for label, num, den, goal, at_most in rows:
        if not num or not den:
            continue
        n_med, d_med = statistics.median(num.values()), statistics.median(den.values())
        ratio = n_med / d_med
        per_rep = ", ".join(f"{num[k] / den[k]:.2f}" for k in sorted(num) if k in den)
        met = ratio <= goal if at_most else ratio >= goal
        target = f"{'<=' if at_most else '>='} {goal:g}x"
        yield (
            f"| {label} | {n_med:.3f} s | {d_med:.3f} s | {fmt_ratio(ratio)} | {per_rep} "
            f"| {target} | {'yes' if met else 'NO'} |"
        )


def tables(records: list[Record]) -> str:
    if not records:
        return "(no measurements)"
    files, size = records[0]["files"], records[0]["bytes"]
    out = [
        f"data: {files} files, {size / 2**20:.1f} MiB; "
        f"repetitions: {len({r['rep'] for r in records})}",
        "",
        "| tool | step | median s | us / file | reps | peak RSS MiB (median, max) |",
        "|---|---|---|---|---|---|",
    ]
    keys = list(dict.fromkeys((r["tool"], r["step"]) for r in records))
    for tool, step in keys:
        recs = list(by_rep(records, tool, step).values())
        med = statistics.median(r["seconds"] for r in recs)
        rss = [r["peak_rss_kb"] / 1024 for r in recs]
        out.append(
            f"| {tool} | {step} | {med:.3f} | {med / max(files, 1) * 1e6:.1f} | {len(recs)} "
            f"| {statistics.median(rss):.1f}, {max(rss):.1f} |"
        )
    out += [
        "",
        "| ratio | numerator | denominator | ratio of medians | per repetition | goal | met |",
        "|---|---|---|---|---|---|---|",
        *goal_rows(records),
    ]
    return "\n".join(out)


def load(path: str) -> list[Record]:
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip().startswith("{")]


def tool_path(arg: str | None, env: str, name: str) -> str | None:
    exe = arg or os.environ.get(env) or shutil.which(name)
    if exe and os.sep in exe:
        exe = os.path.abspath(exe)
    return exe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("data", nargs="?")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", default="/tmp/mlv-bench/floor")
    ap.add_argument("--mlv")
    ap.add_argument("--dvc")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--out", help="write the JSON lines to this file too")
    ap.add_argument("--table", metavar="FILE", help="only print the tables of an earlier --out")
    a = ap.parse_args()
    if a.table:
        print(tables(load(a.table)))
        return
    if not a.data:
        ap.error("DATA_DIR is required (or --table FILE)")
    data = os.path.abspath(a.data)
    if not os.path.isdir(data):
        sys.exit(f"{data}: not a folder")
    mlv = tool_path(a.mlv, "MLV", "mlv")
    if not mlv:
        sys.exit("mlv not found: --mlv PATH or MLV=PATH")
    dvc = tool_path(a.dvc, "DVC", "dvc")
    if os.path.commonpath([data, os.path.abspath(a.work)]) == data:
        sys.exit("--work must not be inside DATA_DIR")
    log(f"# data {data}; mlv {mlv}; dvc {dvc or '(none: no status comparison)'}")
    Bench(a, data, mlv, dvc).run()


if __name__ == "__main__":
    main()
