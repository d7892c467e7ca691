#!/usr/bin/env python3
"""`mlv verify --remote` vs `dvc data status --not-in-remote` on one local S3 server (moto),
and the bytes `mlv verify --remote --sample PCT` downloads.

usage: bench_verify.py DATASET_DIR [--reps 5] [--work DIR] [--out FILE]
                       [--sample-data DIR ...] [--sample-pct 1] [--seeds 3]

Tools: env DVC=/path/dvc MLV=/path/mlv (or on PATH). A moto server is started on a free
port (moto[server] and boto3 importable by this Python). Each tool gets one repository
holding DATASET_DIR, pushed once to its own bucket; then the checks are timed REPS times,
the tools alternating so that machine drift hits both alike. Prints one JSON line per
measurement, a table of medians with the ratio dvc/mlv, and for every --sample-data
folder (pushed by mlv to a bucket of its own) the bytes that --sample downloads against
the bytes on the remote, for several seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

from bench_remote import make_bucket, start_moto


def sh(cmd: str, cwd: str, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, shell=True, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        raise RuntimeError(
            f"{cmd!r} in {cwd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
            f"{proc.stderr[-2000:]}"
        )
    return elapsed, proc.stdout


def setup(tool: str, exe: str, data: str, work: str, endpoint: str, bucket: str) -> str:
    repo = os.path.join(work, f"{tool}-repo")
    os.makedirs(repo)
    sh(
        "git init -q && git config user.email b@b && git config user.name b && "
        "git commit -q --allow-empty -m init",
        repo,
    )
    sh(f"{exe} init -q", repo)
    shutil.copytree(data, os.path.join(repo, "data"))
    sh(f"{exe} add -q data", repo)
    make_bucket(endpoint, bucket)
    sh(f"{exe} remote add s3r s3://{bucket}/store", repo)
    option = "endpointurl" if tool == "dvc" else "endpoint_url"
    sh(f"{exe} remote modify s3r {option} {endpoint}", repo)
    sh("git add -A && git commit -q -m data && sync", repo)
    seconds, _ = sh(f"{exe} push -r s3r", repo)
    print(json.dumps({"tool": tool, "step": "setup_push", "seconds": round(seconds, 2)}))
    return repo


COMMANDS = {
    "dvc": {"not_in_remote": "{exe} data status --not-in-remote -r s3r --json"},
    "mlv": {
        "verify_remote": "{exe} verify --remote s3r --json",
        "verify_sample1": "{exe} verify --remote s3r --sample 1 --json",
        "status_remote": "{exe} status --remote s3r --check",
    },
}


def check_output(tool: str, step: str, out: str) -> dict[str, object]:
    """Each timed run must have found everything on the remote (else the timing lies)."""
    doc = json.loads(out) if out.strip().startswith("{") else {}
    if tool == "dvc":
        assert not doc.get("not_in_remote"), f"dvc reports data not in remote: {out[:500]}"
    elif step.startswith("verify"):
        assert doc["ok"], out[:2000]
        assert doc["remote"]["present"] == doc["remote"]["objects"], out[:500]
    return doc


def sample_bytes(
    exe: str, data: str, work: str, endpoint: str, pct: float, seeds: int, repo: str | None
) -> list[dict[str, object]]:
    """mlv verify --sample pct on data pushed to a bucket (or in repo already): downloaded
    bytes per seed."""
    name = os.path.basename(os.path.normpath(data))
    if repo is None:
        where = os.path.join(work, f"sample-{name}")
        repo = setup("mlv", exe, data, where, endpoint, f"s-{name}-{os.getpid()}")
    rows = []
    for seed in range(1, seeds + 1):
        seconds, out = sh(f"{exe} verify --remote s3r --sample {pct} --seed {seed} --json", repo)
        remote = json.loads(out)["remote"]
        row = {
            "data": name,
            "seed": seed,
            "percent": pct,
            "remote_file_bytes": remote["sample"]["of_bytes"],
            "remote_files": remote["sample"]["of_objects"],
            "sampled_files": remote["sample"]["objects"],
            "sampled_bytes": remote["sample"]["bytes"],
            "downloaded_bytes": remote["downloaded"]["bytes"],
            "downloaded_objects": remote["downloaded"]["objects"],
            "share": round(remote["downloaded"]["bytes"] / max(1, remote["sample"]["of_bytes"]), 5),
            "seconds": round(seconds, 2),
        }
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--work")
    ap.add_argument("--out")
    ap.add_argument("--sample-data", nargs="*", default=[])
    ap.add_argument("--sample-pct", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=3)
    a = ap.parse_args()
    data = os.path.abspath(a.data)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    exes = {tool: os.environ.get(tool.upper(), tool) for tool in ("dvc", "mlv")}
    server, endpoint = start_moto()
    work = tempfile.mkdtemp(prefix="bench-verify-", dir=a.work)
    results: dict[tuple[str, str], list[float]] = {}
    samples: list[dict[str, object]] = []
    try:
        repos = {
            tool: setup(tool, exes[tool], data, work, endpoint, f"{tool}-{os.getpid()}")
            for tool in ("dvc", "mlv")
        }
        for rep in range(a.reps):
            for tool in ["dvc", "mlv"] if rep % 2 == 0 else ["mlv", "dvc"]:
                for step, template in COMMANDS[tool].items():
                    cmd = template.format(exe=exes[tool])
                    seconds, out = sh(cmd, repos[tool])
                    check_output(tool, step, out)
                    results.setdefault((tool, step), []).append(seconds)
                    print(
                        json.dumps(
                            {"tool": tool, "step": step, "rep": rep, "seconds": round(seconds, 3)}
                        ),
                        flush=True,
                    )
        for extra in a.sample_data:
            extra = os.path.abspath(extra)
            reuse = repos["mlv"] if extra == data else None
            samples += sample_bytes(
                exes["mlv"], extra, work, endpoint, a.sample_pct, a.seeds, reuse
            )
    finally:
        server.stop()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)
    dvc = statistics.median(results[("dvc", "not_in_remote")])
    print(f"\n{'command':40}{'median s':>10}{'dvc/this':>10}")
    for (tool, step), values in results.items():
        m = statistics.median(values)
        print(f"{tool + ' ' + step:40}{m:10.3f}{dvc / m:10.2f}")
    for row in samples:
        print(
            f"sample {row['percent']}% of {row['data']} (seed {row['seed']}): "
            f"{row['downloaded_bytes']:,} of {row['remote_file_bytes']:,} bytes "
            f"({100 * float(row['share']):.3f} %), {row['sampled_files']} of "
            f"{row['remote_files']} files"  # type: ignore[str-format]
        )
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(
                {
                    "medians": {f"{t}.{s}": statistics.median(v) for (t, s), v in results.items()},
                    "runs": {f"{t}.{s}": v for (t, s), v in results.items()},
                    "samples": samples,
                },
                fh,
                indent=1,
            )


if __name__ == "__main__":
    main()
