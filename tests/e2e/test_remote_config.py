"""`mlv remote add | modify | list | remove | default`: config files, secrets, errors."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from helpers import assert_error, mlv


def _config(repo: Path, name: str = "config.yaml") -> dict:
    text = (repo / ".mlv" / name).read_text()
    return yaml.safe_load(text) or {}


def test_add_list_default_remove(mlv_repo: Path) -> None:
    mlv("remote", "add", "-d", "store", "/srv/store", cwd=mlv_repo)
    mlv("remote", "add", "s3", "s3://bucket/prefix", cwd=mlv_repo)
    cfg = _config(mlv_repo)
    assert cfg["remote"] == {"store": {"url": "/srv/store"}, "s3": {"url": "s3://bucket/prefix"}}
    assert cfg["core"]["remote"] == "store"
    listed = mlv("remote", "list", cwd=mlv_repo).stdout.splitlines()
    assert listed == ["s3\ts3://bucket/prefix", "store\t/srv/store  (default)"]
    assert mlv("remote", "default", cwd=mlv_repo).stdout.strip() == "store"
    mlv("remote", "default", "s3", cwd=mlv_repo)
    assert _config(mlv_repo)["core"]["remote"] == "s3"
    mlv("remote", "remove", "s3", cwd=mlv_repo)
    cfg = _config(mlv_repo)
    assert "s3" not in cfg["remote"] and "remote" not in cfg.get("core", {})
    assert_error(mlv("remote", "default", cwd=mlv_repo, check=False), 1, "no default remote")


def test_modify_passes_options_and_refuses_secrets(mlv_repo: Path) -> None:
    mlv("remote", "add", "s3", "s3://bucket/p", cwd=mlv_repo)
    mlv("remote", "modify", "s3", "endpoint_url", "http://127.0.0.1:9000", cwd=mlv_repo)
    mlv("remote", "modify", "s3", "anon", "true", cwd=mlv_repo)
    assert _config(mlv_repo)["remote"]["s3"] == {
        "url": "s3://bucket/p",
        "endpoint_url": "http://127.0.0.1:9000",
        "anon": True,
    }
    line = assert_error(
        mlv("remote", "modify", "s3", "secret", "hunter2", cwd=mlv_repo, check=False),
        2,
        "--local",
    )
    assert "hunter2" not in line
    assert "hunter2" not in (mlv_repo / ".mlv" / "config.yaml").read_text()
    mlv("remote", "modify", "--local", "s3", "secret", "hunter2", cwd=mlv_repo)
    assert _config(mlv_repo, "config.local.yaml")["remote"]["s3"]["secret"] == "hunter2"
    shown = json.loads(mlv("remote", "list", "--json", cwd=mlv_repo).stdout)
    assert shown[0]["options"]["secret"] == "***"
    mlv("remote", "modify", "--local", "s3", "secret", "--unset", cwd=mlv_repo)
    assert "secret" not in (mlv_repo / ".mlv" / "config.local.yaml").read_text()


def test_url_with_password_stays_out_of_the_committed_config(mlv_repo: Path) -> None:
    proc = mlv("remote", "add", "box", "sftp://me:pa55word@host/data", cwd=mlv_repo, check=False)
    line = assert_error(proc, 2, "credentials")
    assert "pa55word" not in line
    assert "pa55word" not in (mlv_repo / ".mlv" / "config.yaml").read_text()
    mlv("remote", "add", "--local", "box", "sftp://me:pa55word@host/data", cwd=mlv_repo)
    listed = mlv("remote", "list", cwd=mlv_repo).stdout
    assert "pa55word" not in listed and "me:***@host" in listed


def test_remote_errors(mlv_repo: Path) -> None:
    mlv("remote", "add", "a", "/x", cwd=mlv_repo)
    assert_error(mlv("remote", "add", "a", "/y", cwd=mlv_repo, check=False), 2, "already exists")
    assert_error(mlv("remote", "add", "bad.name", "/y", cwd=mlv_repo, check=False), 2, "name")
    assert_error(
        mlv("remote", "modify", "nope", "region", "x", cwd=mlv_repo, check=False), 2, "nope"
    )
    assert_error(mlv("remote", "remove", "nope", cwd=mlv_repo, check=False), 2, "nope")
    assert_error(mlv("remote", "default", "nope", cwd=mlv_repo, check=False), 2, "nope")
    mlv("remote", "add", "--force", "a", "/y", cwd=mlv_repo)
    assert _config(mlv_repo)["remote"]["a"]["url"] == "/y"


def test_push_without_a_remote_says_how_to_add_one(mlv_repo: Path) -> None:
    line = assert_error(mlv("push", cwd=mlv_repo, check=False), 2, "mlv remote add")
    assert "no remote" in line
    mlv("remote", "add", "a", "/x", cwd=mlv_repo)
    assert_error(mlv("push", cwd=mlv_repo, check=False), 2, "-r NAME")
    assert_error(mlv("push", "-r", "zzz", cwd=mlv_repo, check=False), 2, "zzz")


def test_unknown_scheme_and_missing_package_hint(mlv_repo: Path) -> None:
    (mlv_repo / "f.txt").write_text("x")
    mlv("add", "f.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "weird", "nosuchscheme://bucket/x", cwd=mlv_repo)
    assert_error(mlv("push", cwd=mlv_repo, check=False), 1, "nosuchscheme")
