"""`mlv config` (repo, --local, --global, --unset, precedence with MLV_* variables) and
`mlv cache dir`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from helpers import assert_error, mlv, object_path, read_pointer, write_files, xxh


def _get(repo: Path, *args: str) -> str:
    return mlv("config", *args, cwd=repo).stdout.strip()


def test_set_get_unset_repo_config(mlv_repo: Path) -> None:
    proc = mlv("config", "core.hash", "sha256", cwd=mlv_repo)
    assert (proc.stdout, proc.stderr) == ("", "")
    doc = yaml.safe_load((mlv_repo / ".mlv" / "config.yaml").read_text())
    assert doc == {"core": {"hash": "sha256"}}
    assert _get(mlv_repo, "core.hash") == "sha256"
    mlv("config", "--unset", "core.hash", cwd=mlv_repo)
    assert yaml.safe_load((mlv_repo / ".mlv" / "config.yaml").read_text()) in (None, {})
    # an unset key prints nothing and exits 1, like `git config`
    proc = mlv("config", "core.hash", cwd=mlv_repo, check=False)
    assert (proc.returncode, proc.stdout, proc.stderr) == (1, "", "")


def test_levels_and_precedence(mlv_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Path(os.environ["XDG_CONFIG_HOME"])
    mlv("config", "--global", "cache.type", "symlink", cwd=mlv_repo)
    assert yaml.safe_load((home / "mlv" / "config.yaml").read_text()) == {
        "cache": {"type": ["symlink"]}
    }
    assert _get(mlv_repo, "cache.type") == "symlink"
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    assert _get(mlv_repo, "cache.type") == "hardlink"
    mlv("config", "--local", "cache.type", "copy", cwd=mlv_repo)
    assert _get(mlv_repo, "cache.type") == "copy"
    assert _get(mlv_repo, "--global", "cache.type") == "symlink"
    assert _get(mlv_repo, "--local", "cache.type") == "copy"
    assert (mlv_repo / ".mlv" / "config.local.yaml").is_file()
    # the local file stays out of git
    from helpers import git

    assert git("check-ignore", "-q", ".mlv/config.local.yaml", cwd=mlv_repo).returncode == 0
    monkeypatch.setenv("MLV_CACHE_TYPE", "reflink,copy")
    assert _get(mlv_repo, "cache.type") == "reflink,copy"


def test_env_variable_changes_behaviour(mlv_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLV_CACHE_TYPE", "hardlink")
    write_files(mlv_repo, {"m.bin": "m"})
    mlv("add", "m.bin", cwd=mlv_repo)
    assert os.path.samefile(mlv_repo / "m.bin", object_path(mlv_repo, xxh(b"m")))


def test_global_config_is_read(mlv_repo: Path) -> None:
    mlv("config", "--global", "core.hash", "sha256", cwd=mlv_repo)
    write_files(mlv_repo, {"m.bin": "m"})
    mlv("add", "m.bin", cwd=mlv_repo)
    assert read_pointer(mlv_repo / "m.bin.mlv")["hash"].startswith("sha256:")


def test_remote_options_and_secrets(mlv_repo: Path) -> None:
    mlv("config", "remote.store.url", "s3://bucket/path", cwd=mlv_repo)
    assert _get(mlv_repo, "remote.store.url") == "s3://bucket/path"
    before = (mlv_repo / ".mlv" / "config.yaml").read_bytes()
    proc = mlv("config", "remote.store.password", "hunter2", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "--local")  # refused like any other bad request
    assert "hunter2" not in proc.stderr
    assert (mlv_repo / ".mlv" / "config.yaml").read_bytes() == before
    mlv("config", "--local", "remote.store.password", "hunter2", cwd=mlv_repo)
    assert b"hunter2" not in (mlv_repo / ".mlv" / "config.yaml").read_bytes()


def test_bad_keys_and_values(mlv_repo: Path) -> None:
    cfg = mlv_repo / ".mlv" / "config.yaml"
    mlv("config", "cache.type", "copy", cwd=mlv_repo)
    before = cfg.read_bytes()
    assert_error(mlv("config", "foo.bar", "1", cwd=mlv_repo, check=False), 2, "foo.bar")
    assert_error(mlv("config", "nosection", cwd=mlv_repo, check=False), 2, "nosection")
    line = assert_error(
        mlv("config", "cache.type", "teleport", cwd=mlv_repo, check=False), 2, "teleport"
    )
    assert "hardlink" in line  # says what is allowed
    assert_error(mlv("config", "core.hash", "md5", cwd=mlv_repo, check=False), 2, "md5")
    assert_error(mlv("config", "--unset", "core.hash", "x", cwd=mlv_repo, check=False), 2)
    assert_error(mlv("config", "--unset", "core.hash", cwd=mlv_repo, check=False), 2, "not set")
    assert cfg.read_bytes() == before


def test_broken_config_file_is_one_line_error(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"m.bin": "m", "n.bin": "n"})
    mlv("add", "m.bin", cwd=mlv_repo)
    cfg = mlv_repo / ".mlv" / "config.yaml"
    cfg.write_text("cache: [unclosed\n")
    assert_error(mlv("add", "n.bin", cwd=mlv_repo, check=False), 1, "config.yaml")
    assert not (mlv_repo / "n.bin.mlv").exists()
    assert_error(mlv("status", cwd=mlv_repo, check=False), 1, "config.yaml")
    cfg.write_text("cache:\n  type: teleport\n")
    assert_error(mlv("status", cwd=mlv_repo, check=False), 1, "config.yaml", "cache.type")
    assert_error(mlv("config", "core.hash", cwd=mlv_repo, check=False), 1, "config.yaml")


def test_cache_dir_show_and_move(mlv_repo: Path, tmp_path: Path) -> None:
    default = mlv_repo / ".mlv" / "cache"
    assert mlv("cache", "dir", cwd=mlv_repo).stdout.strip() == str(default)
    shared = tmp_path / "shared-cache"
    proc = mlv("cache", "dir", str(shared), cwd=mlv_repo)
    assert str(shared) in proc.stdout
    # stored relative to the repository root; outside the repository, for this machine only
    # (a committed config never chooses where mlv writes outside the repository)
    doc = yaml.safe_load((mlv_repo / ".mlv" / "config.local.yaml").read_text())
    assert doc == {"cache": {"dir": "../shared-cache"}}
    assert not (mlv_repo / ".mlv" / "config.yaml").read_text()
    assert mlv("cache", "dir", cwd=mlv_repo / ".mlv").stdout.strip() == str(shared)

    write_files(mlv_repo, {"data/a.txt": "a"})
    mlv("add", "data", cwd=mlv_repo)
    assert object_path(mlv_repo, xxh(b"a"), cache=shared).read_bytes() == b"a"
    assert not object_path(mlv_repo, xxh(b"a")).exists()
    import shutil

    shutil.rmtree(mlv_repo / "data")
    mlv("checkout", cwd=mlv_repo)
    assert (mlv_repo / "data" / "a.txt").read_text() == "a"


def test_cache_dir_local_and_from_subfolder(mlv_repo: Path, tmp_path: Path) -> None:
    sub = mlv_repo / "deep" / "er"
    sub.mkdir(parents=True)
    mlv("cache", "dir", "--local", "../../../elsewhere", cwd=sub)
    doc = yaml.safe_load((mlv_repo / ".mlv" / "config.local.yaml").read_text())
    assert doc == {"cache": {"dir": "../elsewhere"}}
    assert mlv("cache", "dir", cwd=mlv_repo).stdout.strip() == str(tmp_path / "elsewhere")


def test_cache_dir_that_cannot_be_used_is_refused(mlv_repo: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    proc = mlv("cache", "dir", str(blocker / "cache"), cwd=mlv_repo, check=False)
    assert_error(proc, 2, "is not a folder")
    proc = mlv("cache", "dir", "/proc/mlv-cache", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "cannot write in /proc")
    assert mlv("cache", "dir", cwd=mlv_repo).stdout.strip().endswith(".mlv/cache")
    fresh = tmp_path / "new" / "cache"
    mlv("cache", "dir", str(fresh), cwd=mlv_repo)  # created on first use, not now
    assert not fresh.exists()


def test_boolean_from_the_environment_prints_as_true_or_false(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLV_CORE_FSYNC", "yes")
    assert _get(mlv_repo, "core.fsync") == "true"
    monkeypatch.setenv("MLV_CORE_FSYNC", "maybe")
    assert_error(mlv("config", "core.fsync", cwd=mlv_repo, check=False), 1, "MLV_CORE_FSYNC")
