"""`mlv install`: git hooks that check out data on `git checkout`, push it on `git push` and
warn about uncommitted data on `git commit`, run by real git."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import helpers
import pytest
from helpers import MLV, assert_error, commit_all, git, mlv, object_path, snapshot, write_files, xxh

from mlv.core import hooks

HOOKS = ("post-checkout", "pre-commit", "pre-push")


def hooks_dir(repo: Path) -> Path:
    return repo / ".git" / "hooks"


def hook_bytes(repo: Path) -> dict[str, bytes]:
    return {h: (hooks_dir(repo) / h).read_bytes() for h in HOOKS}


def remote_objects(remote: Path) -> set[str]:
    """The objects on a folder remote, loose or packed."""
    return set(helpers.remote_objects(remote))


def two_versions(repo: Path) -> tuple[dict[str, bytes | str], dict[str, bytes | str]]:
    """m.txt and data/ at v1 (commit tagged v1), then at v2 (main); snapshots of data/."""
    write_files(repo, {"m.txt": "model 1", "data/a.txt": "a1", "data/old.txt": "old"})
    mlv("add", "m.txt", "data", cwd=repo)
    commit_all(repo, "v1")
    git("tag", "v1", cwd=repo)
    v1 = snapshot(repo / "data")
    write_files(repo, {"m.txt": "model 2", "data/a.txt": "a2", "data/new/b.txt": "b"})
    (repo / "data" / "old.txt").unlink()
    mlv("commit", cwd=repo)
    commit_all(repo, "v2")
    return v1, snapshot(repo / "data")


def with_bare_origin(repo: Path, tmp_path: Path) -> Path:
    origin = tmp_path / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    git("remote", "add", "origin", str(origin), cwd=repo)
    return origin


def remote_has(origin: Path, ref: str) -> bool:
    return git("rev-parse", "-q", "--verify", ref, cwd=origin, check=False).returncode == 0


def write_hook(repo: Path, name: str, text: str, mode: int = 0o755) -> Path:
    path = hooks_dir(repo) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


# ---- install --------------------------------------------------------------------------


def test_install_writes_marked_executable_hooks_once(mlv_repo: Path) -> None:
    proc = mlv("install", cwd=mlv_repo)
    assert "Installed git hooks in .git/hooks: post-checkout, pre-commit, pre-push." in proc.stdout
    first = hook_bytes(mlv_repo)
    for name in HOOKS:
        path = hooks_dir(mlv_repo) / name
        assert os.access(path, os.X_OK)
        assert first[name].startswith(b"#!/bin/sh\n")
        assert hooks.MARKER.encode() in first[name]
    mtimes = {h: (hooks_dir(mlv_repo) / h).stat().st_mtime_ns for h in HOOKS}
    again = mlv("install", cwd=mlv_repo)
    assert again.stdout.strip() == "mlv git hooks are already installed in .git/hooks."
    assert hook_bytes(mlv_repo) == first
    assert {h: (hooks_dir(mlv_repo) / h).stat().st_mtime_ns for h in HOOKS} == mtimes
    # from a subfolder too
    (mlv_repo / "sub").mkdir()
    assert "already installed" in mlv("install", cwd=mlv_repo / "sub").stdout


def test_install_outside_git_and_outside_mlv(tmp_path: Path, git_repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert_error(
        mlv("install", cwd=plain, check=False), 2, "not inside a git work tree", "git init"
    )
    assert_error(mlv("install", cwd=git_repo, check=False), 1, "no .mlv/", "mlv init")
    assert not any((hooks_dir(git_repo) / h).exists() for h in HOOKS)
    assert_error(mlv("install", "--uninstall", cwd=plain, check=False), 2, "git work tree")


def test_install_respects_core_hooks_path(mlv_repo: Path) -> None:
    git("config", "core.hooksPath", "githooks", cwd=mlv_repo)
    proc = mlv("install", cwd=mlv_repo)
    assert "in githooks:" in proc.stdout
    assert all((mlv_repo / "githooks" / h).is_file() for h in HOOKS)
    assert not any((hooks_dir(mlv_repo) / h).exists() for h in HOOKS)
    v1, _v2 = two_versions(mlv_repo)
    git("checkout", "-q", "v1", cwd=mlv_repo)
    assert snapshot(mlv_repo / "data") == v1


# ---- post-checkout --------------------------------------------------------------------


def test_git_checkout_brings_the_data_along(mlv_repo: Path) -> None:
    v1, v2 = two_versions(mlv_repo)
    mlv("install", cwd=mlv_repo)
    proc = git("checkout", "-q", "v1", cwd=mlv_repo)
    assert "Restored" in proc.stderr + proc.stdout
    assert (mlv_repo / "m.txt").read_text() == "model 1"
    assert snapshot(mlv_repo / "data") == v1
    git("checkout", "-q", "main", cwd=mlv_repo)
    assert (mlv_repo / "m.txt").read_text() == "model 2"
    assert snapshot(mlv_repo / "data") == v2
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0
    # a file checkout does not run mlv (flag 0); nor does a new branch on the same commit
    quiet = git("checkout", "-q", "-b", "topic", cwd=mlv_repo)
    assert "mlv" not in quiet.stderr
    files = git("checkout", "v1", "--", "m.txt.mlv", cwd=mlv_repo)
    assert "Restored" not in files.stderr
    assert (mlv_repo / "m.txt").read_text() == "model 2"


def test_missing_cache_objects_do_not_fail_the_checkout(mlv_repo: Path) -> None:
    two_versions(mlv_repo)
    mlv("install", cwd=mlv_repo)
    lost = object_path(mlv_repo, xxh(b"model 1"))
    lost.chmod(0o644)
    lost.unlink()
    proc = git("checkout", "v1", cwd=mlv_repo, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "m.txt" in proc.stderr and "missing from the cache" in proc.stderr
    assert "run `mlv pull`" in proc.stderr
    assert (
        git("rev-parse", "HEAD", cwd=mlv_repo).stdout
        == git("rev-parse", "v1^{commit}", cwd=mlv_repo).stdout
    )
    assert (mlv_repo / "data" / "old.txt").read_text() == "old"  # the rest was checked out


def test_unsaved_edits_are_kept_and_the_checkout_still_succeeds(mlv_repo: Path) -> None:
    two_versions(mlv_repo)
    mlv("install", cwd=mlv_repo)
    (mlv_repo / "m.txt").chmod(0o644)
    (mlv_repo / "m.txt").write_text("edited, never added")
    proc = git("checkout", "v1", cwd=mlv_repo, check=False)
    assert proc.returncode == 0
    assert (mlv_repo / "m.txt").read_text() == "edited, never added"
    assert "not in the cache, left alone" in proc.stderr
    assert "does not fully match" in proc.stderr and "mlv pull" not in proc.stderr
    assert (mlv_repo / "data" / "old.txt").read_text() == "old"


def test_hooks_use_mlv_on_path_when_the_interpreter_is_gone(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1, v2 = two_versions(mlv_repo)
    mlv("install", cwd=mlv_repo)
    hook = hooks_dir(mlv_repo) / "post-checkout"
    hook.write_text(hooks.script("post-checkout", python="/nonexistent/python3"))
    # a package named mlv at the repository root never stands in for the real one
    write_files(mlv_repo, {"mlv/__init__.py": "raise SystemExit(99)\n"})
    monkeypatch.setenv("PATH", os.path.dirname(MLV) + os.pathsep + os.environ["PATH"])
    git("checkout", "-q", "v1", cwd=mlv_repo)
    assert snapshot(mlv_repo / "data") == v1
    # `mlv install` puts its own interpreter back, which ignores the mlv/ folder too
    assert "Installed" in mlv("install", cwd=mlv_repo).stdout
    assert b"/nonexistent/python3" not in hook.read_bytes()
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    git("checkout", "-q", "main", cwd=mlv_repo)
    assert snapshot(mlv_repo / "data") == v2


# ---- pre-push -------------------------------------------------------------------------


def test_git_push_pushes_the_data(mlv_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    two_versions(mlv_repo)
    mlv("remote", "add", "-d", "store", str(store), cwd=mlv_repo)
    commit_all(mlv_repo, "remote")
    origin = with_bare_origin(mlv_repo, tmp_path)
    mlv("install", cwd=mlv_repo)
    git("push", "-q", "origin", "main", cwd=mlv_repo)
    assert remote_has(origin, "main")
    pushed = remote_objects(store)
    assert {xxh(b"model 2"), xxh(b"a2"), xxh(b"b")} <= pushed
    assert xxh(b"model 1") not in pushed  # only the data of the commits pushed
    git("push", "-q", "origin", "v1", cwd=mlv_repo)  # an annotated-or-not tag: its commit
    assert {xxh(b"model 1"), xxh(b"a1"), xxh(b"old")} <= remote_objects(store)
    # deleting a branch pushes nothing and does not fail
    git("push", "-q", "origin", "main:other", cwd=mlv_repo)
    git("push", "-q", "origin", ":other", cwd=mlv_repo)
    assert not remote_has(origin, "other")


def test_failed_data_push_stops_git_push(mlv_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    two_versions(mlv_repo)
    mlv("remote", "add", "-d", "store", str(store), cwd=mlv_repo)
    commit_all(mlv_repo, "remote")
    origin = with_bare_origin(mlv_repo, tmp_path)
    mlv("install", cwd=mlv_repo)
    lost = object_path(mlv_repo, xxh(b"a2"))
    lost.chmod(0o644)
    lost.unlink()
    proc = git("push", "origin", "main", cwd=mlv_repo, check=False)
    assert proc.returncode != 0
    assert not remote_has(origin, "main")
    assert "data/a.txt" in proc.stderr and "not in the cache" in proc.stderr
    assert "git push --no-verify" in proc.stderr
    git("push", "-q", "--no-verify", "origin", "main", cwd=mlv_repo)
    assert remote_has(origin, "main")


def test_git_push_without_an_mlv_remote_only_notes_it(mlv_repo: Path, tmp_path: Path) -> None:
    two_versions(mlv_repo)
    origin = with_bare_origin(mlv_repo, tmp_path)
    mlv("install", cwd=mlv_repo)
    proc = git("push", "origin", "main", cwd=mlv_repo)
    assert remote_has(origin, "main")
    assert "no mlv remote configured" in proc.stderr


# ---- pre-commit -----------------------------------------------------------------------


def test_commit_with_unrecorded_data_warns_but_commits(mlv_repo: Path) -> None:
    two_versions(mlv_repo)
    mlv("install", cwd=mlv_repo)
    (mlv_repo / "m.txt").chmod(0o644)
    (mlv_repo / "m.txt").write_text("model 3")
    write_files(mlv_repo, {"notes.txt": "x"})
    git("add", "notes.txt", cwd=mlv_repo)
    proc = git("commit", "-q", "-m", "notes", cwd=mlv_repo)
    assert "warning: tracked data changed" in proc.stderr
    assert "modified     m.txt" in proc.stderr and "modified     data" not in proc.stderr
    assert git("log", "-1", "--format=%s", cwd=mlv_repo).stdout.strip() == "notes"
    mlv("commit", cwd=mlv_repo)
    clean = git("commit", "-q", "-m", "model 3", cwd=mlv_repo)
    assert "warning" not in clean.stderr


# ---- chaining with the user's hooks and uninstall ------------------------------------

GIT_DIR = '"$(git rev-parse --git-dir)"'
USER_PRE_COMMIT = f'#!/bin/sh\necho "user pre-commit $#" >> {GIT_DIR}/marks\n'
USER_PRE_PUSH = f'#!/bin/sh\necho "args $*" > {GIT_DIR}/push-input\ncat >> {GIT_DIR}/push-input\n'
USER_POST_CHECKOUT = f'#!/bin/sh\necho "user post-checkout $3" >> {GIT_DIR}/marks\n'


def test_existing_hooks_are_kept_and_run_first(mlv_repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    v1, _v2 = two_versions(mlv_repo)
    mlv("remote", "add", "-d", "store", str(store), cwd=mlv_repo)
    commit_all(mlv_repo, "remote")
    origin = with_bare_origin(mlv_repo, tmp_path)
    write_hook(mlv_repo, "pre-commit", USER_PRE_COMMIT)
    write_hook(mlv_repo, "pre-push", USER_PRE_PUSH)
    write_hook(mlv_repo, "post-checkout", USER_POST_CHECKOUT)
    proc = mlv("install", cwd=mlv_repo)
    assert "Kept the existing pre-push hook: it runs first, from .git/hooks/pre-push.pre-mlv" in (
        proc.stdout
    )
    assert (hooks_dir(mlv_repo) / "pre-push.pre-mlv").read_text() == USER_PRE_PUSH
    first = hook_bytes(mlv_repo)
    assert "already installed" in mlv("install", cwd=mlv_repo).stdout
    assert hook_bytes(mlv_repo) == first

    marks = mlv_repo / ".git" / "marks"
    git("checkout", "-q", "v1", cwd=mlv_repo)
    assert snapshot(mlv_repo / "data") == v1
    assert marks.read_text() == "user post-checkout 1\n"
    git("checkout", "-q", "main", cwd=mlv_repo)

    (mlv_repo / "m.txt").chmod(0o644)
    (mlv_repo / "m.txt").write_text("model 3")
    proc = git("commit", "-q", "--allow-empty", "-m", "empty", cwd=mlv_repo)
    assert marks.read_text().splitlines()[-1] == "user pre-commit 0"
    assert "warning: tracked data changed" in proc.stderr
    mlv("checkout", "--force", cwd=mlv_repo)

    git("push", "-q", "origin", "main", cwd=mlv_repo)
    head = git("rev-parse", "HEAD", cwd=mlv_repo).stdout.strip()
    seen = (mlv_repo / ".git" / "push-input").read_text()
    assert seen == f"args origin {origin}\nrefs/heads/main {head} refs/heads/main {'0' * 40}\n"
    assert xxh(b"model 2") in remote_objects(store)


def test_failing_user_hooks_still_block(mlv_repo: Path, tmp_path: Path) -> None:
    two_versions(mlv_repo)
    origin = with_bare_origin(mlv_repo, tmp_path)
    write_hook(mlv_repo, "pre-commit", "#!/bin/sh\necho 'user says no' >&2\nexit 3\n")
    write_hook(mlv_repo, "pre-push", "#!/bin/sh\ncat >/dev/null\nexit 1\n")
    mlv("install", cwd=mlv_repo)
    before = git("rev-parse", "HEAD", cwd=mlv_repo).stdout
    proc = git("commit", "--allow-empty", "-m", "blocked", cwd=mlv_repo, check=False)
    assert proc.returncode != 0 and "user says no" in proc.stderr
    assert git("rev-parse", "HEAD", cwd=mlv_repo).stdout == before
    assert git("push", "origin", "main", cwd=mlv_repo, check=False).returncode != 0
    assert not remote_has(origin, "main")


def test_uninstall_restores_the_earlier_hooks_exactly(mlv_repo: Path) -> None:
    user = write_hook(mlv_repo, "pre-commit", USER_PRE_COMMIT + "# no newline at end", 0o750)
    before = user.read_bytes()
    mlv("install", cwd=mlv_repo)
    assert hooks.MARKER.encode() in user.read_bytes()
    proc = mlv("install", "--uninstall", cwd=mlv_repo)
    assert "Removed mlv git hooks from .git/hooks: post-checkout, pre-commit, pre-push." in (
        proc.stdout
    )
    assert "Restored the earlier pre-commit hook." in proc.stdout
    assert user.read_bytes() == before
    assert stat.S_IMODE(user.stat().st_mode) == 0o750
    left = [p.name for p in hooks_dir(mlv_repo).iterdir() if not p.name.endswith(".sample")]
    assert left == ["pre-commit"]
    again = mlv("install", "--uninstall", cwd=mlv_repo)
    assert again.returncode == 0
    assert again.stdout.strip() == "mlv git hooks are not installed in .git/hooks."
    assert user.read_bytes() == before


def test_install_refuses_when_it_cannot_keep_a_hook(mlv_repo: Path) -> None:
    write_hook(mlv_repo, "pre-push", "#!/bin/sh\nexit 0\n")
    write_hook(mlv_repo, "pre-push.pre-mlv", "#!/bin/sh\nexit 0\n")
    proc = mlv("install", cwd=mlv_repo, check=False)
    assert_error(proc, 1, "pre-push.pre-mlv already exists")
    assert not (hooks_dir(mlv_repo) / "post-checkout").exists()  # all or nothing
    assert (hooks_dir(mlv_repo) / "pre-push").read_text() == "#!/bin/sh\nexit 0\n"
