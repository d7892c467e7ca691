#!/usr/bin/env python3
"""How mlv reads git history: its own `git` subprocesses (mlv/git.py) against gitpython's
object databases, on the reads that history commands make.

usage: bench_git_history.py [--commits 300] [--pointers 20] [--files 200] [--reps 5]
Builds a repository with `git fast-import`: COMMITS commits, each changing one of POINTERS
pointer files (`dN/dataN.mlv`) among FILES other files, then times, best of REPS:
- "log PATH": the pointer at every commit that touched it (history.py: one `git log`, one
  `git cat-file --batch` for all commits);
- "every commit's pointers": what `gc -A` / `push -A` read (targets.at_commit per commit:
  `git ls-tree` and `git cat-file --batch`, two processes a commit);
each through mlv.git, through gitpython with GitCmdObjectDB (a persistent `git cat-file`)
and with GitDB (pure Python). Also the import time of gitpython. Needs gitpython importable
(it is not an mlv dependency; `pip install gitpython` into a scratch venv).
Results: docs/decisions.md, "gitpython: not a dependency".
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

from mlv import git as mlv_git


def build(root: str, commits: int, pointers: int, files: int) -> None:
    subprocess.run(["git", "init", "-q", root], check=True)
    lines: list[str] = []
    for i in range(commits):
        lines.append("commit refs/heads/main")
        lines.append(f"committer A <a@example.com> {1_700_000_000 + i} +0000")
        message = f"change {i}"
        lines.append(f"data {len(message)}")
        lines.append(message)
        changed: list[tuple[str, str]] = []
        if i == 0:
            changed += [(f"src/file{j}.py", f"print({j})\n") for j in range(files)]
            changed += [(f"d{j}/data{j}.mlv", _pointer(j, 0)) for j in range(pointers)]
        else:
            j = i % pointers
            changed.append((f"d{j}/data{j}.mlv", _pointer(j, i)))
        for path, text in changed:
            data = text.encode()
            lines.append(f"M 100644 inline {path}")
            lines.append(f"data {len(data)}")
            lines.append(text)
    payload = ("\n".join(lines) + "\n").encode()
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=payload, check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=root, check=True)


def _pointer(j: int, version: int) -> str:
    digest = f"{j:08x}{version:024x}"
    return f"version: 1\npath: data{j}\nkind: dir\nhash: xxh128:{digest}\nsize: 10\nfiles: 1\n"


def best(reps: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--commits", type=int, default=300)
    ap.add_argument("--pointers", type=int, default=20)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    import_time = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; t=time.perf_counter(); import git; print(time.perf_counter()-t)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    import git as gp  # gitpython

    warnings.simplefilter("ignore", DeprecationWarning)  # GitDB: measured all the same

    with tempfile.TemporaryDirectory() as root:
        build(root, args.commits, args.pointers, args.files)
        path = "d0/data0.mlv"
        all_commits = mlv_git.all_commits(root)

        def log_subprocess() -> dict[str, bytes]:
            commits = mlv_git.log_path(root, [path])
            return mlv_git.read_blobs(root, [f"{c[0]}:{path}" for c in commits])

        def log_gitpython(odbt: type) -> Callable[[], dict[str, bytes]]:
            def run() -> dict[str, bytes]:
                repo = gp.Repo(root, odbt=odbt)
                try:
                    out = {}
                    for c in repo.iter_commits("HEAD", paths=[path]):
                        out[f"{c.hexsha}:{path}"] = (c.tree / path).data_stream.read()
                    return out
                finally:
                    repo.close()

            return run

        def every_subprocess() -> int:
            n = 0
            for commit in all_commits:
                names = mlv_git.files_at(root, commit, ".mlv")
                n += len(mlv_git.read_blobs(root, [f"{commit}:{name}" for name in names]))
            return n

        def every_batched() -> int:
            # git ls-tree per commit (blob ids), then one cat-file for the distinct blobs
            ids: dict[str, list[str]] = {}
            for commit in all_commits:
                out = subprocess.run(
                    ["git", "ls-tree", "-r", "-z", commit], cwd=root, capture_output=True
                ).stdout.decode()
                for record in out.split("\0"):
                    meta, _, name = record.partition("\t")
                    if name.endswith(".mlv"):
                        ids.setdefault(meta.split()[2], []).append(f"{commit}:{name}")
            blobs = mlv_git.read_blobs(root, sorted(ids))
            return sum(len(ids[oid]) for oid in blobs)

        def every_gitpython(odbt: type) -> Callable[[], int]:
            def run() -> int:
                repo = gp.Repo(root, odbt=odbt)
                try:
                    n = 0
                    for commit in all_commits:
                        for item in repo.commit(commit).tree.traverse():
                            if item.type == "blob" and item.path.endswith(".mlv"):
                                item.data_stream.read()
                                n += 1
                    return n
                finally:
                    repo.close()

            return run

        assert log_subprocess() == log_gitpython(gp.GitCmdObjectDB)()
        assert every_subprocess() == every_gitpython(gp.GitCmdObjectDB)() == every_batched()
        rows = [
            ("log PATH", "mlv.git subprocess", best(args.reps, log_subprocess)),
            (
                "log PATH",
                "gitpython GitCmdObjectDB",
                best(args.reps, log_gitpython(gp.GitCmdObjectDB)),
            ),
            ("log PATH", "gitpython GitDB", best(args.reps, log_gitpython(gp.GitDB))),
            ("every commit's pointers", "mlv.git subprocess", best(args.reps, every_subprocess)),
            ("every commit's pointers", "ls-tree each, 1 cat-file", best(args.reps, every_batched)),
            (
                "every commit's pointers",
                "gitpython GitCmdObjectDB",
                best(args.reps, every_gitpython(gp.GitCmdObjectDB)),
            ),
            (
                "every commit's pointers",
                "gitpython GitDB",
                best(args.reps, every_gitpython(gp.GitDB)),
            ),
        ]
    version = subprocess.run(["git", "--version"], capture_output=True, text=True).stdout
    print(
        f"{args.commits} commits, {args.pointers} pointers, {args.files} other files; "
        f"best of {args.reps}; git {version.split()[-1]}, GitPython {gp.__version__}"
    )
    print(f"import git (gitpython): {float(import_time) * 1000:.0f} ms")
    for what, how, seconds in rows:
        print(f"{what:<26} {how:<26} {seconds * 1000:8.0f} ms")


if __name__ == "__main__":
    main()
