#!/usr/bin/env python3
"""Packed remotes (issue 15) against loose ones and DVC, side by side, with request counts.

usage: bench_packs.py [--small DIR] [--large DIR] [--reps 3] [--work DIR] [--out FILE]
                      [--variants dvc,packed,loose] [--pack-sizes 8,64] [--no-large | --no-small]

Tools: env DVC=/path/dvc MLV=/path/mlv (or on PATH). Data: --small (default $BENCH_SMALL or
/tmp/mlv-bench/data/small, `make_data.py small`) and --large (default $BENCH_LARGE or
/tmp/mlv-bench/data/large, `make_data.py large DIR 2 512`). A moto S3 server is started
in this process on a free port (moto[server] and boto3 importable by this Python); every
request it answers is counted from its werkzeug log line, so request counts cost no proxy.

Variants: `dvc`; `packed` (mlv, default pack_threshold 4 MiB, pack_size 32 MiB); `loose`
(mlv with `pack_threshold 0`: one key per object, as mlv 0.1); `pN` (mlv with pack_size
N MiB, from --pack-sizes: the design's measurement M2). Each repetition gives every
variant fresh repositories and buckets, in a rotated order so that machine drift hits all
alike; `sync` runs before each timed command. Steps, small files: push to a folder remote
(and the `cp -r` floor), push to an empty bucket, no-op push, verify of the remote (mlv
`verify --remote`, DVC `data status --not-in-remote`), pull into a fresh clone, pull of one
folder (1 %) into another fresh clone, push of 10 changed files. Large files: push and pull,
folder and S3. Prints one JSON line per measurement (seconds, peak RSS of the command and
its children, requests by method) and tables of medians with ratios to DVC.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from bench_remote import make_bucket, start_moto

LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d+)')
COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # werkzeug colours some status lines (206, 404)
ONE_FOLDER = "shard007"  # one of the 100 folders of `make_data.py small`: 1 % of the files


class RequestLog(logging.Handler):
    """Counts the requests moto's server answers, by method, from werkzeug's access log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.mutex = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.paths: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = LINE.search(COLOUR.sub("", record.getMessage()))
        if match:
            with self.mutex:
                self.counts[match.group(1)] += 1
                self.paths.append(f"{match.group(1)} {match.group(2)}")

    def take(self) -> Counter[str]:
        """The counts since the last take, and start counting again."""
        with self.mutex:
            counts, self.counts = self.counts, Counter()
            self.paths = []
            return counts


def start_counted_moto() -> tuple[object, str, RequestLog]:
    """A moto S3 server in this process (the test credentials set) whose requests a
    RequestLog counts: (server, endpoint, log)."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    log = RequestLog()
    werkzeug = logging.getLogger("werkzeug")
    server, endpoint = start_moto()
    werkzeug.setLevel(logging.INFO)  # start_moto silenced it; its lines are counted instead
    werkzeug.propagate = False
    werkzeug.handlers = [log]
    return server, endpoint, log


@dataclass
class Run:
    seconds: float
    max_rss_kib: int
    output: str


def sh(cmd: str, cwd: str) -> Run:
    """Run one shell command; its wall time and the peak RSS of it or its largest child.

    The RSS comes from GNU time (`/usr/bin/time -f %M`): a child forked from this process,
    which holds moto's buckets, would otherwise report this process's size as its own.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, "sh", "-c", cmd],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        elapsed = time.perf_counter() - start
        peak = rss.read().strip().splitlines()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} in {cwd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}")
    return Run(elapsed, int(peak[-1]) if peak and peak[-1].isdigit() else 0, proc.stdout)


@dataclass
class Variant:
    name: str
    tool: str  # "dvc" or "mlv"
    exe: str
    options: dict[str, str] = field(default_factory=dict)  # mlv remote options


@dataclass
class Bench:
    work: str
    endpoint: str
    log: RequestLog
    results: dict[tuple[str, str], list[dict[str, object]]] = field(default_factory=dict)

    def timed(self, variant: Variant, step: str, cmd: str, cwd: str, rep: int) -> Run:
        sh("sync", cwd)
        self.log.take()
        run = sh(cmd, cwd)
        paths = list(self.log.paths)
        counts = self.log.take()
        row: dict[str, object] = {
            "variant": variant.name,
            "step": step,
            "rep": rep,
            "seconds": round(run.seconds, 3),
            "max_rss_mib": round(run.max_rss_kib / 1024, 1),
            "requests": sum(counts.values()),
            "by_method": dict(counts),
        }
        print(json.dumps(row), flush=True)
        if len(paths) <= 200:  # which requests, in --out (not printed)
            row["paths"] = paths
        self.results.setdefault((variant.name, step), []).append(row)
        return run


def new_repo(v: Variant, where: str, data: str, bucket: str, endpoint: str) -> str:
    """A git repository holding DATA as `data`, added, with a folder remote `store` and an
    S3 remote `s3r` on an empty bucket; committed."""
    repo = os.path.join(where, "repo")
    os.makedirs(repo)
    sh(
        "git init -q && git config user.email b@b && git config user.name b && "
        "git commit -q --allow-empty -m init",
        repo,
    )
    sh(f"{v.exe} init -q", repo)
    shutil.copytree(data, os.path.join(repo, "data"))
    sh(f"{v.exe} add -q data", repo)
    sh(f"{v.exe} remote add -d store {os.path.join(where, 'remote')}", repo)
    make_bucket(endpoint, bucket)
    sh(f"{v.exe} remote add s3r s3://{bucket}/store", repo)
    option = "endpointurl" if v.tool == "dvc" else "endpoint_url"
    sh(f"{v.exe} remote modify s3r {option} {endpoint}", repo)
    for name in ("store", "s3r"):
        for key, value in v.options.items():
            sh(f"{v.exe} remote modify {name} {key} {value}", repo)
    sh("git add -A && git commit -q -m data", repo)
    return repo


def clone(repo: str, where: str, name: str) -> str:
    path = os.path.join(where, name)
    sh(f"git clone -q {repo} {path}", where)
    return path


def check_verify(v: Variant, out: str) -> None:
    """A timed check must have found everything on the remote, else the timing lies."""
    doc = json.loads(out[out.index("{") :])
    if v.tool == "dvc":
        assert not doc.get("not_in_remote"), out[:500]
    else:
        assert doc["ok"] and doc["remote"]["present"] == doc["remote"]["objects"], out[:1000]


def small_steps(b: Bench, v: Variant, data: str, rep: int, full: bool) -> None:
    where = tempfile.mkdtemp(prefix=f"{v.name}-{rep}-", dir=b.work)
    try:
        repo = new_repo(v, where, data, f"{v.name}-{rep}-{os.getpid()}", b.endpoint)
        b.timed(v, "push, folder", f"{v.exe} push -r store", repo, rep)
        b.timed(v, "push, S3", f"{v.exe} push -r s3r", repo, rep)
        if not full:
            return
        b.timed(v, "no-op push, S3", f"{v.exe} push -r s3r", repo, rep)
        verify = (
            f"{v.exe} data status --not-in-remote -r s3r --json"
            if v.tool == "dvc"
            else f"{v.exe} verify --remote s3r --json"
        )
        check_verify(v, b.timed(v, "verify, S3", verify, repo, rep).output)
        pulled = clone(repo, where, "clone")
        b.timed(v, "pull, S3 (fresh clone)", f"{v.exe} pull -r s3r", pulled, rep)
        part = clone(repo, where, "clone-part")
        b.timed(v, "pull of one folder, S3", f"{v.exe} pull -r s3r data/{ONE_FOLDER}", part, rep)
        count = sum(len(files) for _, _, files in os.walk(os.path.join(part, "data")))
        assert count == len(os.listdir(os.path.join(data, ONE_FOLDER))), count
        for i in range(10):  # one file in each of 10 folders
            folder = os.path.join(repo, "data", f"shard{i * 10:03d}")
            name = sorted(os.listdir(folder))[0]
            with open(os.path.join(folder, name), "ab") as fh:
                fh.write(f"changed {rep} {i}\n".encode())
        sh(f"{v.exe} add -q data && git add -A && git commit -q -m ten", repo)
        b.timed(v, "push of 10 changed files, S3", f"{v.exe} push -r s3r", repo, rep)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def large_steps(b: Bench, v: Variant, data: str, rep: int) -> None:
    where = tempfile.mkdtemp(prefix=f"L{v.name}-{rep}-", dir=b.work)
    try:
        repo = new_repo(v, where, data, f"l{v.name}-{rep}-{os.getpid()}", b.endpoint)
        b.timed(v, "large: push, folder", f"{v.exe} push -r store", repo, rep)
        pulled = clone(repo, where, "clone")
        b.timed(v, "large: pull, folder", f"{v.exe} pull -r store", pulled, rep)
        shutil.rmtree(pulled)
        b.timed(v, "large: push, S3", f"{v.exe} push -r s3r", repo, rep)
        pulled = clone(repo, where, "clone2")
        b.timed(v, "large: pull, S3", f"{v.exe} pull -r s3r", pulled, rep)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def floor(b: Bench, data: str, rep: int) -> None:
    where = tempfile.mkdtemp(prefix="floor-", dir=b.work)
    try:
        v = Variant("floor", "cp", "cp")
        b.timed(v, "push, folder", f"cp -r {data} {where}/data && sync", where, rep)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def median(rows: list[dict[str, object]], key: str) -> float:
    return float(statistics.median(float(r[key]) for r in rows))  # type: ignore[arg-type]


def table(b: Bench, names: list[str]) -> str:
    """Medians per step and variant: seconds (requests), and each mlv variant / DVC."""
    steps = list(dict.fromkeys(step for _, step in b.results))
    head = ["step"] + [f"{n} s (req)" for n in names]
    head += [f"{n}/dvc" for n in names if n != "dvc" and "dvc" in names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for step in steps:
        cells = [step]
        for n in names:
            rows = b.results.get((n, step))
            cells.append(
                f"{median(rows, 'seconds'):.2f} ({median(rows, 'requests'):.0f})" if rows else ""
            )
        dvc = b.results.get(("dvc", step))
        for n in names:
            if n == "dvc" or "dvc" not in names:
                continue
            rows = b.results.get((n, step))
            cells.append(
                f"{median(rows, 'seconds') / median(dvc, 'seconds'):.3f}" if rows and dvc else ""
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def variants(names: list[str], sizes: list[int]) -> Iterator[Variant]:
    for name in names:
        if name == "dvc":
            yield Variant(name, "dvc", os.environ.get("DVC", "dvc"))
        elif name == "packed":
            yield Variant(name, "mlv", os.environ.get("MLV", "mlv"))
        elif name == "loose":
            yield Variant(name, "mlv", os.environ.get("MLV", "mlv"), {"pack_threshold": "0"})
        else:
            raise SystemExit(f"unknown variant {name!r}")
    for size in sizes:
        yield Variant(f"p{size}", "mlv", os.environ.get("MLV", "mlv"), {"pack_size": f"{size}MiB"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--small", default=os.environ.get("BENCH_SMALL", "/tmp/mlv-bench/data/small"))
    ap.add_argument("--large", default=os.environ.get("BENCH_LARGE", "/tmp/mlv-bench/data/large"))
    ap.add_argument("--no-large", action="store_true")
    ap.add_argument("--no-small", action="store_true", help="the large files alone")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", default=os.environ.get("BENCH_WORK"))
    ap.add_argument("--out")
    ap.add_argument("--variants", default="dvc,packed,loose")
    ap.add_argument("--pack-sizes", default="", help="extra mlv variants: pack_size in MiB")
    a = ap.parse_args()
    names = [n for n in a.variants.split(",") if n]
    sizes = [int(s) for s in a.pack_sizes.split(",") if s]
    chosen = list(variants(names, sizes))
    if a.work:
        os.makedirs(a.work, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench-packs-", dir=a.work)
    server, endpoint, log = start_counted_moto()
    bench = Bench(work, endpoint, log)
    print(json.dumps({"variants": [v.__dict__ for v in chosen], "small": a.small}), flush=True)
    try:
        for rep in range(a.reps):
            if not a.no_small:
                floor(bench, os.path.abspath(a.small), rep)
            shift = rep % len(chosen)
            for v in chosen[shift:] + chosen[:shift]:
                full = v.name in ("dvc", "packed", "loose")
                if not a.no_small:
                    small_steps(bench, v, os.path.abspath(a.small), rep, full)
                if not a.no_large and full:
                    large_steps(bench, v, os.path.abspath(a.large), rep)
    finally:  # a failed step still leaves the table of what was measured
        server.stop()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)
        report(bench, [v.name for v in chosen], a.out)


def report(bench: Bench, names: list[str], out: str | None) -> None:
    print()
    print(table(bench, ["floor", *names]))
    rss = {
        f"{n}: {s}": median(rows, "max_rss_mib")
        for (n, s), rows in bench.results.items()
        if "push" in s
    }
    print("\npeak RSS (MiB, medians):", json.dumps(rss, indent=1))
    if out:
        with open(out, "w") as fh:
            json.dump({f"{n} | {s}": rows for (n, s), rows in bench.results.items()}, fh, indent=1)


if __name__ == "__main__":
    main()
