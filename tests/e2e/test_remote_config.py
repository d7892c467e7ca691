"""`mlv remote add | modify | list | remove | default`: config files, secrets, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
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
    # written by hand (`remote add` refuses it): the push still says what is wrong
    config = mlv_repo / ".mlv" / "config.yaml"
    config.write_text("core: {remote: weird}\nremote: {weird: {url: 'nosuchscheme://b/x'}}\n")
    assert_error(mlv("push", cwd=mlv_repo, check=False), 1, "nosuchscheme")


def test_unknown_scheme_is_refused_when_added(mlv_repo: Path) -> None:
    """A typo in the scheme is caught at `remote add`/`modify`, not at the first push."""
    proc = mlv("remote", "add", "z", "zzz://bucket/p", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "unknown storage scheme 'zzz://'")
    assert "remote" not in _config(mlv_repo)
    mlv("remote", "add", "s3", "s3://bucket/p", cwd=mlv_repo)
    proc = mlv("remote", "modify", "s3", "url", "s4://bucket/p", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "unknown storage scheme 's4://'")
    assert _config(mlv_repo)["remote"]["s3"]["url"] == "s3://bucket/p"


def test_folder_remote_that_cannot_be_created_stops_with_one_line(
    mlv_repo: Path, tmp_path: Path
) -> None:
    """Not "N objects failed, run again": running again would never help."""
    (mlv_repo / "d.txt").write_text("x")
    mlv("add", "d.txt", cwd=mlv_repo)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    mlv("remote", "add", "-d", "bad", str(blocker / "store"), cwd=mlv_repo)
    proc = mlv("push", cwd=mlv_repo, check=False)
    assert_error(proc, 1, "cannot create the folder")
    assert "fix the remote's url" in proc.stderr
    assert "run again" not in proc.stderr


def test_missing_s3_credentials_say_where_to_give_them(
    mlv_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    (mlv_repo / "d.txt").write_text("x")
    mlv("add", "d.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "s3", "s3://bucket/p", cwd=mlv_repo)
    mlv("remote", "modify", "s3", "endpoint_url", "http://127.0.0.1:9", cwd=mlv_repo)
    proc = mlv("push", cwd=mlv_repo, check=False)
    line = assert_error(proc, 1, "remote 's3' (s3://bucket/p)", "credentials")
    assert "AWS_ACCESS_KEY_ID" in line and "--local" in line


@pytest.mark.parametrize(
    "args",
    [
        ("remote", "add", "gh", "https://TOKENONLY@github.com/org/data"),
        ("remote", "add", "az", "az://c?connection_string=AccountKey%3DKEYSECRET"),
        ("remote", "modify", "store", "SECRET_ACCESS_KEY", "v"),
        ("remote", "modify", "store", "aws_secret_access_key", "v"),
        ("remote", "modify", "store", "private_key", "v"),
        ("remote", "modify", "store", "api_key", "v"),
        ("config", "remote.store.Token", "v"),
    ],
)
def test_secrets_by_any_name_stay_out_of_the_committed_config(
    mlv_repo: Path, args: tuple[str, ...]
) -> None:
    mlv("remote", "add", "store", "/srv/store", cwd=mlv_repo)
    before = (mlv_repo / ".mlv" / "config.yaml").read_text()
    line = assert_error(mlv(*args, cwd=mlv_repo, check=False), 2, "refusing to write")
    assert "TOKENONLY" not in line and "KEYSECRET" not in line
    assert (mlv_repo / ".mlv" / "config.yaml").read_text() == before
    at = 1 if args[0] == "config" else 2
    mlv(*args[:at], "--local", *args[at:], cwd=mlv_repo)  # where secrets belong


def test_ssh_user_names_are_not_secrets(mlv_repo: Path) -> None:
    mlv("remote", "add", "lab", "ssh://git@lab/srv/mlv", cwd=mlv_repo)
    mlv("remote", "modify", "lab", "keyfile", "~/.ssh/id_ed25519", cwd=mlv_repo)
    assert "ssh://git@lab/srv/mlv" in mlv("remote", "list", cwd=mlv_repo).stdout
