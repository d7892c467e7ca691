"""A source repository (`mlv get`, `import`, `update`) is its author's: its config, committed
or config.local.yaml alike, cannot make mlv run a command (docs/security.md). Real git, real
mlv commands."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from helpers import assert_error, commit_all, git, mlv, write_files

ZEROS = "a" * 40  # a commit the source does not have: update moves to main


def _source(folder: Path) -> Path:
    """A repository holding f.txt (tracked by mlv), committed; nothing pushed anywhere."""
    folder.mkdir()
    git("init", "-q", "-b", "main", cwd=folder)
    mlv("init", "-q", cwd=folder)
    write_files(folder, {"f.txt": "data\n"})
    mlv("add", "-q", "f.txt", cwd=folder)
    commit_all(folder, "data")
    return folder


def _hostile_clone(tmp_path: Path, marker: Path) -> Path:
    """The attack of review finding F2: a repository that commits a bare repository
    vendor/src.git holding .mlv/config.local.yaml (a remote with proxy_command) and an
    import pointer whose source is that bare repository; cloned by the victim."""
    src = _source(tmp_path / "w")
    bare = tmp_path / "src.git"
    git("init", "-q", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    git("push", "-q", str(bare), "HEAD:main", cwd=src)
    h = (src / "f.txt.mlv").read_text().split("hash: ")[1].split()[0]
    author = tmp_path / "hostile"
    author.mkdir()
    git("init", "-q", "-b", "main", cwd=author)
    mlv("init", "-q", cwd=author)
    vendored = author / "vendor" / "src.git"
    shutil.copytree(bare, vendored)
    shutil.rmtree(vendored / "hooks")
    (vendored / ".mlv").mkdir()
    (vendored / ".mlv" / "config.local.yaml").write_text(
        "core:\n  remote: x\nremote:\n  x:\n    url: ssh://127.0.0.1:1/s\n"
        f"    proxy_command: touch {marker}\n"
    )
    (author / "data.mlv").write_text(
        f"version: 1\npath: data\nkind: file\nhash: {h}\nsize: 5\nsource:\n"
        f"  url: vendor/src.git\n  path: f.txt\n  commit: {ZEROS}\n  rev: main\n"
    )
    git("add", "-A", cwd=author)
    git("add", "-f", "vendor", cwd=author)
    git("commit", "-q", "-m", "x", cwd=author)
    victim = tmp_path / "victim"
    git("clone", "-q", str(author), str(victim), cwd=tmp_path)
    return victim


def test_update_of_a_source_committed_in_the_clone_runs_no_command(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    victim = _hostile_clone(tmp_path, marker)
    line = assert_error(
        mlv("update", "data.mlv", cwd=victim, check=False),
        1,
        "vendor/src.git/.mlv/config.local.yaml",
        "remote.x.proxy_command",
        "refused",
        "mlv config --global remote.x.proxy_command",
    )
    assert "source repository" in line
    for args in (
        ("get", "vendor/src.git", "f.txt", "-o", "g"),
        ("import", "vendor/src.git", "f.txt"),
    ):
        assert_error(mlv(*args, cwd=victim, check=False), 1, "proxy_command", "refused")
    assert not marker.exists()
    assert not (victim / "data").exists() and not (victim / "g").exists()


def test_a_source_config_local_cannot_vouch_for_its_committed_config(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """In the root repository, config.local.yaml setting the same option lifts the refusal
    of the committed one (the user chose it); a source's config.local.yaml is no user's."""
    marker = tmp_path / "PWNED"
    src = _source(tmp_path / "source")
    shutil.rmtree(src / ".mlv" / "cache")
    options = f"url: ssh://127.0.0.1:1/s\n    proxy_command: touch {marker}\n"
    (src / ".mlv" / "config.yaml").write_text(f"core:\n  remote: x\nremote:\n  x:\n    {options}")
    commit_all(src, "remote")
    (src / ".mlv" / "config.local.yaml").write_text(f"remote:\n  x:\n    {options}")
    assert_error(
        mlv("get", str(src), "f.txt", cwd=mlv_repo, check=False), 1, "proxy_command", "refused"
    )
    assert not marker.exists()


def test_the_global_config_may_decide_a_source_option(tmp_path: Path) -> None:
    """The hint works: the user's global config holding the same value is the user's choice."""
    marker = tmp_path / "ran"
    victim = _hostile_clone(tmp_path, marker)
    mlv("config", "--global", "remote.x.proxy_command", f"touch {marker}", cwd=victim)
    proc = mlv("update", "data.mlv", cwd=victim, check=False)
    assert proc.returncode == 1 and "refused" not in proc.stderr, proc.stderr
    assert marker.exists()


def test_a_source_config_local_still_gives_its_remote_url(mlv_repo: Path, tmp_path: Path) -> None:
    """A user's own source: its config.local.yaml points the remote at the folder it has on
    this machine (the committed URL is elsewhere); get and import use it."""
    src = _source(tmp_path / "source")
    store = tmp_path / "store"
    mlv("remote", "add", "-d", "store", "/nonexistent/store", cwd=src)
    commit_all(src, "remote")
    mlv("remote", "modify", "--local", "store", "url", str(store), cwd=src)
    mlv("push", "-q", cwd=src)
    shutil.rmtree(src / ".mlv" / "cache")
    mlv("get", str(src), "f.txt", "-o", "got.txt", cwd=mlv_repo)
    assert (mlv_repo / "got.txt").read_text() == "data\n"
    mlv("import", str(src), "f.txt", cwd=mlv_repo)
    assert (mlv_repo / "f.txt").read_text() == "data\n"


def test_a_source_config_local_still_gives_its_credentials(
    tmp_path: Path, s3_server: object, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The S3 keys a user keeps in their source's config.local.yaml reach the remote when
    `mlv get` reads from it (no AWS_* variables anywhere)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    endpoint = s3_server.endpoint_url  # type: ignore[attr-defined]
    src = _source(tmp_path / "source")
    mlv("remote", "add", "-d", "s3", f"s3://{s3_bucket}/store", cwd=src)
    mlv("remote", "modify", "s3", "endpoint_url", endpoint, cwd=src)
    mlv("remote", "modify", "s3", "region", "us-east-1", cwd=src)
    commit_all(src, "remote")
    mlv("remote", "modify", "--local", "s3", "key", "AKIATESTKEY0000", cwd=src)
    mlv("remote", "modify", "--local", "s3", "secret", "s3cr3t-source", cwd=src)
    mlv("push", "-q", cwd=src)
    shutil.rmtree(src / ".mlv" / "cache")
    outside = tmp_path / "plain"
    outside.mkdir()
    mlv("get", str(src), "f.txt", cwd=outside)
    assert (outside / "f.txt").read_text() == "data\n"


def test_a_source_cache_is_read_for_its_regular_files_only(mlv_repo: Path, tmp_path: Path) -> None:
    """A source's own cache may hold anything where an object goes: a clone can commit the
    source with a link to /dev/zero there (copied until the disk was full), a local one a
    FIFO (blocked for ever). Such a file is passed over: the object comes from the source's
    remote."""
    src = _source(tmp_path / "source")
    mlv("remote", "add", "-d", "store", str(tmp_path / "store"), cwd=src)
    commit_all(src, "remote")
    mlv("push", "-q", cwd=src)
    h = (src / "f.txt.mlv").read_text().split("hash: xxh128:")[1].split()[0]
    obj = src / ".mlv" / "cache" / "xxh128" / h[:2] / h[2:]
    obj.chmod(0o644)
    obj.unlink()
    os.mkfifo(obj)
    mlv("get", str(src), "f.txt", "-o", "got.txt", cwd=mlv_repo, process=True, timeout=60)
    assert (mlv_repo / "got.txt").read_text() == "data\n"
