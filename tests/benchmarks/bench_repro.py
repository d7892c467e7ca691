#!/usr/bin/env python3
"""`mlv repro` with nothing changed vs `mlv status` and vs `dvc repro`, on a 10-stage
pipeline over a tracked dataset.

usage: bench_repro.py DATASET_DIR [--reps 5] [--work DIR] [--out FILE]

Tools: env DVC=/path/dvc MLV=/path/mlv (or on PATH). Each tool gets its own git repository
with DATASET_DIR copied to `data` and tracked (`add data`), a params.yaml, one stage script
and the same 10 stages (STAGES below: 7 of them read `data`, a prepare / featurize / train
/ evaluate chain with params, cached outs, a cached directory out, git-tracked outs and
metrics). The first `repro` runs every stage (untimed), then everything is committed.
Timed, REPS times, the tools alternating so that machine drift hits both alike: `repro`
and `status` of each tool, all with nothing changed. Every timed repro is checked to have
run nothing (and mlv's to have left mlv.lock alone), and after the timing each tool's
`repro --dry` must want to run all 10 stages once a dataset file is edited. Prints one
JSON line per measurement, a table of medians and the ratios of the goal: mlv repro /
mlv status (<= 2) and dvc repro / mlv repro (>= 5). With --work DIR the repositories are
kept there (for profiling); without, a temporary folder is used and removed.
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

# The stages' one script: reads its inputs (a folder: every file's size by os.walk + stat,
# as a cheap stand-in for reading the dataset) and writes small outputs derived from them.
SCRIPT = r"""import hashlib, json, os, sys

stage, rest = sys.argv[1], sys.argv[2:]
split = rest.index("--")
inputs, outputs = rest[:split], rest[split + 1 :]
h = hashlib.sha256(stage.encode())
for path in inputs:
    if os.path.isdir(path):
        count = size = 0
        for top, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                count += 1
                size += os.stat(os.path.join(top, name)).st_size
        h.update(f"{path}:{count}:{size}".encode())
    else:
        with open(path, "rb") as fh:
            h.update(fh.read())
digest = h.hexdigest()
for path in outputs:
    if path.endswith("/"):
        os.makedirs(path, exist_ok=True)
        for part in ("train", "test"):
            with open(os.path.join(path, part + ".txt"), "w") as fh:
                fh.write(f"{part} {digest}\n")
    elif path.endswith(".json"):
        with open(path, "w") as fh:
            json.dump({"score": int(digest[:4], 16) / 65535, "stage": stage}, fh)
    else:
        with open(path, "w") as fh:
            fh.write(digest + "\n")
"""

PARAMS = """prepare:
  seed: 20
  split: 0.2
featurize:
  max_features: 200
  ngrams: 2
train:
  lr: 0.01
  epochs: 10
  seed: 7
evaluate:
  threshold: 0.5
"""

SRC = "src/pipeline.py"

# name: (deps, params, outs cached, outs git-tracked, metrics)
STAGES: dict[str, tuple[list[str], list[str], list[str], list[str], list[str]]] = {
    "validate": (["data", SRC], [], [], [], ["quality.json"]),
    "prepare": (["data", SRC], ["prepare.seed,prepare.split"], ["prepared"], [], []),
    "stats": (["data", SRC], [], [], ["stats.json"], []),
    "featurize": (
        ["data", "prepared", SRC],
        ["featurize.max_features,featurize.ngrams"],
        ["features.bin"],
        [],
        [],
    ),
    "baseline": (["data", "prepared", SRC], [], ["baseline.bin"], [], []),
    "train": (["features.bin", "prepared", SRC], ["train"], ["model.bin"], [], []),
    "evaluate": (
        ["data", "model.bin", "features.bin", SRC],
        ["evaluate.threshold"],
        [],
        [],
        ["metrics.json"],
    ),
    "compare": (["model.bin", "baseline.bin", SRC], [], [], [], ["compare.json"]),
    "embed": (["data", "model.bin", SRC], [], ["embeddings.bin"], [], []),
    "report": (
        ["metrics.json", "stats.json", "embeddings.bin", SRC],
        [],
        [],
        ["report.md"],
        [],
    ),
}


def sh(cmd: str, cwd: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=cwd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} in {cwd} failed ({proc.returncode}):\n{proc.stdout[-2000:]}")
    return elapsed, proc.stdout


def stage_add(tool: str, exe: str, name: str) -> str:
    deps, params, outs, outs_git, metrics = STAGES[name]
    written = outs + outs_git + metrics
    shown = [o + "/" if o == "prepared" else o for o in written]
    cmd = f"python3 {SRC} {name} {' '.join(d for d in deps if d != SRC)} -- {' '.join(shown)}"
    flags = [f"-d {d}" for d in deps] + [f"-p {p}" for p in params]
    flags += [f"-o {o}" for o in outs] + [f"-O {o}" for o in outs_git]
    flags += [f"-M {m}" for m in metrics]
    if tool == "dvc":
        return f"{exe} stage add -q -n {name} {' '.join(flags)} '{cmd}'"
    return f"{exe} stage add {name} {' '.join(flags)} -- {cmd}"


def setup(tool: str, exe: str, data: str, work: str) -> str:
    repo = os.path.join(work, tool)
    os.makedirs(os.path.join(repo, "src"))
    sh("git init -q && git config user.email b@b && git config user.name bench", repo)
    sh(f"{exe} init -q", repo)
    sh(f"cp -r {data} {repo}/data", repo)
    with open(os.path.join(repo, SRC), "w") as fh:
        fh.write(SCRIPT)
    with open(os.path.join(repo, "params.yaml"), "w") as fh:
        fh.write(PARAMS)
    seconds, _ = sh(f"{exe} add -q data && git add -A && git commit -qm data", repo)
    print(json.dumps({"tool": tool, "step": "setup_add", "seconds": round(seconds, 2)}))
    for name in STAGES:
        sh(stage_add(tool, exe, name), repo)
    seconds, out = sh(f"{exe} repro", repo)
    print(json.dumps({"tool": tool, "step": "first_repro", "seconds": round(seconds, 2)}))
    ran = out.count("Running stage")
    assert ran == len(STAGES), f"{tool}: first repro ran {ran} stages:\n{out[-3000:]}"
    sh("git add -A && git commit -qm pipeline && sync", repo)
    return repo


def check(tool: str, step: str, out: str, repo: str) -> None:
    """A timed run must have done nothing (else its time is not that of a no-op)."""
    assert "Running stage" not in out and "Restored" not in out, f"{tool} {step}:\n{out[-3000:]}"
    if step == "repro" and tool == "mlv":
        assert f"Stages: 0 ran, {len(STAGES)} up to date." in out, out[-3000:]
        assert "mlv.lock updated" not in out, out[-3000:]
    elif tool == "dvc":
        assert "Data and pipelines are up to date." in out, f"{tool} {step}:\n{out[-3000:]}"
    else:  # mlv status: one line for the dataset and one per cached out, all clean
        lines = out.splitlines()
        expected = 1 + sum(len(outs) for _, _, outs, _, _ in STAGES.values())
        assert len(lines) == expected, out[-3000:]
        assert all(x.startswith("clean") for x in lines), out[-3000:]
    changed = subprocess.run(
        ["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout
    assert not changed.strip(), f"{tool} {step} changed the repository:\n{changed[:2000]}"


def sees_a_change(tool: str, exe: str, repo: str) -> None:
    """After the timing: one dataset file edited, `repro --dry` must want to run the stages
    (so the no-op runs above did look at the data). The file is put back after. mlv counts
    every stage, DVC's dry run only those that read the data (their outs stay as they are)."""
    folder = os.path.join(repo, "data", sorted(os.listdir(os.path.join(repo, "data")))[0])
    path = os.path.join(folder, sorted(os.listdir(folder))[0])
    with open(path, "rb") as fh:
        before = fh.read()
    os.chmod(path, 0o644)
    with open(path, "ab") as fh:
        fh.write(b"changed")
    try:
        _, out = sh(f"{exe} repro --dry", repo)
    finally:
        with open(path, "wb") as fh:
            fh.write(before)
    if tool == "mlv":
        assert f"Stages: {len(STAGES)} would run, 0 up to date." in out, out[-3000:]
    else:
        readers = sum(1 for deps, *_ in STAGES.values() if "data" in deps)
        assert out.count("Running stage") == readers, out[-3000:]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--work")
    parser.add_argument("--out")
    args = parser.parse_args()
    tools = {"dvc": os.environ.get("DVC", "dvc"), "mlv": os.environ.get("MLV", "mlv")}
    if args.work:
        os.makedirs(args.work, exist_ok=True)
    work = tempfile.mkdtemp(prefix="bench-repro-", dir=args.work)
    print(json.dumps({"work": work}), flush=True)
    repos = {
        tool: setup(tool, exe, os.path.abspath(args.data), work) for tool, exe in tools.items()
    }
    steps = ("repro", "status")
    times: dict[tuple[str, str], list[float]] = {}
    lines = []
    for rep in range(args.reps):
        order = ["dvc", "mlv"] if rep % 2 == 0 else ["mlv", "dvc"]
        for tool in order:
            for step in steps:
                seconds, out = sh(f"{tools[tool]} {step}", repos[tool])
                check(tool, step, out, repos[tool])
                times.setdefault((tool, step), []).append(seconds)
                line = json.dumps(
                    {"tool": tool, "step": step, "rep": rep, "seconds": round(seconds, 3)}
                )
                lines.append(line)
                print(line, flush=True)
    for tool, exe in tools.items():
        sees_a_change(tool, exe, repos[tool])
    med = {key: statistics.median(values) for key, values in times.items()}
    print(f"\n{'command':<14}{'dvc s':>9}{'mlv s':>9}{'dvc/mlv':>9}")
    for step in steps:
        d, m = med[("dvc", step)], med[("mlv", step)]
        print(f"{step:<14}{d:>9.3f}{m:>9.3f}{d / m:>9.2f}")
    slow = med[("mlv", "repro")] / med[("mlv", "status")]
    fast = med[("dvc", "repro")] / med[("mlv", "repro")]
    print(f"mlv repro / mlv status = {slow:.2f} (goal <= 2: {'met' if slow <= 2 else 'MISSED'})")
    print(f"dvc repro / mlv repro = {fast:.2f} (goal >= 5: {'met' if fast >= 5 else 'MISSED'})")
    if args.out:
        with open(args.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")
            summary = {f"{t}.{s}": v for (t, s), v in med.items()}
            fh.write(
                json.dumps({"medians": summary, "repro_over_status": slow, "dvc_over_mlv": fast})
            )
            fh.write("\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
