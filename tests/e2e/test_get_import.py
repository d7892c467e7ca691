"""`mlv get`, `mlv import` and `mlv update` against real git repositories and a folder remote."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import (
    assert_error,
    commit_all,
    git,
    mlv,
    read_pointer,
    snapshot,
    staged,
    status_json,
    write_files,
)
from prebuilt import Prebuilt

V1 = {
    "data/images/a.jpg": b"image a v1",
    "data/images/sub/c.txt": b"c v1",
    "model.bin": b"model v1",
    "params.yaml": b"lr: 0.1\n",
}


@dataclass
class SourceRepo:
    path: Path
    store: Path
    commits: dict[str, str]  # label -> commit id


def _head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo).stdout.strip()


@pytest.fixture(scope="module")
def built_source(module_env: Path) -> tuple[Prebuilt, dict[str, str]]:
    """A source repository: v1 (tag), a `dev` branch, then v2 on main (tag); everything
    pushed to the folder remote ../store (a path relative to the repository root)."""
    src = module_env / "source"
    src.mkdir()
    git("init", "-q", "-b", "main", cwd=src)
    mlv("init", "-q", cwd=src)
    write_files(src, V1)
    mlv("add", "-q", "data/images", "model.bin", cwd=src)
    mlv("remote", "add", "-d", "store", "../store", cwd=src)
    commit_all(src, "v1")
    git("tag", "v1", cwd=src)
    commits = {"v1": _head(src)}
    git("checkout", "-q", "-b", "dev", cwd=src)
    write_files(src, {"model.bin": b"model dev"})
    mlv("add", "-q", "model.bin", cwd=src)
    commit_all(src, "dev")
    commits["dev"] = _head(src)
    git("checkout", "-q", "main", cwd=src)
    mlv("checkout", "-q", cwd=src)
    write_files(src, {"data/images/b.jpg": b"image b v2", "model.bin": b"model v2"})
    write_files(src, {"params.yaml": b"lr: 0.2\n"})
    mlv("add", "-q", "data/images", "model.bin", cwd=src)
    commit_all(src, "v2")
    git("tag", "-a", "v2", "-m", "release 2", cwd=src)
    commits["v2"] = _head(src)
    mlv("push", "-q", "--all-branches", "--all-tags", cwd=src)
    return Prebuilt(module_env), commits


@pytest.fixture
def source(built_source: tuple[Prebuilt, dict[str, str]], tmp_path: Path) -> SourceRepo:
    """built_source, copied for each test to tmp_path/source and tmp_path/store."""
    built, commits = built_source
    built.copy_into(tmp_path)
    return SourceRepo(tmp_path / "source", tmp_path / "store", dict(commits))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A plain folder, in no git or mlv repository."""
    folder = tmp_path / "plain"
    folder.mkdir()
    return folder


def _no_temporaries(folder: Path) -> None:
    leftovers = [p for p in folder.rglob("*") if ".mlvtmp-" in p.name]
    assert not leftovers, leftovers


def _plain_copy(path: Path) -> None:
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode), path
    assert st.st_nlink == 1, f"{path} is linked to something"
    assert st.st_mode & stat.S_IWUSR, f"{path} is not writable"


# ---- get ------------------------------------------------------------------------------


def test_get_file_directory_subpath_and_git_file(source: SourceRepo, outside: Path) -> None:
    url = str(source.path)
    proc = mlv("get", url, "model.bin", cwd=outside)
    assert "Downloaded model.bin" in proc.stdout
    assert (outside / "model.bin").read_bytes() == b"model v2"
    _plain_copy(outside / "model.bin")

    mlv("get", url, "data/images", cwd=outside)
    assert snapshot(outside / "images") == {
        "a.jpg": b"image a v1",
        "b.jpg": b"image b v2",
        "sub": "<dir>",
        "sub/c.txt": b"c v1",
    }
    for f in ("a.jpg", "b.jpg", "sub/c.txt"):
        _plain_copy(outside / "images" / f)

    mlv("get", url, "data/images/sub", "-o", "deep", cwd=outside)
    assert snapshot(outside / "deep") == {"c.txt": b"c v1"}
    mlv("get", url, "data/images/sub/c.txt", "-o", "one.txt", cwd=outside)
    assert (outside / "one.txt").read_bytes() == b"c v1"

    mlv("get", url, "params.yaml", cwd=outside)  # a file git tracks
    assert (outside / "params.yaml").read_bytes() == b"lr: 0.2\n"
    _no_temporaries(outside)
    # nothing of mlv or git appeared: the copies are not tracked
    assert sorted(p.name for p in outside.iterdir()) == [
        "deep",
        "images",
        "model.bin",
        "one.txt",
        "params.yaml",
    ]


def test_get_folder_with_git_files_and_tracked_data(source: SourceRepo, outside: Path) -> None:
    mlv("get", str(source.path), "data", "-o", "all", cwd=outside)
    got = snapshot(outside / "all")
    assert got["images/a.jpg"] == b"image a v1"
    assert got["images/sub/c.txt"] == b"c v1"
    assert got[".gitignore"] == b"/images\n"  # data/.gitignore is a file git tracks
    assert "images.mlv" not in got  # pointers are how the data is tracked, not data


@pytest.mark.parametrize(
    ("rev", "model", "has_b"),
    [("v1", b"model v1", False), ("dev", b"model dev", False), ("v2", b"model v2", True)],
)
def test_get_at_a_revision(
    source: SourceRepo, outside: Path, rev: str, model: bytes, has_b: bool
) -> None:
    url = str(source.path)
    mlv("get", url, "model.bin", "--rev", rev, cwd=outside)
    assert (outside / "model.bin").read_bytes() == model
    mlv("get", url, "data/images", "--rev", rev, cwd=outside)
    assert (outside / "images" / "b.jpg").exists() is has_b
    mlv("get", url, "params.yaml", "--rev", rev, cwd=outside)
    expected = b"lr: 0.2\n" if rev == "v2" else b"lr: 0.1\n"
    assert (outside / "params.yaml").read_bytes() == expected


def test_get_at_a_commit_id(source: SourceRepo, outside: Path) -> None:
    commit = source.commits["dev"]
    proc = mlv("get", str(source.path), "model.bin", "--rev", commit, "--json", cwd=outside)
    doc = json.loads(proc.stdout)
    assert doc["commit"] == commit
    assert doc["files"] == 1 and doc["bytes"] == len(b"model dev")
    assert (outside / "model.bin").read_bytes() == b"model dev"


def test_get_from_a_clone_without_cache_uses_the_remote(
    source: SourceRepo, tmp_path: Path, outside: Path
) -> None:
    fresh = tmp_path / "fresh"
    git("clone", "-q", str(source.path), str(fresh), cwd=tmp_path)
    assert not (fresh / ".mlv" / "cache").exists()
    mlv("get", str(fresh), "data/images", cwd=outside)
    assert (outside / "images" / "b.jpg").read_bytes() == b"image b v2"
    # the remote's relative folder (../store) was resolved against the clone's root
    assert not (fresh / ".mlv" / "cache").exists()


def test_get_from_a_source_whose_cache_is_gone(source: SourceRepo, outside: Path) -> None:
    import shutil

    shutil.rmtree(source.path / ".mlv" / "cache")
    mlv("get", source.path.as_uri(), "model.bin", "--rev", "v1", cwd=outside)  # file:// too
    assert (outside / "model.bin").read_bytes() == b"model v1"


def test_get_without_cache_or_remote_says_what_is_missing(
    source: SourceRepo, outside: Path
) -> None:
    import shutil

    shutil.rmtree(source.path / ".mlv" / "cache")
    shutil.rmtree(source.store)
    proc = mlv("get", str(source.path), "model.bin", cwd=outside, check=False)
    assert_error(proc, 1, "not in the cache nor on remote 'store'")
    assert list(outside.iterdir()) == []


def test_get_inside_a_repository_goes_through_its_cache(source: SourceRepo, mlv_repo: Path) -> None:
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    mlv("get", str(source.path), "model.bin", "-o", "m.bin", cwd=mlv_repo)
    cached = {p.read_bytes() for p in (mlv_repo / ".mlv" / "cache").rglob("*") if p.is_file()}
    assert b"model v2" in cached  # kept for the next time
    _plain_copy(mlv_repo / "m.bin")  # a copy, even with cache.type hardlink
    assert not (mlv_repo / "m.bin.mlv").exists()
    assert "m.bin" not in " ".join(staged(mlv_repo))


def test_get_refuses_to_overwrite(source: SourceRepo, outside: Path) -> None:
    (outside / "model.bin").write_bytes(b"mine")
    proc = mlv("get", str(source.path), "model.bin", cwd=outside, check=False)
    assert_error(proc, 2, "model.bin: already exists", "--force")
    assert (outside / "model.bin").read_bytes() == b"mine"
    (outside / "images").mkdir()
    (outside / "images" / "keep").write_bytes(b"k")
    proc = mlv("get", str(source.path), "data/images", cwd=outside, check=False)
    assert_error(proc, 2, "images: already exists")
    mlv("get", str(source.path), "model.bin", "--force", cwd=outside)
    assert (outside / "model.bin").read_bytes() == b"model v2"
    mlv("get", str(source.path), "data/images", "--force", cwd=outside)
    assert not (outside / "images" / "keep").exists()
    _no_temporaries(outside)


def test_get_errors_are_one_line_and_write_nothing(
    source: SourceRepo, tmp_path: Path, outside: Path
) -> None:
    url = str(source.path)
    not_a_repo = tmp_path / "not-a-repo"
    not_a_repo.mkdir()
    cases = [
        (["get", str(tmp_path / "nowhere"), "model.bin"], 2, "no such repository"),
        (["get", str(not_a_repo), "model.bin"], 1, "cannot clone"),
        (["get", url, "model.bin", "--rev", "no-such-rev"], 1, "unknown revision 'no-such-rev'"),
        (["get", url, "nothing/here"], 2, "nothing/here: not in"),
        (["get", url, "data/images/zzz"], 2, "no such path"),
        (["get", url, "../escape"], 2, "'..' is not allowed"),
        (["get", url, "."], 2, "name a path in the source repository"),
    ]
    for args, code, needle in cases:
        proc = mlv(*args, cwd=outside, check=False)
        assert_error(proc, code, needle)
    assert list(outside.iterdir()) == []


def test_get_hides_credentials_in_errors(outside: Path) -> None:
    proc = mlv("get", "https://user:s3cret@127.0.0.1:9/repo.git", "x", cwd=outside, check=False)
    line = assert_error(proc, 1, "cannot clone")
    assert "s3cret" not in line


# ---- import and update --------------------------------------------------------------------


def test_import_tracks_the_source(source: SourceRepo, mlv_repo: Path) -> None:
    proc = mlv("import", "../source", "data/images", "--rev", "main", cwd=mlv_repo)
    assert "Imported data/images" in proc.stdout
    doc = read_pointer(mlv_repo / "images.mlv")
    assert doc["source"] == {
        "url": "../source",  # relative to the repository root, like a folder remote
        "path": "data/images",
        "rev": "main",
        "commit": source.commits["v2"],
    }
    assert list(doc) == ["version", "path", "kind", "hash", "size", "files", "source"]
    assert doc["kind"] == "dir" and doc["files"] == 3
    assert snapshot(mlv_repo / "images") == {
        "a.jpg": b"image a v1",
        "b.jpg": b"image b v2",
        "sub": "<dir>",
        "sub/c.txt": b"c v1",
    }
    assert "images.mlv" in staged(mlv_repo) and ".gitignore" in staged(mlv_repo)
    assert "/images" in (mlv_repo / ".gitignore").read_text().splitlines()
    status = status_json(mlv_repo)
    assert [(t["path"], t["status"]) for t in status["targets"]] == [("images", "clean")]


def test_import_file_without_rev_and_git_file(source: SourceRepo, mlv_repo: Path) -> None:
    mlv("import", str(source.path), "model.bin", "-o", "models/m.bin", cwd=mlv_repo)
    doc = read_pointer(mlv_repo / "models" / "m.bin.mlv")
    assert doc["source"] == {
        "url": str(source.path),
        "path": "model.bin",
        "commit": source.commits["v2"],
    }
    assert (mlv_repo / "models" / "m.bin").read_bytes() == b"model v2"
    mlv("import", str(source.path), "params.yaml", "--rev", "v1", cwd=mlv_repo)
    assert (mlv_repo / "params.yaml").read_bytes() == b"lr: 0.1\n"
    assert read_pointer(mlv_repo / "params.yaml.mlv")["source"]["rev"] == "v1"
    status = status_json(mlv_repo)
    assert {t["status"] for t in status["targets"]} == {"clean"}


def test_import_refusals(source: SourceRepo, mlv_repo: Path, tmp_path: Path) -> None:
    url = str(source.path)
    proc = mlv("import", "https://u:tok3n@example.com/r.git", "x", cwd=mlv_repo, check=False)
    line = assert_error(proc, 2, "credentials")
    assert "tok3n" not in line
    (mlv_repo / "model.bin").write_bytes(b"mine")
    proc = mlv("import", url, "model.bin", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "model.bin: already exists", "--force")
    assert (mlv_repo / "model.bin").read_bytes() == b"mine"
    assert not (mlv_repo / "model.bin.mlv").exists()
    mlv("add", "-q", "model.bin", cwd=mlv_repo)
    proc = mlv("import", url, "model.bin", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "already tracked by model.bin.mlv")
    mlv("import", url, "model.bin", "--force", cwd=mlv_repo)
    assert (mlv_repo / "model.bin").read_bytes() == b"model v2"
    assert read_pointer(mlv_repo / "model.bin.mlv")["source"]["path"] == "model.bin"
    # the same import again is fine (and moves to the revision asked for)
    mlv("import", url, "model.bin", "--rev", "v1", cwd=mlv_repo)
    assert (mlv_repo / "model.bin").read_bytes() == b"model v1"
    proc = mlv("import", url, "data", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "not one tracked directory")
    proc = mlv("import", url, "model.bin", "--rev", "nope", "-o", "x", cwd=mlv_repo, check=False)
    assert_error(proc, 1, "unknown revision")
    assert not (mlv_repo / "x").exists() and not (mlv_repo / "x.mlv").exists()


def test_import_outside_a_repository_is_refused(source: SourceRepo, outside: Path) -> None:
    proc = mlv("import", str(source.path), "model.bin", cwd=outside, check=False)
    assert_error(proc, 1, "not inside an mlv repository")
    assert list(outside.iterdir()) == []


def test_update_follows_the_branch_and_moves_to_a_tag(source: SourceRepo, mlv_repo: Path) -> None:
    mlv("import", "../source", "data/images", cwd=mlv_repo)
    proc = mlv("update", "images", cwd=mlv_repo)
    assert "already up to date" in proc.stdout

    write_files(source.path, {"data/images/b.jpg": b"image b v3", "data/images/new.txt": b"n"})
    mlv("add", "-q", "data/images", cwd=source.path)
    commit_all(source.path, "v3")
    v3 = _head(source.path)
    proc = mlv("update", "images.mlv", cwd=mlv_repo)  # not pushed: the source's cache has it
    assert "Updated images" in proc.stdout
    assert read_pointer(mlv_repo / "images.mlv")["source"]["commit"] == v3
    assert (mlv_repo / "images" / "b.jpg").read_bytes() == b"image b v3"
    assert (mlv_repo / "images" / "new.txt").read_bytes() == b"n"
    assert "images.mlv" in staged(mlv_repo)

    mlv("update", "images", "--rev", "v1", cwd=mlv_repo)
    doc = read_pointer(mlv_repo / "images.mlv")
    assert doc["source"]["rev"] == "v1" and doc["source"]["commit"] == source.commits["v1"]
    assert snapshot(mlv_repo / "images") == {
        "a.jpg": b"image a v1",
        "sub": "<dir>",
        "sub/c.txt": b"c v1",
    }
    # the recorded rev stays: a new commit on main does not move it
    assert "already up to date" in mlv("update", "images", cwd=mlv_repo).stdout
    status = status_json(mlv_repo)
    assert [t["status"] for t in status["targets"]] == ["clean"]


def test_update_with_the_same_data_moves_only_the_commit(
    source: SourceRepo, mlv_repo: Path
) -> None:
    mlv("import", "../source", "model.bin", "--rev", "v1", cwd=mlv_repo)
    before = read_pointer(mlv_repo / "model.bin.mlv")
    write_files(source.path, {"README": b"docs"})
    commit_all(source.path, "docs only")
    git("tag", "docs", cwd=source.path)
    mlv("checkout", "-q", "--force", cwd=source.path)
    write_files(source.path, {"model.bin": b"model v1"})
    mlv("add", "-q", "model.bin", cwd=source.path)
    commit_all(source.path, "back to model v1")
    proc = mlv("update", "model.bin", "--rev", "main", cwd=mlv_repo)
    assert "did not change" in proc.stdout
    after = read_pointer(mlv_repo / "model.bin.mlv")
    assert after["hash"] == before["hash"]
    assert after["source"]["commit"] == _head(source.path)


def test_update_refuses_over_workspace_changes(source: SourceRepo, mlv_repo: Path) -> None:
    mlv("import", "../source", "data/images", "--rev", "v1", cwd=mlv_repo)
    pointer_before = (mlv_repo / "images.mlv").read_bytes()
    (mlv_repo / "images" / "a.jpg").write_bytes(b"edited")
    proc = mlv("update", "images", "--rev", "v2", cwd=mlv_repo, check=False)
    assert_error(proc, 1, "images: has changes", "--force")
    assert (mlv_repo / "images.mlv").read_bytes() == pointer_before
    assert (mlv_repo / "images" / "a.jpg").read_bytes() == b"edited"
    mlv("update", "images", "--rev", "v2", "--force", cwd=mlv_repo)
    assert (mlv_repo / "images" / "a.jpg").read_bytes() == b"image a v1"
    assert (mlv_repo / "images" / "b.jpg").read_bytes() == b"image b v2"


def test_update_of_a_path_that_is_not_an_import(source: SourceRepo, mlv_repo: Path) -> None:
    write_files(mlv_repo, {"local.bin": b"x"})
    mlv("add", "-q", "local.bin", cwd=mlv_repo)
    proc = mlv("update", "local.bin", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "local.bin: not an import")
    proc = mlv("update", "nothing", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "not tracked")


def test_update_json(source: SourceRepo, mlv_repo: Path) -> None:
    mlv("import", "../source", "model.bin", "--rev", "v1", cwd=mlv_repo)
    doc = json.loads(mlv("update", "model.bin", "--rev", "dev", "--json", cwd=mlv_repo).stdout)
    assert doc["action"] == "update" and doc["changed"] is True and doc["ok"] is True
    assert doc["old_commit"] == source.commits["v1"]
    assert doc["source"] == {
        "url": "../source",
        "path": "model.bin",
        "rev": "dev",
        "commit": source.commits["dev"],
    }
    assert (mlv_repo / "model.bin").read_bytes() == b"model dev"


def test_commit_of_edited_imported_data_keeps_its_source(
    source: SourceRepo, mlv_repo: Path
) -> None:
    mlv("import", "../source", "data/images", "--rev", "v1", cwd=mlv_repo)
    before = read_pointer(mlv_repo / "images.mlv")
    (mlv_repo / "images" / "a.jpg").write_bytes(b"edited locally")
    mlv("commit", "images", cwd=mlv_repo)
    doc = read_pointer(mlv_repo / "images.mlv")
    assert doc["hash"] != before["hash"]
    assert doc["source"] == before["source"]  # still an import: `mlv update` can move it
    assert [t["status"] for t in status_json(mlv_repo)["targets"]] == ["clean"]
    mlv("update", "images", "--rev", "v2", "--force", cwd=mlv_repo)
    assert (mlv_repo / "images" / "a.jpg").read_bytes() == b"image a v1"
