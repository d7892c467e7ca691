"""`mlv unprotect` never turns a committed link into a copy of what it points to (security
review finding F3): a clone's `data/model.bin -> ~/.ssh/id_rsa`, refused by status, add and
commit, became a regular copy of the key under `mlv unprotect data`, which `mlv commit`
recorded and `mlv push` sent to the clone's remote. unprotect replaces a symbolic link only
by a copy of the cache object it stands for (cache type `symlink`)."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
from helpers import assert_error, git, mlv, object_path, write_files, xxh

SECRET = bytes(range(256)) * 2 + os.urandom(1024)  # incompressible: found in a pack as is


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(SECRET)
    return secret


def _nowhere(secret: Path, *roots: Path) -> None:
    """No file below roots holds the secret's bytes; the secret itself is untouched."""
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                if not path.is_symlink():
                    assert SECRET not in path.read_bytes(), f"{path} holds the secret"
    assert secret.read_bytes() == SECRET


def _clone(tmp_path: Path, mlv_repo: Path, how: str, target: str = "") -> tuple[Path, str]:
    """The author's repository (a folder remote in its committed config) with a committed
    link, cloned and pulled by the victim; returns (victim, the link's path).

    how: "dir" (data/model.bin inside the tracked folder data/, added with git add -f),
    "file" (model.bin is tracked by model.bin.mlv, and the link is what git has there),
    "chain" (data/model.bin -> ../keys/id, keys/id -> target: both tracked), "into"
    (data/conf -> ../TARGET, a path inside the clone)."""
    author = mlv_repo
    mlv("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=author)
    write_files(author, {"data/a.txt": "a"})
    mlv("add", "data", cwd=author)
    link = "data/model.bin"
    if how == "file":
        link = "model.bin"
        write_files(author, {link: "weights"})
        mlv("add", link, cwd=author)
        (author / link).unlink()
    if how == "chain":
        (author / "keys").mkdir()
        (author / "keys" / "id").symlink_to(target)
        (author / link).symlink_to("../keys/id")
    elif how == "into":
        link = "data/conf"
        (author / link).symlink_to("../" + target)
    else:
        (author / link).symlink_to(target)
    git("add", "-f", link, cwd=author)
    mlv("push", cwd=author)
    git("add", "-A", cwd=author)
    git("commit", "-q", "-m", "hostile", cwd=author)
    victim = tmp_path / "victim"
    git("clone", "-q", str(author), str(victim), cwd=tmp_path)
    mlv("pull", cwd=victim, check=False)  # refused for the link's target; the rest is there
    return victim, link


@pytest.mark.parametrize("how", ["dir", "file", "chain"])
def test_unprotect_refuses_a_committed_link_to_a_secret(
    tmp_path: Path, mlv_repo: Path, how: str
) -> None:
    secret = _secret(tmp_path)
    victim, link = _clone(tmp_path, mlv_repo, how, str(secret))
    named = "model.bin" if how == "file" else "data"
    proc = mlv("unprotect", named, cwd=victim, check=False)
    line = assert_error(proc, 1, f"{link}: a symbolic link that git tracks leads out")
    assert f"`git rm -f {link}`" in line
    if how == "chain":  # the user's own link through the clone's: refused, naming that one
        git("rm", "-q", "--cached", link, cwd=victim)
        proc = mlv("unprotect", named, cwd=victim, check=False)
        assert_error(proc, 1, f"{link}: leads out of", "through keys/id", "`git rm -f keys/id`")
        git("add", "-f", link, cwd=victim)
    assert (victim / link).is_symlink()  # left as it was
    # `mlv rm` (which leaves the data as writable files) refuses it alike
    proc = mlv("rm", named, cwd=victim, check=False)
    assert_error(proc, 1, f"{link}: a symbolic link that git tracks leads out")
    assert (victim / link).is_symlink() and (victim / f"{named}.mlv").exists()
    mlv("commit", cwd=victim, check=False)
    mlv("push", cwd=victim, check=False)
    _nowhere(secret, victim / ".mlv" / "cache", victim / "data", tmp_path / "remote")
    # the hint works: the link removed, unprotect goes on
    git("rm", "-q", "-f", link, cwd=victim)
    assert mlv("unprotect", named, cwd=victim).returncode == 0
    mlv("pull", cwd=victim)
    assert (victim / "data" / "a.txt").read_text() == "a"
    mlv("commit", cwd=victim)
    mlv("push", cwd=victim)
    _nowhere(secret, victim / ".mlv" / "cache", victim / "data", tmp_path / "remote")


@pytest.mark.parametrize("into", [".mlv/config.local.yaml", ".git/config", "sub/.git/config"])
def test_unprotect_refuses_a_committed_link_into_mlv_or_git(
    tmp_path: Path, mlv_repo: Path, into: str
) -> None:
    victim, link = _clone(tmp_path, mlv_repo, "into", into)
    mlv("config", "--local", "core.hash", "xxh128", cwd=victim)  # config.local.yaml exists
    git("init", "-q", "sub", cwd=victim)  # a repository of the user's inside the clone
    where = ".mlv" if into.startswith(".mlv") else ".git"
    proc = mlv("unprotect", "data", cwd=victim, check=False)
    assert_error(proc, 1, f"{link}: a symbolic link that git tracks leads into {where}")
    assert (victim / link).is_symlink()


def test_the_other_hints_work(tmp_path: Path, mlv_repo: Path) -> None:
    """Excluding the link in .mlvignore, or `git rm --cached` (the link becomes the user's):
    unprotect goes on and leaves the link a link, never a copy of what it points to."""
    secret = _secret(tmp_path)
    victim, link = _clone(tmp_path, mlv_repo, "dir", str(secret))
    line = assert_error(mlv("unprotect", "data", cwd=victim, check=False), 1, link)
    assert "or exclude it in .mlvignore" in line
    assert f"`git rm --cached {link}`" in line
    (victim / ".mlvignore").write_text(f"{link}\n")
    assert mlv("unprotect", "data", cwd=victim).stdout == "Unprotected 0 file(s).\n"
    assert (victim / link).is_symlink()
    (victim / ".mlvignore").unlink()
    git("rm", "-q", "--cached", shlex.quote(link), cwd=victim)
    proc = mlv("unprotect", "data", cwd=victim)
    assert proc.stdout.splitlines() == [
        "Unprotected 0 file(s).",
        f"Left {link} as it is: a symbolic link to a file outside the cache "
        "(an edit through it changes that file, never the cache).",
    ]
    assert (victim / link).is_symlink()
    _nowhere(secret, victim / "data", victim / ".mlv" / "cache")


def test_a_link_of_the_users_is_not_copied(tmp_path: Path, mlv_repo: Path) -> None:
    """A link the user made to a download (copy cache type: add left it a link) is left as
    it is: an edit through it changes the download, never the cache."""
    downloads = tmp_path / "downloads"
    write_files(downloads, {"f.bin": "file"})
    write_files(mlv_repo, {"data/a.txt": "a"})
    (mlv_repo / "data" / "f.bin").symlink_to(downloads / "f.bin")
    mlv("add", "data", cwd=mlv_repo)
    proc = mlv("unprotect", "data", cwd=mlv_repo)
    assert proc.stdout.startswith("Unprotected 0 file(s).\nLeft data/f.bin as it is")
    assert (mlv_repo / "data" / "f.bin").is_symlink()


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "shared"])
def test_unprotect_of_cache_links_still_works(tmp_path: Path, mlv_repo: Path, kind: str) -> None:
    """The legitimate use: links into the cache become writable copies of their objects,
    cache objects untouched, in a folder, a file, and one file of a folder; shared: links
    into a cache outside the repository (`mlv cache dir --local`)."""
    cache = None
    if kind == "shared":
        cache = tmp_path / "shared"
        mlv("cache", "dir", "--local", str(cache), cwd=mlv_repo)
        kind = "symlink"
    mlv("config", "cache.type", kind, cwd=mlv_repo)
    files = {"data/a.txt": "alpha", "data/sub/b.txt": "beta", "m.bin": "model"}
    write_files(mlv_repo, files)
    mlv("add", "data", "m.bin", cwd=mlv_repo)
    assert (mlv_repo / "m.bin").is_symlink() == (kind == "symlink")
    proc = mlv("unprotect", "data/sub/b.txt", cwd=mlv_repo)
    assert proc.stdout == "Unprotected 1 file(s).\n"
    assert os.access(mlv_repo / "data" / "sub" / "b.txt", os.W_OK)
    assert mlv("unprotect", "data", "m.bin", cwd=mlv_repo).stdout == "Unprotected 2 file(s).\n"
    for rel, content in files.items():
        work = mlv_repo / rel
        assert not work.is_symlink() and work.stat().st_nlink == 1, rel
        assert work.read_text() == content
        work.write_text("edited")
        assert object_path(mlv_repo, xxh(content.encode()), cache).read_text() == content
    mlv("commit", cwd=mlv_repo)  # records the edits (and links them again)
    for rel in files:
        assert (mlv_repo / rel).read_text() == "edited"
    assert "clean" in mlv("status", cwd=mlv_repo).stdout


def test_a_damaged_or_missing_cache_object_is_not_copied(tmp_path: Path, mlv_repo: Path) -> None:
    """A symlink's object is checked against its hash while it is copied: bit rot does not
    become a workspace file that `mlv commit` would record. The hints work."""
    mlv("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=mlv_repo)
    mlv("config", "cache.type", "symlink", cwd=mlv_repo)
    write_files(mlv_repo, {"m.bin": "model"})
    mlv("add", "m.bin", cwd=mlv_repo)
    mlv("push", cwd=mlv_repo)
    obj = object_path(mlv_repo, xxh(b"model"))
    obj.chmod(0o644)
    obj.write_text("mode!")
    proc = mlv("unprotect", "m.bin", cwd=mlv_repo, check=False)
    line = assert_error(proc, 1, f"m.bin: links to cache object {xxh(b'model')}, which is damaged")
    assert f"delete it (`rm {obj}`) and run `mlv pull m.bin`" in line
    assert (mlv_repo / "m.bin").is_symlink()
    obj.unlink()
    proc = mlv("unprotect", "m.bin", cwd=mlv_repo, check=False)
    assert_error(proc, 1, "which is not in the cache", "run `mlv pull m.bin`")
    mlv("pull", "m.bin", cwd=mlv_repo)
    assert mlv("unprotect", "m.bin", cwd=mlv_repo).stdout == "Unprotected 1 file(s).\n"
    assert (mlv_repo / "m.bin").read_text() == "model"
    assert not (mlv_repo / "m.bin").is_symlink()
