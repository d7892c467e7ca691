"""`mlv config` and `mlv cache dir`: read and write one key of one config file."""

from __future__ import annotations

import os
import shlex
import stat
import tempfile
from typing import Any

from mlv import config as config_mod
from mlv import git
from mlv.core.repo import (
    GITIGNORE_BODY,
    MLV_DIR,
    Repo,
    committed_cache_dir_refusal,
    find_root,
    refuse_config_links,
)
from mlv.errors import ConfigError, UsageError, rpath
from mlv.util import localfs

SECRET_OPTIONS = (
    "secret",
    "password",
    "token",
    "secret_access_key",
    "key_secret",
    "session_token",
    "sas_token",
    "account_key",
    "client_secret",
    "passphrase",
    "key",
    "credential",
    "credentials",
    "connection_string",
    "pass",
    "pwd",
    "auth",
    "authorization",
    "bearer",
    "headers",
    "cookie",
    "cookies",
)


_SECRET_WORDS = (
    "secret", "password", "passwd", "token", "credential", "passphrase", "private_key",
    "api_key", "apikey", "connection_string", "account_key", "sas", "access_key",
    "auth", "bearer", "cookie", "header", "pwd",
)  # fmt: skip


def is_secret_option(name: str) -> bool:
    """May the option `name` hold a secret (never written to the committed config)? The
    known names, any case, and any name containing a secret-sounding word."""
    lowered = name.lower()
    return lowered in SECRET_OPTIONS or any(word in lowered for word in _SECRET_WORDS)


def is_secret_key(key: str) -> bool:
    """Is the config key remote.NAME.OPTION[.SUB...] one that may hold a secret: an option
    or any sub-key below it with a secret-sounding name?"""
    parts = key.split(".")
    return parts[0] == "remote" and any(is_secret_option(p) for p in parts[2:])


# The options that choose where a remote's requests go. A secret kept in this machine's
# config (local or global) is sent only where this machine's config sends it: storing one
# pins these in the same file (pin_destinations), and opening the remote refuses a secret
# whose destination another file decides (remotes.check_secret_destinations).
DESTINATION_OPTIONS = ("url", "endpoint_url")

# mlv's own options: how many requests, how long to wait, how objects are packed. They
# neither choose where a request goes nor what it carries, so the committed config (or an
# import source's) may set them for a remote this machine holds a secret for. Every other
# option it sets (proxy, client_kwargs.endpoint_url, headers, region, port...) must be
# decided by this machine's config (remotes.check_secret_options), and storing a secret
# pins the ones in effect (pin_destinations).
SAFE_WITH_SECRET = (
    "jobs", "retries", "timeout", "connect_timeout", "pack_threshold", "pack_size",
    "chunking", "compression",
)  # fmt: skip

# The top-level section of a local or global config that records the options mlv pinned
# there for a remote ({NAME: [option, ...]}, dotted below the remote): dropping the
# file's last secret for a remote drops them too (drop_pins); setting one by hand makes
# it the user's (forget_pin).
PINNED = "pinned"


def holds_secret(options: Any, secret: bool = False) -> list[str]:
    """The dotted names of the secrets in one layer's options of a remote: options named
    like secrets (at any depth) and URL values with credentials, but not the destinations
    themselves (a url with a password goes where it says)."""
    from mlv.util.urls import has_credentials

    found = []
    if isinstance(options, dict):
        for key, value in options.items():
            if not secret and key in DESTINATION_OPTIONS:
                continue
            inner = holds_secret(value, secret or is_secret_option(str(key)))
            found += [f"{key}.{k}" if k else str(key) for k in inner]
        return found
    if secret and options is not None:
        return [""]
    return [""] if isinstance(options, str) and has_credentials(options) else []


def option_leaves(options: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, value) of every value a remote's options set, mappings walked (a null sets
    nothing and is left out)."""
    out: list[tuple[tuple[str, ...], Any]] = []
    if not isinstance(options, dict):
        return out
    for key, value in options.items():
        here = (*path, str(key))
        if isinstance(value, dict) and value:
            out += option_leaves(value, here)
        elif value is not None:
            out.append((here, value))
    return out


def _secret_leaf(path: tuple[str, ...], value: Any) -> bool:
    from mlv.util.urls import has_credentials

    if any(is_secret_option(p) for p in path):
        return True
    return isinstance(value, str) and has_credentials(value)


def pin_destinations(doc: dict[str, Any], name: str, level: str, path: str) -> list[str]:
    """Called when a secret of remote `name` goes into the local or global config (doc,
    the file at path, about to be written): copy into doc every option in effect that
    could change where the secret goes or what is sent with it (all but SAFE_WITH_SECRET
    and the secrets themselves) and that doc does not set, so that a later commit that
    changes them does not send the secret elsewhere. They are recorded under PINNED. The
    notes to print."""
    from mlv.util.urls import redact

    if level == "repo":
        return []
    cwd = os.getcwd()
    from mlv.core.remotes import hazard_paths

    options = dict(effective(cwd).remotes.get(name) or {})
    # never copied: an option a committed config may not set (proxy_command, a wrapper
    # url...) would be this machine's once copied, and its refusal gone
    hazards = hazard_paths(options)
    mine = config_mod.Config(raw=doc).get(f"remote.{name}")
    shown = rpath(f"{MLV_DIR}/{config_mod.LOCAL_CONFIG_FILE}") if level == "local" else path
    notes = []
    for leaf, value in option_leaves(options):
        if leaf[0] in SAFE_WITH_SECRET or _secret_leaf(leaf, value) or _sets(mine, leaf):
            continue
        if any(leaf[: len(h)] == h for h in hazards):
            continue
        if level == "global" and leaf == ("url",) and isinstance(value, str):
            value = _absolute_folder(value, cwd)
        dotted = ".".join(leaf)
        config_mod.set_value(doc, f"remote.{name}.{dotted}", value)
        _record_pin(doc, name, dotted)
        text = redact(value) if isinstance(value, str) else value
        notes.append(
            f"Pinned remote.{name}.{dotted} ({text}) in {shown}: the secrets this "
            f"file keeps for '{name}' go there, even after a commit changes it"
        )
    return notes


def _sets(mine: Any, leaf: tuple[str, ...]) -> bool:
    """Does a file's options of a remote (mine) set leaf, or a value above it?"""
    node = mine
    for part in leaf:
        if not isinstance(node, dict):
            return True  # a value above the leaf: the file decides it
        if part not in node:
            return False
        node = node[part]
    return True


def _pins(doc: dict[str, Any]) -> dict[str, Any]:
    pins = doc.get(PINNED)
    return pins if isinstance(pins, dict) else {}


def _record_pin(doc: dict[str, Any], name: str, dotted: str) -> None:
    pins = _pins(doc)
    recorded = pinned_options(doc, name)
    if dotted not in recorded:
        pins[name] = [*recorded, dotted]
    doc[PINNED] = pins


def pinned_options(doc: dict[str, Any], name: str) -> list[str]:
    """The options of remote `name` that mlv pinned in the file doc (dotted)."""
    recorded = _pins(doc).get(name)
    return [str(o) for o in recorded] if isinstance(recorded, list) else []


def forget_pin(doc: dict[str, Any], name: str, dotted: str | None = None) -> None:
    """The user set (or removed) remote `name`'s option dotted (None: the whole remote) in
    doc by hand: it is no longer mlv's pin, and drop_pins leaves it alone."""
    pins = _pins(doc)
    recorded = pinned_options(doc, name)
    kept = (
        []
        if dotted is None
        else [
            o
            for o in recorded
            if o != dotted and not o.startswith(dotted + ".") and not dotted.startswith(o + ".")
        ]
    )
    if kept:
        pins[name] = kept
    else:
        pins.pop(name, None)
    if pins:
        doc[PINNED] = pins
    else:
        doc.pop(PINNED, None)


def drop_pins(doc: dict[str, Any], name: str, level: str, path: str) -> list[str]:
    """Called after a secret of remote `name` left doc (the local or global config at
    path): when doc keeps no secret for it any more, the options mlv pinned there when
    storing one go too (they were there for the secret, and would hide later changes of
    the committed config). The notes to print."""
    mine = config_mod.Config(raw=doc).get(f"remote.{name}")
    recorded = pinned_options(doc, name)
    if not recorded or (isinstance(mine, dict) and holds_secret(mine)):
        return []
    shown = rpath(f"{MLV_DIR}/{config_mod.LOCAL_CONFIG_FILE}") if level == "local" else path
    notes = []
    for dotted in recorded:
        if config_mod.unset_value(doc, f"remote.{name}.{dotted}"):
            notes.append(
                f"Unpinned remote.{name}.{dotted} in {shown}: it keeps no secret for "
                f"'{name}' any more"
            )
    forget_pin(doc, name)
    return notes


def refuse_hidden_by_pin(name: str, option: str | None, value: str | None) -> None:
    """Refuse (UsageError) a write to the committed config that this machine would not
    follow: remote `name`'s `option` (url or endpoint_url; None: the whole remote, as
    `remote remove` and `remote add --force` replace it) set to value, while
    .mlv/config.local.yaml keeps a secret for that remote and sets the option to another
    value (a pin). The local value wins, so the write would change nothing here, and the
    user who moved the store would go on sending to the old one unawares."""
    from mlv.util.urls import redact

    root = find_root(os.getcwd())
    local = config_mod.read_file(os.path.join(root, MLV_DIR, config_mod.LOCAL_CONFIG_FILE))
    mine = config_mod.Config(raw=local).get(f"remote.{name}")
    if not isinstance(mine, dict) or not holds_secret(mine):
        return
    shown_file = rpath(f"{MLV_DIR}/{config_mod.LOCAL_CONFIG_FILE}")
    if option is None:
        raise UsageError(
            f"remote '{name}': {shown_file} keeps a secret for it, and its url: the remote "
            "would stay as it is on this machine",
            f"remove it there first: `mlv remote remove --local {name}`",
        )
    pinned = mine.get(option)
    if (
        option not in DESTINATION_OPTIONS
        or option not in mine
        or value is None
        or _same_value(pinned, value, root)
    ):
        return
    old = redact(pinned) if isinstance(pinned, str) else pinned
    new = redact(value)
    raise UsageError(
        f"remote '{name}': {shown_file} pins its {option} to {old}, with the secrets "
        f"this machine keeps for it: the committed {option} {new} would not be used here",
        f"to send them to {new}, pin it first, then run this again: "
        f"`mlv remote modify --local {name} {option} {shlex.quote(new)}`",
    )


def _same_value(pinned: Any, value: str, root: str) -> bool:
    """Does a pinned url name what value names (equal, or the same folder)?"""
    from mlv.util.urls import is_folder

    if pinned == value:
        return True
    if not isinstance(pinned, str) or not is_folder(pinned) or not is_folder(value):
        return False
    if "://" in pinned or "://" in value:
        return False

    def place(url: str) -> str:
        return os.path.normpath(os.path.join(root, os.path.expanduser(url)))

    return place(pinned) == place(value)


def _absolute_folder(url: str, cwd: str) -> str:
    """A relative folder url as the global config must hold it: joined to the repository
    root it is relative to."""
    from mlv.util.urls import is_folder

    if not is_folder(url) or "://" in url or os.path.isabs(os.path.expanduser(url)):
        return url
    return os.path.normpath(os.path.join(find_root(cwd), os.path.expanduser(url)))


def mask(key: str, value: Any) -> Any:
    """value as listings show it: *** for a secret, URLs with their credentials redacted,
    mappings and lists masked item by item."""
    from mlv.util.urls import has_credentials, redact

    if is_secret_key(key):
        return "***"
    if isinstance(value, dict):
        return {k: mask(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(key, v) for v in value]
    if isinstance(value, str) and has_credentials(value):
        return redact(value)
    return value


def config_path(level: str, start: str | None = None) -> str:
    """The file for level: "repo" (committed), "local" (this machine) or "global" (user)."""
    if level == "global":
        return config_mod.global_config_path()
    root = find_root(start or os.getcwd())
    refuse_config_links(root)
    name = config_mod.LOCAL_CONFIG_FILE if level == "local" else config_mod.CONFIG_FILE
    return os.path.join(root, ".mlv", name)


def path_to_write(level: str) -> tuple[str, list[str]]:
    """config_path(level) for a command about to write that file, and the notes to print.
    The local file holds this machine's secrets: it is refused when git tracks it (as every
    command that reads it refuses it), and made one git ignores when it is not (a clone
    whose .mlv/.gitignore leaves it out would have `git add -A` commit the password)."""
    path = config_path(level)
    if level != "local":
        return path, []
    return path, _keep_local_config_out_of_git(os.path.dirname(os.path.dirname(path)))


LOCAL_IGNORE_LINE = f"/{config_mod.LOCAL_CONFIG_FILE}"  # as `mlv init` writes it


def _keep_local_config_out_of_git(root: str) -> list[str]:
    """Refuse a config.local.yaml git tracks; when git would not ignore it, add the line
    `mlv init` writes to .mlv/.gitignore (a note says so). Nothing outside git."""
    if git.dot_git(root) is None:
        return []
    rel = f"{MLV_DIR}/{config_mod.LOCAL_CONFIG_FILE}"
    if git.tracked_files(root, [rel]):
        raise ConfigError(
            f"{rpath(rel)} is tracked by git: a repository cannot commit what mlv keeps for "
            "this machine (local config, state, cache)",
            f"untrack it with `git rm -r --cached {rpath(rel)}` and commit; "
            "delete it unless you wrote it",
        )
    if git.ignored(root, [rel]):
        return []
    ignore = f"{MLV_DIR}/.gitignore"
    path = os.path.join(root, ignore)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        raise ConfigError(
            f"{rpath(ignore)} is a folder: git would not keep {rpath(rel)} out of a commit",
            f"remove it (`rm -r {rpath(ignore)}`) and run this command again",
        )
    text = GITIGNORE_BODY  # no file, or a link (git reads no .gitignore through a link)
    if mode is not None and stat.S_ISREG(mode):
        try:
            text = localfs.read_small(path).decode("utf-8", "surrogateescape")
        except OSError as e:
            raise ConfigError(f"{rpath(ignore)}: cannot read ({e.strerror})") from None
        text += ("" if not text or text.endswith("\n") else "\n") + LOCAL_IGNORE_LINE + "\n"
    localfs.write_bytes_atomic(path, text.encode("utf-8", "surrogateescape"))
    if not git.ignored(root, [rel]):
        raise ConfigError(
            f"git does not ignore {rpath(rel)}, even with {LOCAL_IGNORE_LINE} in "
            f"{rpath(ignore)}: refusing to write secrets where `git add` would take them",
            f"`git check-ignore -v --no-index {rpath(rel)}` shows the rule that wins",
        )
    return [
        f"Added {LOCAL_IGNORE_LINE} to {rpath(ignore)} so that git ignores this machine's "
        "config (as `mlv init` writes it): commit that change"
    ]


def _check_key(key: str) -> None:
    """A key typed on the command line that mlv does not know is bad usage (exit 2)."""
    try:
        config_mod.check_key(key)
    except ConfigError as e:
        raise UsageError(e.message, e.hint) from None


def effective(start: str) -> config_mod.Config:
    """The config in effect at start: the user's, and the repository's when start is in
    one (its config files refused when a committed link leads them out), with the
    environment."""
    try:
        root: str | None = find_root(start)
    except Exception:
        root = None
    if root:
        refuse_config_links(root)
    return config_mod.load(os.path.join(root, ".mlv") if root else None)


def get(key: str, level: str | None) -> Any:
    """The effective value (level None) or the value in one file."""
    _check_key(key)
    if level is None:
        return effective(os.getcwd()).get(key)
    doc = config_mod.read_file(config_path(level))
    return config_mod.Config(raw=doc).get(key)


def shown(key: str, level: str | None) -> Any:
    """get(), masked for printing: secrets as ***, URLs without their credentials."""
    value = get(key, level)
    return None if value is None else mask(key, value)


def set_(key: str, value: str, level: str) -> list[str]:
    _check_key(key)
    if level == "repo" and key.startswith("remote."):
        from mlv.util.urls import has_credentials, redact

        if has_credentials(value):  # url, endpoint_url, proxy...: any URL with a password
            raise UsageError(
                f"{key}: refusing to write a URL with credentials to .mlv/config.yaml "
                f"({redact(value)})",
                f"store it in .mlv/config.local.yaml (kept out of git): "
                f"`mlv config --local {key} VALUE`",
            )
    parts = key.split(".")
    if level == "repo" and len(parts) == 3 and parts[:1] == ["remote"]:
        refuse_hidden_by_pin(parts[1], parts[2], value)  # url, endpoint_url; others: none
    if level == "repo" and is_secret_key(key):
        raise UsageError(
            f"{key}: refusing to write a secret to the committed .mlv/config.yaml",
            f"store it in .mlv/config.local.yaml (kept out of git): "
            f"`mlv config --local {key} VALUE`",
        )
    try:
        parsed = config_mod.parse_value(key, value)
    except ConfigError as e:  # a value typed on the command line: bad usage (exit 2)
        raise UsageError(e.message, e.hint) from None
    if level == "repo" and key == "cache.dir" and isinstance(parsed, str):
        root = find_root(os.getcwd())
        refusal = committed_cache_dir_refusal(root, parsed)
        if refusal is not None:
            raise UsageError(
                f"cache.dir {parsed!r} {refusal}: the committed .mlv/config.yaml may only "
                "name a folder inside the repository",
                "use --local (this machine) or --global (every repository of this user)",
            )
    path, notes = path_to_write(level)
    doc = config_mod.read_file(path)
    config_mod.set_value(doc, key, parsed)
    if parts[0] == "remote":
        forget_pin(doc, parts[1], ".".join(parts[2:]))  # the user's value now
        if holds_secret({parts[2]: _nested(parts[3:], parsed)}):
            notes += pin_destinations(doc, parts[1], level, path)
    config_mod.build([(path, doc)])  # validate the whole file before writing it
    config_mod.write_file(path, doc)
    return notes


def _nested(parts: list[str], value: Any) -> Any:
    """value as the mapping that holds it below the keys parts (a.b, v -> {a: {b: v}})."""
    for part in reversed(parts):
        value = {part: value}
    return value


def unset(key: str, level: str) -> list[str]:
    """Remove key from the file of level; the notes to print."""
    _check_key(key)
    path, notes = path_to_write(level)
    doc = config_mod.read_file(path)
    if not config_mod.unset_value(doc, key):
        raise UsageError(f"{key} is not set in {path}")
    parts = key.split(".")
    if parts[0] == "remote" and level != "repo":
        forget_pin(doc, parts[1], ".".join(parts[2:]))
        notes += drop_pins(doc, parts[1], level, path)
    config_mod.write_file(path, doc)
    return notes


def set_cache_dir(repo: Repo, path: str, level: str | None) -> tuple[str, str, list[str]]:
    """Store the cache location; relative paths are kept relative to the repo root. Returns
    (the folder, the level written, the notes to print). Without a level: the committed
    config for a folder inside the repository, this machine's config.local.yaml for one
    outside it (a committed config may not place the cache outside the repository)."""
    absolute = os.path.abspath(os.path.expanduser(path))
    _check_usable_folder(absolute)
    value = absolute
    if level != "global":
        value = os.path.relpath(absolute, repo.root)
    if level is None:
        level = "local" if committed_cache_dir_refusal(repo.root, value) else "repo"
    notes = set_("cache.dir", value, level)
    return absolute, level, notes


def _check_usable_folder(path: str) -> None:
    """A cache folder must be a folder we can write, or creatable in one (it is created on
    first use): refuse now rather than at the next `mlv add`."""
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise UsageError(f"cannot use {path} as the cache: {existing} is not a folder")
    try:  # os.access says yes to root everywhere, even on /proc: try it
        os.rmdir(tempfile.mkdtemp(prefix=".mlv-probe-", dir=existing))
    except OSError as e:
        raise UsageError(
            f"cannot use {path} as the cache: cannot write in {existing} ({e.strerror})",
            "choose a folder you can write to",
        ) from None
