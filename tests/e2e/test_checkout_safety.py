"""`mlv checkout` and `mlv pull` never lose what the cache does not hold intact: ignored
files and skipped folders under a directory that becomes a file, a workspace version whose
cache object is damaged, a file where a tracked folder was; `mlv pull` repairs damaged
objects from the remote."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from helpers import commit_all, git, mlv, object_path, read_pointer, snapshot, write_files, xxh


def _corrupt(obj: Path) -> None:
    os.chmod(obj, 0o644)
    data = bytearray(obj.read_bytes())
    data[0] ^= 0xFF
    obj.write_bytes(bytes(data))


def _dir_after_file(repo: Path) -> None:
    """data tracked as a file (HEAD~1), then as a directory (HEAD), checked out."""
    (repo / ".mlvignore").write_text("*.tmp\n")
    write_files(repo, {"data": "a file"})
    mlv("add", "data", cwd=repo)
    commit_all(repo, "data is a file")
    mlv("rm", "data", cwd=repo)
    if (repo / "data").exists():
        (repo / "data").unlink()
    write_files(repo, {"data/d0/f0.txt": "f0", "data/d1/f1.txt": "f1"})
    mlv("add", "data", cwd=repo)
    commit_all(repo, "data is a directory")


def test_ignored_file_keeps_directory_that_becomes_a_file(mlv_repo: Path) -> None:
    _dir_after_file(mlv_repo)
    (mlv_repo / "data" / "d0" / "notes.tmp").write_text("precious")  # ignored, never cached
    git("checkout", "-q", "HEAD~1", "--", "data.mlv", cwd=mlv_repo)
    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "data/d0/notes.tmp" in proc.stderr
    assert (mlv_repo / "data" / "d0" / "notes.tmp").read_text() == "precious"
    assert (mlv_repo / "data" / "d1" / "f1.txt").read_text() == "f1"
    doc = json.loads(mlv("checkout", "--json", cwd=mlv_repo, check=False).stdout)
    assert doc["targets"][0]["conflicts"] == ["data/d0/notes.tmp"]
    mlv("checkout", "--force", cwd=mlv_repo)
    assert (mlv_repo / "data").read_text() == "a file"


def test_nested_git_folder_keeps_directory_that_becomes_a_file(mlv_repo: Path) -> None:
    _dir_after_file(mlv_repo)
    write_files(mlv_repo, {"data/d1/.git/HEAD": "ref: refs/heads/main\n"})
    git("checkout", "-q", "HEAD~1", "--", "data.mlv", cwd=mlv_repo)
    proc = mlv("checkout", "--json", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert doc["targets"][0]["conflicts"] == ["data/d1/.git"]
    assert (mlv_repo / "data" / "d1" / ".git" / "HEAD").exists()


def test_directory_of_cached_files_becomes_a_file(mlv_repo: Path) -> None:
    _dir_after_file(mlv_repo)
    git("checkout", "-q", "HEAD~1", "--", "data.mlv", cwd=mlv_repo)
    proc = mlv("checkout", cwd=mlv_repo)
    assert proc.stdout.strip() == "Restored 1 file, removed 1."
    assert (mlv_repo / "data").read_text() == "a file"


def test_corrupt_object_of_workspace_version_keeps_it(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "v1", "data/b.txt": "b"})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    write_files(mlv_repo, {"data/a.txt": "v2 - the only good copy"})
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    _corrupt(object_path(mlv_repo, xxh(b"v2 - the only good copy")))
    git("checkout", "-q", "HEAD~1", "--", "data.mlv", cwd=mlv_repo)
    proc = mlv("checkout", "--json", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["targets"][0]["conflicts"] == ["data/a.txt"]
    assert (mlv_repo / "data" / "a.txt").read_text() == "v2 - the only good copy"
    mlv("checkout", "--force", cwd=mlv_repo)
    assert (mlv_repo / "data" / "a.txt").read_text() == "v1"


def test_corrupt_object_of_tracked_file_version_keeps_it(mlv_repo: Path) -> None:
    payload = os.urandom(3 << 20)
    write_files(mlv_repo, {"model.bin": "v1"})
    mlv("add", "model.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    write_files(mlv_repo, {"model.bin": payload})
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    mlv("status", cwd=mlv_repo)  # the object is trusted now: damage changes its mtime
    _corrupt(object_path(mlv_repo, read_pointer(mlv_repo / "model.bin.mlv")["hash"]))
    git("checkout", "-q", "HEAD~1", "--", "model.bin.mlv", cwd=mlv_repo)
    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert (mlv_repo / "model.bin").read_bytes() == payload


def test_file_where_a_tracked_folder_was(mlv_repo: Path) -> None:
    files = {f"data/d{i}/f{i}.bin": f"content {i}" for i in range(6)}
    write_files(mlv_repo, {**files, "model.bin": "model"})
    mlv("add", "data", "model.bin", cwd=mlv_repo)
    shutil.rmtree(mlv_repo / "data" / "d3")
    (mlv_repo / "data" / "d3").write_text("mynotes")
    (mlv_repo / "model.bin").unlink()
    (mlv_repo / "data" / "d5" / "f5.bin").unlink()
    proc = mlv("checkout", "--json", cwd=mlv_repo, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    by_path = {t["path"]: t for t in doc["targets"]}
    assert by_path["data"]["conflicts"] == ["data/d3"]
    assert by_path["data"]["error"] is None
    assert by_path["data"]["restored"] == ["data/d5/f5.bin"]
    assert by_path["model.bin"]["restored"] == ["model.bin"]
    assert (mlv_repo / "data" / "d3").read_text() == "mynotes"
    assert (mlv_repo / "model.bin").read_text() == "model"
    assert [p.name for p in (mlv_repo / "data").iterdir() if ".mlvtmp-" in p.name] == []
    mlv("checkout", "--force", cwd=mlv_repo)
    assert (mlv_repo / "data" / "d3" / "f3.bin").read_text() == "content 3"
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0


def test_pull_replaces_corrupt_cache_object_from_remote(mlv_repo: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    write_files(mlv_repo, {"data/a.txt": "aaa", "data/b.txt": "bbb", "m.bin": "mmm"})
    mlv("add", "data", "m.bin", cwd=mlv_repo)
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    mlv("push", cwd=mlv_repo)
    before = snapshot(mlv_repo / "data")
    for content in (b"aaa", b"mmm"):
        _corrupt(object_path(mlv_repo, xxh(content)))
    (mlv_repo / "data" / "a.txt").unlink()
    (mlv_repo / "m.bin").unlink()
    proc = mlv("pull", cwd=mlv_repo, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Replaced 2 corrupt object(s) in the cache from 'store'." in proc.stdout
    assert snapshot(mlv_repo / "data") == before
    assert (mlv_repo / "m.bin").read_text() == "mmm"
    assert object_path(mlv_repo, xxh(b"aaa")).read_bytes() == b"aaa"
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0

    # --json: the repair is reported, the checkout lists the paths as restored
    _corrupt(object_path(mlv_repo, xxh(b"bbb")))
    (mlv_repo / "data" / "b.txt").unlink()
    doc = json.loads(mlv("pull", "--json", cwd=mlv_repo).stdout)
    assert doc["ok"] is True
    assert doc["repaired"]["transferred"]["objects"] == 1
    target = next(t for t in doc["checkout"]["targets"] if t["path"] == "data")
    assert target["restored"] == ["data/b.txt"]
    assert target["corrupt"] == [] and target["corrupt_hashes"] == {}


def test_corrupt_hint_names_pull(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"m.txt": "bytes"})
    mlv("add", "m.txt", cwd=mlv_repo)
    _corrupt(object_path(mlv_repo, xxh(b"bytes")))
    (mlv_repo / "m.txt").unlink()
    proc = mlv("checkout", "--json", cwd=mlv_repo, check=False)
    assert json.loads(proc.stdout)["targets"][0]["corrupt_hashes"] == {"m.txt": xxh(b"bytes")}
    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert "`mlv pull`" in proc.stderr.splitlines()[0]
