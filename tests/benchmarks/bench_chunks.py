#!/usr/bin/env python3
"""Chunked large files (issue 16): two versions of a model and of a CSV, mlv against DVC.

usage: bench_chunks.py [--model1 FILE --model2 FILE] [--csv1 FILE --csv2 FILE]
                       [--make-csv DIR] [--datasets model,csv] [--reps 3] [--work DIR]
                       [--variants dvc,chunked,nocomp,unchunked] [--no-s3] [--out FILE]
       bench_chunks.py --table FILE   (the tables of an earlier --out FILE)

Data: --model1/--model2 from `make_data.py model DIR 512` and `make_data.py model2 SRC DST`
(64 scattered 4 KiB edits, 1 MiB inserted mid-file); --csv1/--csv2 from `--make-csv DIR`
(this script: a ~200 MB CSV, and v2 = 0.1 % of its rows edited and 5 % appended; it
writes DIR/v1.csv and DIR/v2.csv if absent). Tools: env DVC=... and MLV=... (or on PATH);
run with a Python that has `moto[server]` and `boto3` (moto runs in this process).

Variants: `dvc`; `chunked` (mlv defaults: objects >= 4 MiB cut into FastCDC chunks,
packed, zstd where it pays); `nocomp` (mlv, `compression false`; CSV only, since the
model's random bytes are stored raw anyway); `unchunked` (mlv, `chunking false`: large
objects loose, one key each, as mlv 0.1). Per repetition, in a rotated order, every
variant gets a fresh repository with v1 committed, a folder remote and an empty moto
bucket; for each remote: push v1 (timed: the fresh-file push), pull v1 into a fresh clone
(timed: the fresh-file pull); then v2 is committed and, for each remote, pushed and
pulled into that clone (v1 in its cache). Bytes: stored = `du -sb` of the folder remote
or the sum of the bucket's object sizes; sent and received = mlv's `--json`
`transferred.bytes`; for DVC (which prints no such count) the remote's growth (push) and
its cache's growth (pull). Prints one JSON line per measurement, then tables of medians.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field

from bench_packs import RequestLog, sh, start_counted_moto
from bench_remote import make_bucket

MiB = 1 << 20


@dataclass
class Variant:
    name: str
    tool: str  # "dvc" or "mlv"
    exe: str
    options: dict[str, str] = field(default_factory=dict)  # mlv remote options


VARIANTS = {
    "dvc": ("dvc", {}),
    "chunked": ("mlv", {}),
    "nocomp": ("mlv", {"compression": "false"}),
    "unchunked": ("mlv", {"chunking": "false"}),
}


def make_csv(folder: str, rows: int = 2_000_000) -> tuple[str, str]:
    """A deterministic ~200 MB CSV and its v2: 0.1 % of rows edited in place, 5 % appended."""
    os.makedirs(folder, exist_ok=True)
    v1, v2 = os.path.join(folder, "v1.csv"), os.path.join(folder, "v2.csv")
    if os.path.exists(v1) and os.path.exists(v2):
        return v1, v2
    rnd = random.Random(16)
    words = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta", "zeta"]

    def row(i: int) -> str:
        text = " ".join(rnd.choice(words) for _ in range(rnd.randint(3, 9)))
        return (
            f"{i},2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d},"
            f"user{rnd.randint(0, 99999)},{rnd.choice(words)},{rnd.random() * 1000:.4f},"
            f"{rnd.randint(0, 10**6)},{text}\n"
        )

    lines = ["id,date,user,category,value,count,text\n"] + [row(i) for i in range(rows)]
    with open(v1, "w") as fh:
        fh.writelines(lines)
    for i in rnd.sample(range(1, rows + 1), rows // 1000):
        lines[i] = row(i - 1)
    lines += [row(i) for i in range(rows, rows + rows // 20)]
    with open(v2, "w") as fh:
        fh.writelines(lines)
    return v1, v2


def dir_bytes(path: str) -> int:
    out = subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def bucket_bytes(endpoint: str, bucket: str) -> int:
    import boto3  # type: ignore[import-untyped]

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        total += sum(int(o["Size"]) for o in page.get("Contents", []))
    client.close()
    return total


def json_bytes(out: str) -> int:
    """`transferred.bytes` of an mlv push/pull --json document."""
    doc = json.loads(out[out.index("{") :])
    assert doc["ok"], out[:2000]
    return int(doc["transferred"]["bytes"])


@dataclass
class Bench:
    work: str
    endpoint: str
    log: RequestLog
    rows: list[dict[str, object]] = field(default_factory=list)

    def record(self, v: Variant, data: str, remote: str, step: str, rep: int, **kw: object) -> None:
        row: dict[str, object] = {"variant": v.name, "data": data, "remote": remote}
        row.update(step=step, rep=rep, **kw)
        print(json.dumps(row), flush=True)
        self.rows.append(row)

    def timed(self, cmd: str, cwd: str) -> tuple[float, int, str]:
        """Seconds, requests moto answered, output."""
        sh("sync", cwd)
        self.log.take()
        run = sh(cmd, cwd)
        return round(run.seconds, 3), sum(self.log.take().values()), run.output


def scenario(b: Bench, v: Variant, data: str, files: tuple[str, str], rep: int, s3: bool) -> None:
    where = tempfile.mkdtemp(prefix=f"{data}-{v.name}-{rep}-", dir=b.work)
    name = os.path.basename(files[0]).replace("v1.", "data.")
    bucket = f"c{v.name}-{data}-{rep}-{os.getpid()}"
    try:
        repo = os.path.join(where, "repo")
        os.makedirs(repo)
        sh("git init -q && git config user.email b@b && git config user.name b", repo)
        sh(f"{v.exe} init -q", repo)
        shutil.copyfile(files[0], os.path.join(repo, name))
        sh(f"{v.exe} add -q {name}", repo)
        remotes = {"folder": os.path.join(where, "remote")}
        sh(f"{v.exe} remote add -d folder {remotes['folder']}", repo)
        if s3:
            make_bucket(b.endpoint, bucket)
            remotes["s3"] = f"s3://{bucket}/store"
            sh(f"{v.exe} remote add s3 {remotes['s3']}", repo)
            option = "endpointurl" if v.tool == "dvc" else "endpoint_url"
            sh(f"{v.exe} remote modify s3 {option} {b.endpoint}", repo)
        for r in remotes:
            for key, value in v.options.items():
                sh(f"{v.exe} remote modify {r} {key} {value}", repo)
        sh("git add -A && git commit -q -m v1", repo)

        def stored(r: str) -> int:
            return dir_bytes(remotes[r]) if r == "folder" else bucket_bytes(b.endpoint, bucket)

        def cache(clone: str) -> int:
            path = os.path.join(clone, ".dvc/cache" if v.tool == "dvc" else ".mlv/cache")
            return dir_bytes(path) if os.path.exists(path) else 0

        flag = "" if v.tool == "dvc" else " --json"
        clones: dict[str, str] = {}
        for version, size in ((1, os.path.getsize(files[0])), (2, os.path.getsize(files[1]))):
            if version == 2:
                shutil.copyfile(files[1], os.path.join(repo, name))
                sh(f"{v.exe} add -q {name} && git add -A && git commit -q -m v2", repo)
            for r in remotes:
                before = stored(r) if os.path.exists(remotes[r]) or r == "s3" else 0
                secs, reqs, out = b.timed(f"{v.exe} push -r {r}{flag}", repo)
                after = stored(r)
                sent = after - before if v.tool == "dvc" else json_bytes(out)
                b.record(v, data, r, f"push v{version}", rep, seconds=secs, requests=reqs)
                b.record(v, data, r, f"sent v{version}", rep, bytes=sent, file=size)
                b.record(v, data, r, f"stored v{version}", rep, bytes=after)
                if version == 1:
                    clones[r] = os.path.join(where, f"clone-{r}")
                    sh(f"git clone -q {repo} {clones[r]}", where)
                else:
                    sh("git pull -q --ff-only", clones[r])
                before = cache(clones[r])
                secs, reqs, out = b.timed(f"{v.exe} pull -r {r}{flag}", clones[r])
                got = cache(clones[r]) - before if v.tool == "dvc" else json_bytes(out)
                with (
                    open(os.path.join(clones[r], name), "rb") as fh,
                    open(files[version - 1], "rb") as ref,
                ):
                    assert fh.read() == ref.read(), f"{v.name} pulled a wrong v{version}"
                b.record(v, data, r, f"pull v{version}", rep, seconds=secs, requests=reqs)
                b.record(v, data, r, f"received v{version}", rep, bytes=got, file=size)
    finally:
        shutil.rmtree(where, ignore_errors=True)


def med(rows: list[dict[str, object]], key: str) -> float:
    return float(statistics.median(float(r[key]) for r in rows))  # type: ignore[arg-type]


@dataclass
class Cells:
    """Medians of one dataset on one remote, looked up by variant, step and key."""

    rows: list[dict[str, object]]
    data: str
    remote: str

    def get(self, n: str, step: str, key: str) -> float | None:
        want = (n, self.data, self.remote, step)
        rows = [r for r in self.rows if (r["variant"], r["data"], r["remote"], r["step"]) == want]
        return med(rows, key) if rows else None

    def mb(self, n: str, step: str, minus: str | None = None) -> str:
        x = self.get(n, step, "bytes")
        y = self.get(n, minus, "bytes") if minus else 0.0
        return "" if x is None or y is None else f"{(x - y) / 1e6:.2f}"

    def ratio(self, n: str, top: tuple[str, str], bottom: tuple[str, str, str]) -> str:
        """(variant, step, key) top of variant n over (variant, step, key) bottom."""
        x, y = self.get(n, *top), self.get(*bottom)
        return "" if x is None or not y else f"{x / y:.3f}"

    def timing(self, n: str, step: str) -> str:
        s, r = self.get(n, step, "seconds"), self.get(n, step, "requests")
        if s is None or r is None:
            return ""
        return f"{s:.2f} ({r:.0f})" if self.remote == "s3" else f"{s:.2f}"


def tables(b: Bench, names: list[str]) -> str:
    """Per dataset and remote: medians per measure and variant, with the goals' ratios."""
    out: list[str] = []
    reps = 1 + max((int(str(r["rep"])) for r in b.rows), default=-1)
    for data, remote in dict.fromkeys((str(r["data"]), str(r["remote"])) for r in b.rows):
        c = Cells(b.rows, data, remote)
        have = [n for n in names if c.get(n, "stored v1", "bytes") is not None]
        out.append(f"\n{data}, {remote} remote (medians of {reps}; MB = 10^6 bytes)")
        out.append("| measure | " + " | ".join(have) + " |")
        out.append("|---|" + "---|" * len(have))
        rows: list[tuple[str, list[str]]] = [
            ("stored, v1 (MB)", [c.mb(n, "stored v1") for n in have]),
            ("stored, v1+v2 (MB)", [c.mb(n, "stored v2") for n in have]),
            (
                "stored v1+v2 / v1",
                [c.ratio(n, ("stored v2", "bytes"), (n, "stored v1", "bytes")) for n in have],
            ),
            ("remote growth, push v2 (MB)", [c.mb(n, "stored v2", "stored v1") for n in have]),
            ("sent, push v1 (MB)", [c.mb(n, "sent v1") for n in have]),
            ("sent, push v2 after v1 (MB)", [c.mb(n, "sent v2") for n in have]),
            (
                "sent v2 / file",
                [c.ratio(n, ("sent v2", "bytes"), (n, "sent v2", "file")) for n in have],
            ),
            ("received, pull v2, v1 cached (MB)", [c.mb(n, "received v2") for n in have]),
            (
                "received v2 / file",
                [c.ratio(n, ("received v2", "bytes"), (n, "received v2", "file")) for n in have],
            ),
        ]
        unit = "s (requests)" if remote == "s3" else "s"
        for step in ("push v1", "pull v1", "push v2", "pull v2"):
            rows.append((f"{step}, {unit}", [c.timing(n, step) for n in have]))
        for step in ("push v1", "pull v1"):
            rows.append(
                (
                    f"{step} / unchunked",
                    [c.ratio(n, (step, "seconds"), ("unchunked", step, "seconds")) for n in have],
                )
            )
        out += ["| " + " | ".join([label, *cells]) + " |" for label, cells in rows]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model1", default="/tmp/bench16/data/v1/model.bin")
    ap.add_argument("--model2", default="/tmp/bench16/data/v2/model.bin")
    ap.add_argument("--csv1")
    ap.add_argument("--csv2")
    ap.add_argument("--make-csv", default="/tmp/bench16/data/csv", help="where to write the CSVs")
    ap.add_argument("--datasets", default="model,csv")
    ap.add_argument("--variants", default="dvc,chunked,nocomp,unchunked")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--work", default=os.environ.get("BENCH_WORK"))
    ap.add_argument("--no-s3", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--table", metavar="OUT", help="only print the tables of an earlier --out")
    a = ap.parse_args()
    names = [n for n in a.variants.split(",") if n]
    if a.table:
        with open(a.table) as fh:
            saved = json.load(fh)
        print(saved["commit"])
        print(tables(Bench("", "", RequestLog(), saved["rows"]), names))
        return
    chosen = []
    for n in names:
        tool, options = VARIANTS[n]
        chosen.append(Variant(n, tool, os.environ.get(tool.upper(), tool), dict(options)))
    data: dict[str, tuple[str, str]] = {}
    for d in a.datasets.split(","):
        if d == "model":
            data[d] = (os.path.abspath(a.model1), os.path.abspath(a.model2))
        elif d == "csv":
            data[d] = (a.csv1, a.csv2) if a.csv1 and a.csv2 else make_csv(a.make_csv)
    if a.work:
        os.makedirs(a.work, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench-chunks-", dir=a.work)
    server, endpoint, log = start_counted_moto()
    bench = Bench(work, endpoint, log)
    commit = subprocess.run(
        ["git", "log", "--oneline", "-1"],
        capture_output=True,
        text=True,
        cwd=os.path.dirname(os.path.abspath(__file__)),
    ).stdout.strip()
    print(
        json.dumps({"variants": [v.__dict__ for v in chosen], "data": data, "commit": commit}),
        flush=True,
    )
    try:
        for rep in range(a.reps):
            shift = rep % len(chosen)
            for v in chosen[shift:] + chosen[:shift]:
                for d, files in data.items():
                    if v.name == "nocomp" and d == "model":
                        continue
                    scenario(bench, v, d, files, rep, not a.no_s3)
    finally:  # a failed step still leaves the table of what was measured
        server.stop()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)
        print(tables(bench, names))
        if a.out:
            with open(a.out, "w") as fh:
                json.dump({"commit": commit, "rows": bench.rows}, fh, indent=1)


if __name__ == "__main__":
    main()
