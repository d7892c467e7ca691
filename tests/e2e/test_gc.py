"""`mlv gc` with real git: what each scope keeps, what it never deletes, and remote gc.

The expected object sets are computed here, independently of mlv: after each commit the
test reads that commit's pointers and walks their tree objects (plain JSON in the cache),
so "kept" means exactly the union of what the kept commits, the workspace and the index
reference.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from helpers import (
    assert_error,
    cache_objects,
    commit_all,
    git,
    mlv,
    object_path,
    plant_temporary,
    read_pointer,
    remote_objects,
    snapshot,
    status_json,
    write_files,
    xxh,
)

# ---- the expected sets, computed without mlv ---------------------------------------------


def closure(cache_of: Path, pointers: list[dict[str, object]]) -> set[str]:
    """Every object the pointers reference, walking tree objects read from the cache."""
    found: set[str] = set()
    stack: list[str] = []
    for doc in pointers:
        h = str(doc["hash"])
        found.add(h)
        if doc["kind"] == "dir":
            stack.append(h)
    while stack:
        tree = json.loads(object_path(cache_of, stack.pop()).read_bytes())
        for row in tree["entries"]:
            found.add(row[2])
            if row[0] == "dir":
                stack.append(row[2])
    return found


def workspace_pointers(repo: Path) -> list[dict[str, object]]:
    return [
        read_pointer(p)
        for p in sorted(repo.rglob("*.mlv"))
        if p.is_file() and ".mlv" not in p.relative_to(repo).parts[:-1]
    ]


def workspace_objects(repo: Path) -> set[str]:
    return closure(repo, workspace_pointers(repo))


def head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


def rev_list(repo: Path, *args: str) -> list[str]:
    out = git("rev-list", *args, cwd=repo).stdout.split()
    return sorted(set(out))


def ref_commits(repo: Path, kind: str) -> list[str]:
    out = git("for-each-ref", "--format=%(objectname)", f"refs/{kind}", cwd=repo).stdout
    return sorted(
        {git("rev-parse", f"{oid}^{{commit}}", cwd=repo).stdout.strip() for oid in out.split()}
    )


def gc(repo: Path, *args: str) -> dict[str, object]:
    proc = mlv("gc", "--json", *args, cwd=repo, input="")
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


# ---- a fixed history ----------------------------------------------------------------------


class History:
    """main: c1 (tag v1) - c2 - c4 (HEAD, checked out); feature: c2 - c3 (tag v3)."""

    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.objects: dict[str, set[str]] = {}  # commit -> the objects its pointers reference
        self.trees: dict[str, dict[str, bytes | str]] = {}  # commit -> data snapshot
        self.names: dict[str, str] = {}

    def record(self, name: str, message: str) -> str:
        commit_all(self.repo, message)
        sha = head(self.repo)
        self.names[name] = sha
        self.objects[sha] = workspace_objects(self.repo)
        self.trees[sha] = data_snapshot(self.repo)
        return sha

    def union(self, *commits: str) -> set[str]:
        out: set[str] = set()
        for c in commits:
            out |= self.objects.get(c, set())
        return out


def data_snapshot(repo: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for name in ("data", "model.bin", "notes.txt"):
        for rel, content in snapshot(repo / name).items():
            out[f"{name}/{rel}"] = content
    return out


def build_history(repo: Path) -> History:
    h = History(repo)
    write_files(
        repo,
        {
            "data/a.txt": "a1",
            "data/b.txt": "b1",
            "data/sub/c.txt": "c1",
            "data/empty": None,
            "model.bin": os.urandom(2000),
        },
    )
    mlv("add", "data", "model.bin", cwd=repo)
    h.record("c1", "c1")
    git("tag", "v1", cwd=repo)
    write_files(repo, {"data/a.txt": "a2", "data/sub/d.txt": "d2"})
    mlv("add", "data", cwd=repo)
    h.record("c2", "c2")
    git("checkout", "-q", "-b", "feature", cwd=repo)
    write_files(repo, {"model.bin": os.urandom(2000)})
    (repo / "data" / "b.txt").unlink()
    mlv("add", "data", "model.bin", cwd=repo)
    h.record("c3", "c3")
    git("tag", "-a", "-m", "annotated", "v3", cwd=repo)
    git("checkout", "-q", "main", cwd=repo)
    mlv("checkout", "-f", cwd=repo)
    write_files(repo, {"data/sub/c.txt": "c4", "notes.txt": "notes"})
    mlv("add", "data", "notes.txt", cwd=repo)
    h.record("c4", "c4")
    return h


_TEMPLATE: list[History] = []


@pytest.fixture
def history(mlv_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> History:
    """build_history, built once and copied (git and cache) into each test's repo."""
    if not _TEMPLATE:
        template = tmp_path_factory.mktemp("gc-template") / "repo"
        shutil.copytree(mlv_repo, template, symlinks=True)
        _TEMPLATE.append(build_history(template))
    built = _TEMPLATE[0]
    shutil.rmtree(mlv_repo)
    shutil.copytree(built.repo, mlv_repo, symlinks=True)
    shutil.rmtree(mlv_repo / ".mlv" / "tmp", ignore_errors=True)  # no state db from elsewhere
    h = History(mlv_repo)
    h.names, h.objects, h.trees = built.names, built.objects, built.trees
    return h


DATA = ("data", "model.bin", "notes.txt", "staged.bin", "loose.bin")


def clear_data(repo: Path) -> None:
    """Remove the tracked data (the cache has it), so a checkout leaves no stray files."""
    for name in DATA:
        path = repo / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def assert_checks_out(repo: Path, h: History, commits: list[str]) -> None:
    """For each commit: git checkout, mlv checkout, and the data is that commit's."""
    for commit in commits:
        clear_data(repo)
        git("checkout", "-q", commit, cwd=repo)
        mlv("checkout", "-f", cwd=repo)
        assert data_snapshot(repo) == h.trees[commit], commit
    clear_data(repo)
    git("checkout", "-q", "main", cwd=repo)
    mlv("checkout", "-f", cwd=repo)


# ---- scopes -----------------------------------------------------------------------------


def test_scope_flag_is_required(history: History) -> None:
    before = cache_objects(history.repo)
    proc = mlv("gc", cwd=history.repo, check=False)
    assert_error(proc, 2, "gc needs a scope", "mlv gc -w")
    assert cache_objects(history.repo) == before


@pytest.mark.parametrize(
    ("flags", "kept_names"),
    [
        (["-w"], ["c4"]),
        (["-a"], ["c4", "c3"]),
        (["-T"], ["c4", "c1", "c3"]),
        (["-A"], ["c1", "c2", "c3", "c4"]),
        (["--rev", "c2"], ["c4", "c2"]),
        (["-T", "--rev", "c2"], ["c4", "c1", "c2", "c3"]),
    ],
)
def test_gc_keeps_exactly_the_scope(
    history: History, flags: list[str], kept_names: list[str]
) -> None:
    repo, h = history.repo, history
    args = [h.names.get(f, f) for f in flags]
    kept = [h.names[n] for n in kept_names]
    expected = h.union(*kept)
    before = cache_objects(repo)
    assert expected <= set(before)
    freed = sum(before[o].stat().st_size for o in set(before) - expected)
    doc = gc(repo, *args)
    assert doc == {
        "where": "cache",
        "dry_run": False,
        "removed": len(before) - len(expected),
        "bytes": freed,
        "kept": len(expected),
        "failed": [],
        "indexes_expired": 0,
        "index_bytes": 0,
        "chunk_lists": 0,
        "chunk_list_bytes": 0,
    }
    after = cache_objects(repo)
    assert set(after) == expected
    for gone in set(before) - expected:
        assert not before[gone].exists()
    assert_checks_out(repo, h, kept)
    # A revision outside the scope cannot be checked out fully any more (when it had
    # objects of its own), and says so.
    for name in ("c1", "c2", "c3"):
        commit = h.names[name]
        if commit in kept or h.objects[commit] <= expected:
            continue
        clear_data(repo)
        git("checkout", "-q", commit, cwd=repo)
        proc = mlv("checkout", "-f", cwd=repo, check=False)
        assert proc.returncode == 1, (name, proc.stdout, proc.stderr)
        clear_data(repo)
        git("checkout", "-q", "main", cwd=repo)
        mlv("checkout", "-f", cwd=repo)


def test_text_output_and_dry_run(history: History) -> None:
    repo, h = history.repo, history
    before = cache_objects(repo)
    expected = h.union(h.names["c4"])
    proc = mlv("gc", "-w", "--dry-run", cwd=repo)
    n = len(before) - len(expected)
    assert proc.stdout.startswith(f"{n} objects, ")
    assert f"would be removed from the cache; {len(expected)} kept." in proc.stdout
    assert cache_objects(repo) == before
    assert gc(repo, "-w", "--dry-run")["removed"] == n
    assert cache_objects(repo) == before
    proc = mlv("gc", "-w", cwd=repo)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"Deleting {n} unreferenced objects (")
    assert lines[1].startswith(f"{n} objects, ") and "removed from the cache" in lines[1]
    assert set(cache_objects(repo)) == expected
    proc = mlv("gc", "-w", cwd=repo)  # nothing left to do
    assert proc.stdout.startswith("0 objects, 0 B removed from the cache")


def test_status_is_right_after_gc(history: History) -> None:
    """The tree-completeness memo of the state db does not outlive deleted objects."""
    repo, h = history.repo, history
    c1 = h.names["c1"]
    clear_data(repo)
    git("checkout", "-q", c1, cwd=repo)
    mlv("checkout", "-f", cwd=repo)
    doc = status_json(repo)
    assert all(t["in_cache"] for t in doc["targets"]), doc
    clear_data(repo)
    git("checkout", "-q", "main", cwd=repo)
    mlv("checkout", "-f", cwd=repo)
    assert all(t["in_cache"] for t in status_json(repo)["targets"])
    gc(repo, "-w")
    assert all(t["in_cache"] for t in status_json(repo)["targets"])
    clear_data(repo)
    git("checkout", "-q", c1, cwd=repo)
    by_path = {t["path"]: t for t in status_json(repo)["targets"]}
    assert by_path["data"]["in_cache"] is False
    assert by_path["model.bin"]["in_cache"] is True  # the same model as on main


def test_uncommitted_staged_and_untracked_pointers_survive(history: History) -> None:
    repo, h = history.repo, history
    expected = h.union(h.names["c4"])
    # Uncommitted and unstaged: a new version of data, pointer changed in the workspace only.
    write_files(repo, {"data/a.txt": "a-uncommitted"})
    mlv("add", "data", cwd=repo)
    git("reset", "-q", "--", "data.mlv", cwd=repo)
    # Staged, then removed from the workspace: only git's index names it.
    write_files(repo, {"staged.bin": b"staged only"})
    mlv("add", "staged.bin", cwd=repo)
    (repo / "staged.bin.mlv").unlink()
    (repo / "staged.bin").unlink()
    # Untracked: a pointer git does not know at all.
    write_files(repo, {"loose.bin": b"loose pointer"})
    mlv("add", "loose.bin", cwd=repo)
    git("rm", "-q", "--cached", "loose.bin.mlv", cwd=repo)
    assert "loose.bin.mlv" not in git("ls-files", cwd=repo).stdout
    extra = workspace_objects(repo) | {xxh(b"staged only")}
    gc(repo, "-w")
    assert set(cache_objects(repo)) == expected | extra
    # Committing the staged pointer back, everything it names is still there.
    git("checkout", "-q", "--", "staged.bin.mlv", cwd=repo)
    mlv("checkout", "-f", cwd=repo)
    assert (repo / "staged.bin").read_bytes() == b"staged only"
    assert (repo / "loose.bin").read_bytes() == b"loose pointer"
    assert (repo / "data" / "a.txt").read_text() == "a-uncommitted"


def test_other_files_in_the_cache_are_left_alone(history: History) -> None:
    repo = history.repo
    cache = repo / ".mlv" / "cache"
    strays = [
        cache / "tmp" / "obj-leftover",
        cache / "xxh128" / "ab" / ".mlvtmp-123",
        cache / "xxh128" / "ab" / "NOT-A-HASH",
        cache / "xxh128" / "zzz" / ("f" * 30),
        cache / "xxh128" / "ab" / ("F" * 30),  # upper-case hex is not an object name
        cache / "README",
    ]
    for p in strays:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"stray")
    gc(repo, "-w")
    assert all(p.read_bytes() == b"stray" for p in strays)


def test_broken_workspace_pointer_refuses(history: History) -> None:
    repo = history.repo
    before = cache_objects(repo)
    (repo / "broken.mlv").write_text("version: 1\nkind: what\n")
    proc = mlv("gc", "-w", cwd=repo, check=False)
    assert_error(proc, 1, "broken.mlv", "gc cannot tell what it references")
    assert cache_objects(repo) == before


def test_missing_workspace_tree_refuses(history: History) -> None:
    repo = history.repo
    tree = str(read_pointer(repo / "data.mlv")["hash"])
    object_path(repo, tree).unlink()
    before = cache_objects(repo)
    proc = mlv("gc", "-w", "--force", cwd=repo, check=False)
    assert_error(proc, 1, tree, "data (workspace)", "mlv fetch")
    assert cache_objects(repo) == before


def test_missing_tree_of_a_revision_refuses_unless_forced(history: History) -> None:
    repo, h = history.repo, history
    c1 = h.names["c1"]
    tree = git("show", f"{c1}:data.mlv", cwd=repo).stdout.split("hash: ")[1].split()[0]
    model = git("show", f"{c1}:model.bin.mlv", cwd=repo).stdout.split("hash: ")[1].split()[0]
    object_path(repo, tree).unlink()
    before = cache_objects(repo)
    proc = mlv("gc", "-T", cwd=repo, check=False)
    assert_error(proc, 1, tree, f"data at {c1[:10]}", "--force")
    assert cache_objects(repo) == before
    proc = mlv("gc", "-T", "--force", "--json", cwd=repo)
    assert f"warning: cannot read tree {tree} of data at {c1[:10]}" in proc.stderr
    # What only the missing tree named went; c1's other pointer and the tags' stay.
    expected = h.union(h.names["c4"], h.names["c3"]) | {model}
    assert set(cache_objects(repo)) == expected & set(before)
    assert json.loads(proc.stdout)["removed"] == len(set(before) - expected)
    assert_checks_out(repo, h, [h.names["c4"], h.names["c3"]])


def test_unreadable_pointer_of_a_revision_refuses_unless_forced(history: History) -> None:
    repo, h = history.repo, history
    git("checkout", "-q", "-b", "newer", cwd=repo)
    (repo / "future.mlv").write_text("version: 2\npath: future\n")
    commit_all(repo, "a pointer from a newer mlv")
    newer = head(repo)
    git("checkout", "-q", "main", cwd=repo)
    before = cache_objects(repo)
    proc = mlv("gc", "-a", cwd=repo, check=False)
    assert_error(proc, 1, f"future.mlv at {newer[:10]}", "version 2", "--force")
    assert cache_objects(repo) == before
    proc = mlv("gc", "-a", "--force", cwd=repo)
    assert f"warning: cannot read pointer future.mlv at {newer[:10]}" in proc.stderr
    expected = h.union(h.names["c4"], h.names["c3"])  # newer's other pointers are c4's
    assert set(cache_objects(repo)) == expected


def test_gc_removes_stale_temporaries_and_keeps_fresh_ones(history: History) -> None:
    repo = history.repo
    cache = repo / ".mlv" / "cache"
    stamp = repo / ".mlv" / "tmp" / "cache-swept"  # the daily sweep of write commands
    stamp.parent.mkdir(exist_ok=True)
    stamp.touch()  # just ran: gc sweeps anyway
    stale = [
        plant_temporary(cache / "xxh128" / "ab" / ".mlvtmp-4242-0-cdef", 2 * 3600),
        plant_temporary(cache / "sha256" / "01" / ".mlvtmp-4242-1-23", 2 * 3600),
        plant_temporary(cache / "tmp" / ".mlvtmp-4242-2-obj", 2 * 3600),
    ]
    fresh = [  # a concurrent writer's, from another repository sharing the cache say
        plant_temporary(cache / "xxh128" / "ab" / ".mlvtmp-4243-0-cdef", 60),
        plant_temporary(cache / "tmp" / ".mlvtmp-4243-1-obj", 0),
    ]
    before = set(cache_objects(repo))
    gc(repo, "-w", "--dry-run")
    assert all(p.exists() for p in stale)  # a dry run deletes nothing
    gc(repo, "-w")
    assert not any(p.exists() for p in stale)
    assert all(p.read_bytes() == b"half an object" for p in fresh)
    assert set(cache_objects(repo)) <= before


# ---- remote gc --------------------------------------------------------------------------


@pytest.fixture
def pushed(history: History, tmp_path: Path) -> Path:
    remote = tmp_path / "store"
    mlv("remote", "add", "-d", "store", str(remote), cwd=history.repo)
    mlv("push", "-A", cwd=history.repo)
    assert set(remote_objects(remote)) == history.union(*history.objects)
    return remote


def test_remote_gc_needs_force_without_a_terminal(history: History, pushed: Path) -> None:
    repo = history.repo
    before = set(remote_objects(pushed))
    cache_before = cache_objects(repo)
    proc = mlv("gc", "-w", "-r", "store", cwd=repo, check=False, input="")
    assert_error(proc, 2, "remote 'store'", "without confirmation", "--force")
    n = len(before) - len(history.union(history.names["c4"]))
    assert proc.stdout.startswith(f"{n} unreferenced objects (")
    assert "on remote 'store'" in proc.stdout
    assert set(remote_objects(pushed)) == before
    doc = gc(repo, "-w", "-r", "store", "--dry-run")
    assert doc["where"] == "remote store" and doc["dry_run"] is True
    assert doc["removed"] == n
    assert set(remote_objects(pushed)) == before
    assert cache_objects(repo) == cache_before


def test_remote_gc_with_force_keeps_exactly_the_scope(history: History, pushed: Path) -> None:
    repo, h = history.repo, history
    (pushed / "README").write_text("not an object")
    (pushed / "xxh128" / "ab").mkdir(parents=True, exist_ok=True)
    (pushed / "xxh128" / "ab" / ".mlvtmp-x").write_text("temporary")
    cache_before = cache_objects(repo)
    all_objects = set(remote_objects(pushed))
    expected = h.union(h.names["c4"], h.names["c2"])
    doc = gc(repo, "--rev", "feature~1", "-r", "store", "--force")  # feature~1 is c2
    assert doc["removed"] == len(all_objects) - len(expected)
    assert doc["kept"] == len(expected) and doc["where"] == "remote store"
    assert set(remote_objects(pushed)) == expected
    assert cache_objects(repo) == cache_before  # the local cache is not touched
    assert (pushed / "README").read_text() == "not an object"
    assert (pushed / "xxh128" / "ab" / ".mlvtmp-x").exists()


def test_remote_gc_removes_stale_temporaries_everywhere_on_a_folder_remote(
    history: History, pushed: Path
) -> None:
    repo = history.repo
    before = snapshot(pushed)
    objects = remote_objects(pushed)
    stale = [
        plant_temporary(pushed / "xxh128" / "ab" / ".mlvtmp-77-0-cdef", 2 * 3600),
        plant_temporary(pushed / "runs" / "xx" / ".mlvtmp-77-1-yy", 2 * 3600),
        plant_temporary(pushed / ".mlvtmp-77-2-top", 2 * 3600),
    ]
    fresh = plant_temporary(pushed / "xxh128" / "cd" / ".mlvtmp-78-0-ef", 60)
    doc = gc(repo, "-A", "-r", "store", "--force")
    assert doc["removed"] == 0  # -A keeps every object
    assert not any(p.exists() for p in stale)
    assert fresh.read_bytes() == b"half an object"
    fresh.unlink()
    assert remote_objects(pushed) == objects  # every object stays (its pack may be merged)

    def others(snap: dict[str, bytes | str]) -> dict[str, bytes | str]:
        return {
            k: v for k, v in snap.items() if v != "<dir>" and not k.startswith(("packs", "index"))
        }

    assert others(snapshot(pushed)) == others(before)


def test_remote_gc_reads_trees_from_the_remote(
    history: History, pushed: Path, tmp_path: Path
) -> None:
    """A clone with an empty cache: every kept tree comes from the remote."""
    repo, h = history.repo, history
    clone = tmp_path / "clone"
    git("clone", "-q", str(repo), str(clone), cwd=tmp_path)
    assert cache_objects(clone) == {}
    mlv("remote", "add", "-d", "store", str(pushed), cwd=clone)
    gc(clone, "-w", "-r", "store", "-f")
    assert set(remote_objects(pushed)) == h.union(h.names["c4"])
    mlv("pull", cwd=clone)
    assert data_snapshot(clone) == h.trees[h.names["c4"]]


# ---- random histories -------------------------------------------------------------------


def _random_history(repo: Path, rng: random.Random) -> dict[str, set[str]]:
    """A few commits on two branches adding, changing and removing files of a tracked
    directory and single tracked files; returns commit -> objects it references."""
    pool = [f"shared {i}".encode() for i in range(4)]  # reused contents: shared objects

    def content() -> bytes:
        return rng.choice(pool) if rng.random() < 0.3 else rng.randbytes(rng.randint(1, 64))

    recorded: dict[str, set[str]] = {}
    branches = ["main"]
    for step in range(rng.randint(4, 6)):
        if step == 2:
            git("checkout", "-q", "-b", "side", cwd=repo)
            branches.append("side")
        elif step > 2 and rng.random() < 0.5:
            target = rng.choice(branches)
            for name in ("data", "f1", "f2"):  # data of this branch goes; the other's comes
                path = repo / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
            git("checkout", "-q", target, cwd=repo)
            mlv("checkout", "-f", cwd=repo)
        added, removed = [], []
        data = repo / "data"
        if not data.exists() or rng.random() < 0.8:
            files = [p for p in data.rglob("*") if p.is_file()] if data.exists() else []
            for _ in range(rng.randint(1, 3)):
                op = rng.random()
                if files and op < 0.3:
                    files.pop(rng.randrange(len(files))).unlink()
                elif files and op < 0.6:
                    rng.choice(files).write_bytes(content())
                else:
                    sub = rng.choice(["", "s1/", "s2/", "s1/t/"])
                    write_files(repo, {f"data/{sub}n{rng.randrange(100)}": content()})
            added.append("data")
        elif rng.random() < 0.3:
            removed.append("data")
        for name in ("f1", "f2"):
            r = rng.random()
            if (repo / name).exists() and r < 0.2:
                removed.append(name)
            elif r < 0.6:
                (repo / name).write_bytes(content())
                added.append(name)
        if added:
            mlv("add", *added, cwd=repo)
        if removed:
            mlv("rm", "--outs", *removed, cwd=repo)
        git("add", "-A", cwd=repo)
        git("commit", "-q", "--allow-empty", "-m", f"step {step}", cwd=repo)
        recorded[head(repo)] = workspace_objects(repo)
        if rng.random() < 0.4:
            git("tag", f"t{step}", cwd=repo)
    return recorded


@pytest.mark.parametrize("seed", range(5))
def test_random_histories_keep_exactly_the_scope(mlv_repo: Path, seed: int) -> None:
    rng = random.Random(seed)
    repo = mlv_repo
    recorded = _random_history(repo, rng)
    commits = sorted(recorded)
    if rng.random() < 0.5:  # something uncommitted in the workspace as well
        write_files(repo, {"f2": rng.randbytes(20)})
        mlv("add", "f2", cwd=repo)
    scopes: list[tuple[list[str], list[str]]] = [
        (["-w"], []),
        (["-a"], ref_commits(repo, "heads")),
        (["-T"], ref_commits(repo, "tags")),
        (["-A"], rev_list(repo, "--all")),
    ]
    rev = rng.choice(commits)
    scopes.append((["--rev", rev], [rev]))
    both = rng.sample(scopes[1:], 2)
    scopes.append(([*both[0][0], *both[1][0]], both[0][1] + both[1][1]))
    ws = workspace_objects(repo)
    total = len(cache_objects(repo))

    def expected(kept: list[str]) -> set[str]:
        out = set(ws)
        for c in kept:
            out |= recorded.get(c, set())
        return out

    for flags, kept in scopes:  # what each scope would keep, without deleting
        doc = gc(repo, *flags, "--dry-run")
        assert doc["kept"] == len(expected(kept)), (flags, doc)
        assert doc["removed"] == total - len(expected(kept)), (flags, doc)
    flags, kept = rng.choice(scopes)
    gc(repo, *flags)
    assert set(cache_objects(repo)) == expected(kept), flags
    assert all(t["in_cache"] for t in status_json(repo)["targets"])


@pytest.mark.parametrize("scope", ["-w", "-A"])
def test_every_stash_entry_keeps_its_data(mlv_repo: Path, scope: str) -> None:
    """Stashed pointers are uncommitted work: gc keeps the data of stash@{0} and of the
    older entries, which only refs/stash's reflog reaches (`--all` misses them)."""
    write_files(mlv_repo, {"data/a.txt": "v1\n"})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    versions = []
    for i in (1, 2):
        mlv("unprotect", "data", cwd=mlv_repo)
        (mlv_repo / "data" / "a.txt").write_text(f"stash {i}\n")
        mlv("commit", cwd=mlv_repo)
        versions.append(xxh(f"stash {i}\n".encode()))
        git("stash", "-q", cwd=mlv_repo)
        mlv("checkout", cwd=mlv_repo)
    mlv("gc", scope, "-f", cwd=mlv_repo)
    kept = cache_objects(mlv_repo)
    assert all(v in kept for v in versions), "a stash entry's data was deleted"
    for i in (2, 1):  # pop both and bring each version back from the cache
        git("stash", "pop", "-q", cwd=mlv_repo)
        mlv("checkout", cwd=mlv_repo)
        assert (mlv_repo / "data" / "a.txt").read_text() == f"stash {i}\n"
        git("checkout", "-q", "--", ".", cwd=mlv_repo)
        mlv("checkout", cwd=mlv_repo)
