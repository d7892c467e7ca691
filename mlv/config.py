"""Layered configuration: YAML files and MLV_* variables -> one frozen dataclass.

Precedence, strongest first: command-line flags (applied by callers), MLV_* environment
variables, .mlv/config.local.yaml, .mlv/config.yaml, the user's global config
($XDG_CONFIG_HOME/mlv/config.yaml). Errors name the file and the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlv.errors import ConfigError
from mlv.objects import hashing
from mlv.objects.store import DEFAULT_LINK_TYPES, LINK_TYPES
from mlv.util import localfs, plainyaml

CONFIG_FILE = "config.yaml"
LOCAL_CONFIG_FILE = "config.local.yaml"


def global_config_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "mlv", CONFIG_FILE)


def _as_hash(value: Any, where: str) -> str:
    if value not in hashing.ALGORITHMS:
        raise ConfigError(
            f"{where}: core.hash must be one of {', '.join(hashing.ALGORITHMS)}", f"got {value!r}"
        )
    return str(value)


def _as_link_types(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or any(v not in LINK_TYPES for v in value):
        raise ConfigError(
            f"{where}: cache.type must be one of {', '.join(LINK_TYPES)} or a list of them",
            f"got {value!r}",
        )
    return tuple(value)


def _as_text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: expected text, got {value!r}")
    return value


def _as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.lower() in ("true", "yes", "1")
    raise ConfigError(f"{where}: expected true or false, got {value!r}")


# Known keys and their validators. `remote.NAME.OPTION` keys are free-form (fsspec options).
KNOWN: dict[str, Callable[[Any, str], Any]] = {
    "core.hash": _as_hash,
    "core.remote": _as_text,
    "core.fsync": _as_bool,
    "cache.dir": _as_text,
    "cache.type": _as_link_types,
}


@dataclass(frozen=True)
class Config:
    hash: str = hashing.DEFAULT_ALGORITHM
    cache_dir: str | None = None  # as written; relative paths are relative to the repo root
    cache_dir_from: str | None = None  # the file (or "environment") that set cache.dir
    cache_type: tuple[str, ...] = DEFAULT_LINK_TYPES
    fsync: bool = False
    remote: str | None = None
    remotes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    raw: Mapping[str, Any] = field(default_factory=dict)
    # (source, mapping) as merged, weakest first: which file set what (see is_committed).
    # Where a setting came from, not the setting: two configs that say the same are equal.
    layers: tuple[tuple[str, Mapping[str, Any]], ...] = field(default=(), compare=False)

    def get(self, key: str) -> Any:
        node: Any = self.raw
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node


def read_file(path: str) -> dict[str, Any]:
    """One config file as a mapping ({} if absent); errors name the file."""
    try:
        raw = localfs.read_small(path)
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    return parse_text(raw, path)


def parse_text(raw: bytes | str, where: str) -> dict[str, Any]:
    """A config file's content (read from disk or from a git blob) as a mapping;
    errors name `where`."""
    if not raw.strip():
        return {}  # the usual empty config: no need to load PyYAML for it
    doc = plainyaml.load(raw)  # a config as mlv writes it: no need either
    if doc is not plainyaml.UNSURE:
        return dict(doc)
    try:
        from mlv import yamlio

        doc = yamlio.loads(raw)
    except Exception as e:  # yaml.YAMLError, without importing yaml up front
        if type(e).__module__ == "mlv.yamlio":  # a bound: an alias bomb, deep nesting
            raise ConfigError(f"{where}: {e}", "fix the file or remove it") from None
        if type(e).__module__.startswith("yaml"):
            raise ConfigError(f"{where}: not valid YAML", "fix the file or remove it") from None
        raise
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping of sections (core:, cache:, remote:)")
    return doc


def write_file(path: str, doc: Mapping[str, Any]) -> None:
    from mlv import yamlio

    os.makedirs(os.path.dirname(path), exist_ok=True)
    localfs.write_text_atomic(path, yamlio.dumps(dict(doc)) if doc else "")


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if value is None and isinstance(out.get(key), Mapping):
            continue  # a bare `core:` section is empty, it does not erase weaker layers
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def is_committed(source: str) -> bool:
    """Is the layer named source a committed .mlv/config.yaml, read from a work tree or from
    a commit (written by whoever wrote the repository, not by this machine's user)?"""
    return _COMMITTED.search(source.replace(os.sep, "/")) is not None


# ".../.mlv/config.yaml", or "SOURCE: .mlv/config.yaml at COMMIT" (read from git's objects)
_COMMITTED = re.compile(r"(^|[/ ])\.mlv/" + re.escape(CONFIG_FILE) + r"( at \S+)?$")


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    """MLV_CORE_HASH=sha256 -> {"core": {"hash": "sha256"}} for the known keys."""
    layer: dict[str, Any] = {}
    for key in KNOWN:
        name = "MLV_" + key.replace(".", "_").upper()
        if name in environ:
            section, option = key.split(".")
            value: Any = environ[name]
            if KNOWN[key] is _as_bool:  # shown as true/false, like the files' values
                value = _as_bool(value, name)
            layer.setdefault(section, {})[option] = value
    return layer


def check_key(key: str) -> None:
    parts = key.split(".")
    if key in KNOWN:
        return
    if parts[0] == "remote" and len(parts) >= 3 and all(parts):
        return
    known = ", ".join([*KNOWN, "remote.NAME.OPTION"])
    raise ConfigError(f"unknown config key {key!r}", f"known keys: {known}")


def build(layers: list[tuple[str, Mapping[str, Any]]]) -> Config:
    """Merge (source, mapping) layers, weakest first, and validate known keys."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, layer in layers:
        for section in ("core", "cache", "remote"):
            if layer.get(section) is not None and not isinstance(layer.get(section), Mapping):
                raise ConfigError(
                    f"{source}: '{section}' must be a mapping of options",
                    f"e.g. `{section}:` followed by indented `option: value` lines",
                )
        remotes_layer = layer.get("remote")
        if isinstance(remotes_layer, Mapping):
            for name, options in remotes_layer.items():
                if options is not None and not isinstance(options, Mapping):
                    raise ConfigError(
                        f"{source}: remote '{name}' must be a mapping of options",
                        f"e.g. `remote: {{{name}: {{url: ...}}}}`",
                    )
        merged = _merge(merged, layer)
        for key in KNOWN:
            section, option = key.split(".")
            sect = layer.get(section)
            if isinstance(sect, Mapping) and option in sect:
                sources[key] = source
    values: dict[str, Any] = {}
    for key, check in KNOWN.items():
        section, option = key.split(".")
        sect = merged.get(section)
        if isinstance(sect, Mapping) and option in sect and sect[option] is not None:
            values[key] = check(sect[option], f"{sources.get(key, 'config')}: {key}")
    remotes_raw = merged.get("remote") or {}
    if not isinstance(remotes_raw, Mapping):
        raise ConfigError("config: 'remote' must be a mapping of remote names")
    remotes = {str(k): dict(v) for k, v in remotes_raw.items() if isinstance(v, Mapping)}
    return Config(
        hash=values.get("core.hash", hashing.DEFAULT_ALGORITHM),
        cache_dir=values.get("cache.dir"),
        cache_dir_from=sources.get("cache.dir") if "cache.dir" in values else None,
        cache_type=values.get("cache.type", DEFAULT_LINK_TYPES),
        fsync=values.get("core.fsync", False),
        remote=values.get("core.remote"),
        remotes=remotes,
        raw=merged,
        layers=tuple(layers),
    )


def load(mlv_dir: str | None, environ: Mapping[str, str] | None = None) -> Config:
    environ = os.environ if environ is None else environ
    layers: list[tuple[str, Mapping[str, Any]]] = []
    gpath = global_config_path()
    layers.append((gpath, read_file(gpath)))
    if mlv_dir is not None:
        for name in (CONFIG_FILE, LOCAL_CONFIG_FILE):
            path = os.path.join(mlv_dir, name)
            layers.append((path, read_file(path)))
    layers.append(("environment", env_layer(environ)))
    return build(layers)


def set_value(doc: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    node = doc
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value
    return doc


def unset_value(doc: dict[str, Any], key: str) -> bool:
    """Remove key; prunes sections left empty. Returns False when key was not set."""
    parts = key.split(".")
    trail: list[dict[str, Any]] = [doc]
    node: Any = doc
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return False
        trail.append(node)
    if parts[-1] not in node:
        return False
    del node[parts[-1]]
    for depth in range(len(parts) - 1, 0, -1):
        if not trail[depth]:
            del trail[depth - 1][parts[depth - 1]]
    return True


def parse_value(key: str, text: str) -> Any:
    """Command-line text -> the value stored for key (validated for known keys)."""
    where = "command line"  # the messages name the key themselves
    if key == "cache.type":
        return list(_as_link_types(text, where))
    if key in KNOWN:
        value: Any = text
        if KNOWN[key] is _as_bool:
            value = _as_bool(text, f"{where}: {key}")
        else:
            KNOWN[key](text, f"{where}: {key}" if KNOWN[key] is _as_text else where)
        return value
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text
