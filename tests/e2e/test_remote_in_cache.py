"""A folder remote that is, holds or lies inside the cache folder in effect is refused by
every command that opens it.

The cache has the layout of a remote's loose objects: a clone that commits the remote url
`.mlv/cache` made `mlv gc -r -w -f` delete the user's only copy of an older version from
the cache (review finding 2). Real git, real mlv, a real clone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import assert_error, cache_objects, commit_all, git, mlv, write_files

HINT = "mlv remote modify --local origin url PATH"


def _clone_with_remote(mlv_repo: Path, tmp_path: Path, url: str) -> Path:
    """A repository with two versions of model.bin whose committed remote is `url`, cloned;
    the clone's cache holds both versions (pushed nowhere)."""
    mlv("remote", "add", "-d", "origin", url, cwd=mlv_repo)
    write_files(mlv_repo, {"model.bin": "v1"})
    mlv("add", "model.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    write_files(mlv_repo, {"model.bin": "v2"})
    mlv("add", "model.bin", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    clone = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(clone), cwd=tmp_path)
    shutil.copytree(mlv_repo / ".mlv" / "cache", clone / ".mlv" / "cache")
    mlv("checkout", cwd=clone)
    return clone


COMMANDS = [
    ("push",),
    ("fetch",),
    ("pull",),
    ("gc", "-r", "-w", "-f"),
    ("verify", "--remote"),
    ("remote", "repack", "origin"),
    ("status", "--remote", "origin"),
    ("du", "--remote", "origin"),
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_committed_remote_naming_the_cache_is_refused(
    mlv_repo: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    clone = _clone_with_remote(mlv_repo, tmp_path, ".mlv/cache")
    before = cache_objects(clone)
    assert len(before) == 2
    line = assert_error(
        mlv(*args, cwd=clone, check=False),
        1,
        "remote 'origin'",
        "'.mlv/cache' in .mlv/config.yaml",
        "is this repository's cache",
        HINT,
    )
    assert str(clone / ".mlv" / "cache") in line
    assert cache_objects(clone) == before


def test_the_hint_gives_the_remote_a_folder_of_its_own(mlv_repo: Path, tmp_path: Path) -> None:
    clone = _clone_with_remote(mlv_repo, tmp_path, ".mlv/cache")
    proc = mlv("gc", "-r", "-w", "-f", cwd=clone, check=False)
    hint = assert_error(proc, 1, HINT).split("`")[1]
    store = tmp_path / "store"
    mlv(*hint.replace("PATH", str(store)).split()[1:], cwd=clone)
    mlv("push", cwd=clone)  # the current version only
    mlv("gc", "-r", "-w", "-f", cwd=clone)
    assert len(cache_objects(clone)) == 2  # the cache is not gc -r's
    git("checkout", "-q", "HEAD~1", cwd=clone)
    mlv("checkout", cwd=clone)
    assert (clone / "model.bin").read_text() == "v1"


def test_a_link_to_the_cache_is_followed(mlv_repo: Path, tmp_path: Path) -> None:
    """A committed link `store -> .mlv/cache` is the cache by another name."""
    (mlv_repo / "store").symlink_to(".mlv/cache")
    clone = _clone_with_remote(mlv_repo, tmp_path, "store")
    assert (clone / "store").is_symlink()
    assert_error(
        mlv("gc", "-r", "-w", "-f", cwd=clone, check=False),
        1,
        "'store' in .mlv/config.yaml",
        "is this repository's cache",
        HINT,
    )
    assert len(cache_objects(clone)) == 2


@pytest.mark.parametrize(
    ("remote", "relation"),
    [("shared", "is this"), ("shared/xxh128", "lies inside"), (".", "holds")],
    ids=["same", "inside", "holds"],
)
def test_a_cache_dir_shared_outside_the_repository(
    mlv_repo: Path, tmp_path: Path, remote: str, relation: str
) -> None:
    """cache.dir set for this machine (--local) to a folder outside: a remote that is, lies
    inside or holds it is refused too (the url made absolute from tmp_path/shared's parent)."""
    shared = tmp_path / "shared"
    mlv("cache", "dir", "--local", str(shared), cwd=mlv_repo)
    write_files(mlv_repo, {"f.txt": "data"})
    mlv("add", "f.txt", cwd=mlv_repo)
    url = str((tmp_path / remote).resolve())
    mlv("remote", "add", "-d", "origin", url, cwd=mlv_repo)
    before = cache_objects(mlv_repo, shared)
    for args in (("push",), ("gc", "-r", "-w", "-f")):
        assert_error(
            mlv(*args, cwd=mlv_repo, check=False),
            1,
            f"remote 'origin': its folder {url} {relation}",
            ".mlv/config.yaml",
            HINT,
        )
    assert cache_objects(mlv_repo, shared) == before
    mlv("remote", "modify", "--local", "origin", "url", str(tmp_path / "store"), cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)


# ---- a folder remote inside a git folder, or at the work tree's root ----------------------


def _git_files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_committed_remote_inside_git_is_refused(
    mlv_repo: Path, tmp_path: Path, args: tuple[str, ...]
) -> None:
    """The clone's url `.git/refs/heads` had push write mlv-remote.json, packs/ and index/
    among the branch refs: git warned of broken refs and `git gc` failed (review 61
    finding 3). Every command that opens the remote refuses it; .git is left as it was."""
    clone = _clone_with_remote(mlv_repo, tmp_path, ".git/refs/heads")
    before = _git_files(clone / ".git")
    assert_error(
        mlv(*args, cwd=clone, check=False),
        1,
        f"remote 'origin': its folder {clone / '.git' / 'refs' / 'heads'} lies inside the git "
        f"folder {clone / '.git'}",
        "'.git/refs/heads' in .mlv/config.yaml",
        HINT,
    )
    assert _git_files(clone / ".git") == before
    assert "warning" not in git("branch", cwd=clone).stderr


def test_the_hint_moves_a_remote_out_of_git(mlv_repo: Path, tmp_path: Path) -> None:
    clone = _clone_with_remote(mlv_repo, tmp_path, ".git/refs/heads")
    hint = assert_error(mlv("push", cwd=clone, check=False), 1, HINT).split("`")[1]
    mlv(*hint.replace("PATH", str(tmp_path / "store")).split()[1:], cwd=clone)
    mlv("push", cwd=clone)
    assert (tmp_path / "store" / "mlv-remote.json").is_file()
    git("gc", "-q", cwd=clone)  # git's refs are whole
    assert not list((clone / ".git" / "refs" / "heads").glob("*.json"))


@pytest.mark.parametrize("where", ["git-dir", "nested", "bare", "separate"])
def test_other_git_folders_are_refused(mlv_repo: Path, tmp_path: Path, where: str) -> None:
    """`.git` itself, a nested repository's .git, a bare repository (HEAD, objects/, refs/:
    no `.git` in its name), and the folder a `.git` file names (`git clone
    --separate-git-dir`): each is git's, whatever the url's spelling."""
    if where == "separate":
        mlv("remote", "add", "-d", "origin", str(tmp_path / "x"), cwd=mlv_repo)
        commit_all(mlv_repo, "remote")
        repo = tmp_path / "clone"
        gitdir = tmp_path / "gitdirs" / "clone"
        gitdir.parent.mkdir()
        git("clone", "-q", f"--separate-git-dir={gitdir}", str(mlv_repo), str(repo), cwd=tmp_path)
        assert (repo / ".git").is_file()
        url, folder, relation = str(gitdir / "objects"), gitdir, "lies inside"
        mlv("remote", "modify", "origin", "url", url, cwd=repo)
    else:
        repo = mlv_repo
        if where == "git-dir":
            url, folder, relation = ".git", repo / ".git", "is"
        elif where == "nested":
            git("init", "-q", "vendor/lib", cwd=repo)
            url, folder, relation = "vendor/lib/.git/info", repo / "vendor/lib/.git", "lies inside"
        else:
            git("init", "-q", "--bare", str(tmp_path / "mirror"), cwd=tmp_path)
            url, folder, relation = "../mirror", tmp_path / "mirror", "is"
        mlv("remote", "add", "-d", "origin", url, cwd=repo)
    write_files(repo, {"f.txt": "data"})
    mlv("add", "f.txt", cwd=repo)
    before = _git_files(folder)
    assert_error(
        mlv("push", cwd=repo, check=False),
        1,
        "remote 'origin': its folder ",
        f"{relation} the git folder {folder}",
        HINT,
    )
    assert _git_files(folder) == before


@pytest.mark.parametrize(("url", "relation"), [(".", "is"), ("..", "holds")], ids=["is", "holds"])
def test_a_remote_at_the_work_trees_root_is_refused(
    mlv_repo: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    url: str,
    relation: str,
) -> None:
    """With the cache elsewhere (cache.dir --local), url `.` had push write mlv-remote.json,
    packs/, index/ and the loose objects among the repository's files, which `git add -A`
    would commit; a folder holding the root would take the work tree for the remote's."""
    cache = tmp_path_factory.mktemp("cache")  # not below tmp_path, which ".." names
    mlv("cache", "dir", "--local", str(cache), cwd=mlv_repo)
    mlv("remote", "add", "-d", "origin", url, cwd=mlv_repo)
    write_files(mlv_repo, {"f.txt": "data"})
    mlv("add", "f.txt", cwd=mlv_repo)
    commit_all(mlv_repo, "f")
    line = assert_error(
        mlv("push", cwd=mlv_repo, check=False),
        1,
        f"{relation} this repository's work tree",
        f"'{url}' in .mlv/config.yaml",
        HINT,
    )
    assert not (mlv_repo / "mlv-remote.json").exists()
    assert not git("status", "--porcelain", cwd=mlv_repo).stdout.strip()
    mlv(*line.split("`")[1].replace("PATH", str(tmp_path / "store")).split()[1:], cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)


@pytest.mark.parametrize("where", ["not-ignored", "tracked-data", "ignored"])
def test_a_remote_below_the_work_trees_root(mlv_repo: Path, tmp_path: Path, where: str) -> None:
    """A folder of the work tree that git does not ignore (`git add -A` would commit the
    packs) or inside data mlv tracks (`checkout --force` deletes files added there) is
    refused; a folder git ignores (`store/` in .gitignore) is the user's and works."""
    write_files(mlv_repo, {"data/a.txt": "a", ".gitignore": "/store/\n"})
    mlv("add", "data", cwd=mlv_repo)
    url = {"not-ignored": "src/store", "tracked-data": "data/store", "ignored": "store"}[where]
    mlv("remote", "add", "-d", "origin", url, cwd=mlv_repo)
    commit_all(mlv_repo, "data")
    if where == "ignored":
        mlv("push", cwd=mlv_repo)
        assert (mlv_repo / "store" / "mlv-remote.json").is_file()
        assert not git("status", "--porcelain", cwd=mlv_repo).stdout.strip()
        return
    relation = {
        "not-ignored": f"lies inside this repository's work tree {mlv_repo.resolve()}, where "
        "git does not ignore it",
        "tracked-data": f"lies inside data that mlv tracks ({(mlv_repo / 'data.mlv').resolve()})",
    }[where]
    line = assert_error(
        mlv("push", cwd=mlv_repo, check=False), 1, relation, f"'{url}' in .mlv/config.yaml", HINT
    )
    assert not (mlv_repo / url).exists()
    assert not git("status", "--porcelain", cwd=mlv_repo).stdout.strip()
    mlv(*line.split("`")[1].replace("PATH", str(tmp_path / "store")).split()[1:], cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
