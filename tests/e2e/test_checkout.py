"""`mlv checkout`: restore, switch versions after `git checkout`, never lose unsaved edits,
check one subdirectory out, refuse corrupt cache objects."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from helpers import (
    MLV,
    assert_error,
    commit_all,
    commit_images,
    git,
    mlv,
    mlv_reporting_click,
    object_path,
    read_pointer,
    snapshot,
    target_status,
    write_files,
    xxh,
)

V1 = {
    "data/a.txt": "a1",
    "data/same.txt": "same",
    "data/old-only.txt": "old",
    "data/sub/b.txt": "b1",
    "data/sub/c.txt": "c1",
}


def _two_versions(repo: Path) -> tuple[dict[str, bytes | str], dict[str, bytes | str]]:
    """data/ at v1 (committed), then at v2 (committed); returns both snapshots."""
    write_files(repo, V1)
    mlv("add", "data", cwd=repo)
    commit_all(repo, "v1")
    v1 = snapshot(repo / "data")
    (repo / "data" / "a.txt").write_text("a2")
    (repo / "data" / "old-only.txt").unlink()
    write_files(repo, {"data/new-only.txt": "new", "data/sub/d/e.txt": "e"})
    mlv("add", "data", cwd=repo)
    commit_all(repo, "v2")
    return v1, snapshot(repo / "data")


def test_restores_deleted_file_and_directory(mlv_repo: Path) -> None:
    write_files(mlv_repo, {**V1, "model.bin": os.urandom(2 << 20)})
    mlv("add", "data", "model.bin", cwd=mlv_repo)
    before = snapshot(mlv_repo / "data")
    model = (mlv_repo / "model.bin").read_bytes()
    shutil.rmtree(mlv_repo / "data")
    (mlv_repo / "model.bin").unlink()
    proc = mlv("checkout", cwd=mlv_repo)
    assert proc.stdout.strip() == "Restored 6 files, removed 0."
    assert proc.stderr == ""
    assert snapshot(mlv_repo / "data") == before
    assert (mlv_repo / "model.bin").read_bytes() == model
    # restored copies are ordinary writable files
    assert os.access(mlv_repo / "data" / "a.txt", os.W_OK)
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0
    again = mlv("checkout", cwd=mlv_repo)
    assert again.stdout.strip() == "Workspace already matches the pointers."


def test_restores_single_deleted_file_inside_directory(mlv_repo: Path) -> None:
    write_files(mlv_repo, V1)
    mlv("add", "data", cwd=mlv_repo)
    (mlv_repo / "data" / "sub" / "b.txt").unlink()
    mlv("checkout", "data", cwd=mlv_repo)
    assert (mlv_repo / "data" / "sub" / "b.txt").read_text() == "b1"


def test_git_checkout_old_commit_then_mlv_checkout(mlv_repo: Path) -> None:
    v1, v2 = _two_versions(mlv_repo)
    git("checkout", "-q", "HEAD~1", cwd=mlv_repo)
    assert target_status(mlv_repo, "data")["status"] == "modified"
    mlv("checkout", cwd=mlv_repo)
    assert snapshot(mlv_repo / "data") == v1  # new-only.txt and sub/d removed, a.txt back
    git("checkout", "-q", "main", cwd=mlv_repo)
    mlv("checkout", cwd=mlv_repo)
    assert snapshot(mlv_repo / "data") == v2
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0


def test_git_checkout_of_a_pointer_file_only(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"m.bin": "v1"})
    mlv("add", "m.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    (mlv_repo / "m.bin").write_text("v2")
    mlv("add", "m.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    git("checkout", "HEAD~1", "--", "m.bin.mlv", cwd=mlv_repo)
    mlv("checkout", "m.bin", cwd=mlv_repo)
    assert (mlv_repo / "m.bin").read_text() == "v1"


def test_unsaved_edit_is_not_overwritten_without_force(mlv_repo: Path) -> None:
    _two_versions(mlv_repo)
    # an edit never added, and a new file never added
    (mlv_repo / "data" / "a.txt").write_text("precious edit")
    write_files(mlv_repo, {"data/sub/precious-new.txt": "unsaved"})
    git("checkout", "-q", "HEAD~1", cwd=mlv_repo)
    pointer = (mlv_repo / "data.mlv").read_bytes()

    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: 2 file(s) not in the cache")
    assert "--force" in proc.stderr.splitlines()[0]
    listed = [line.strip() for line in proc.stderr.splitlines()[1:]]
    assert listed == ["data/a.txt", "data/sub/precious-new.txt"]
    # the unsaved bytes are intact, the pointer untouched
    assert (mlv_repo / "data" / "a.txt").read_text() == "precious edit"
    assert (mlv_repo / "data" / "sub" / "precious-new.txt").read_text() == "unsaved"
    assert (mlv_repo / "data.mlv").read_bytes() == pointer
    # the rest was brought to v1: safe content in the cache is replaced as usual
    assert (mlv_repo / "data" / "old-only.txt").read_text() == "old"
    assert not (mlv_repo / "data" / "new-only.txt").exists()

    doc = json.loads(mlv("checkout", "--json", cwd=mlv_repo, check=False).stdout)
    assert doc["ok"] is False
    assert doc["targets"][0]["conflicts"] == ["data/a.txt", "data/sub/precious-new.txt"]

    mlv("checkout", "--force", cwd=mlv_repo)
    assert (mlv_repo / "data" / "a.txt").read_text() == "a1"
    assert not (mlv_repo / "data" / "sub" / "precious-new.txt").exists()
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0


def test_what_was_left_alone_is_printed_after_the_summary(mlv_repo: Path) -> None:
    """In a terminal or a merged log the problems come last, under 'Restored N files', as
    getting-started.md shows: they were printed above it (stdout came later), so the last
    line seen was the reassuring one."""
    _two_versions(mlv_repo)
    (mlv_repo / "data" / "a.txt").write_text("precious edit")
    git("checkout", "-q", "HEAD~1", cwd=mlv_repo)
    proc = subprocess.run(
        ["bash", "-c", f"{shlex.quote(str(MLV))} checkout 2>&1"],
        cwd=mlv_repo,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stdout.splitlines() == [
        "Restored 1 file, removed 2.",
        "error: 1 file(s) not in the cache, left alone (use --force to overwrite, or "
        "`mlv commit` to keep it):",
        "    data/a.txt",
    ]


def test_unsaved_edit_of_tracked_file_needs_force(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"m.bin": "saved"})
    mlv("add", "m.bin", cwd=mlv_repo)
    (mlv_repo / "m.bin").write_text("unsaved")
    proc = mlv("checkout", "m.bin", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0].startswith("error: 1 file(s) not in the cache")
    assert [x.strip() for x in proc.stderr.splitlines()[1:]] == ["m.bin"]
    assert (mlv_repo / "m.bin").read_text() == "unsaved"
    mlv("checkout", "-f", "m.bin", cwd=mlv_repo)
    assert (mlv_repo / "m.bin").read_text() == "saved"


def test_directory_replaced_by_file_with_unsaved_content_is_kept(mlv_repo: Path) -> None:
    write_files(mlv_repo, V1)
    mlv("add", "data", cwd=mlv_repo)
    shutil.rmtree(mlv_repo / "data" / "sub")
    (mlv_repo / "data" / "sub").write_text("a file where a folder was")
    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert (mlv_repo / "data" / "sub").read_text() == "a file where a folder was"
    mlv("checkout", "--force", cwd=mlv_repo)
    assert (mlv_repo / "data" / "sub" / "b.txt").read_text() == "b1"


def test_checkout_one_subdirectory(mlv_repo: Path) -> None:
    write_files(mlv_repo, {**V1, "data/sub/inner/x.txt": "x"})
    mlv("add", "data", cwd=mlv_repo)
    shutil.rmtree(mlv_repo / "data")
    proc = mlv("checkout", "data/sub", cwd=mlv_repo)
    assert proc.stdout.strip() == "Restored 3 files, removed 0."
    assert snapshot(mlv_repo / "data") == {
        "sub": "<dir>",
        "sub/b.txt": b"b1",
        "sub/c.txt": b"c1",
        "sub/inner": "<dir>",
        "sub/inner/x.txt": b"x",
    }
    # from inside the tracked directory, with a relative path
    mlv("checkout", "a.txt", cwd=mlv_repo / "data")
    assert (mlv_repo / "data" / "a.txt").read_text() == "a1"
    assert not (mlv_repo / "data" / "same.txt").exists()
    proc = mlv("checkout", "data/no-such-sub", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "data/no-such-sub")


def test_checkout_subdirectory_after_git_checkout(mlv_repo: Path) -> None:
    v1, _ = _two_versions(mlv_repo)
    git("checkout", "-q", "HEAD~1", cwd=mlv_repo)
    mlv("checkout", "data/sub", cwd=mlv_repo)
    now = snapshot(mlv_repo / "data")
    assert {k: v for k, v in now.items() if k.startswith("sub")} == {
        k: v for k, v in v1.items() if k.startswith("sub")
    }
    # outside the subdirectory nothing changed
    assert now["a.txt"] == b"a2"
    assert now["new-only.txt"] == b"new"


def test_checkout_restores_gitignore_entry(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"m.bin": "x"})
    mlv("add", "m.bin", cwd=mlv_repo)
    (mlv_repo / ".gitignore").unlink()
    (mlv_repo / "m.bin").unlink()
    mlv("checkout", cwd=mlv_repo)
    assert (mlv_repo / ".gitignore").read_text() == "/m.bin\n"


def _corrupt(obj: Path, data: bytes) -> None:
    os.chmod(obj, 0o644)
    with open(obj, "r+b") as fh:
        fh.write(data)


def test_corrupt_small_object_is_not_copied_out(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/good.txt": "good", "data/bad.txt": "original bytes"})
    mlv("add", "data", cwd=mlv_repo)
    obj = object_path(mlv_repo, xxh(b"original bytes"))
    _corrupt(obj, b"CORRUPT")
    shutil.rmtree(mlv_repo / "data")
    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith("error: ") and "corrupt" in first
    assert "data/bad.txt" in proc.stderr
    assert str(obj) in proc.stderr  # names the object
    assert not (mlv_repo / "data" / "bad.txt").exists()
    assert (mlv_repo / "data" / "good.txt").read_text() == "good"
    assert not [p for p in (mlv_repo / "data").iterdir() if p.name.startswith(".mlvtmp-")]


def test_corrupt_large_object_is_not_copied_out(mlv_repo: Path) -> None:
    payload = os.urandom(3 << 20)
    write_files(mlv_repo, {"big.bin": payload})
    mlv("add", "big.bin", cwd=mlv_repo)
    obj = object_path(mlv_repo, read_pointer(mlv_repo / "big.bin.mlv")["hash"])
    mlv("status", cwd=mlv_repo)
    _corrupt(obj, b"\xff" * 16)  # same size, different bytes
    (mlv_repo / "big.bin").unlink()
    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "corrupt" in proc.stderr.splitlines()[0]
    assert str(obj) in proc.stderr
    assert not (mlv_repo / "big.bin").exists()
    assert [p.name for p in mlv_repo.iterdir() if p.name.startswith(".mlvtmp-")] == []


def test_corrupt_object_does_not_replace_workspace_file(mlv_repo: Path) -> None:
    _two_versions(mlv_repo)
    _corrupt(object_path(mlv_repo, xxh(b"a1")), b"XX")
    git("checkout", "-q", "HEAD~1", cwd=mlv_repo)
    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "corrupt" in proc.stderr
    assert (mlv_repo / "data" / "a.txt").read_text() == "a2"  # the good v2 file stays


def test_object_missing_from_cache(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/x.txt": "x", "data/y.txt": "y"})
    mlv("add", "data", cwd=mlv_repo)
    object_path(mlv_repo, xxh(b"x")).unlink()
    shutil.rmtree(mlv_repo / "data")
    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[0].startswith("error: 1 file(s) missing from the cache")
    assert (mlv_repo / "data" / "y.txt").read_text() == "y"
    assert not (mlv_repo / "data" / "x.txt").exists()


def test_checkout_untracked_path_is_usage_error(mlv_repo: Path) -> None:
    assert_error(mlv("checkout", "nope", cwd=mlv_repo, check=False), 2, "nope", "not tracked")


# ---- unprotect and checkout of a path the pointer lacks --------------------------------------


def test_unprotect_and_checkout_of_a_path_the_pointer_lacks(mlv_repo: Path) -> None:
    commit_images(mlv_repo)
    proc = mlv("unprotect", "data/images/nonexist", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "data/images/nonexist", "not tracked", "data/images.mlv")
    assert proc.stdout == ""
    proc = mlv("checkout", "data/images/nonexist", cwd=mlv_repo, check=False)
    line = assert_error(proc, 2, "data/images/nonexist", "data/images.mlv")
    assert "mlv ls data/images" in line
    # a path the pointer has still works, missing from the workspace or not
    (mlv_repo / "data" / "images" / "a.jpg").unlink()
    assert mlv("unprotect", "data/images/a.jpg", cwd=mlv_repo).returncode == 0
    mlv("checkout", "data/images/a.jpg", cwd=mlv_repo)
    assert (mlv_repo / "data" / "images" / "a.jpg").read_text() == "a"


# A checkout as a process, reporting whether click was loaded.
def test_plain_checkout_starts_without_click(mlv_repo: Path) -> None:
    """Issue 17: a hard-link checkout of 20,000 files is measured against `cp -al`'s ~0.3 s,
    and importing click cost ~10 ms of its start. `mlv checkout` with paths, -f, --relink,
    --json, --wait-for-lock, -q and -v runs without it; anything else (`--`) goes through
    click, and does the same."""
    write_files(mlv_repo, V1)
    mlv("add", "data", cwd=mlv_repo)
    for args, loaded in (
        (["checkout"], False),
        (["checkout", "data/sub", "--json", "-f", "--relink", "--wait-for-lock"], False),
        (["-q", "checkout", "data", "-v"], False),
        (["checkout", "--", "data"], True),
    ):
        shutil.rmtree(mlv_repo / "data")
        proc = mlv_reporting_click(mlv_repo, *args)
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr.endswith(f"click loaded: {loaded}\n"), (args, proc.stderr)
        restored = V1 if args[-1] != "--wait-for-lock" else {"data/sub/b.txt": "b1"}
        for rel, content in V1.items():
            assert (mlv_repo / rel).exists() == (rel in restored or rel.startswith("data/sub"))
            if rel in restored:
                assert (mlv_repo / rel).read_text() == content


def test_checkout_without_click_says_what_click_s_checkout_says(
    mlv_repo: Path, monkeypatch: Any
) -> None:
    """The click-free checkout (mlv.cli._fast_checkout) changes the workspace, prints and
    exits exactly as click's checkout command does: a restore, nothing to do, an unsaved
    edit left alone (exit 1) or overwritten with -f, a subfolder, JSON, a path mlv does not
    track (exit 2)."""
    from mlv import cli as mlv_cli

    def deleted() -> None:
        shutil.rmtree(mlv_repo / "data", ignore_errors=True)

    def edited() -> None:
        deleted()
        mlv("checkout", cwd=mlv_repo)
        (mlv_repo / "data" / "a.txt").chmod(0o644)
        (mlv_repo / "data" / "a.txt").write_text("never added")
        (mlv_repo / "data" / "sub" / "c.txt").unlink()

    write_files(mlv_repo, V1)
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo)
    for prepare, args in (
        (deleted, ["checkout"]),
        (deleted, ["checkout", "--json"]),
        (deleted, ["checkout", "data/sub"]),
        (lambda: None, ["-q", "checkout"]),
        (lambda: None, ["checkout", "nosuch"]),
        (edited, ["checkout"]),
        (edited, ["checkout", "--json", "data"]),
        (edited, ["checkout", "-f"]),
    ):
        outcomes = []
        for fast in (True, False):
            prepare()
            with monkeypatch.context() as m:
                if not fast:
                    m.setattr(mlv_cli, "_fast_checkout", lambda args: False)
                proc = mlv(*args, cwd=mlv_repo, check=False)
            workspace = snapshot(mlv_repo / "data"), (mlv_repo / ".gitignore").read_text()
            outcomes.append((proc.returncode, proc.stdout, proc.stderr, workspace))
        assert outcomes[0] == outcomes[1], args
        left_alone = prepare is edited and "-f" not in args
        assert outcomes[0][0] == (2 if "nosuch" in args else 1 if left_alone else 0)


def test_a_path_click_would_refuse_goes_through_click(monkeypatch: Any) -> None:
    """click's path argument refuses a path that exists but cannot be read ("is not
    readable", a usage error): the click-free checkout leaves such a path to click, and
    options it does not know, `--` and -h too."""
    from mlv import cli as mlv_cli

    assert mlv_cli._fast_checkout(["-q", "checkout", "data", "-f", "--json"])
    assert not mlv_cli._fast_checkout(["checkout", "-h"])
    assert not mlv_cli._fast_checkout(["checkout", "--", "data"])
    assert not mlv_cli._fast_checkout(["checkout", "-fq"])
    assert not mlv_cli._fast_checkout(["status"])
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert not mlv_cli._fast_checkout(["checkout", "."])  # exists, "cannot be read"
    assert mlv_cli._fast_checkout(["checkout", "no-such-path"])
