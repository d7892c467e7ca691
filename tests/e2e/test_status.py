"""`mlv status`: clean, modified (with file lists for directories), missing, not in cache;
the --json shape; --check exit codes; paths and subfolders."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from helpers import (
    assert_error,
    commit_all,
    commit_images,
    git,
    mlv,
    mlv_reporting_click,
    object_path,
    read_pointer,
    snapshot,
    status_json,
    target_status,
    write_files,
    xxh,
)

TARGET_KEYS = {
    "path",
    "pointer",
    "kind",
    "status",
    "in_cache",
    "added",
    "modified",
    "deleted",
    "error",
}


def _tracked(repo: Path) -> None:
    write_files(
        repo,
        {
            "data/keep.txt": "keep",
            "data/edit.txt": "before",
            "data/gone.txt": "gone",
            "data/sub/deep.txt": "deep",
            "model.bin": b"\x00model",
        },
    )
    mlv("add", "data", "model.bin", cwd=repo)


def test_clean(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    proc = mlv("status", cwd=mlv_repo)
    assert proc.stdout.splitlines() == ["clean        data", "clean        model.bin"]
    assert proc.stderr == ""
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0
    doc = status_json(mlv_repo)
    assert doc["clean"] is True
    assert [t["status"] for t in doc["targets"]] == ["clean", "clean"]


def test_json_shape(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    proc = mlv("status", "--json", cwd=mlv_repo)
    doc = json.loads(proc.stdout)
    assert set(doc) == {"clean", "targets"}
    assert doc["targets"][0] == {
        "path": "data",
        "pointer": "data.mlv",
        "kind": "dir",
        "status": "clean",
        "in_cache": True,
        "added": [],
        "modified": [],
        "deleted": [],
        "error": None,
    }
    assert doc["targets"][1]["kind"] == "file"
    assert all(set(t) == TARGET_KEYS for t in doc["targets"])


def test_directory_modified_lists_added_modified_deleted(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    pointer_before = (mlv_repo / "data.mlv").read_bytes()
    (mlv_repo / "data" / "edit.txt").write_text("after")
    (mlv_repo / "data" / "gone.txt").unlink()
    write_files(mlv_repo, {"data/new.txt": "new", "data/sub/newer/n.txt": "n"})

    t = target_status(mlv_repo, "data")
    assert t["status"] == "modified"
    assert t["in_cache"] is True
    assert t["added"] == ["data/new.txt", "data/sub/newer/n.txt"]
    assert t["modified"] == ["data/edit.txt"]
    assert t["deleted"] == ["data/gone.txt"]

    proc = mlv("status", cwd=mlv_repo)
    assert proc.returncode == 0  # reporting is not failing
    lines = proc.stdout.splitlines()
    assert lines[0] == "modified     data  (2 added, 1 modified, 1 deleted)"
    assert "    added: data/new.txt" in lines
    assert "    modified: data/edit.txt" in lines
    assert "    deleted: data/gone.txt" in lines
    assert "clean        model.bin" in lines

    check = mlv("status", "--check", cwd=mlv_repo, check=False)
    assert check.returncode == 1
    assert "Traceback" not in check.stderr
    assert json.loads(mlv("status", "--json", cwd=mlv_repo).stdout)["clean"] is False
    # status writes nothing
    assert (mlv_repo / "data.mlv").read_bytes() == pointer_before
    assert (mlv_repo / "data" / "edit.txt").read_text() == "after"


def test_file_modified(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    (mlv_repo / "model.bin").write_bytes(b"\x00other")
    t = target_status(mlv_repo, "model.bin")
    assert (t["status"], t["modified"], t["in_cache"]) == ("modified", ["model.bin"], True)
    assert mlv("status", "--check", "model.bin", cwd=mlv_repo, check=False).returncode == 1
    assert mlv("status", "--check", "data", cwd=mlv_repo).returncode == 0


def test_same_size_edit_is_seen(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    mlv("status", cwd=mlv_repo)  # state rows recorded
    (mlv_repo / "data" / "keep.txt").write_text("KEEP")  # same size, new content
    assert target_status(mlv_repo, "data")["modified"] == ["data/keep.txt"]


def test_missing_from_workspace(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    shutil.rmtree(mlv_repo / "data")
    (mlv_repo / "model.bin").unlink()
    proc = mlv("status", cwd=mlv_repo)
    assert proc.stdout.splitlines() == [
        "missing      data  (run `mlv checkout`)",
        "missing      model.bin  (run `mlv checkout`)",
    ]
    doc = status_json(mlv_repo)
    assert [(t["status"], t["in_cache"]) for t in doc["targets"]] == [
        ("missing", True),
        ("missing", True),
    ]
    assert mlv("status", "--check", cwd=mlv_repo, check=False).returncode == 1


def test_file_not_in_cache(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    object_path(mlv_repo, xxh(b"\x00model")).unlink()
    t = target_status(mlv_repo, "model.bin")
    assert (t["status"], t["in_cache"]) == ("not_in_cache", False)
    proc = mlv("status", "--check", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "not in cache" in proc.stdout
    # missing from both workspace and cache
    (mlv_repo / "model.bin").unlink()
    t = target_status(mlv_repo, "model.bin")
    assert (t["status"], t["in_cache"]) == ("missing", False)
    assert mlv("status", "model.bin", cwd=mlv_repo).stdout.splitlines() == [
        "missing      model.bin  (not in the cache either)"
    ]


def test_directory_tree_object_not_in_cache(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    tree = read_pointer(mlv_repo / "data.mlv")["hash"]
    object_path(mlv_repo, tree).unlink()
    t = target_status(mlv_repo, "data")
    assert (t["status"], t["in_cache"]) == ("not_in_cache", False)


def test_directory_file_object_not_in_cache(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    mlv("status", cwd=mlv_repo)  # a status run first, so any remembered answer is in place
    object_path(mlv_repo, xxh(b"deep")).unlink()
    t = target_status(mlv_repo, "data")
    assert (t["status"], t["in_cache"]) == ("not_in_cache", False)
    assert mlv("status", "--check", cwd=mlv_repo, check=False).returncode == 1


def test_status_of_named_paths(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    (mlv_repo / "model.bin").unlink()
    for arg in ("data", "data.mlv"):
        doc = status_json(mlv_repo, arg)
        assert [t["path"] for t in doc["targets"]] == ["data"], arg
        assert doc["clean"] is True
    # a folder inside a tracked directory: only what changed below it
    (mlv_repo / "data" / "edit.txt").write_text("changed")
    (mlv_repo / "data" / "sub" / "deep.txt").write_text("changed too")
    doc = status_json(mlv_repo, "data/sub")
    assert [(t["path"], t["status"]) for t in doc["targets"]] == [("data/sub", "modified")]
    assert doc["targets"][0]["modified"] == ["data/sub/deep.txt"]
    (mlv_repo / "data" / "sub" / "deep.txt").write_text("deep")
    doc = status_json(mlv_repo, "data/sub")
    assert [(t["path"], t["status"]) for t in doc["targets"]] == [("data/sub", "clean")]
    doc = status_json(mlv_repo, "model.bin.mlv")
    assert [t["status"] for t in doc["targets"]] == ["missing"]
    proc = mlv("status", "nothing-here", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "nothing-here", "not tracked")


def test_status_from_subfolder(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"a/b/data/x.txt": "x", "a/other.txt": "o"})
    mlv("add", "a/b/data", "a/other.txt", cwd=mlv_repo)
    (mlv_repo / "a" / "b" / "data" / "x.txt").write_text("y")
    sub = mlv_repo / "a" / "b"
    proc = mlv("status", cwd=sub)
    # printed relative to the current folder, as git status prints them; --json from the root
    assert "modified     data  (0 added, 1 modified, 0 deleted)" in proc.stdout
    assert "    modified: data/x.txt" in proc.stdout
    assert "clean        ../other.txt" in proc.stdout
    # relative paths resolve against the current folder
    doc = status_json(mlv_repo, "data", cwd=sub)
    assert [(t["path"], t["status"]) for t in doc["targets"]] == [("a/b/data", "modified")]
    assert mlv("status", "--check", "../other.txt", cwd=sub).returncode == 0


def test_no_tracked_data(mlv_repo: Path) -> None:
    proc = mlv("status", cwd=mlv_repo)
    assert "No tracked data" in proc.stdout
    assert status_json(mlv_repo) == {"clean": True, "targets": []}
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0


def test_status_writes_nothing_to_workspace_or_pointers(mlv_repo: Path) -> None:
    _tracked(mlv_repo)
    (mlv_repo / "data" / "edit.txt").write_text("changed")
    before = {k: v for k, v in snapshot(mlv_repo).items() if not k.startswith((".git", ".mlv"))}
    mlv("status", cwd=mlv_repo)
    mlv("status", "--json", cwd=mlv_repo)
    after = {k: v for k, v in snapshot(mlv_repo).items() if not k.startswith((".git", ".mlv"))}
    assert after == before


def test_racy_edit_keeping_size_and_mtime_is_seen(mlv_repo: Path) -> None:
    """An edit in the same timestamp tick as the hashing (simulated by an mtime that is not
    older than the moment of hashing) must not be trusted to the state database."""
    import os
    import time

    f = mlv_repo / "data" / "f.txt"
    write_files(mlv_repo, {"data/f.txt": "aaaa", "data/g.txt": "g"})
    future = time.time_ns() + 60 * 10**9
    os.utime(f, ns=(future, future))
    mlv("add", "data", cwd=mlv_repo)
    mlv("status", cwd=mlv_repo)
    f.write_text("bbbb")  # same size, same inode
    os.utime(f, ns=(future, future))  # same mtime
    assert target_status(mlv_repo, "data")["modified"] == ["data/f.txt"]


def test_status_after_a_copy_checkout_reads_no_file(mlv_repo: Path, monkeypatch) -> None:
    """Issue 17: checkout knows the hash of every file it writes. Its rows are judged
    against the moment they reach the state db, so when that flush comes well after the
    writes (a long checkout, simulated by a clock 1 s ahead during the flush) the next
    status trusts them all instead of re-reading every file."""
    from types import SimpleNamespace

    from mlv.core.checkout import checkout
    from mlv.core.repo import Repo
    from mlv.core.workspace import Scanner
    from mlv.objects import state as state_mod

    mlv("config", "cache.type", "copy", cwd=mlv_repo)
    write_files(mlv_repo, {f"data/d{i % 3}/f{i}.txt": f"content {i}" for i in range(30)})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo)
    shutil.rmtree(mlv_repo / "data")

    skew = [0]
    real = time.time_ns
    monkeypatch.setattr(state_mod, "time", SimpleNamespace(time_ns=lambda: real() + skew[0]))
    flush = state_mod.StateDB.flush

    def late_flush(self: state_mod.StateDB) -> None:
        skew[0] = 10**9
        try:
            flush(self)
        finally:
            skew[0] = 0

    monkeypatch.setattr(state_mod.StateDB, "flush", late_flush)
    monkeypatch.chdir(mlv_repo)
    repo = Repo.open(str(mlv_repo))
    try:
        [result] = checkout(repo, ["data"])
        assert len(result.restored) == 30
    finally:
        repo.close()

    hashed: list[str] = []
    hash_new = Scanner._hash_new

    def counting(self: Scanner, path: str, *args: Any) -> str:
        hashed.append(path)
        return hash_new(self, path, *args)

    monkeypatch.setattr(Scanner, "_hash_new", counting)
    repo = Repo.open(str(mlv_repo))
    try:
        Scanner(repo, store=False).scan("data")
    finally:
        repo.close()
    assert hashed == []
    assert target_status(mlv_repo, "data")["status"] == "clean"


def test_folder_snapshots_agree_whoever_names_the_hash(mlv_repo: Path) -> None:
    """The folder digest must not depend on how the caller got the algorithm's name: the
    config's string and a pointer's differ as objects (interned or not), and marshal wrote
    them differently, so `repro` and `status` each re-read every file the other had just
    recorded."""

    from mlv.core.repo import Repo
    from mlv.core.workspace import Scanner

    write_files(mlv_repo, {f"data/f{i}.txt": str(i) for i in range(5)})
    old = time.time() - 3600  # outside the racy window, so snapshots are trusted
    for p in (mlv_repo / "data").iterdir():
        os.utime(p, (old, old))
    os.utime(mlv_repo / "data", (old, old))
    repo = Repo.open(str(mlv_repo))
    try:
        built = "".join(["xxh", "128"])
        Scanner(repo, store=False, algo=sys.intern("xxh128")).scan("data")
        recorded: list[str] = []
        original = repo.state.record_snapshot
        repo.state.record_snapshot = lambda rel, *a: recorded.append(rel)  # type: ignore[method-assign]
        try:
            Scanner(repo, store=False, algo=built).scan("data")
        finally:
            repo.state.record_snapshot = original  # type: ignore[method-assign]
        assert recorded == [], "the second scan did not trust the first one's snapshot"
    finally:
        repo.close()


# ---- paths inside a tracked directory, error lines, where the workspace came from ------------


def test_status_of_a_path_neither_pointer_nor_workspace_has_is_an_error(mlv_repo: Path) -> None:
    commit_images(mlv_repo)
    for flags in ((), ("--check",), ("--json",)):
        proc = mlv("status", *flags, "data/images/nonexist", cwd=mlv_repo, check=False)
        line = assert_error(proc, 2, "data/images/nonexist", "not tracked", "data/images.mlv")
        assert "mlv ls data/images" in line
        assert proc.stdout == ""
    # from a subfolder, with a relative path, the same, named from there (issue 19 item 9)
    proc = mlv("status", "nonexist", cwd=mlv_repo / "data" / "images", check=False)
    assert_error(proc, 2, "nonexist: not tracked by mlv (no such path in ../images.mlv)")
    assert "`mlv ls .` lists what the pointer holds" in proc.stderr


def test_status_of_one_file_inside_a_tracked_directory(mlv_repo: Path) -> None:
    commit_images(mlv_repo)
    assert mlv("status", "data/images/a.jpg", cwd=mlv_repo).stdout.splitlines() == [
        "clean        data/images/a.jpg"
    ]
    # a new file there is added (it exists in the workspace), an edited one modified
    write_files(mlv_repo, {"data/images/new.jpg": "new"})
    (mlv_repo / "data" / "images" / "b.jpg").write_text("B")
    new = status_json(mlv_repo, "data/images/new.jpg")["targets"][0]
    assert (new["status"], new["added"]) == ("modified", ["data/images/new.jpg"])
    edited = status_json(mlv_repo, "data/images/b.jpg")["targets"][0]
    assert (edited["status"], edited["modified"]) == ("modified", ["data/images/b.jpg"])
    check = mlv("status", "--check", "data/images/new.jpg", cwd=mlv_repo, check=False)
    assert check.returncode == 1
    assert mlv("status", "--check", "data/images/a.jpg", cwd=mlv_repo).returncode == 0


def test_status_text_has_a_line_for_a_target_in_error(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"dd/a.txt": "a", "m.txt": "m"})
    mlv("add", "dd", "m.txt", cwd=mlv_repo)
    os.symlink("nowhere", mlv_repo / "dd" / "dangling")
    proc = mlv("status", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("error        dd  (dd/dangling: dangling symbolic link"), lines
    assert lines[1] == "clean        m.txt"
    assert proc.stderr.startswith("error: dd/dangling")


def test_status_hints_checkout_after_git_checkout_of_an_old_commit(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a1", "m.txt": "m1"})
    mlv("add", "data", "m.txt", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    write_files(mlv_repo, {"data/a.txt": "a2", "m.txt": "m2"})
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    git("checkout", "-q", "HEAD~1", cwd=mlv_repo)  # pointers move, the data stays
    hint = "[the workspace holds another recorded version: run `mlv checkout`"
    lines = mlv("status", cwd=mlv_repo).stdout.splitlines()
    assert lines[0].startswith("modified     data  (0 added, 1 modified, 0 deleted)  " + hint)
    assert lines[-1].startswith("modified     m.txt  " + hint)
    # an edit never recorded gets no such hint
    mlv("checkout", cwd=mlv_repo)
    (mlv_repo / "m.txt").chmod(0o644)
    (mlv_repo / "m.txt").write_text("m3")
    assert mlv("status", "m.txt", cwd=mlv_repo).stdout.splitlines() == ["modified     m.txt"]


# A plain status (no path, no --remote) as a process, reporting whether click was loaded.
def test_plain_status_starts_without_click(mlv_repo: Path) -> None:
    """Issue 17: status's whole time is start-up plus a stat per file, and importing click
    was ~15 ms of its ~0.13 s at 20,000 files. `mlv status` with no more than --json,
    --check, -q and -v runs without it; anything else (a path) goes through click."""
    _tracked(mlv_repo)
    for args, loaded in (
        (["status"], False),
        (["status", "--json", "--check"], False),
        (["-q", "status", "-v"], False),
        (["status", "data"], True),
    ):
        proc = mlv_reporting_click(mlv_repo, *args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.endswith(f"click loaded: {loaded}\n"), (args, proc.stderr)
        assert "clean" in proc.stdout or "-q" in args


def test_status_without_click_says_what_click_s_status_says(
    mlv_repo: Path, monkeypatch: Any
) -> None:
    """The click-free status (mlv.cli._fast_status) prints and exits exactly as click's
    status command does, for every flag it takes, clean or not."""
    from mlv import cli as mlv_cli

    _tracked(mlv_repo)
    for change in ("clean", "edited"):
        if change == "edited":
            (mlv_repo / "data" / "edit.txt").chmod(0o644)
            (mlv_repo / "data" / "edit.txt").write_text("after")
            (mlv_repo / "data" / "gone.txt").unlink()
            (mlv_repo / "model.bin").unlink()
        for args in (
            ["status"],
            ["status", "--json"],
            ["status", "--check"],
            ["-q", "status", "--check"],
            ["status", "--json", "--check", "--json"],
        ):
            fast = mlv(*args, cwd=mlv_repo, check=False)
            with monkeypatch.context() as m:
                m.setattr(mlv_cli, "_fast_status", lambda args: False)
                slow = mlv(*args, cwd=mlv_repo, check=False)
            assert (fast.returncode, fast.stdout, fast.stderr) == (
                slow.returncode,
                slow.stdout,
                slow.stderr,
            ), args
            assert fast.returncode == (1 if change == "edited" and "--check" in args else 0)


def test_first_status_after_a_copy_checkout_reads_no_file_row(
    mlv_repo: Path, monkeypatch: Any
) -> None:
    """Issue 17: a copy checkout scans what it wrote once its rows are flushed, recording
    the folder snapshots status keeps, so the first status after it finds every folder's
    listing in a snapshot (as the next one does) instead of reading each file's row. The
    files are taken as written more than the racy window before the checkout ends: the
    state db's clock runs 1 s ahead during the checkout."""
    from types import SimpleNamespace

    from mlv.objects import state as state_mod

    mlv("config", "cache.type", "copy", cwd=mlv_repo)
    write_files(mlv_repo, {f"data/d{i % 3}/f{i}.txt": f"content {i}" for i in range(30)})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo)
    shutil.rmtree(mlv_repo / "data")
    real = time.time_ns
    with monkeypatch.context() as m:
        m.setattr(state_mod, "time", SimpleNamespace(time_ns=lambda: real() + 10**9))
        assert mlv("checkout", cwd=mlv_repo).returncode == 0

    rows_read: list[str] = []
    folder = state_mod.StateDB.folder

    def counting(self: state_mod.StateDB, rel_dir: str) -> Any:
        rows_read.append(rel_dir)
        return folder(self, rel_dir)

    monkeypatch.setattr(state_mod.StateDB, "folder", counting)
    assert mlv("status", cwd=mlv_repo).stdout == "clean        data\n"
    assert rows_read == []
    # an edit after the checkout is seen as ever
    (mlv_repo / "data" / "d1" / "f1.txt").write_text("changed")
    assert target_status(mlv_repo, "data")["modified"] == ["data/d1/f1.txt"]
