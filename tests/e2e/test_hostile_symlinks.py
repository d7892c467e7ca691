"""A cloned repository cannot make mlv write, replace or delete anything through a symbolic
link it commits (issue 13, item 2).

Each test builds a hostile repository with real git: a committed link `link -> OUTSIDE` (a
folder next to the repository holding files of its own) and a pointer, tree or stage out
whose path runs through it, with the data on a folder remote. The victim clones it and runs
mlv; OUTSIDE must stay byte for byte as it was: no new file, no deleted or changed file,
no .gitignore.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import (
    assert_error,
    git,
    mlv,
    object_path,
    push_commit_clone,
    snapshot,
    write_files,
    xxh,
)

OUTSIDE_FILES = {"keep.txt": "precious", "payload": "the outside's own payload"}


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    write_files(outside, OUTSIDE_FILES)
    return outside


def _author(tmp_path: Path, mlv_repo: Path) -> tuple[Path, Path]:
    """The author's repository with a folder remote (committed config); returns (repo,
    outside)."""
    outside = _outside(tmp_path)
    mlv("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=mlv_repo)
    return mlv_repo, outside


def _file_through_link(tmp_path: Path, mlv_repo: Path) -> tuple[Path, Path]:
    """payload.mlv says `path: link/payload`, and git has link -> OUTSIDE."""
    author, outside = _author(tmp_path, mlv_repo)
    write_files(author, {"payload": "hostile bytes"})
    mlv("add", "payload", cwd=author)
    mlv("push", cwd=author)
    (author / "payload").unlink()
    ptr = author / "payload.mlv"
    ptr.write_text(ptr.read_text().replace("path: payload", "path: link/payload"))
    (author / "link").symlink_to(outside)
    return push_commit_clone(author, tmp_path), outside


def _dir_at_link(tmp_path: Path, mlv_repo: Path) -> tuple[Path, Path]:
    """dd.mlv tracks a folder (without keep.txt), and git has dd -> OUTSIDE."""
    author, outside = _author(tmp_path, mlv_repo)
    write_files(author, {"dd/payload": "hostile bytes", "dd/new.txt": "new"})
    mlv("add", "dd", cwd=author)
    mlv("push", cwd=author)
    shutil.rmtree(author / "dd")
    (author / "dd").symlink_to(outside)
    git("add", "-f", "dd", cwd=author)
    return push_commit_clone(author, tmp_path), outside


def _link_inside_tracked_dir(
    tmp_path: Path, mlv_repo: Path, ignored: bool = False
) -> tuple[Path, Path]:
    """data.mlv tracks data/ with data/sub/payload; git has data/sub -> OUTSIDE (added with
    -f into the ignored folder). ignored: a committed .mlvignore hides sub from the scan."""
    author, outside = _author(tmp_path, mlv_repo)
    write_files(author, {"data/sub/payload": "hostile bytes", "data/top.txt": "top"})
    mlv("add", "data", cwd=author)
    mlv("push", cwd=author)
    shutil.rmtree(author / "data")
    (author / "data").mkdir()
    (author / "data" / "sub").symlink_to(outside)
    git("add", "-f", "data/sub", cwd=author)
    if ignored:
        (author / ".mlvignore").write_text("sub\n")
    return push_commit_clone(author, tmp_path), outside


def _unchanged(outside: Path) -> None:
    assert snapshot(outside) == {k: v.encode() for k, v in OUTSIDE_FILES.items()}


# ---- pull and checkout: a pointer through a committed link -------------------------------


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_pull_never_writes_through_a_committed_link(
    tmp_path: Path, mlv_repo: Path, force: list[str]
) -> None:
    victim, outside = _file_through_link(tmp_path, mlv_repo)
    proc = mlv("pull", *force, cwd=victim, check=False)
    _unchanged(outside)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert (
        f"error: link/payload: 'link' is a symbolic link (to {outside}): mlv does not write "
        "through links: remove the link (`git rm -f link`" in proc.stderr
    )
    _unchanged(outside)


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_checkout_never_writes_through_a_committed_link(
    tmp_path: Path, mlv_repo: Path, force: list[str]
) -> None:
    victim, outside = _file_through_link(tmp_path, mlv_repo)
    mlv("fetch", cwd=victim)  # the data in the cache: checkout has something to write
    proc = mlv("checkout", *force, cwd=victim, check=False)
    _unchanged(outside)
    assert_error(proc, 1, "link/payload: 'link' is a symbolic link", "mlv does not write")
    assert not (victim / ".gitignore").read_text().count("link")


def test_checkout_of_a_path_inside_a_dir_below_a_link(tmp_path: Path, mlv_repo: Path) -> None:
    """`mlv checkout data/sub/payload` names a path below the committed link data/sub: the
    name resolves outside the repository, so it is no target of it (usage error)."""
    victim, outside = _link_inside_tracked_dir(tmp_path, mlv_repo)
    mlv("fetch", cwd=victim)
    for force in ([], ["--force"]):
        proc = mlv("checkout", *force, "data/sub/payload", cwd=victim, check=False)
        assert_error(proc, 2, "data/sub/payload: outside the repository")
        _unchanged(outside)


def test_a_committed_gitignore_link_is_never_written(tmp_path: Path, mlv_repo: Path) -> None:
    """sub/.gitignore -> OUTSIDE/keep.txt: mlv neither appends to nor replaces it."""
    author, outside = _author(tmp_path, mlv_repo)
    write_files(author, {"sub/payload": "hostile bytes"})
    mlv("add", "sub/payload", cwd=author)
    (author / "sub" / "payload").unlink()
    (author / "sub" / ".gitignore").unlink()
    (author / "sub" / ".gitignore").symlink_to(outside / "keep.txt")
    victim = push_commit_clone(author, tmp_path)
    proc = mlv("pull", cwd=victim, check=False)
    assert_error(proc, 1, "sub/.gitignore: is a symbolic link", "mlv does not write")
    _unchanged(outside)
    assert (victim / "sub" / ".gitignore").is_symlink()


# ---- a committed link where a tracked folder goes ----------------------------------------


def test_pull_refuses_a_link_where_a_tracked_folder_goes(tmp_path: Path, mlv_repo: Path) -> None:
    victim, outside = _dir_at_link(tmp_path, mlv_repo)
    proc = mlv("pull", cwd=victim, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (
        f"error: dd: is a symbolic link (to {outside}): mlv does not write through links: "
        "remove the link (`git rm -f dd`, or `rm dd` if git does not track it), or use --force "
        "to replace the link (never what it points to)"
    ) in proc.stderr
    _unchanged(outside)
    assert (victim / "dd").is_symlink()


def test_pull_force_replaces_the_link_itself(tmp_path: Path, mlv_repo: Path) -> None:
    victim, outside = _dir_at_link(tmp_path, mlv_repo)
    proc = mlv("pull", "--force", cwd=victim)
    assert "Traceback" not in proc.stderr
    _unchanged(outside)
    assert not (victim / "dd").is_symlink()
    assert snapshot(victim / "dd") == {"payload": b"hostile bytes", "new.txt": b"new"}


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_checkout_at_a_link_where_a_tracked_folder_goes(
    tmp_path: Path, mlv_repo: Path, force: list[str]
) -> None:
    victim, outside = _dir_at_link(tmp_path, mlv_repo)
    mlv("fetch", cwd=victim)
    proc = mlv("checkout", *force, cwd=victim, check=False)
    _unchanged(outside)
    if force:
        assert proc.returncode == 0, proc.stderr
        assert snapshot(victim / "dd") == {"payload": b"hostile bytes", "new.txt": b"new"}
    else:
        assert_error(proc, 1, "dd: is a symbolic link", "use --force to replace the link")


# ---- links inside a tracked folder -------------------------------------------------------


@pytest.mark.parametrize("ignored", [False, True], ids=["scanned", "mlvignored"])
@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_link_inside_a_tracked_folder(
    tmp_path: Path, mlv_repo: Path, force: list[str], ignored: bool
) -> None:
    """data/sub -> OUTSIDE inside tracked data/ (the tree wants data/sub/payload): nothing
    is written into or deleted below OUTSIDE, whether the scan sees the link or a committed
    .mlvignore hides it."""
    victim, outside = _link_inside_tracked_dir(tmp_path, mlv_repo, ignored)
    proc = mlv("pull", *force, cwd=victim, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "data/sub" in proc.stderr
    _unchanged(outside)
    assert (victim / "data" / "sub").is_symlink()


# ---- rm, mv, unprotect, commit, gc -------------------------------------------------------


@pytest.mark.parametrize("outs", [[], ["--outs"]], ids=["keep", "outs"])
def test_rm_never_touches_what_a_link_leads_to(
    tmp_path: Path, mlv_repo: Path, outs: list[str]
) -> None:
    victim, outside = _file_through_link(tmp_path, mlv_repo)
    proc = mlv("rm", *outs, "payload.mlv", cwd=victim, check=False)
    _unchanged(outside)
    assert_error(proc, 1, "link/payload: 'link' is a symbolic link")
    assert (victim / "payload.mlv").exists()


def test_mv_never_moves_through_a_link(tmp_path: Path, mlv_repo: Path) -> None:
    victim, outside = _file_through_link(tmp_path, mlv_repo)
    proc = mlv("mv", "payload.mlv", "moved", cwd=victim, check=False)
    _unchanged(outside)
    assert_error(proc, 1, "link/payload: 'link' is a symbolic link")
    assert not (victim / "moved").exists()


def test_mv_never_moves_into_a_link(tmp_path: Path, mlv_repo: Path) -> None:
    victim, outside = _file_through_link(tmp_path, mlv_repo)
    write_files(victim, {"mine.txt": "mine"})
    mlv("add", "mine.txt", cwd=victim)
    proc = mlv("mv", "mine.txt", "link/mine.txt", cwd=victim, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    _unchanged(outside)
    assert (victim / "mine.txt").read_text() == "mine"


@pytest.mark.parametrize("cmd", ["unprotect", "commit"])
def test_unprotect_and_commit_never_write_through_a_link(
    tmp_path: Path, mlv_repo: Path, cmd: str
) -> None:
    victim, outside = _file_through_link(tmp_path, mlv_repo)
    mlv("config", "cache.type", "hardlink", cwd=victim)  # commit would relink the file
    proc = mlv(cmd, "payload.mlv", cwd=victim, check=False)
    _unchanged(outside)
    assert_error(proc, 1, "link/payload: 'link' is a symbolic link")
    assert not (outside / "payload.mlv").exists()


def test_commit_of_a_folder_that_is_a_link(tmp_path: Path, mlv_repo: Path) -> None:
    victim, outside = _dir_at_link(tmp_path, mlv_repo)
    mlv("config", "cache.type", "hardlink", cwd=victim)
    proc = mlv("commit", "dd", cwd=victim, check=False)
    _unchanged(outside)
    assert_error(proc, 1, "dd: is a symbolic link")
    assert os.stat(outside / "payload").st_nlink == 1


def test_gc_leaves_what_links_lead_to(tmp_path: Path, mlv_repo: Path) -> None:
    victim, outside = _dir_at_link(tmp_path, mlv_repo)
    mlv("fetch", cwd=victim)
    proc = mlv("gc", "-w", "--force", cwd=victim, check=False)
    assert "Traceback" not in proc.stderr
    _unchanged(outside)


# ---- repro and get/import ----------------------------------------------------------------


def test_repro_refuses_an_out_below_a_committed_link(tmp_path: Path, mlv_repo: Path) -> None:
    author, outside = _author(tmp_path, mlv_repo)
    (author / "lnk").symlink_to(outside)
    (author / "mlv.yaml").write_text(
        "stages:\n  s:\n    cmd: echo hi > lnk/payload\n    outs:\n      - lnk/payload\n"
    )
    victim = push_commit_clone(author, tmp_path)
    proc = mlv("repro", cwd=victim, check=False)
    assert_error(proc, 1, "output lnk/payload lies below lnk, a symbolic link")
    _unchanged(outside)


def test_get_and_import_never_write_through_a_link(tmp_path: Path, mlv_repo: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(mlv_repo, source)
    write_files(source, {"file.txt": "from the source"})
    git("add", "file.txt", cwd=source)
    git("commit", "-q", "-m", "source", cwd=source)
    victim, outside = _file_through_link(tmp_path, mlv_repo)
    proc = mlv("get", str(source), "file.txt", "-o", "link/file.txt", cwd=victim, check=False)
    assert_error(proc, 1, "link/file.txt: 'link' is a symbolic link")
    proc = mlv("import", str(source), "file.txt", "-o", "link/file.txt", cwd=victim, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    _unchanged(outside)


# ---- links where mlv keeps its own files ---------------------------------------------------


def _own_folder_link(tmp_path: Path, mlv_repo: Path, rel: str) -> tuple[Path, Path]:
    """A repository that commits the link rel -> OUTSIDE below .mlv/ (with data to pull)."""
    author, outside = _author(tmp_path, mlv_repo)
    write_files(author, {"payload": "hostile bytes"})
    mlv("add", "payload", cwd=author)
    mlv("push", cwd=author)
    victim = tmp_path / "victim"
    git("add", "-A", cwd=author)
    git("commit", "-q", "-m", "data", cwd=author)
    git("clone", "-q", str(author), str(victim), cwd=tmp_path)
    link = victim / rel
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    git("add", "-f", rel, cwd=victim)
    git("commit", "-q", "-m", "hostile", cwd=victim)
    clone = tmp_path / "clone"
    git("clone", "-q", str(victim), str(clone), cwd=tmp_path)
    return clone, outside


@pytest.mark.parametrize(
    "rel", [".mlv/tmp", ".mlv/cache", ".mlv/cache/xxh128", ".mlv/cache/xxh128/SHARD"]
)
def test_committed_links_in_mlv_folders_are_refused(
    tmp_path: Path, mlv_repo: Path, rel: str
) -> None:
    """A pull would write the lock, the state database or objects through them (a shard
    link to a folder whose files a shell sources would run the pulled bytes)."""
    rel = rel.replace("SHARD", xxh(b"hostile bytes")[7:9])  # where the payload goes
    clone, outside = _own_folder_link(tmp_path, mlv_repo, rel)
    proc = mlv("pull", cwd=clone, check=False)
    _unchanged(outside)
    # Two refusals guard this: the link itself, and (checked first for links inside the
    # cache) any file git tracks in mlv's per-machine folders. Either one is right.
    line = assert_error(proc, 1)
    assert (f"{rel}: is a symbolic link" in line and "does not write through links" in line) or (
        "is tracked by git" in line and "git rm -r --cached" in line
    ), line


@pytest.mark.parametrize("target", ["OUTSIDE", ".git"])
def test_init_never_writes_through_a_committed_mlv_link(
    tmp_path: Path, git_repo: Path, target: str
) -> None:
    """A clone commits `.mlv -> ../outside` (or `.mlv -> .git`): every command refused it
    but `mlv init --force`, which wrote config.yaml, tmp/ and .gitignore behind the link,
    the one the refusal of a plain `mlv init` suggests."""
    outside = _outside(tmp_path)
    (git_repo / ".mlv").symlink_to(outside if target == "OUTSIDE" else target)
    git("add", ".mlv", cwd=git_repo)
    git("commit", "-q", "-m", "hostile", cwd=git_repo)
    clone = tmp_path / "clone"
    git("clone", "-q", str(git_repo), str(clone), cwd=tmp_path)
    git_before = snapshot(clone / ".git")
    for args in (["init"], ["init", "--force"], ["status"]):
        line = assert_error(mlv(*args, cwd=clone, check=False), 1, ".mlv: is a symbolic link")
        assert "does not write through links" in line and "`git rm -f .mlv`" in line, line
    _unchanged(outside)
    assert snapshot(clone / ".git") == git_before
    git("rm", "-q", "-f", ".mlv", cwd=clone)  # the hint
    mlv("init", cwd=clone)
    assert (clone / ".mlv").is_dir() and not (clone / ".mlv").is_symlink()
    assert (clone / ".mlv" / "config.yaml").is_file()
    _unchanged(outside)


def test_a_cache_link_the_user_made_still_works(tmp_path: Path, mlv_repo: Path) -> None:
    """.mlv/cache -> a larger disk, made on this machine (git does not track it)."""
    author, _ = _author(tmp_path, mlv_repo)
    write_files(author, {"payload": "bytes"})
    mlv("add", "payload", cwd=author)
    victim = push_commit_clone(author, tmp_path)
    disk = tmp_path / "disk"
    disk.mkdir()
    (victim / ".mlv" / "cache").symlink_to(disk)
    mlv("pull", cwd=victim)
    assert (victim / "payload").read_text() == "bytes"
    assert any((disk / "xxh128").iterdir())


# ---- reading through a committed link: the exfiltration of a secret ------------------------

# Incompressible bytes: a pack stores them as they are, so a search of the remote finds them.
SECRET = bytes(range(256)) * 2 + os.urandom(1024)


def _secret(tmp_path: Path) -> Path:
    secret = tmp_path / "home" / ".ssh" / "id_rsa"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(SECRET)
    return secret


def _nowhere(secret: Path, *roots: Path) -> None:
    """No file below roots holds the secret's bytes, or is named by its hash."""
    hexpart = xxh(SECRET).partition(":")[2]
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                assert hexpart[2:] != name, f"{path} is the secret's object"
                assert SECRET not in path.read_bytes(), f"{path} holds the secret"
    assert secret.read_bytes() == SECRET


def _exfiltrating_clone(tmp_path: Path, mlv_repo: Path, how: str) -> tuple[Path, Path, str]:
    """A repository whose committed link leads to the victim's secret, with its own folder
    remote named in the committed config; returns (victim's clone, secret, link's path).

    how: "dir" (data/model.bin inside the tracked folder data/, added with git add -f),
    "file" (model.bin is a tracked file: model.bin.mlv's data is the link), "chain"
    (data/model.bin -> ../keys/id, and keys/id -> the secret: both git tracked),
    "dep" (a stage's dependency), "out" (a stage's output)."""
    secret = _secret(tmp_path)
    author, _ = _author(tmp_path, mlv_repo)
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
        (author / "keys" / "id").symlink_to(secret)
        (author / link).symlink_to("../keys/id")
    elif how in ("dep", "out"):  # mlv.lock records a run with a real file, then the link
        link = "model.bin"
        stage = (
            "cmd: echo x > out.txt\n    deps: [model.bin]\n    outs: [out.txt]"
            if how == "dep"
            else "cmd: echo w > model.bin\n    outs: [model.bin]"
        )
        (author / "mlv.yaml").write_text(f"stages:\n  s:\n    {stage}\n")
        if how == "dep":
            write_files(author, {link: "weights"})
        mlv("repro", cwd=author)
        (author / link).unlink()
        (author / link).symlink_to(secret)
    else:
        (author / link).symlink_to(secret)
    git("add", "-f", link, cwd=author)
    return push_commit_clone(author, tmp_path), secret, link


@pytest.mark.parametrize("how", ["dir", "file", "chain"])
def test_a_committed_link_to_a_secret_never_reaches_the_remote(
    tmp_path: Path, mlv_repo: Path, how: str
) -> None:
    """The clone's `mlv status` suggests `mlv commit`; the user follows it and pushes to the
    remote the clone's config names: the secret is neither hashed into the cache nor sent."""
    victim, secret, link = _exfiltrating_clone(tmp_path, mlv_repo, how)
    mlv("pull", cwd=victim, check=False)
    proc = mlv("status", cwd=victim, check=False)
    assert "Traceback" not in proc.stderr
    assert f"{link}: a symbolic link that git tracks leads out of the work tree" in (
        proc.stdout + proc.stderr
    ), proc.stdout + proc.stderr
    # (`mlv add` of the folder or file is refused anyway: git tracks something in it)
    proc = mlv("commit", cwd=victim, check=False)
    line = assert_error(proc, 1, f"{link}: a symbolic link that git tracks leads out")
    assert f"git rm -f {link}" in line
    proc = mlv("push", cwd=victim, check=False)
    assert "Traceback" not in proc.stderr
    _nowhere(secret, victim / ".mlv" / "cache", tmp_path / "remote")


@pytest.mark.parametrize("how", ["dep", "out"])
def test_repro_never_reads_a_secret_through_a_committed_link(
    tmp_path: Path, mlv_repo: Path, how: str
) -> None:
    """A stage's dependency or output that is a committed link to a secret: repro (and
    `mlv commit`, which records outputs) refuses it; nothing reaches the cache or remote."""
    victim, secret, link = _exfiltrating_clone(tmp_path, mlv_repo, how)
    mlv("pull", cwd=victim, check=False)
    reads = [["repro"], ["repro", "--force"]]
    if how == "out":  # a dependency is neither shown by status nor recorded by commit
        reads += [["status"], ["commit"]]
    for args in reads:
        proc = mlv(*args, cwd=victim, check=False)
        assert "Traceback" not in proc.stderr
        assert proc.returncode == 1
        assert f"{link}: a symbolic link that git tracks leads out of the work tree" in (
            proc.stdout + proc.stderr
        ), (args, proc.stdout + proc.stderr)
    mlv("push", cwd=victim, check=False)
    _nowhere(secret, victim / ".mlv" / "cache", tmp_path / "remote")


def test_the_hints_work(tmp_path: Path, mlv_repo: Path) -> None:
    """`git rm -f LINK` (or excluding it in .mlvignore) lets commit and push go on, without the
    secret; `git rm --cached LINK` makes the link the user's: followed, as documented."""
    victim, secret, link = _exfiltrating_clone(tmp_path, mlv_repo, "dir")
    proc = mlv("pull", cwd=victim, check=False)  # checkout would read it to compare
    line = assert_error(proc, 1, f"{link}: a symbolic link that git tracks leads out")
    assert "or exclude it in .mlvignore" in line
    (victim / ".mlvignore").write_text("data/model.bin\n")
    mlv("pull", cwd=victim)
    assert (victim / "data" / "a.txt").read_text() == "a"
    mlv("commit", cwd=victim)
    mlv("push", cwd=victim)
    _nowhere(secret, victim / ".mlv" / "cache", tmp_path / "remote")
    (victim / ".mlvignore").unlink()
    git("rm", "-q", "-f", link, cwd=victim)
    assert "clean" in mlv("status", cwd=victim).stdout
    _nowhere(secret, victim / ".mlv" / "cache", tmp_path / "remote")
    # a link of the user's own (git rm --cached): followed
    (victim / link).symlink_to(secret)
    git("add", "-f", link, cwd=victim)
    assert_error(mlv("commit", cwd=victim, check=False), 1, "git rm --cached data/model.bin")
    git("rm", "-q", "--cached", link, cwd=victim)
    mlv("commit", cwd=victim)
    assert object_path(victim, xxh(SECRET)).read_bytes() == SECRET


def test_a_link_the_user_made_to_an_outside_file_is_followed(
    tmp_path: Path, mlv_repo: Path
) -> None:
    """The decision's case: a dataset assembled from links to a download folder, made on this
    machine (git does not track them): add, status and commit follow them, and git is asked
    once per command at most."""
    downloads = tmp_path / "downloads"
    write_files(downloads, {f"f{i}.bin": f"file {i}" for i in range(20)})
    (mlv_repo / "data").mkdir()
    for i in range(20):
        (mlv_repo / "data" / f"f{i}.bin").symlink_to(downloads / f"f{i}.bin")
    (mlv_repo / "top.bin").symlink_to(downloads / "f0.bin")
    mlv("add", "data", "top.bin", cwd=mlv_repo)
    assert snapshot(mlv_repo / "data")["f3.bin"] == "<link:" + str(downloads / "f3.bin") + ">"
    (downloads / "f3.bin").write_text("changed")
    assert "modified: data/f3.bin" in mlv("status", cwd=mlv_repo).stdout
    mlv("commit", cwd=mlv_repo)
    assert object_path(mlv_repo, xxh(b"changed")).read_bytes() == b"changed"


def test_a_link_of_the_users_through_a_tracked_link_out(tmp_path: Path, mlv_repo: Path) -> None:
    """The user's data/x -> ../keys/id, where keys/id is a committed link to the secret (the
    chain is resolved fully): refused, naming the link git tracks."""
    victim, secret, _ = _exfiltrating_clone(tmp_path, mlv_repo, "chain")
    mlv("pull", cwd=victim, check=False)
    git("rm", "-q", "--cached", "data/model.bin", cwd=victim)
    proc = mlv("commit", cwd=victim, check=False)
    assert_error(
        proc,
        1,
        "data/model.bin: leads out of the work tree",
        "through keys/id, a symbolic link that git tracks",
        "`git rm -f keys/id`",
    )
    _nowhere(secret, victim / ".mlv" / "cache")


@pytest.mark.parametrize("into", [".mlv/config.local.yaml", ".git/config", "sub/.git/config"])
def test_a_committed_link_into_mlv_or_git_is_not_followed(
    tmp_path: Path, mlv_repo: Path, into: str
) -> None:
    author, _ = _author(tmp_path, mlv_repo)
    write_files(author, {"data/a.txt": "a"})
    mlv("add", "data", cwd=author)
    (author / "data" / "conf").symlink_to("../" + into)
    git("add", "-f", "data/conf", cwd=author)
    victim = push_commit_clone(author, tmp_path)
    mlv("config", "--local", "core.hash", "xxh128", cwd=victim)  # config.local.yaml exists
    git("init", "-q", "sub", cwd=victim)  # a repository of the user's inside the clone
    where = ".mlv" if into.startswith(".mlv") else ".git"
    for cmd in ("pull", "commit", "status"):
        proc = mlv(cmd, cwd=victim, check=False)
        assert proc.returncode == 1
        assert f"data/conf: a symbolic link that git tracks leads into {where}" in (
            proc.stdout + proc.stderr
        )


def test_no_link_no_question_to_git(
    tmp_path: Path, mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repository without links never asks git about links; one with links asks once per
    command, however many links and targets."""
    from mlv import git as git_mod
    from mlv.core import workspace

    calls: list[str] = []
    real = git_mod.tracked_links

    def counted(root: str) -> set[str]:
        calls.append(root)
        return real(root)

    monkeypatch.setattr(git_mod, "tracked_links", counted)
    write_files(mlv_repo, {f"d{i}/f{j}": f"{i} {j}" for i in range(3) for j in range(30)})
    for i in range(3):
        mlv("add", f"d{i}", cwd=mlv_repo)
    mlv("status", cwd=mlv_repo)
    assert calls == []
    for i in range(3):
        for j in range(30):
            (mlv_repo / f"d{i}" / f"l{j}").symlink_to(mlv_repo / f"d{i}" / f"f{j}")
    (tmp_path / "out").write_text("outside")
    (mlv_repo / "d1" / "out").symlink_to(tmp_path / "out")
    workspace._TRACKED_LINKS.clear()
    mlv("commit", cwd=mlv_repo)  # it stages each pointer: at most a question per target
    assert 1 <= len(calls) <= 3
    calls.clear()
    mlv("status", cwd=mlv_repo)
    mlv("status", cwd=mlv_repo)
    assert len(calls) == 1  # the index did not change in between


def test_a_committed_params_link_out_is_not_read(tmp_path: Path, mlv_repo: Path) -> None:
    """params.yaml -> a YAML file of the user's holding a token (~/.config/gh/hosts.yml):
    repro would record the value the stage names into mlv.lock, which the user commits."""
    hosts = tmp_path / "user" / "hosts.yml"
    hosts.parent.mkdir()
    hosts.write_text("oauth_token: gho_SECRET\n")
    (mlv_repo / "mlv.yaml").write_text(
        "stages:\n  s:\n    cmd: echo x > out.txt\n    params: [oauth_token]\n    outs: [out.txt]\n"
    )
    author, _ = _author(tmp_path, mlv_repo)
    (author / "params.yaml").symlink_to(hosts)
    victim = push_commit_clone(author, tmp_path)
    proc = mlv("repro", cwd=victim, check=False)
    assert proc.returncode == 1
    assert "params.yaml: a symbolic link that git tracks leads out of the work tree" in (
        proc.stderr
    )
    assert not (victim / "mlv.lock").exists()
    # the user's own link (git does not track it) is read, as before
    git("rm", "-q", "--cached", "params.yaml", cwd=victim)
    mlv("repro", cwd=victim)
    assert "gho_SECRET" in (victim / "mlv.lock").read_text()


def test_resolve_follows_chains_as_realpath(tmp_path: Path) -> None:
    """workspace.resolve gives os.path.realpath's answer and names every link on the way."""
    from mlv.core.workspace import resolve

    root = tmp_path.resolve()
    write_files(root, {"a/b/file": "x"})
    (root / "up").symlink_to("a/../a/b")
    (root / "abs").symlink_to(root / "up" / "file")
    (root / "a" / "hop").symlink_to("../abs")
    (root / "gone").symlink_to("nowhere/../x")
    for rel, links in [
        ("a/hop", ["a/hop", "abs", "up"]),
        ("up/file", ["up"]),
        ("gone", ["gone"]),
        ("a/b/file", []),
    ]:
        real, met = resolve(str(root), rel)
        assert real == os.path.realpath(root / rel), rel
        assert [os.path.relpath(m, root) for m in met] == links, rel


def test_a_committed_link_out_in_a_linked_worktree(tmp_path: Path, mlv_repo: Path) -> None:
    """`.git` is a file there (gitdir: ...): the index is still found and asked."""
    victim, secret, link = _exfiltrating_clone(tmp_path, mlv_repo, "dir")
    work = tmp_path / "work"
    git("worktree", "add", "-q", str(work), cwd=victim)
    mlv("fetch", cwd=victim)
    proc = mlv("status", cwd=work, check=False)
    assert f"{link}: a symbolic link that git tracks leads out" in proc.stdout + proc.stderr
    assert_error(mlv("commit", cwd=work, check=False), 1, f"{link}: a symbolic link")
    _nowhere(secret, victim / ".mlv" / "cache", work / ".mlv")


def test_committed_metrics_and_params_links_out_are_not_shown(
    tmp_path: Path, mlv_repo: Path
) -> None:
    """metrics.json -> ~/.docker/config.json: `mlv metrics show` (which a CI job may post to
    a pull request) refuses it, naming the link."""
    docker = tmp_path / "user" / "config.json"
    docker.parent.mkdir()
    docker.write_text('{"auth": 12345}')
    author, _ = _author(tmp_path, mlv_repo)
    (author / "mlv.yaml").write_text(
        "stages:\n  s:\n    cmd: echo x > out.txt\n    outs: [out.txt]\n"
        "    metrics: [metrics.json]\n"
    )
    (author / "metrics.json").symlink_to(docker)
    victim = push_commit_clone(author, tmp_path)
    for args in (["metrics", "show"], ["metrics", "diff"], ["params", "diff"]):
        proc = mlv(*args, cwd=victim, check=False)
        assert "12345" not in proc.stdout + proc.stderr
        assert_error(proc, 1, "metrics.json: a symbolic link that git tracks leads out")


def test_status_of_a_pointer_below_a_committed_folder_link(tmp_path: Path, mlv_repo: Path) -> None:
    """payload.mlv's path runs through link -> OUTSIDE: status reads nothing there and says
    which committed link leads out; the other targets are listed as usual."""
    victim, outside = _file_through_link(tmp_path, mlv_repo)
    write_files(victim, {"mine.txt": "mine"})
    mlv("add", "mine.txt", cwd=victim)
    proc = mlv("status", cwd=victim, check=False)
    assert proc.returncode == 1
    assert "clean        mine.txt" in proc.stdout
    assert (
        f"link/payload: leads out of the work tree (to {outside}/payload) through link, a "
        "symbolic link that git tracks: mlv does not follow such a link: remove it "
        "(`git rm -f link`)"
    ) in proc.stdout
    _unchanged(outside)


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("mlv.yaml", ("dag",)),
        ("mlv.yaml", ("repro",)),
        ("mlv.lock", ("repro",)),
        (".mlvignore", ("add", "new")),
        ("data/.mlvignore", ("status",)),
    ],
)
def test_committed_pipeline_and_ignore_files_linked_out_are_not_read(
    tmp_path: Path, mlv_repo: Path, name: str, args: tuple[str, ...]
) -> None:
    """mlv.yaml, mlv.lock or a .mlvignore committed as a link to a file of the user's (a
    YAML file whose keys would be printed as stage names) is refused before it is read, as
    git reads no .gitignore through a link; the hint, run, gives a working repository."""
    secret = tmp_path / "user" / "hosts.yml"
    secret.parent.mkdir()
    secret.write_text("stages:\n  gho_SECRET:\n    cmd: echo gho_SECRET\n")
    author, _ = _author(tmp_path, mlv_repo)
    write_files(author, {"data/a.txt": "a"})
    mlv("add", "data", cwd=author)
    if name == "mlv.lock":
        (author / "mlv.yaml").write_text("stages:\n  s:\n    cmd: echo x > out.txt\n")
    mlv("push", cwd=author)
    (author / name).symlink_to(secret)
    git("add", "-A", cwd=author)
    git("add", "-f", name, cwd=author)
    git("commit", "-q", "-m", "hostile", cwd=author)
    victim = tmp_path / "victim"
    git("clone", "-q", str(author), str(victim), cwd=tmp_path)
    mlv("push", cwd=victim, check=False)  # the committed remote: nothing of the secret goes
    write_files(victim, {"new/x.txt": "x"})
    proc = mlv(*args, cwd=victim, check=False)
    assert "gho_SECRET" not in proc.stdout + proc.stderr
    line = assert_error(
        proc, 1, f"{name}: a symbolic link that git tracks leads out of the work tree"
    )
    assert f"`git rm -f {name}`" in line
    git("rm", "-q", "-f", name, cwd=victim)
    mlv(*(("status",) if name == "mlv.yaml" else args), cwd=victim)  # no stages left


def test_a_mlv_folder_committed_below_the_git_root_is_not_trusted(
    tmp_path: Path, mlv_repo: Path
) -> None:
    """A clone commits `sub/.mlv/` with a config.local.yaml whose remote runs a command,
    and `sub/data/model.bin -> ~/.ssh/id_rsa`: `cd sub && mlv pull` must not take sub for a
    folder outside git (which trusted both). The hints, run, lead to a repository that still
    refuses the link."""
    secret = tmp_path / "user" / "id_rsa"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY")
    pwned = tmp_path / "PWNED"
    sub = mlv_repo / "sub"
    write_files(
        sub,
        {
            ".mlv/config.yaml": "core:\n  remote: x\n",
            ".mlv/config.local.yaml": "remote:\n  x:\n    url: ssh://127.0.0.1:1/store\n"
            f"    proxy_command: touch {pwned}\n",
            "data/.keep": "",
        },
    )
    (sub / "data" / "model.bin").symlink_to(secret)
    git("add", "-A", cwd=mlv_repo)
    git("add", "-f", "sub", cwd=mlv_repo)
    git("commit", "-q", "-m", "hostile", cwd=mlv_repo)
    victim = tmp_path / "victim"
    git("clone", "-q", str(mlv_repo), str(victim), cwd=tmp_path)
    here = victim / "sub"
    for cmd in ("pull", "fetch", "push"):
        line = assert_error(mlv(cmd, cwd=here, check=False), 1, "is tracked by git")
        assert "git rm -r --cached .mlv/config.local.yaml" in line
    assert not pwned.exists()
    git("rm", "-q", "-r", "--cached", ".mlv/config.local.yaml", cwd=here)
    (here / ".mlv" / "config.local.yaml").unlink()  # "delete it unless you wrote it"
    proc = mlv("add", "data", cwd=here, check=False)
    assert_error(proc, 1, "data/model.bin: a symbolic link that git tracks leads out")
    assert not (here / "data.mlv").exists()
    assert not pwned.exists()


def test_mlv_init_no_scm_inside_a_git_repository_still_works(tmp_path: Path) -> None:
    """The folder a user made with `mlv init --no-scm` inside a git work tree (git tracks
    nothing of it) works as before, git now asked about its links and own files."""
    top = tmp_path / "top"
    top.mkdir()
    git("init", "-q", cwd=top)
    here = top / "sub"
    here.mkdir()
    mlv("init", "--no-scm", cwd=here)
    mlv("config", "--local", "core.hash", "xxh128", cwd=here)  # a config.local.yaml
    write_files(here, {"data/a.txt": "a"})
    (here / "data" / "b.txt").symlink_to(here / "data" / "a.txt")  # the user's own link
    mlv("add", "data", cwd=here)
    assert "clean" in mlv("status", cwd=here).stdout


def test_a_pointer_committed_as_a_link_out_is_not_read(tmp_path: Path, mlv_repo: Path) -> None:
    """`stolen.mlv -> ../private/model.bin.mlv`: with a cache shared between projects,
    `mlv push` sent the private project's data to the clone's remote. Refused before it is
    read; the hint, run, leaves a repository that pushes nothing of it."""
    private = tmp_path / "private"
    private.mkdir()
    git("init", "-q", cwd=private)
    mlv("init", cwd=private)
    write_files(private, {"model.bin": "PRIVATE WEIGHTS"})
    mlv("add", "model.bin", cwd=private)
    author, _ = _author(tmp_path, mlv_repo)
    (author / "stolen.mlv").symlink_to(private / "model.bin.mlv")
    git("add", "-A", cwd=author)
    git("commit", "-q", "-m", "hostile", cwd=author)
    victim = tmp_path / "victim"
    git("clone", "-q", str(author), str(victim), cwd=tmp_path)
    for cmd in ("push", "status", "checkout"):
        proc = mlv(cmd, cwd=victim, check=False)
        assert "stolen.mlv: a symbolic link that git tracks leads out of the work tree" in (
            proc.stdout + proc.stderr
        ), (cmd, proc.stdout, proc.stderr)
    git("rm", "-q", "-f", "stolen.mlv", cwd=victim)
    mlv("push", cwd=victim)
    assert not any(
        b"PRIVATE" in p.read_bytes() for p in (tmp_path / "remote").rglob("*") if p.is_file()
    )


def test_a_config_committed_as_a_link_out_is_not_read(tmp_path: Path, mlv_repo: Path) -> None:
    """`.mlv/config.yaml -> ~/.config/app/hosts.yml`: `mlv config KEY` printed its values.
    Refused before it is read, by every command; the hint, run, gives a working repository."""
    hosts = tmp_path / "user" / "hosts.yml"
    hosts.parent.mkdir()
    hosts.write_text("core:\n  remote: SECRET6\n")
    config = mlv_repo / ".mlv" / "config.yaml"
    config.unlink()
    config.symlink_to(hosts)
    git("add", "-A", cwd=mlv_repo)
    git("commit", "-q", "-m", "hostile", cwd=mlv_repo)
    victim = tmp_path / "victim"
    git("clone", "-q", str(mlv_repo), str(victim), cwd=tmp_path)
    for args in (
        ("config", "core.remote"),
        ("config", "core.remote", "x"),
        ("remote", "list"),
        ("pull",),
    ):
        proc = mlv(*args, cwd=victim, check=False)
        assert "SECRET6" not in proc.stdout + proc.stderr
        line = assert_error(proc, 1, ".mlv/config.yaml: a symbolic link that git tracks leads out")
        assert "`git rm -f .mlv/config.yaml`" in line
    git("rm", "-q", "-f", ".mlv/config.yaml", cwd=victim)
    mlv("config", "core.remote", "mine", cwd=victim)  # a config of the victim's own
    assert mlv("config", "core.remote", cwd=victim).stdout.strip() == "mine"
    assert hosts.read_text() == "core:\n  remote: SECRET6\n"
