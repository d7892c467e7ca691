"""Reproducing any commit: checkout of old revisions, diff, ls, du, log and the Python API.

Every test gets a copy of a repository with several commits, a branch and a tag (built once
for the module), and runs `mlv` (and real git) against it; the API tests import mlv.api.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (
    assert_error,
    commit_all,
    damage_remote_object,
    git,
    mlv,
    run,
    snapshot,
    write_files,
    xxh,
)
from prebuilt import Prebuilt, make_mlv_repo

from mlv.errors import UsageError

V1 = {
    "data/images/cats/c0.jpg": b"cat 0",
    "data/images/cats/c1.jpg": b"cat 1",
    "data/images/dogs/d0.jpg": b"dog 0",
    "data/labels.csv": b"a,b\n1,2\n",
    "model.bin": b"weights v1",
    "params.yaml": b"lr: 0.1\n",
}


def _unlock(repo: Path) -> None:
    mlv("unprotect", "data", "model.bin", cwd=repo)


@pytest.fixture(scope="module")
def built_history(module_env: Path) -> tuple[Prebuilt, dict[str, object]]:
    """v1 (tag), v2 on main, v3 on main; branch `exp` from v2 with its own model; pushed to
    a folder remote beside the repository (its absolute path in the committed config)."""
    mlv_repo = make_mlv_repo(module_env / "repo")
    remote = module_env / "remote"
    mlv("remote", "add", "-d", "store", str(remote), cwd=mlv_repo)
    write_files(mlv_repo, V1)
    mlv("add", "data", "model.bin", cwd=mlv_repo)
    git("add", "params.yaml", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    git("tag", "v1", cwd=mlv_repo)
    v1 = snapshot(mlv_repo)

    _unlock(mlv_repo)
    write_files(
        mlv_repo,
        {
            "data/images/cats/c1.jpg": b"cat 1, relabelled",
            "data/images/cats/c2.jpg": b"cat 2",
            "model.bin": b"weights v2",
        },
    )
    (mlv_repo / "data/labels.csv").unlink()
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    v2 = snapshot(mlv_repo)

    git("checkout", "-q", "-b", "exp", cwd=mlv_repo)
    _unlock(mlv_repo)
    write_files(mlv_repo, {"model.bin": b"weights exp"})
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "exp")
    exp = snapshot(mlv_repo)
    git("checkout", "-q", "main", cwd=mlv_repo)
    mlv("checkout", cwd=mlv_repo)

    _unlock(mlv_repo)
    write_files(
        mlv_repo, {"data/images/dogs/d0.jpg": b"dog 0, cropped", "params.yaml": "lr: 0.2\n"}
    )
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "v3")
    v3 = snapshot(mlv_repo)
    mlv("push", "--all-branches", "--all-tags", cwd=mlv_repo)
    info = {"repo": mlv_repo, "remote": remote, "v1": v1, "v2": v2, "v3": v3, "exp": exp}
    return Prebuilt(module_env), info


@pytest.fixture
def history(built_history: tuple[Prebuilt, dict[str, object]]) -> dict[str, object]:
    """built_history, a fresh copy for each test at the built path (so the remote URL that
    its commits hold names the copy's remote)."""
    built, info = built_history
    built.copy()
    return dict(info)


def _data(snap: object) -> dict[str, bytes | str]:
    assert isinstance(snap, dict)
    return {k: v for k, v in snap.items() if k.startswith(("data/", "model.bin", "params"))}


# ---- checking out old commits ------------------------------------------------------------


def test_checkout_of_each_revision_restores_its_data(history: dict[str, object]) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    for rev, key in (("v1", "v1"), ("main~1", "v2"), ("exp", "exp"), ("main", "v3")):
        git("checkout", "-q", rev, cwd=repo)
        mlv("checkout", cwd=repo)
        assert _data(snapshot(repo)) == _data(history[key]), rev
        assert json.loads(mlv("status", "--json", cwd=repo).stdout)["clean"]


def test_second_clone_pulls_an_old_revision(history: dict[str, object], tmp_path: Path) -> None:
    repo = history["repo"]
    other = tmp_path / "other"
    git("clone", "-q", str(repo), str(other), cwd=tmp_path)
    git("checkout", "-q", "v1", cwd=other)
    mlv("pull", cwd=other)
    assert _data(snapshot(other)) == _data(history["v1"])
    git("checkout", "-q", "exp", cwd=other)
    proc = mlv("checkout", cwd=other, check=False)
    assert proc.returncode == 1  # exp's model is not in this cache yet
    assert (
        "mlv pull" in proc.stdout + proc.stderr or "not in the cache" in proc.stdout + proc.stderr
    )
    mlv("pull", cwd=other)
    assert _data(snapshot(other)) == _data(history["exp"])


# ---- diff -------------------------------------------------------------------------------


def _diff(repo: Path, *args: str) -> dict[str, object]:
    return json.loads(mlv("diff", "--json", *args, cwd=repo).stdout)


def test_diff_between_commits_lists_files_inside_directories(history: dict[str, object]) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    out = _diff(repo, "v1", "main~1")
    assert out["added"] == [{"path": "data/images/cats/c2.jpg", "hash": xxh(b"cat 2"), "size": 5}]
    assert out["deleted"] == [
        {"path": "data/labels.csv", "hash": xxh(V1["data/labels.csv"]), "size": 8}
    ]
    modified = {m["path"]: m for m in out["modified"]}  # type: ignore[union-attr]
    assert set(modified) == {"data/images/cats/c1.jpg", "model.bin"}
    assert modified["model.bin"]["hash"] == {"old": xxh(b"weights v1"), "new": xxh(b"weights v2")}
    assert modified["model.bin"]["size"] == {"old": 10, "new": 10}
    assert out["renamed"] == [] and out["unknown"] == []


def test_diff_against_the_workspace_and_renames(history: dict[str, object]) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    assert _diff(repo)["modified"] == []
    _unlock(repo)
    os.rename(repo / "data/images/cats/c0.jpg", repo / "data/images/cats/c0-moved.jpg")
    (repo / "model.bin").write_bytes(b"uncommitted")
    out = _diff(repo)
    assert out["b"] == "workspace"
    assert out["renamed"] == [
        {
            "path": {"old": "data/images/cats/c0.jpg", "new": "data/images/cats/c0-moved.jpg"},
            "hash": xxh(b"cat 0"),
            "size": 5,
        }
    ]
    assert [m["path"] for m in out["modified"]] == ["model.bin"]  # type: ignore[index]
    text = mlv("diff", cwd=repo).stdout
    assert "data/images/cats/c0.jpg -> data/images/cats/c0-moved.jpg" in text
    assert "1 renamed, 1 modified" in text
    md = mlv("diff", "--md", cwd=repo).stdout
    assert md.splitlines()[0] == "| Status | Path | Size | Hash |"
    assert "| modified | model.bin |" in md


def test_diff_path_filter_and_bad_revision(history: dict[str, object]) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    out = _diff(repo, "v1", "main", "--path", "data/images/dogs")
    assert [m["path"] for m in out["modified"]] == ["data/images/dogs/d0.jpg"]  # type: ignore[index]
    assert out["added"] == [] and out["deleted"] == []
    assert_error(mlv("diff", "nope", cwd=repo, check=False), 1, "unknown revision 'nope'")


def test_history_before_the_first_commit_says_there_is_none(tmp_path: Path) -> None:
    """A new user's `mlv diff` after `mlv add`, before any commit, said "unknown revision
    'HEAD'", as if HEAD were mistyped."""
    mlv_repo = tmp_path / "new"
    git("init", "-q", str(mlv_repo), cwd=tmp_path)
    mlv("init", cwd=mlv_repo)
    write_files(mlv_repo, {"data/a.txt": "a"})
    mlv("add", "data", cwd=mlv_repo)
    for args in (["diff"], ["log", "data"], ["diff", "HEAD~1"]):
        rev = args[1] if args[1:2] == ["HEAD~1"] else "HEAD"
        assert_error(
            mlv(*args, cwd=mlv_repo, check=False),
            1,
            f"'{rev}' names no commit: this repository has no commits yet: record the "
            "first with `git commit`",
        )
    commit_all(mlv_repo, "v1")
    assert_error(mlv("diff", "HEAD~1", cwd=mlv_repo, check=False), 1, "unknown revision 'HEAD~1'")


def test_diff_reads_only_the_trees_on_changed_paths(mlv_repo: Path) -> None:
    files = {f"data/part{p}/f{i}.txt": f"{p}-{i}" for p in range(20) for i in range(20)}
    write_files(mlv_repo, files)
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "one")
    mlv("unprotect", "data", cwd=mlv_repo)
    write_files(mlv_repo, {"data/part3/f1.txt": "changed", "data/part7/f9.txt": "changed"})
    mlv("commit", cwd=mlv_repo)
    commit_all(mlv_repo, "two")
    proc = mlv("-v", "diff", "HEAD~1", "HEAD", "--json", cwd=mlv_repo)
    reads = [line for line in proc.stderr.splitlines() if "read tree" in line]
    # the top tree and the two changed part trees, on each side: 6 of 42 trees
    assert len(reads) == 6, reads
    modified = json.loads(proc.stdout)["modified"]
    assert [m["path"] for m in modified] == ["data/part3/f1.txt", "data/part7/f9.txt"]


def test_diff_without_the_old_trees_says_so(history: dict[str, object], tmp_path: Path) -> None:
    repo = history["repo"]
    other = tmp_path / "other"
    git("clone", "-q", str(repo), str(other), cwd=tmp_path)
    mlv("remote", "remove", "store", cwd=other)
    out = _diff(other, "v1", "main")
    assert [u["path"] for u in out["unknown"]] == ["data"]  # type: ignore[index]
    assert [m["path"] for m in out["modified"]] == ["model.bin"]  # type: ignore[index]
    text = mlv("diff", "v1", "main", cwd=other)
    assert "data: changed, files not listed" in text.stderr
    # with the remote back, the trees are fetched and the files listed
    git("checkout", "-q", ".mlv/config.yaml", cwd=other)
    out = _diff(other, "v1", "main")
    assert out["unknown"] == []
    assert [m["path"] for m in out["modified"]] == [  # type: ignore[index]
        "data/images/cats/c1.jpg",
        "data/images/dogs/d0.jpg",
        "model.bin",
    ]


# ---- ls, du -----------------------------------------------------------------------------


def test_ls_and_du_at_any_revision(history: dict[str, object]) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    top = mlv("ls", "--rev", "v1", cwd=repo).stdout.splitlines()
    assert top == [".gitignore", "data/", "model.bin", "params.yaml"]
    assert mlv("ls", "data", "--rev", "v1", cwd=repo).stdout.splitlines() == [
        "images/",
        "labels.csv",
    ]
    assert mlv("ls", "data", cwd=repo).stdout.splitlines() == ["images/"]
    listing = json.loads(mlv("ls", "-R", "data", "--rev", "main~1", "--json", cwd=repo).stdout)
    files = {e["path"]: e for e in listing if e["kind"] == "file"}
    assert set(files) == {
        "data/images/cats/c0.jpg",
        "data/images/cats/c1.jpg",
        "data/images/cats/c2.jpg",
        "data/images/dogs/d0.jpg",
    }
    assert files["data/images/cats/c1.jpg"]["hash"] == xxh(b"cat 1, relabelled")
    du = json.loads(mlv("du", "data", "--rev", "v1", "--json", cwd=repo).stdout)
    assert du["size"] == 5 + 5 + 5 + 8 and du["files"] == 4
    assert {e["path"]: e["files"] for e in du["entries"]} == {
        "data/images": 3,
        "data/labels.csv": 1,
    }
    text = mlv("du", "-s", "data/images/cats", "--rev", "v1", cwd=repo).stdout
    assert "data/images/cats (total)" in text and "10 B" in text
    assert_error(mlv("ls", "data/nope", cwd=repo, check=False), 2, "data/nope")


def test_ls_fetches_trees_from_the_remote(history: dict[str, object], tmp_path: Path) -> None:
    repo = history["repo"]
    other = tmp_path / "other"
    git("clone", "-q", str(repo), str(other), cwd=tmp_path)
    out = mlv("ls", "-R", "data/images", "--rev", "v1", cwd=other).stdout.splitlines()
    assert out == ["cats/", "cats/c0.jpg", "cats/c1.jpg", "dogs/", "dogs/d0.jpg"]


# ---- log --------------------------------------------------------------------------------


def test_log_lists_the_commits_that_changed_a_path(history: dict[str, object]) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    commits = {
        name: git("rev-parse", name, cwd=repo).stdout.strip() for name in ("v1", "main~1", "main")
    }
    model = json.loads(mlv("log", "model.bin", "--json", cwd=repo).stdout)
    assert [v["commit"] for v in model] == [commits["main~1"], commits["v1"]]  # not v3
    assert model[0]["hash"] == xxh(b"weights v2") and model[0]["size"] == 10
    dogs = json.loads(mlv("log", "data/images/dogs", "--json", cwd=repo).stdout)
    assert [v["commit"] for v in dogs] == [commits["main"], commits["v1"]]
    assert dogs[1]["files"] == 1
    labels = json.loads(mlv("log", "data/labels.csv", "--json", cwd=repo).stdout)
    assert [(v["commit"], v["status"]) for v in labels] == [
        (commits["main~1"], "deleted"),
        (commits["v1"], "changed"),
    ]
    one = mlv("log", "data", "-n", "1", cwd=repo).stdout
    assert commits["main"][:10] in one and "files" in one
    assert_error(mlv("log", "nowhere", cwd=repo, check=False), 2, "nowhere")


# ---- Python API and mlv:// ---------------------------------------------------------------


def _py(code: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_api_reads_a_file_as_of_three_commits_back(history: dict[str, object]) -> None:
    repo = history["repo"]
    assert isinstance(repo, Path)
    from mlv import api

    _unlock(repo)
    write_files(repo, {"model.bin": b"weights v4"})
    mlv("commit", cwd=repo)
    commit_all(repo, "v4")
    old = os.getcwd()
    os.chdir(repo)
    try:
        # three commits back from v4 is v1; every version in between differs
        assert api.read("model.bin", rev="HEAD~3", mode="rb") == b"weights v1"
        assert api.read("model.bin", rev="HEAD~2", mode="rb") == b"weights v2"
        assert api.read("model.bin", mode="rb") == b"weights v4"
        assert api.read("model.bin", rev="exp", mode="rb") == b"weights exp"
        assert api.read("params.yaml", rev="v1") == "lr: 0.1\n"
        assert api.read("data/images/cats/c1.jpg", repo=str(repo), rev="v1") == "cat 1"
        with api.open("data/images/dogs/d0.jpg", mode="rb") as f:
            assert f.read() == b"dog 0, cropped"
        names = [e["path"] for e in api.ls("data/images/cats", rev="v1")]
        assert names == ["data/images/cats/c0.jpg", "data/images/cats/c1.jpg"]
        # a small object lives inside a pack: no URL of its own, and the error says where
        with pytest.raises(UsageError, match=r"stored inside packs/../[0-9a-f]{32}\.pack"):
            api.get_url("model.bin", rev="v1")
    finally:
        os.chdir(old)


def test_api_in_a_clone_without_cache_reads_from_the_remote(
    history: dict[str, object], tmp_path: Path
) -> None:
    repo = history["repo"]
    other = tmp_path / "other"
    git("clone", "-q", str(repo), str(other), cwd=tmp_path)
    out = _py(
        "import mlv.api\n"
        "print(mlv.api.read('model.bin', rev='HEAD~2', mode='rb'))\n"
        "print(mlv.api.read('data/images/cats/c1.jpg', rev='main~1'))\n",
        other,
    )
    assert out.splitlines() == ["b'weights v1'", "cat 1, relabelled"]
    # a damaged remote object is refused, not returned
    remote = history["remote"]
    assert isinstance(remote, Path)
    damage_remote_object(remote, xxh(b"weights exp"))
    proc = subprocess.run(
        [sys.executable, "-c", "import mlv.api; mlv.api.read('model.bin', rev='origin/exp')"],
        cwd=other,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0 and "corrupt" in proc.stderr


def test_fsspec_mlv_protocol(history: dict[str, object]) -> None:
    repo = history["repo"]
    out = _py(
        "import fsspec, csv, io\n"
        f"opts = dict(repo={str(repo)!r}, rev='v1')\n"
        "with fsspec.open('mlv://data/labels.csv', 'rt', **opts) as f:\n"
        "    print(list(csv.reader(f)))\n"
        "fs = fsspec.filesystem('mlv', **opts)\n"
        "print(fs.ls('data/images', detail=False))\n"
        "print(fs.find('data'))\n"
        "print(fs.info('model.bin')['size'], fs.isdir('data/images'), fs.exists('nope'))\n"
        "print(fs.cat('data/images/cats/c0.jpg'))\n",
        repo if isinstance(repo, Path) else Path("."),
    )
    lines = out.splitlines()
    assert lines[0] == "[['a', 'b'], ['1', '2']]"
    assert lines[1] == "['data/images/cats', 'data/images/dogs']"
    assert lines[2] == str(
        [
            "data/images/cats/c0.jpg",
            "data/images/cats/c1.jpg",
            "data/images/dogs/d0.jpg",
            "data/labels.csv",
        ]
    )
    assert lines[3] == "10 True False"
    assert lines[4] == "b'cat 0'"


def test_api_errors_are_mlv_errors(history: dict[str, object]) -> None:
    repo = history["repo"]
    out = _py(
        "import mlv.api\n"
        "from mlv.errors import MlvError\n"
        "for path, rev in (('nope', None), ('model.bin', 'no-such-rev'), ('data', 'v1')):\n"
        "    try:\n"
        "        mlv.api.read(path, rev=rev)\n"
        "    except MlvError as e:\n"
        "        print(type(e).__name__, e.message)\n",
        repo if isinstance(repo, Path) else Path("."),
    )
    lines = out.splitlines()
    assert lines[0].startswith("UsageError nope: not tracked")
    assert lines[1] == "GitError unknown revision 'no-such-rev'"
    assert lines[2] == "UsageError data: is a directory"


def test_help_lists_the_history_commands() -> None:
    out = run("mlv", "--help", cwd=Path.cwd()).stdout
    for name in ("diff", "ls", "du", "log"):
        assert f"  {name} " in out


def test_api_reads_another_repository_by_url(history: dict[str, object], tmp_path: Path) -> None:
    repo = history["repo"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    url = f"file://{repo}"
    out = _py(
        "import mlv.api, fsspec\n"
        f"print(mlv.api.read('model.bin', repo={url!r}, rev='v1'))\n"
        f"fs = fsspec.filesystem('mlv', repo={url!r}, rev='exp')\n"
        "print(fs.cat('model.bin'), fs.ls('data/images/cats', detail=False))\n",
        elsewhere,
    )
    assert out.splitlines() == [
        "weights v1",
        "b'weights exp' ['data/images/cats/c0.jpg', 'data/images/cats/c1.jpg', "
        "'data/images/cats/c2.jpg']",
    ]
    assert list(elsewhere.iterdir()) == []  # no clone or cache left behind
