"""mlv.config: layering (global < repo < local < MLV_* env), validation, set/unset, parsing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlv import config
from mlv.errors import ConfigError


@pytest.fixture
def layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Paths of the three config files (none written yet), with XDG_CONFIG_HOME in tmp."""
    xdg = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(xdg))
    mlv_dir = tmp_path / "repo" / ".mlv"
    mlv_dir.mkdir(parents=True)
    return {
        "global": xdg / "mlv" / "config.yaml",
        "repo": mlv_dir / "config.yaml",
        "local": mlv_dir / "config.local.yaml",
        "mlv_dir": mlv_dir,
    }


def _write(path: Path, doc: dict[str, Any] | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")


def _load(layers: dict[str, Path], env: dict[str, str] | None = None) -> config.Config:
    return config.load(str(layers["mlv_dir"]), {} if env is None else env)


def test_global_config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "x"))
    assert config.global_config_path() == str(tmp_path / "x" / "mlv" / "config.yaml")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert config.global_config_path() == str(tmp_path / "h" / ".config" / "mlv" / "config.yaml")


def test_defaults(layers: dict[str, Path]) -> None:
    cfg = _load(layers)
    assert cfg.hash == "xxh128"
    assert cfg.cache_type == ("reflink", "copy")
    assert cfg.cache_dir is None
    assert cfg.fsync is False
    assert cfg.remote is None
    assert dict(cfg.remotes) == {}


# ---- precedence -----------------------------------------------------------------------

ORDER = ["global", "repo", "local", "env"]
VALUES = {
    "core.remote": ["from-global", "from-repo", "from-local", "from-env"],
    "cache.dir": ["/g/cache", "/r/cache", "/l/cache", "/e/cache"],
}


@pytest.mark.parametrize("top", range(4))
def test_each_layer_overrides_the_weaker_ones(layers: dict[str, Path], top: int) -> None:
    """Layers 0..top set the key; the value of layer `top` wins."""
    env: dict[str, str] = {}
    for i in range(top + 1):
        where = ORDER[i]
        if where == "env":
            env["MLV_CORE_REMOTE"] = VALUES["core.remote"][i]
            env["MLV_CACHE_DIR"] = VALUES["cache.dir"][i]
        else:
            _write(
                layers[where],
                {
                    "core": {"remote": VALUES["core.remote"][i]},
                    "cache": {"dir": VALUES["cache.dir"][i]},
                },
            )
    cfg = _load(layers, env)
    assert cfg.remote == VALUES["core.remote"][top]
    assert cfg.cache_dir == VALUES["cache.dir"][top]


def test_layers_merge_key_by_key(layers: dict[str, Path]) -> None:
    _write(layers["global"], {"core": {"hash": "sha256", "remote": "g"}, "cache": {"type": "copy"}})
    _write(layers["repo"], {"core": {"remote": "origin"}, "remote": {"origin": {"url": "s3://b"}}})
    _write(layers["local"], {"remote": {"origin": {"key": "secret"}}})
    cfg = _load(layers, {"MLV_CACHE_DIR": "/shared/cache"})
    assert cfg.hash == "sha256"  # from global, not erased by repo's core section
    assert cfg.remote == "origin"
    assert cfg.cache_type == ("copy",)
    assert cfg.cache_dir == "/shared/cache"
    assert dict(cfg.remotes) == {"origin": {"url": "s3://b", "key": "secret"}}
    assert cfg.get("remote.origin.key") == "secret"
    assert cfg.get("remote.nope.key") is None
    assert cfg.get("core.hash") == "sha256"


def test_empty_section_in_a_stronger_layer_does_not_erase_weaker_settings(
    layers: dict[str, Path],
) -> None:
    """`core:` with nothing under it (left after removing its last key by hand) is empty,
    not an instruction to forget the global core.hash."""
    _write(layers["global"], {"core": {"hash": "sha256"}})
    _write(layers["repo"], "core:\ncache:\n")
    assert _load(layers).hash == "sha256"


def test_env_values(layers: dict[str, Path]) -> None:
    cfg = _load(
        layers,
        {
            "MLV_CORE_HASH": "sha256",
            "MLV_CACHE_TYPE": "hardlink, copy",
            "MLV_CORE_FSYNC": "yes",
            "MLV_UNRELATED": "x",
        },
    )
    assert cfg.hash == "sha256"
    assert cfg.cache_type == ("hardlink", "copy")
    assert cfg.fsync is True


def test_load_reads_os_environ_by_default(
    layers: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(layers["local"], {"core": {"hash": "xxh128"}})
    monkeypatch.setenv("MLV_CORE_HASH", "sha256")
    assert config.load(str(layers["mlv_dir"])).hash == "sha256"


def test_load_without_a_repo_reads_global_and_env(layers: dict[str, Path]) -> None:
    _write(layers["global"], {"cache": {"type": ["symlink"]}})
    _write(layers["repo"], {"cache": {"type": ["hardlink"]}})
    assert config.load(None, {}).cache_type == ("symlink",)


# ---- validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("core.hash", "md5"),
        ("core.hash", 5),
        ("cache.type", "teleport"),
        ("cache.type", []),
        ("cache.type", ["copy", "move"]),
        ("core.fsync", "maybe"),
        ("core.remote", ""),
        ("cache.dir", 12),
    ],
    ids=repr,
)
@pytest.mark.parametrize("where", ["global", "repo", "local"])
def test_invalid_value_names_file_and_key(
    layers: dict[str, Path], where: str, key: str, value: object
) -> None:
    section, option = key.split(".")
    _write(layers[where], {section: {option: value}})
    with pytest.raises(ConfigError) as info:
        _load(layers)
    msg = str(info.value)
    assert str(layers[where]) in msg
    assert key in msg


@pytest.mark.parametrize(
    ("var", "value", "key"),
    [("MLV_CORE_HASH", "md5", "core.hash"), ("MLV_CACHE_TYPE", "nope", "cache.type")],
)
def test_invalid_env_value_names_the_environment(
    layers: dict[str, Path], var: str, value: str, key: str
) -> None:
    _write(layers["local"], {"core": {"hash": "sha256"}})
    with pytest.raises(ConfigError) as info:
        _load(layers, {var: value})
    msg = str(info.value)
    assert "environment" in msg or var in msg
    assert key in msg or var in msg
    assert str(layers["local"]) not in msg


@pytest.mark.parametrize("where", ["global", "repo", "local"])
def test_invalid_yaml_names_the_file(layers: dict[str, Path], where: str) -> None:
    _write(layers[where], "core: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        _load(layers)
    assert str(layers[where]) in str(info.value)
    assert "YAML" in str(info.value)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"], ids=repr)
def test_top_level_not_a_mapping_names_the_file(layers: dict[str, Path], text: str) -> None:
    _write(layers["repo"], text)
    with pytest.raises(ConfigError) as info:
        _load(layers)
    assert str(layers["repo"]) in str(info.value)


@pytest.mark.parametrize(
    ("text", "section"),
    [
        ("core: sha256\n", "core"),
        ("cache: [copy]\n", "cache"),
        ("remote: 5\n", "remote"),
        ("remote:\n  origin: s3://bucket/path\n", "origin"),
    ],
    ids=repr,
)
def test_section_that_is_not_a_mapping_names_the_file(
    layers: dict[str, Path], text: str, section: str
) -> None:
    """A section written as a value (`core: sha256`) is a mistake to report, not to skip."""
    _write(layers["repo"], text)
    with pytest.raises(ConfigError) as info:
        _load(layers)
    assert str(layers["repo"]) in str(info.value)
    assert section in str(info.value)


@pytest.mark.parametrize("text", ["", "\n", "# just a comment\n", "null\n"], ids=repr)
def test_empty_files_are_empty_config(layers: dict[str, Path], text: str) -> None:
    _write(layers["repo"], text)
    assert _load(layers) == config.Config()


def test_unreadable_config_names_the_file(layers: dict[str, Path]) -> None:
    layers["repo"].mkdir()  # a directory where the file should be
    with pytest.raises(ConfigError) as info:
        _load(layers)
    assert str(layers["repo"]) in str(info.value)


# ---- keys, set/unset, files -----------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["core.hash", "core.remote", "core.fsync", "cache.dir", "cache.type", "remote.s3.url"]
)
def test_check_key_accepts(key: str) -> None:
    config.check_key(key)


@pytest.mark.parametrize("key", ["core.bogus", "remote.origin", "remote..url", "hash", "", "cache"])
def test_check_key_rejects_and_lists_known_keys(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        config.check_key(key)
    assert repr(key) in str(info.value)
    assert "core.hash" in str(info.value)


def test_set_value_creates_sections() -> None:
    doc: dict[str, Any] = {"core": {"hash": "sha256"}}
    config.set_value(doc, "remote.origin.url", "s3://b")
    config.set_value(doc, "core.remote", "origin")
    assert doc == {
        "core": {"hash": "sha256", "remote": "origin"},
        "remote": {"origin": {"url": "s3://b"}},
    }
    config.set_value(doc, "core.hash", "xxh128")
    assert doc["core"]["hash"] == "xxh128"


def test_set_value_replaces_a_scalar_in_the_way() -> None:
    doc: dict[str, Any] = {"core": "oops"}
    config.set_value(doc, "core.hash", "sha256")
    assert doc == {"core": {"hash": "sha256"}}


def test_unset_value_prunes_empty_sections() -> None:
    doc: dict[str, Any] = {
        "core": {"hash": "sha256"},
        "remote": {"origin": {"url": "s3://b"}, "backup": {"url": "/mnt/b"}},
    }
    assert config.unset_value(doc, "remote.origin.url") is True
    assert doc == {"core": {"hash": "sha256"}, "remote": {"backup": {"url": "/mnt/b"}}}
    assert config.unset_value(doc, "remote.backup.url") is True
    assert doc == {"core": {"hash": "sha256"}}
    assert config.unset_value(doc, "core.hash") is True
    assert doc == {}


def test_unset_value_keeps_non_empty_sections_and_reports_absent_keys() -> None:
    doc: dict[str, Any] = {"remote": {"origin": {"url": "u", "key": "k"}}, "core": "scalar"}
    assert config.unset_value(doc, "remote.origin.url") is True
    assert doc == {"remote": {"origin": {"key": "k"}}, "core": "scalar"}
    for absent in ("remote.origin.url", "remote.nope.url", "cache.dir", "core.hash"):
        assert config.unset_value(doc, absent) is False
    assert doc == {"remote": {"origin": {"key": "k"}}, "core": "scalar"}


def test_write_file_round_trip_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.yaml"
    doc = {"core": {"hash": "sha256"}, "remote": {"ü": {"url": "s3://b"}}}
    config.write_file(str(path), doc)
    assert config.read_file(str(path)) == doc
    config.write_file(str(path), {})
    assert config.read_file(str(path)) == {}
    assert config.read_file(str(tmp_path / "absent.yaml")) == {}
    assert [p.name for p in path.parent.iterdir()] == ["config.yaml"]


# ---- parse_value ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("copy", ["copy"]),
        ("reflink", ["reflink"]),
        ("hardlink,copy", ["hardlink", "copy"]),
        (" symlink , copy ", ["symlink", "copy"]),
        ("reflink,hardlink,symlink,copy", ["reflink", "hardlink", "symlink", "copy"]),
    ],
)
def test_parse_value_cache_type_lists(text: str, expected: list[str]) -> None:
    assert config.parse_value("cache.type", text) == expected


@pytest.mark.parametrize("text", ["", ",", "teleport", "copy,teleport", "Copy"], ids=repr)
def test_parse_value_cache_type_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match=r"cache\.type"):
        config.parse_value("cache.type", text)


def test_parse_value_cache_type_round_trips_through_a_file(layers: dict[str, Path]) -> None:
    doc: dict[str, Any] = {}
    config.set_value(doc, "cache.type", config.parse_value("cache.type", "hardlink,copy"))
    config.write_file(str(layers["repo"]), doc)
    assert _load(layers).cache_type == ("hardlink", "copy")


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("core.fsync", "yes", True),
        ("core.fsync", "True", True),
        ("core.fsync", "0", False),
        ("core.fsync", "no", False),
        ("core.hash", "sha256", "sha256"),
        ("core.remote", "origin", "origin"),
        ("cache.dir", "/mnt/cache", "/mnt/cache"),
        ("remote.origin.url", "s3://bucket/x", "s3://bucket/x"),
        ("remote.origin.anon", "true", True),
        ("remote.origin.anon", "FALSE", False),
        ("remote.origin.port", "22", "22"),
    ],
)
def test_parse_value(key: str, text: str, expected: object) -> None:
    assert config.parse_value(key, text) == expected


@pytest.mark.parametrize(
    ("key", "text"), [("core.hash", "md5"), ("core.fsync", "perhaps"), ("core.remote", "")]
)
def test_parse_value_rejects(key: str, text: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.parse_value(key, text)


def test_env_layer_only_known_keys() -> None:
    assert config.env_layer(
        {"MLV_CORE_HASH": "sha256", "MLV_CACHE_DIR": "/c", "MLV_REMOTE_X_URL": "y", "HOME": "/"}
    ) == {"core": {"hash": "sha256"}, "cache": {"dir": "/c"}}


def test_no_global_file_is_created_by_loading(layers: dict[str, Path]) -> None:
    _load(layers)
    assert not os.path.exists(layers["global"])
