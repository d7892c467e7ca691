"""`mlv remote ...`: named remotes in the config files, and opening one for a transfer.

A remote is `remote: {NAME: {url: URL, OPTION: VALUE...}}` in a config file; `core.remote`
names the default. Options other than mlv's own (url, jobs, retries) go to fsspec as
storage options. Secrets (secret keys, passwords, tokens, URLs with a password) are refused
in the committed .mlv/config.yaml: they belong in .mlv/config.local.yaml (--local), the
user's global config, or the environment (AWS_*, ssh agent...).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlv import config as config_mod
from mlv import git as git_mod
from mlv import log
from mlv.core.configure import (
    DESTINATION_OPTIONS,
    SAFE_WITH_SECRET,
    drop_pins,
    effective,
    forget_pin,
    holds_secret,
    is_secret_option,
    mask,
    option_leaves,
    path_to_write,
    pin_destinations,
    refuse_hidden_by_pin,
)
from mlv.core.repo import Repo
from mlv.errors import ConfigError, MlvError, RemoteError, UsageError
from mlv.objects.packs.layout import MARKER_KEY
from mlv.objects.pointer import SUFFIX
from mlv.util.urls import has_credentials, is_folder, redact, scheme_of, secrets_in

if TYPE_CHECKING:  # the remote machinery is imported by the commands that open a remote:
    # `mlv remote list` and the config commands never pay for it
    from mlv.objects.packs.packed import Settings as PackSettings
    from mlv.objects.remote import RemoteStore

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
INDEX_CACHE = "index"  # <cache>/index/: remote indexes by name (docs/formats.md)


@dataclass(frozen=True)
class RemoteInfo:
    name: str
    url: str  # redacted
    default: bool
    options: dict[str, Any]  # secrets masked


def _check_name(name: str) -> None:
    if not NAME_RE.match(name):
        raise UsageError(
            f"invalid remote name {name!r}",
            "use letters, digits, '-' and '_' (starting with a letter or digit)",
        )


def _refuse_secret(level: str, key: str, value: str, name: str = "NAME") -> None:
    if level != "repo":
        return
    if is_secret_option(key):
        raise UsageError(
            f"refusing to write the secret '{key}' to the committed .mlv/config.yaml",
            f"store it in .mlv/config.local.yaml (kept out of git): "
            f"`mlv remote modify --local {name} {key} VALUE`",
        )
    if has_credentials(value):  # url, endpoint_url, proxy...: a URL with a password
        shown = "a URL" if key == "url" else f"'{key}' as a URL"
        raise UsageError(
            f"refusing to write {shown} with credentials to .mlv/config.yaml ({redact(value)})",
            f"store it in .mlv/config.local.yaml (kept out of git): "
            f"`mlv remote {'add --local' if key == 'url' else f'modify --local {name} {key}'} "
            f"{'NAME URL' if key == 'url' else 'VALUE'}`",
        )


def _store_url(url: str, level: str) -> str:
    """Folder paths in the global config are made absolute (there is no repo to be relative
    to); in the repo's files they are kept as written, relative to the repo root."""
    if level == "global" and is_folder(url) and "://" not in url:
        return os.path.abspath(os.path.expanduser(url))
    return url


def add(name: str, url: str, default: bool, level: str, force: bool = False) -> list[str]:
    """Add remote `name` at url to the file of level; the notes to print."""
    _check_name(name)
    _refuse_secret(level, "url", url, name)
    _check_scheme(url)
    if level == "repo":
        refuse_hidden_by_pin(name, "url", url)
    path, notes = path_to_write(level)
    doc = config_mod.read_file(path)
    remotes = doc.get("remote") or {}
    if name in remotes and not force:
        where = "" if level == "repo" else f" --{level}"
        raise UsageError(
            f"remote '{name}' already exists in {path}",
            f"`mlv remote modify{where} {name} url {shlex.quote(url)}` changes its URL, or "
            "--force replaces it",
        )
    config_mod.set_value(doc, f"remote.{name}", {"url": _store_url(url, level)})
    forget_pin(doc, name)  # a new remote: nothing of it is a pin
    if default:
        config_mod.set_value(doc, "core.remote", name)
    config_mod.build([(path, doc)])
    config_mod.write_file(path, doc)
    return notes


def _check_scheme(url: str) -> None:
    from mlv.objects import remote as remote_mod

    if not remote_mod.known_scheme(url):
        raise UsageError(
            f"unknown storage scheme '{scheme_of(url)}://' in {redact(url)}",
            "use a folder path, s3://, gs://, az://, ssh:// or another fsspec scheme",
        )


def modify(name: str, key: str, value: str | None, level: str) -> list[str]:
    """Set (or, with value None, unset) one option of a remote at one level; the notes to
    print."""
    _check_name(name)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
        raise UsageError(f"invalid option name {key!r}", "e.g. endpoint_url, region, profile")
    known = effective(os.getcwd()).remotes
    if name not in known:
        raise UsageError(f"no remote named '{name}'", "see `mlv remote list`")
    if level == "repo":
        refuse_hidden_by_pin(name, key, value)
    path, notes = path_to_write(level)
    doc = config_mod.read_file(path)
    forget_pin(doc, name, key)  # the user's value now, or the user's removal
    if value is None:
        if not config_mod.unset_value(doc, f"remote.{name}.{key}"):
            raise UsageError(f"remote.{name}.{key} is not set in {path}")
        if level != "repo":
            notes += drop_pins(doc, name, level, path)
    else:
        _refuse_secret(level, key, value, name)
        parsed = config_mod.parse_value(f"remote.{name}.{key}", value)
        if key in ("timeout", "connect_timeout"):
            try:
                from mlv.objects.remote import timeout_seconds

                timeout_seconds(key, parsed)
            except ValueError as e:
                raise UsageError(str(e), f"e.g. `mlv remote modify {name} {key} 60`") from None
        if key == "url":
            _check_scheme(value)
            parsed = _store_url(value, level)
        config_mod.set_value(doc, f"remote.{name}.{key}", parsed)
        if holds_secret({key: parsed}):
            notes += pin_destinations(doc, name, level, path)
    config_mod.build([(path, doc)])
    config_mod.write_file(path, doc)
    return notes


def remove(name: str, level: str) -> list[str]:
    _check_name(name)
    path, notes = path_to_write(level)
    doc = config_mod.read_file(path)
    if not config_mod.unset_value(doc, f"remote.{name}"):
        raise UsageError(f"no remote named '{name}' in {path}", "see `mlv remote list`")
    if level == "repo":
        refuse_hidden_by_pin(name, None, None)
    forget_pin(doc, name)
    if config_mod.Config(raw=doc).get("core.remote") == name:
        config_mod.unset_value(doc, "core.remote")
    config_mod.write_file(path, doc)
    return notes


def set_default(name: str | None, level: str) -> list[str]:
    """Make name the default remote; None unsets the default at this level. The notes to
    print."""
    path, notes = path_to_write(level)
    doc = config_mod.read_file(path)
    if name is None:
        if not config_mod.unset_value(doc, "core.remote"):
            raise UsageError(f"no default remote is set in {path}")
    else:
        _check_name(name)
        if name not in effective(os.getcwd()).remotes:
            raise UsageError(f"no remote named '{name}'", "add it first with `mlv remote add`")
        config_mod.set_value(doc, "core.remote", name)
    config_mod.write_file(path, doc)
    return notes


def listing() -> list[RemoteInfo]:
    cfg = effective(os.getcwd())
    out = []
    for name in sorted(cfg.remotes):
        options = dict(cfg.remotes[name])
        url = str(options.pop("url", ""))
        shown = {k: mask(f"remote.{name}.{k}", v) for k, v in sorted(options.items())}
        out.append(RemoteInfo(name, redact(url), name == cfg.remote, shown))
    return out


def default_name() -> str | None:
    return effective(os.getcwd()).remote


def remote_names() -> set[str]:
    """The names of the remotes the configuration of the current folder's repository (and
    the user's global config) defines."""
    return set(effective(os.getcwd()).remotes)


# ---- opening a remote for a transfer --------------------------------------------------


def resolve_name(repo: Repo, name: str | None) -> str:
    cfg = repo.config
    chosen = name or cfg.remote
    if chosen is None:
        if not cfg.remotes:
            raise UsageError("no remote is configured", "add one with `mlv remote add -d NAME URL`")
        raise UsageError(
            "no remote given and no default remote set",
            "use `-r NAME`, or `mlv remote default NAME`",
        )
    if chosen not in cfg.remotes:
        known = ", ".join(sorted(cfg.remotes)) or "none"
        raise UsageError(f"no remote named '{chosen}' (configured: {known})")
    return chosen


def open_remote(
    repo: Repo, name: str | None, jobs: int | None = None, absent_ok: bool = False
) -> RemoteStore:
    """Open remote `name` (None: the default) of repo. A folder remote's folder must exist,
    unless absent_ok: push creates it (as DVC's does), and `status --remote` reports
    everything not pushed, with a warning. Otherwise a missing folder (a mistyped path, an
    unmounted share, `../store` read from a clone elsewhere) is one error naming the folder,
    not a list of missing objects."""
    chosen = resolve_name(repo, name)
    check_committed_options(repo.config, chosen)
    check_secret_destinations(repo.config, chosen, repo.root)
    check_secret_options(
        repo.config,
        chosen,
        repo.root,
        config_mod.is_committed,
        lambda i, full: _decided_here(repo.config.layers, i, full),
        "--local",
    )
    note_moved_pins(repo.config, chosen, repo.root)
    problem = folder_problem(repo, chosen, absent_ok)
    if problem is not None:
        raise RemoteError(
            problem,
            f"mount or create it, or give this clone the remote's folder: "
            f"`mlv remote modify --local {chosen} url PATH`",
        )
    overlap = cache_overlap(repo, chosen) or git_overlap(repo, chosen)
    if overlap is not None:
        raise RemoteError(
            overlap,
            f"give the remote a folder of its own: `mlv remote modify --local {chosen} url PATH`",
        )
    store = open_store(chosen, repo.config.remotes[chosen], repo.root, jobs)
    store.use_index_cache(os.path.join(repo.cache.root, INDEX_CACHE))
    return store


# Options that a committed config (chosen by whoever wrote the repository) may not set:
# they make the storage library run a command (asyncssh runs client_host_keysign as
# ssh-keysign), load a library, forward the user's ssh agent or Kerberos credentials, send
# the user's environment variables (send_env: ["*"] sends every one, AWS keys included, to
# the author's server), or read or write local files of the author's choosing (ssh keys and
# configs, caches). Matched in any case, at any depth of an option's mapping. This machine's
# config.local.yaml, or the global config with the same value, may set them.
UNTRUSTED_OPTIONS = frozenset(
    {
        "proxy_command", "config", "client_keys", "client_host_keys", "client_certs",
        "client_host_certs", "known_hosts", "keyfile", "key_filename", "identity_file",
        "agent_path", "agent_forwarding", "pkcs11_provider", "tunnel", "x509_trusted_certs",
        "x509_trusted_cert_paths", "ssh_config", "credential_process", "cache_storage",
        "same_names", "fo", "target_protocol", "target_options", "remote_protocol",
        "remote_options", "preload", "load_module", "client_host_keysign", "send_env", "env",
        "gss_delegate_creds",
    }
)  # fmt: skip
_UNTRUSTED_WORDS = ("command", "_cmd", "exec", "_file", "filename", "provider", "_path", "_dir")
# fsspec wrappers of another file system that keep local copies or read local files
_UNTRUSTED_SCHEMES = ("reference", "dir", "filecache", "simplecache", "blockcache", "cached")


def _untrusted(key: str) -> bool:
    lowered = key.lower()
    return lowered in UNTRUSTED_OPTIONS or any(w in lowered for w in _UNTRUSTED_WORDS)


def _hazards(options: Mapping[str, Any], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths of the options a committed config may not set, in options (one remote's)."""
    found = []
    for key, value in options.items():
        here = (*path, str(key))
        if _untrusted(str(key)):
            found.append(here)
        elif isinstance(value, Mapping):
            found += _hazards(value, here)
        elif here == ("url",) and isinstance(value, str) and _wrapper_url(value):
            found.append(here)
    return found


def hazard_paths(options: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """The options of a remote (paths) that a committed config may not set: never copied
    from it by pinning (configure.pin_destinations)."""
    return _hazards(options)


def _wrapper_url(url: str) -> bool:
    return "::" in url or scheme_of(url) in _UNTRUSTED_SCHEMES


def _lookup(layer: Mapping[str, Any], path: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = layer
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _decided_here(
    layers: tuple[tuple[str, Mapping[str, Any]], ...], committed: int, path: tuple[str, ...]
) -> bool:
    """Does a config of this machine decide the value at path that layers[committed] sets:
    a stronger one sets it (and wins), or a weaker one sets the same value?"""
    value = _lookup(layers[committed][1], path)
    for j, (source, layer) in enumerate(layers):
        if config_mod.is_committed(source):
            continue
        here = _lookup(layer, path)
        if (j > committed and here[0]) or (j < committed and here == value):
            return True
    return False


def check_committed_options(cfg: config_mod.Config, name: str) -> None:
    """Refuse (ConfigError) a remote whose options from a committed config would make the
    storage library run a command or touch local files (see UNTRUSTED_OPTIONS), unless
    this machine's config decides them: config.local.yaml sets the same option (it wins),
    or the global config sets it to the same value."""
    _refuse_hazards(
        cfg,
        name,
        config_mod.is_committed,
        lambda i, full: _decided_here(cfg.layers, i, full),
        "a committed config",
        "--local",
    )


def check_secret_destinations(
    cfg: config_mod.Config,
    name: str,
    root: str | None,
    mine: Callable[[str], bool] | None = None,
    pin: str = "mlv remote modify --local {name} {option} {value}",
) -> None:
    """Refuse (ConfigError) remote `name` when a config of this machine (`mine`, by its
    source: the local and global configs) holds a secret for it but another file decides
    where it goes: the url or endpoint_url in effect is set by no config of this machine.
    Secrets are stored for a name; a later commit that changed only the committed url
    would have sent them to the new host (git ties credentials to the URL, not to the
    remote's name). Storing a secret pins the destinations (configure.pin_destinations);
    the hint is `pin` filled in."""
    if mine is None:
        mine = _this_machines
    holders = []
    for source, layer in cfg.layers:
        found, options = _lookup(layer, ("remote", name))
        if found and mine(source) and isinstance(options, Mapping):
            holders += [(source, key) for key in holds_secret(dict(options))]
    if not holders:
        return
    settings = cfg.remotes.get(name) or {}
    for option in DESTINATION_OPTIONS:
        value = settings.get(option)
        if value is None or any(
            _same_place(_lookup(layer, ("remote", name, option)), value, root)
            for source, layer in cfg.layers
            if mine(source)
        ):
            continue
        source, key = holders[0]
        shown = redact(value) if isinstance(value, str) else repr(value)
        raise ConfigError(
            f"remote '{name}': {_shown_source(source, root)} holds a secret for it "
            f"({key}), but its {option} {shown} comes from "
            f"{_url_source(cfg, name, root, option)}, which this machine's config does "
            "not pin: mlv sends the secret only where it was stored for",
            f"if you trust that {option}, pin it: "
            f"`{pin.format(name=name, option=option, value=shlex.quote(shown))}`",
        )


def _secret_holders(
    cfg: config_mod.Config, name: str, mine: Callable[[str], bool]
) -> list[tuple[str, str]]:
    """(file, dotted option) of the secrets for remote `name` in the layers `mine` names."""
    holders = []
    for source, layer in cfg.layers:
        found, options = _lookup(layer, ("remote", name))
        if found and mine(source) and isinstance(options, Mapping):
            holders += [(source, key) for key in holds_secret(dict(options))]
    return holders


def check_secret_options(
    cfg: config_mod.Config,
    name: str,
    root: str | None,
    untrusted: Callable[[str], bool],
    decided: Callable[[int, tuple[str, ...]], bool],
    level: str,
) -> None:
    """Refuse (ConfigError) remote `name` when this machine's config holds a secret for it
    and a layer `untrusted` names (the committed config; an import source's) sets an
    option of it other than mlv's own (SAFE_WITH_SECRET) that `decided` (layer index,
    option path) does not settle: a committed `proxy` had mlv pull send the Authorization
    header to the proxy, a committed `client_kwargs.endpoint_url` the signed S3 requests
    to its host, whatever url was pinned. The hint sets it in the config of `level`."""
    holders = _secret_holders(cfg, name, lambda s: not untrusted(s) and s != "environment")
    if not holders:
        return
    for i, (source, layer) in enumerate(cfg.layers):
        if not untrusted(source):
            continue
        found, options = _lookup(layer, ("remote", name))
        if not found or not isinstance(options, Mapping):
            continue
        for path, value in option_leaves(dict(options)):
            full = ("remote", name, *path)
            if path[0] in SAFE_WITH_SECRET or decided(i, full):
                continue
            holder, key = holders[0]
            raise ConfigError(
                f"remote '{name}': {_shown_source(source, root)} sets {'.'.join(path)} "
                f"({_shown_value(value)}), which only this machine's config may set while "
                f"it holds a secret for '{name}' ({key} in {_shown_source(holder, root)}): "
                "it could send the secret elsewhere",
                "if you trust it, set it for this machine: "
                f"`{_set_hint(name, path, value, level)}`",
            )


def check_source_secret_options(cfg: config_mod.Config, name: str, root: str | None) -> None:
    """check_secret_options for the remote of an import source (`mlv get`, `import`,
    `update`): its whole config is its author's; only the user's global config is this
    machine's, and decides an option by holding the value that wins."""
    gpath = config_mod.global_config_path()
    mine = [layer for source, layer in cfg.layers if source == gpath]

    def decided(_i: int, full: tuple[str, ...]) -> bool:
        winner = _lookup(cfg.raw, full)
        return any(_lookup(layer, full) == winner for layer in mine)

    check_secret_options(cfg, name, root, lambda s: s != gpath, decided, "--global")


def _shown_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return redact(value) if isinstance(value, str) else str(value)


def _set_hint(name: str, path: tuple[str, ...], value: Any, level: str) -> str:
    """The command that sets remote `name`'s option path to value in the config of level."""
    text = shlex.quote(_shown_value(value))
    if level == "--local" and len(path) == 1 and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", path[0]):
        return f"mlv remote modify --local {name} {path[0]} {text}"
    return f"mlv config {level} remote.{name}.{'.'.join(path)} {text}"


def note_moved_pins(cfg: config_mod.Config, name: str, root: str | None) -> None:
    """One note on stderr (once per command) when the committed config moved remote
    `name`'s url or endpoint_url away from the value this machine's config.local.yaml
    pins with a secret: mlv keeps using the pin, and the user should know the team
    moved, and how to follow."""
    settings = cfg.remotes.get(name) or {}
    for option in DESTINATION_OPTIONS:
        winner = settings.get(option)
        committed = [
            (source, value)
            for source, layer in cfg.layers
            if config_mod.is_committed(source)
            for found, value in [_lookup(layer, ("remote", name, option))]
            if found
        ]
        if not committed or winner is None:
            continue
        source, value = committed[-1]
        if _same_place((True, winner), value, root):
            continue
        holder = next(
            (s for s, layer in reversed(cfg.layers) if _lookup(layer, ("remote", name, option))[0]),
            None,
        )
        if holder is None or not _this_machines(holder):
            continue
        own = _lookup(dict(cfg.layers)[holder], ("remote", name))[1]
        if not isinstance(own, Mapping) or not holds_secret(dict(own)):
            continue
        if not log.first_time(f"moved pin {name} {option} {value}"):
            continue
        import sys

        new = _shown_value(value)
        sys.stderr.write(
            f"note: remote '{name}': {_shown_source(source, root)} sets its {option} to "
            f"{new}, but this machine sends its secrets to {_shown_value(winner)}, pinned in "
            f"{_shown_source(holder, root)}; to follow: "
            f"`mlv remote modify --local {name} {option} {shlex.quote(new)}`\n"
        )


def _this_machines(source: str) -> bool:
    return source != "environment" and not config_mod.is_committed(source)


def _same_place(found: tuple[bool, Any], value: Any, root: str | None) -> bool:
    """Does a layer's (found, value) name the destination value: equal, or for folders
    the same folder (the global config holds them absolute)."""
    if not found[0]:
        return False
    if found[1] == value:
        return True
    if isinstance(found[1], str) and isinstance(value, str):
        mine, theirs = folder_path(found[1], root), folder_path(value, root)
        return mine is not None and mine == theirs
    return False


def _shown_source(source: str, root: str | None) -> str:
    """A config file as a user finds it: relative to the root when inside it."""
    if root and os.path.isabs(source) and source.startswith(root + os.sep):
        return os.path.relpath(source, root)
    return source


def check_source_options(cfg: config_mod.Config, name: str) -> None:
    """Refuse (ConfigError) remote `name` of a source repository (`mlv get`, `import`,
    `update`) when any layer of its config, committed or its config.local.yaml alike, sets
    such an option, unless the user's global config (the only layer there that is this
    machine's) holds the value that wins. A clone may commit the source
    (`vendor/src.git/.mlv/config.local.yaml`): its local config is no more this machine's
    than its committed one, as git never trusts a config that arrives with a clone."""
    gpath = config_mod.global_config_path()
    mine = [layer for source, layer in cfg.layers if source == gpath]

    def decided(_i: int, full: tuple[str, ...]) -> bool:
        winner = _lookup(cfg.raw, full)
        return any(_lookup(g, full) == winner for g in mine)

    _refuse_hazards(
        cfg, name, lambda s: s != gpath, decided, "a source repository's config", "--global"
    )


def _refuse_hazards(
    cfg: config_mod.Config,
    name: str,
    untrusted: Callable[[str], bool],
    decided: Callable[[int, tuple[str, ...]], bool],
    what: str,
    level: str,
) -> None:
    """The refusal both checks share: the first hazardous option of remote `name` in a
    layer `untrusted` names (by its source) that `decided` (layer index, option path) does
    not settle; the hint sets it in the config of `level`."""
    for i, (source, layer) in enumerate(cfg.layers):
        if not untrusted(source):
            continue
        found, options = _lookup(layer, ("remote", name))
        if not found or not isinstance(options, Mapping):
            continue
        for path in _hazards(options):
            full = ("remote", name, *path)
            if decided(i, full):
                continue
            key = ".".join(full)
            raise ConfigError(
                f"{source}: {key} is refused in {what}: it could make mlv run a "
                "command or use files outside the repository",
                f"if you trust it, set it for this machine: `mlv config {level} {key} VALUE`",
            )


def _secret_values(node: Any, secret: bool = False) -> list[str]:
    """Text never to print in a remote's options: values of secret-named options (at any
    depth) and the credentials of URL values."""
    if isinstance(node, Mapping):
        return [
            s for k, v in node.items() for s in _secret_values(v, secret or is_secret_option(k))
        ]
    if isinstance(node, list | tuple):
        return [s for v in node for s in _secret_values(v, secret)]
    if isinstance(node, str):
        return ([node] if secret else []) + secrets_in(node)
    return [str(node)] if secret and node is not None and not isinstance(node, bool) else []


def folder_path(url: str, base_dir: str | None) -> str | None:
    """The local folder that a folder URL names: `file://` URLs by their path, plain paths
    with `~` expanded and, when relative, joined to base_dir (a repository root: a relative
    folder is relative to the root, whatever the current folder). None for other URLs, and
    for a relative folder with no base_dir."""
    if not is_folder(url):
        return None
    if "://" in url:
        from urllib.parse import urlsplit

        return os.path.normpath(urlsplit(url).path)
    if base_dir is None and is_relative_folder(url):
        return None
    return os.path.normpath(os.path.join(base_dir or "", os.path.expanduser(url)))


def missing_folder(repo: Repo, name: str | None) -> str | None:
    """The folder of remote `name` (None: the default) when it is a folder remote whose
    folder does not exist yet (push creates it), else None."""
    chosen = resolve_name(repo, name)
    url = repo.config.remotes[chosen].get("url")
    path = folder_path(url, repo.root) if isinstance(url, str) else None
    return path if path is not None and not os.path.lexists(path) else None


def absent_folder(url: str) -> str | None:
    """For `mlv remote add`: the folder a folder URL names, seen from the current folder's
    repository, when it does not exist yet; else None."""
    from mlv.core.repo import find_root

    try:
        root: str | None = find_root(os.getcwd())
    except MlvError:  # the global config: no repository here
        root = None
    path = folder_path(url, root)
    return path if path is not None and not os.path.lexists(path) else None


def _url_source(cfg: config_mod.Config, name: str, root: str | None, option: str = "url") -> str:
    """The config file that sets remote.NAME.url (or another option; the strongest file),
    as a user finds it."""
    for source, layer in reversed(cfg.layers):
        if _lookup(layer, ("remote", name, option))[0]:
            return _shown_source(str(source), root)
    return "the config"


def folder_problem(repo: Repo, name: str, absent_ok: bool = False) -> str | None:
    """What is wrong with the folder of remote `name`, when it is a folder remote whose
    folder does not exist (unless absent_ok) or is no folder: the folder, and where its url
    comes from."""
    cfg, root = repo.config, repo.root
    url = cfg.remotes[name].get("url")
    if not isinstance(url, str):
        return None
    path = folder_path(url, root)
    if path is None or os.path.isdir(path):
        return None
    exists = os.path.lexists(path)
    if absent_ok and not exists:
        return None
    what = "is not a folder" if exists else "does not exist"
    source = _url_source(cfg, name, root)
    shown = redact(url)
    if is_relative_folder(url):
        why = f"{shown!r} in {source}, relative to the repository root {root}"
    else:
        why = f"{shown!r} in {source}"
    return f"remote '{name}': the folder {path} {what} ({why})"


def cache_overlap(repo: Repo, name: str) -> str | None:
    """What is wrong with the folder of remote `name` when it is, holds or lies inside the
    cache folder in effect (both followed through links): the cache's objects have the
    layout of a remote's, so `mlv gc -r` would delete the only copies, and a push or fetch
    would take the cache's files for the remote's. A clone can commit such a url (`.mlv/
    cache`), and a cache.dir shared by several repositories can hold a remote. None when
    they are apart, or for a remote that is no folder."""
    url = repo.config.remotes[name].get("url")
    path = folder_path(url, repo.root) if isinstance(url, str) else None
    if path is None or not isinstance(url, str):
        return None
    folder, cache = os.path.realpath(path), os.path.realpath(repo.cache_dir)
    if folder == cache:
        relation = "is this repository's cache"
    elif cache.startswith(folder.rstrip(os.sep) + os.sep):
        relation = f"holds this repository's cache {cache}"
    elif folder.startswith(cache + os.sep):
        relation = f"lies inside this repository's cache {cache}"
    else:
        return None
    source = _url_source(repo.config, name, repo.root)
    return (
        f"remote '{name}': its folder {path} {relation} ({redact(url)!r} in {source}): "
        "a remote cannot share the cache's folder"
    )


def git_overlap(repo: Repo, name: str) -> str | None:
    """What is wrong with the folder of remote `name` (links followed) when it is or lies
    inside a git folder, or is or holds the work tree's root; None otherwise, or for a
    remote that is no folder. A git folder: one named `.git` (the repository's, a nested
    one's), the git folders in effect (`git rev-parse --git-dir --git-common-dir`: what a
    `.git` file names, a linked worktree's), or any folder git would take for one (HEAD,
    objects/ and refs/: a bare repository). A committed config chooses only where mlv
    may write a remote, never git's data: a clone's url `.git/refs/heads` had `mlv push`
    write mlv-remote.json, packs/ and index/ among the branch refs, which git then called
    broken, and `git gc` failed (review 61 finding 3). Nor where the work tree's files are
    (_work_tree_relation): at the root, a push writes mlv-remote.json, packs/, index/,
    locks/ and the loose objects among the repository's files, where `git add -A` would
    commit the data to git. One or two git processes, for folder remotes only."""
    url = repo.config.remotes[name].get("url")
    path = folder_path(url, repo.root) if isinstance(url, str) else None
    if path is None or not isinstance(url, str):
        return None
    folder = os.path.realpath(path)
    top, git_dirs = git_mod.work_tree_and_git_dirs(repo.root)
    relation = None
    for git_dir in git_dirs:
        if folder == git_dir or folder.startswith(git_dir.rstrip(os.sep) + os.sep):
            where = "is" if folder == git_dir else "lies inside"
            relation = f"{where} the git folder {git_dir}"
            break
    cur = folder
    while relation is None:
        if os.path.basename(cur).lower() == ".git" or _is_git_dir(cur):
            relation = f"{'is' if cur == folder else 'lies inside'} the git folder {cur}"
        parent = os.path.dirname(cur)
        if parent == cur:
            break
        cur = parent
    if relation is None:
        work_tree = top or os.path.realpath(repo.root)
        relation = _work_tree_relation(folder, work_tree, os.path.realpath(repo.root), top)
    if relation is None:
        return None
    source = _url_source(repo.config, name, repo.root)
    return (
        f"remote '{name}': its folder {path} {relation} ({redact(url)!r} in {source}): "
        "a remote cannot share git's folders or the work tree's files"
    )


def _work_tree_relation(folder: str, work_tree: str, root: str, top: str | None) -> str | None:
    """Why folder (a remote's, real) may not hold a remote, seen from the work tree (real;
    root: the repository's, below it or the same; top: git's work tree, None without
    git): it is or holds the work tree's root, or lies inside it where data mlv tracks is
    (`checkout --force` would delete the remote's files, `commit` hash them) or where git
    does not ignore it (`git add -A` would commit the data to git). None: apart, or an
    ignored folder of the work tree (`store/` in .gitignore)."""
    if folder == work_tree:
        return "is this repository's work tree"
    if work_tree.startswith(folder.rstrip(os.sep) + os.sep):
        return f"holds this repository's work tree {work_tree}"
    if not folder.startswith(work_tree + os.sep):
        return None
    cur = folder
    while cur.startswith(root + os.sep):  # a pointer beside it or beside a folder above
        if os.path.isfile(cur + SUFFIX):
            return f"lies inside data that mlv tracks ({cur}{SUFFIX})"
        cur = os.path.dirname(cur)
    if top is not None:
        probe = os.path.relpath(os.path.join(folder, MARKER_KEY), top).replace(os.sep, "/")
        if not git_mod.ignored(top, [probe]):
            return f"lies inside this repository's work tree {top}, where git does not ignore it"
    return None


def _is_git_dir(folder: str) -> bool:
    """Would git take folder for a git folder (as its is_git_directory: HEAD, objects/ and
    refs/)? Three stat calls at most."""
    return (
        os.path.isfile(os.path.join(folder, "HEAD"))
        and os.path.isdir(os.path.join(folder, "objects"))
        and os.path.isdir(os.path.join(folder, "refs"))
    )


def is_relative_folder(url: str) -> bool:
    """A folder URL that is relative to a repository root (`../store`, not `/abs`, `~/x`)."""
    if not is_folder(url) or "://" in url:
        return False
    return not os.path.isabs(os.path.expanduser(url))


def open_store(
    chosen: str, settings: Mapping[str, Any], base_dir: str | None, jobs: int | None = None
) -> RemoteStore:
    """Open the remote named `chosen` with its options (url and backend options).

    A relative folder URL is relative to base_dir (a repository root); with base_dir None
    it cannot be used. Messages redact credentials; -j (jobs) beats the `jobs` option.
    """
    options = dict(settings)
    url = options.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigError(
            f"remote '{chosen}' has no url", f"set it with `mlv remote modify {chosen} url URL`"
        )
    if is_folder(url) and "://" not in url:
        if base_dir is None and is_relative_folder(url):
            raise RemoteError(
                f"remote '{chosen}' is a relative folder ({url}) with no repository to be "
                "relative to",
                "use an absolute path or a URL for the remote",
            )
        url = os.path.normpath(os.path.join(base_dir or "", os.path.expanduser(url)))
    secrets = secrets_in(url) + _secret_values(options)
    log.add_secrets(secrets)  # never in a debug log line or a -v traceback either
    configured = options.get("jobs")
    if jobs is None and configured is not None:
        try:
            jobs = int(configured)
        except (TypeError, ValueError):
            raise ConfigError(f"remote.{chosen}.jobs: expected a number") from None
    if jobs is not None and jobs < 1:
        raise UsageError("-j/--jobs must be at least 1")
    from mlv.objects import remote as remote_mod

    packing = _packing(chosen, options)
    return remote_mod.open_store(chosen, url, options, jobs, secrets, packing)


def _packing(chosen: str, options: dict[str, Any]) -> PackSettings:
    """The remote's `pack_threshold`, `pack_size` (in bytes), `chunking` and `compression`
    options (mlv's own: taken out of the options handed to the storage library); defaults
    where unset."""
    from mlv.objects.packs.packed import Settings as PackSettings
    from mlv.objects.packs.packfile import MAX_PACK_WRITE, MAX_PACKED_OBJECT

    values = {}
    defaults = {"pack_threshold": "4MiB", "pack_size": "32MiB"}
    for option, default_text in defaults.items():
        raw = options.pop(option, None)
        if raw is None:
            continue
        try:
            values[option] = parse_size(raw)
        except ValueError:
            raise ConfigError(
                f"remote.{chosen}.{option}: expected a size in bytes (4194304, 4MiB, 0)",
                f"`mlv remote modify {chosen} {option} {default_text}`",
            ) from None
    default = PackSettings()
    threshold = values.get("pack_threshold", default.threshold)
    size = values.get("pack_size", default.size)
    if threshold > MAX_PACKED_OBJECT:
        raise ConfigError(
            f"remote.{chosen}.pack_threshold: at most {MAX_PACKED_OBJECT >> 20}MiB",
            f"`mlv remote modify {chosen} pack_threshold 4MiB`",
        )
    if size < 1 << 20 or size > MAX_PACK_WRITE:
        raise ConfigError(
            f"remote.{chosen}.pack_size: between 1MiB and {MAX_PACK_WRITE >> 20}MiB",
            f"`mlv remote modify {chosen} pack_size 32MiB`",
        )
    flags = {name: _flag(chosen, options, name) for name in ("chunking", "compression")}
    return PackSettings(threshold, size, flags["chunking"], flags["compression"])


def _flag(chosen: str, options: dict[str, Any], name: str) -> bool:
    """A true/false option of mlv's own (default true), taken out of the options."""
    value = options.pop(name, True)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        value = value.lower() == "true"
    if not isinstance(value, bool):
        raise ConfigError(
            f"remote.{chosen}.{name}: expected true or false",
            f"`mlv remote modify {chosen} {name} true`",
        )
    return value


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20}
_UNITS |= {"g": 1 << 30, "gib": 1 << 30, "kb": 1000, "mb": 1000**2, "gb": 1000**3}


def parse_size(value: object) -> int:
    """A size option: an integer of bytes, or a number with a unit (4MiB, 512k, 1GB)."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        number, unit = value, ""
    else:
        m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", str(value))
        if m is None:
            raise ValueError(value)
        number, unit = int(m.group(1)), m.group(2).lower()
    if number < 0 or unit not in _UNITS:
        raise ValueError(value)
    return number * _UNITS[unit]
