"""A cloned repository cannot make mlv store and push a file of the user's inside the work
tree that git does not track (an ignored `.env`) through a symbolic link it commits.

The hostile repository commits `data/settings -> ../.env` in an mlv-tracked folder (with
`git add -f`) and names its own folder remote. The victim clones it and keeps a secret in
`.env`, which the repository's .gitignore ignores. Before the fix `mlv pull` and
`mlv status` called the link "modified", and the `mlv commit` they suggest hashed the secret
into the cache, which `mlv push` sent to the clone's remote (review finding 6). Links git
does not track, links to files git tracks and links within the folder stay followed.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
from helpers import assert_error, git, mlv, object_path, push_commit_clone, xxh

# Incompressible bytes: a pack stores them as they are, so a search of the remote finds them.
SECRET = b"AWS_SECRET_ACCESS_KEY=" + bytes(range(256)) * 2 + os.urandom(1024)


def _hostile(tmp_path: Path, author: Path, how: str) -> tuple[Path, str, str]:
    """The clone of a repository whose committed link leads to a file of the victim's;
    returns (clone, the link, the file it leads to, relative to the root).

    how: "ignored" (data/settings -> ../.env, which .gitignore ignores), "untracked"
    (data/settings -> ../notes.txt, neither tracked nor ignored), "chain" (data/settings ->
    ../conf/current, and conf/current -> ../.env: both git tracked), "file" (settings is an
    mlv-tracked file: settings.mlv's data is the link), "out" (settings is a stage's
    output in mlv.lock)."""
    mlv("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=author)
    (author / ".gitignore").write_text(".env\n")
    (author / "data").mkdir()
    (author / "data" / "a.txt").write_text("a")
    mlv("add", "data", cwd=author)
    target = "notes.txt" if how == "untracked" else ".env"
    link = "data/settings"
    if how == "file":
        link = "settings"
        (author / link).write_text("weights")
        mlv("add", link, cwd=author)
        (author / link).unlink()
    elif how == "out":
        link = "settings"
        (author / "mlv.yaml").write_text(
            "stages:\n  s:\n    cmd: echo w > settings\n    outs: [settings]\n"
        )
        mlv("repro", cwd=author)
        (author / link).unlink()
    if how == "chain":
        (author / "conf").mkdir()
        (author / "conf" / "current").symlink_to("../.env")
        (author / link).symlink_to("../conf/current")
        git("add", "-f", "conf/current", cwd=author)
    else:
        (author / link).symlink_to(os.path.relpath(author / target, (author / link).parent))
    git("add", "-f", link, cwd=author)
    victim = push_commit_clone(author, tmp_path)
    assert not (victim / target).exists()
    (victim / target).write_bytes(SECRET)  # the victim's own file, which git never sees
    return victim, link, target


def _nowhere(*roots: Path) -> None:
    """No file below roots holds the secret's bytes, or is named by its hash."""
    hexpart = xxh(SECRET).partition(":")[2]
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                assert hexpart[2:] != name, f"{path} is the secret's object"
                assert SECRET not in path.read_bytes(), f"{path} holds the secret"


@pytest.mark.parametrize("how", ["ignored", "untracked", "chain", "file", "out"])
def test_a_committed_link_to_a_file_git_does_not_track_is_refused(
    tmp_path: Path, mlv_repo: Path, how: str
) -> None:
    """pull, status and commit refuse the link with one line naming it, its target and
    `git rm -f LINK`; push sends nothing of the secret; the secret stays as it was."""
    victim, link, target = _hostile(tmp_path, mlv_repo, how)
    real = str((victim / target).resolve())
    where = "" if how in ("file", "out") else "out of the tracked folder "
    needle = f"{link}: a symbolic link that git tracks leads {where}to a file git does not"
    for args in (["pull"], ["pull", "--force"], ["status"], ["commit"]):
        if how == "out" and args[0] == "pull":
            continue  # an output of a stage that never ran here: nothing to compare
        proc = mlv(*args, cwd=victim, check=False)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        out = proc.stdout + proc.stderr
        assert needle in out, (args, out)
        assert f"(to {real})" in out and f"`git rm -f {link}`" in out, (args, out)
    proc = mlv("push", cwd=victim, check=False)
    assert "Traceback" not in proc.stderr
    _nowhere(victim / ".mlv" / "cache", tmp_path / "remote")
    assert (victim / target).read_bytes() == SECRET
    assert not git("status", "--porcelain", cwd=victim).stdout.strip() or how == "untracked"


def _hints(line: str) -> list[list[str]]:
    """The commands an error line names between backticks, as argument lists."""
    return [shlex.split(cmd) for cmd in re.findall(r"`([^`]+)`", line)]


@pytest.mark.parametrize("how", ["ignored", "file"])
def test_the_hints_work(tmp_path: Path, mlv_repo: Path, how: str) -> None:
    """The error's `git rm -f LINK` lets pull, commit and push go on without the secret; its
    `git rm --cached LINK` makes the link the user's own, which mlv follows."""
    victim, link, target = _hostile(tmp_path, mlv_repo, how)
    mlv("pull", cwd=victim, check=False)  # data/ comes; the link is refused
    line = assert_error(mlv("commit", cwd=victim, check=False), 1, f"{link}: a symbolic link")
    remove, own = _hints(line)
    assert remove == ["git", "rm", "-f", link] and own == ["git", "rm", "--cached", link]
    git(*remove[1:], cwd=victim)
    mlv("pull", cwd=victim)
    assert (victim / "data" / "a.txt").read_text() == "a"
    if how == "file":
        assert (victim / link).read_text() == "weights"
    mlv("commit", cwd=victim)
    mlv("push", cwd=victim)
    assert "modified" not in mlv("status", cwd=victim).stdout
    _nowhere(victim / ".mlv" / "cache", tmp_path / "remote")
    # the same link made again and tracked: refused; the second hint makes it the user's
    if os.path.lexists(victim / link):
        (victim / link).unlink()
    (victim / link).symlink_to(os.path.relpath(victim / target, (victim / link).parent))
    git("add", "-f", link, cwd=victim)
    line = assert_error(mlv("commit", cwd=victim, check=False), 1, "git does not track")
    git(*_hints(line)[1][1:], cwd=victim)
    mlv("commit", cwd=victim)
    assert object_path(victim, xxh(SECRET)).read_bytes() == SECRET


def test_links_that_stay_followed(tmp_path: Path, mlv_repo: Path) -> None:
    """A committed link to a file git tracks (public anyway) as the index holds it, a
    committed link within the tracked folder, and a link the user made to an ignored file
    are all followed."""
    author = mlv_repo
    mlv("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=author)
    (author / ".gitignore").write_text(".env\n")
    (author / "README.md").write_text("readme")
    (author / "data" / "sub").mkdir(parents=True)
    (author / "data" / "a.txt").write_text("a")
    (author / "data" / "sub" / "readme").symlink_to("../../README.md")
    (author / "data" / "alias").symlink_to("sub/../a.txt")
    mlv("add", "data", cwd=author)
    git("add", "-f", "README.md", "data/sub/readme", "data/alias", cwd=author)
    # within the folder: followed (in a fresh clone it dangles until the data is there)
    (author / "data" / "a.txt").write_text("a, edited")
    assert "modified" in mlv("status", cwd=author).stdout
    mlv("commit", cwd=author)
    assert "clean" in mlv("status", cwd=author).stdout
    assert object_path(author, xxh(b"a, edited")).read_bytes() == b"a, edited"
    git("rm", "-q", "--cached", "data/alias", cwd=author)
    (author / "data" / "alias").unlink()
    mlv("commit", cwd=author)
    victim = push_commit_clone(author, tmp_path)
    mlv("pull", cwd=victim)
    assert "clean" in mlv("status", cwd=victim).stdout
    (victim / "README.md").write_text("readme, edited")
    git("add", "README.md", cwd=victim)  # unstaged edits are refused (the tests below)
    assert "modified" in mlv("status", cwd=victim).stdout
    (victim / ".env").write_bytes(SECRET)
    (victim / "data" / "mine").symlink_to("../.env")  # the user's own: git does not track it
    mlv("commit", cwd=victim)
    assert object_path(victim, xxh(b"readme, edited")).read_bytes() == b"readme, edited"
    assert object_path(victim, xxh(SECRET)).read_bytes() == SECRET
    assert "clean" in mlv("status", cwd=victim).stdout


def test_a_committed_link_to_the_root_is_refused(tmp_path: Path, mlv_repo: Path) -> None:
    """data -> . (a tracked folder that is a committed link to the work tree's root, with
    a .mlvignore hiding data and .mlv below it) would hash .env as data/.env."""
    author = mlv_repo
    mlv("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=author)
    (author / ".gitignore").write_text(".env\n")
    (author / "data").mkdir()
    (author / "data" / "a.txt").write_text("a")
    mlv("add", "data", cwd=author)
    (author / "data" / "a.txt").unlink()
    (author / "data").rmdir()
    (author / "data").symlink_to(".")
    (author / ".mlvignore").write_text("\n".join(["data/data", "data/.mlv", "data/.git*"]))
    git("add", "-f", "data", cwd=author)
    victim = push_commit_clone(author, tmp_path)
    (victim / ".env").write_bytes(SECRET)
    proc = mlv("status", cwd=victim, check=False)
    assert "data: a symbolic link that git tracks leads to a folder git does not track" in (
        proc.stdout
    ), proc.stdout + proc.stderr
    mlv("commit", cwd=victim, check=False)
    mlv("push", cwd=victim, check=False)
    _nowhere(victim / ".mlv" / "cache", tmp_path / "remote")


def test_a_link_of_the_users_through_a_committed_link(tmp_path: Path, mlv_repo: Path) -> None:
    """The user's data/settings -> ../conf/current, a committed link to .env: refused,
    naming the committed link and its `git rm -f`, which lets commit go on."""
    victim, link, _ = _hostile(tmp_path, mlv_repo, "chain")
    mlv("pull", cwd=victim, check=False)
    git("rm", "-q", "--cached", link, cwd=victim)
    line = assert_error(
        mlv("commit", cwd=victim, check=False),
        1,
        f"{link}: leads out of the tracked folder to a file git does not track",
        "through conf/current, a symbolic link that git tracks",
    )
    remove = _hints(line)[0]
    assert remove == ["git", "rm", "-f", "conf/current"]
    git(*remove[1:], cwd=victim)
    proc = mlv("commit", cwd=victim, check=False)  # data/settings now dangles: its own error
    assert_error(proc, 1, f"{link}: dangling symbolic link")
    _nowhere(victim / ".mlv" / "cache")


# ---- a tracked target whose work-tree copy git would not commit ---------------------------


def _hidden(tmp_path: Path, author: Path, how: str) -> Path:
    """The clone of a repository that tracks a template config/db.yml and commits
    data/settings -> ../config/db.yml; the victim puts the secret in config/db.yml and
    tells git to ignore the edit (how: "skip-worktree", "assume-unchanged"), or leaves it
    unstaged ("unstaged"). git would never commit or push the secret."""
    mlv("remote", "add", "-d", "store", str(tmp_path / "remote"), cwd=author)
    (author / "config").mkdir()
    (author / "config" / "db.yml").write_text("password: CHANGE-ME\n")
    (author / "data").mkdir()
    (author / "data" / "a.txt").write_text("a")
    (author / "data" / "settings").symlink_to("../config/db.yml")
    mlv("add", "data", cwd=author)
    git("add", "-f", "config/db.yml", "data/settings", cwd=author)
    victim = push_commit_clone(author, tmp_path)
    mlv("pull", cwd=victim)
    os.utime(victim / "config" / "db.yml", (1e9, 1e9))  # touched, same bytes: still clean
    assert "clean" in mlv("status", cwd=victim).stdout  # the template, as committed: followed
    if how != "unstaged":
        git("update-index", f"--{how}", "config/db.yml", cwd=victim)
    (victim / "config" / "db.yml").write_bytes(SECRET)
    return victim


@pytest.mark.parametrize("how", ["skip-worktree", "assume-unchanged", "unstaged"])
def test_a_committed_link_to_a_tracked_file_git_would_not_commit_is_refused(
    tmp_path: Path, mlv_repo: Path, how: str
) -> None:
    """A target git tracks but is told not to look at (skip-worktree, assume-unchanged: the
    usual place for local credentials), or whose edits are not staged, is refused like an
    untracked one by pull, status and commit: review 61 finding 4 had the skip-worktree
    secret hashed by `mlv commit` and sent by `mlv push`."""
    victim = _hidden(tmp_path, mlv_repo, how)
    real = str((victim / "config" / "db.yml").resolve())
    if how == "unstaged":
        what = "to a file with edits that git has not staged"
    else:
        what = f"to a file git is told not to look at ({how})"
        assert not git("status", "--porcelain", cwd=victim).stdout.strip()  # git: clean
    leads = "a symbolic link that git tracks leads out of the tracked folder"
    needle = f"data/settings: {leads} {what} (to {real})"
    for args in (["pull"], ["pull", "--force"], ["status"], ["commit"]):
        proc = mlv(*args, cwd=victim, check=False)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        out = proc.stdout + proc.stderr
        assert needle in out and "`git rm -f data/settings`" in out, (args, out)
    proc = mlv("push", cwd=victim, check=False)
    assert "Traceback" not in proc.stderr
    _nowhere(victim / ".mlv" / "cache", tmp_path / "remote")
    assert (victim / "config" / "db.yml").read_bytes() == SECRET


@pytest.mark.parametrize("how", ["skip-worktree", "unstaged"])
def test_the_hints_for_a_tracked_target_work(tmp_path: Path, mlv_repo: Path, how: str) -> None:
    """`git rm -f LINK` lets commit and push go on without the secret; for unstaged edits
    the first hint, `git add TARGET`, stages them and the link is followed again."""
    victim = _hidden(tmp_path, mlv_repo, how)
    line = assert_error(mlv("commit", cwd=victim, check=False), 1, "data/settings: a symbolic")
    hints = _hints(line)
    if how == "unstaged":
        stage = hints.pop(0)
        assert stage == ["git", "add", "config/db.yml"]
        git(*stage[1:], cwd=victim)
        assert "modified" in mlv("status", cwd=victim).stdout
        mlv("commit", cwd=victim)  # the user staged it: the repository's content now
        assert object_path(victim, xxh(SECRET)).read_bytes() == SECRET
        return
    remove, own = hints
    assert remove == ["git", "rm", "-f", "data/settings"]
    assert own == ["git", "rm", "--cached", "data/settings"]
    git(*remove[1:], cwd=victim)
    mlv("commit", cwd=victim)
    mlv("push", cwd=victim)
    assert "modified" not in mlv("status", cwd=victim).stdout
    _nowhere(victim / ".mlv" / "cache", tmp_path / "remote")
    assert (victim / "config" / "db.yml").read_bytes() == SECRET
