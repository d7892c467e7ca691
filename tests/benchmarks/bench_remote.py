#!/usr/bin/env python3
"""mlv vs DVC on remotes, side by side in one run: push, no-op push and pull, to a folder
and to a local S3 API server (moto), with the `cp -r` floor of the same data.

usage: bench_remote.py DATASET_DIR [--reps 3] [--s3] [--work DIR] [--out FILE]
Tools: env DVC=/path/dvc MLV=/path/mlv (or on PATH). With --s3 a moto server is started
on a free port (moto[server] must be importable by this Python). Each repetition uses
fresh repositories; the tools alternate so that machine drift hits both alike. Prints one
JSON line per measurement and a table of medians with the ratio mlv/dvc.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator


def sh(cmd: str, cwd: str, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        shell=True,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} in {cwd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}")
    return elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[object, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def make_bucket(endpoint: str, name: str) -> None:
    import boto3  # type: ignore[import-untyped]

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=name)
    client.close()


def scenario(
    tool: str, exe: str, data: str, work: str, endpoint: str | None, rep: int
) -> Iterator[tuple[str, float]]:
    repo = os.path.join(work, "repo")
    os.makedirs(repo)
    sh(
        "git init -q && git config user.email b@b && git config user.name b && "
        "git commit -q --allow-empty -m init",
        repo,
    )
    sh(f"{exe} init -q", repo)
    shutil.copytree(data, os.path.join(repo, "data"))
    sh(f"{exe} add -q data", repo)
    remote = os.path.join(work, "remote")
    sh(f"{exe} remote add -d store {remote}", repo)
    if endpoint:
        bucket = f"{tool}-{rep}-{os.getpid()}"
        make_bucket(endpoint, bucket)
        sh(f"{exe} remote add s3r s3://{bucket}/store", repo)
        option = "endpointurl" if tool == "dvc" else "endpoint_url"
        sh(f"{exe} remote modify s3r {option} {endpoint}", repo)
    sh("git add -A && git commit -q -m data && sync", repo)
    yield "push_folder", sh(f"{exe} push", repo)
    yield "push_noop_folder", sh(f"{exe} push", repo)
    clone = os.path.join(work, "clone")
    sh(f"git clone -q {repo} {clone} && sync", work)
    yield "pull_folder", sh(f"{exe} pull", clone)
    if endpoint:
        yield "push_s3", sh(f"{exe} push -r s3r", repo)
        yield "push_noop_s3", sh(f"{exe} push -r s3r", repo)
        clone2 = os.path.join(work, "clone2")
        sh(f"git clone -q {repo} {clone2} && sync", work)
        yield "pull_s3", sh(f"{exe} pull -r s3r", clone2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--s3", action="store_true")
    ap.add_argument("--work")
    ap.add_argument("--out")
    a = ap.parse_args()
    data = os.path.abspath(a.data)
    os.makedirs(a.work, exist_ok=True)
    server, endpoint = start_moto() if a.s3 else (None, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    results: dict[tuple[str, str], list[float]] = {}
    try:
        for rep in range(a.reps):
            floor = tempfile.mkdtemp(prefix="floor-", dir=a.work)
            results.setdefault(("floor", "cp_r"), []).append(
                sh(f"cp -r {data} {floor}/data && sync", floor)
            )
            shutil.rmtree(floor, ignore_errors=True)
            tools = ["dvc", "mlv"] if rep % 2 == 0 else ["mlv", "dvc"]
            for tool in tools:
                exe = os.environ.get(tool.upper(), tool)
                work = tempfile.mkdtemp(prefix=f"{tool}{rep}-", dir=a.work)
                try:
                    for step, seconds in scenario(tool, exe, data, work, endpoint, rep):
                        results.setdefault((tool, step), []).append(seconds)
                        print(
                            json.dumps(
                                {
                                    "tool": tool,
                                    "step": step,
                                    "rep": rep,
                                    "seconds": round(seconds, 3),
                                }
                            ),
                            flush=True,
                        )
                finally:
                    shutil.rmtree(work, ignore_errors=True)
    finally:
        if server is not None:
            server.stop()  # type: ignore[attr-defined]
    steps = list(dict.fromkeys(s for t, s in results if t != "floor"))
    print(f"\n{'step':18}{'dvc':>10}{'mlv':>10}{'mlv/dvc':>10}")
    for step in steps:
        d = statistics.median(results[("dvc", step)])
        m = statistics.median(results[("mlv", step)])
        print(f"{step:18}{d:10.3f}{m:10.3f}{m / d:10.3f}")
    print(f"{'cp -r floor':18}{statistics.median(results[('floor', 'cp_r')]):10.3f}")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(
                {f"{t}.{s}": statistics.median(v) for (t, s), v in results.items()}, fh, indent=1
            )


if __name__ == "__main__":
    main()
