"""Another repository at a revision: the source of `mlv get`, `mlv import`, `mlv update` and
of the Python API's `repo=URL`.

The source is cloned (`git clone --no-checkout`, nothing is checked out) into a temporary
folder removed on exit; the revision is resolved there (a branch, tag or commit; default:
the source's default branch). The source's default remote comes from its
`.mlv/config.yaml` as of that commit, read from git, with options (credentials) completed
by the user's global config and the environment as for any remote. A relative folder remote
is relative to the source's root, so it works only when the source is a local path.

The source's config (committed, and its config.local.yaml when it is a local path) is its
author's, never this machine's: a pointer's `source` may name a repository that a clone
commits (`vendor/src.git`). Its remote options that could make mlv run a command or use
local files (remotes.UNTRUSTED_OPTIONS) are refused unless the user's global config holds
the same value; its URL and credentials are used as they are.

Objects come from the given cache when it has them, else from the source's own cache (a
local source only), else from its remote; everything is checked against its hash.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from mlv import config as config_mod
from mlv import git
from mlv.core import targets as targets_mod
from mlv.core.repo import MLV_DIR
from mlv.core.view import Objects, View
from mlv.errors import GitError, MlvError, RemoteError, UsageError
from mlv.objects.remote import RemoteStore
from mlv.objects.store import Cache
from mlv.util.urls import redact, scheme_of, scrub, secrets_in

CONFIG_SPEC = f"{MLV_DIR}/{config_mod.CONFIG_FILE}"
_SCP_LIKE = re.compile(r"^[^/\\]{2,}:")  # user@host:path/repo.git (not C:\ or ./a:b)


@dataclass
class Source:
    """One revision of another repository, open for reading."""

    url: str  # as given, credentials redacted
    rev: str | None  # as asked for (None: the default branch)
    commit: str  # what rev resolved to
    view: View
    local: str | None = None  # the source's folder, when it is a local path


def local_path(url: str) -> str | None:
    """The absolute folder a source URL names when it is a local path (or file:// URL);
    None for a remote git URL (https://, ssh://, git@host:path...)."""
    scheme = scheme_of(url)
    if scheme == "file":
        return os.path.abspath(unquote(urlsplit(url).path))
    if scheme:
        return None
    expanded = os.path.expanduser(url)
    if _SCP_LIKE.match(url) and not os.path.exists(expanded):
        return None
    return os.path.abspath(expanded)


def is_relative_path(url: str) -> bool:
    """A local path given relative to the current folder (`../data-registry`)."""
    return (
        local_path(url) is not None
        and not scheme_of(url)
        and not url.startswith("~")
        and not os.path.isabs(url)
    )


@contextmanager
def open_source(
    url: str, rev: str | None, cache: Cache | None = None, jobs: int | None = None
) -> Iterator[Source]:
    """Clone url, resolve rev and yield a Source whose view fetches into cache (or into a
    temporary cache, removed on exit, when cache is None)."""
    shown = redact(url)
    secrets = secrets_in(url)
    local = local_path(url)
    if local is not None and not os.path.isdir(local):
        raise UsageError(
            f"{shown}: no such repository",
            "give a git URL or the path of a local git repository",
        )
    if rev is not None and (not rev or rev.startswith("-")):
        raise UsageError(f"invalid revision {rev!r}", "name a branch, tag or commit")
    tmp = tempfile.mkdtemp(prefix="mlv-source-")
    view: View | None = None
    try:
        clone_dir = os.path.join(tmp, "repo")
        try:
            git.clone(local if local is not None else url, clone_dir, tmp)
        except GitError as e:
            raise GitError(
                f"cannot clone {shown}: {scrub(e.message, secrets)}",
                "check the URL or path, and that you can reach the repository",
            ) from None
        commit = _resolve(clone_dir, rev, shown)
        own, settings = _source_config(clone_dir, commit, shown, local)
        store = cache if cache is not None else Cache(os.path.join(tmp, "cache"), settings.hash)
        others = [c for c in [_local_cache(local)] if c is not None] if local else []
        objects = Objects(store, _opener(own.remote, settings, local, shown, jobs), others)
        view = View(clone_dir, commit, objects, targets_mod.at_commit(clone_dir, commit))
        yield Source(shown, rev, commit, view, local)
    finally:
        if view is not None:
            view.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _resolve(clone_dir: str, rev: str | None, shown: str) -> str:
    """The commit rev names in the clone: a tag, a commit, or a branch of the source (which
    the clone knows as origin/BRANCH, except the default one)."""
    if rev is None:
        try:
            return git.rev_parse(clone_dir, "HEAD")
        except GitError:
            raise GitError(
                f"{shown} has no commits on its default branch", "name a revision with --rev"
            ) from None
    for candidate in (rev, f"refs/remotes/origin/{rev}"):
        try:
            return git.rev_parse(clone_dir, candidate)
        except GitError:
            continue
    raise GitError(
        f"unknown revision '{rev}' in {shown}",
        "name a branch, tag or commit of the source repository",
    )


def _source_config(
    clone_dir: str, commit: str, shown: str, local: str | None
) -> tuple[config_mod.Config, config_mod.Config]:
    """(the source's own settings, those completed by the user's global config).

    The default remote is the source's own choice; a remote's options (credentials) may
    also come from the global config, the source's config.local.yaml (a local source)
    and the environment. Every layer but the global config is the source's (see
    remotes.check_source_options)."""
    where = f"{shown}: {CONFIG_SPEC} at {commit[:10]}"
    blob = git.read_blobs(clone_dir, [f"{commit}:{CONFIG_SPEC}"]).get(f"{commit}:{CONFIG_SPEC}")
    own_layers: list[tuple[str, Mapping[str, Any]]] = [
        (where, config_mod.parse_text(blob or b"", where))
    ]
    if local is not None:
        path = os.path.join(local, MLV_DIR, config_mod.LOCAL_CONFIG_FILE)
        own_layers.append((path, config_mod.read_file(path)))
    gpath = config_mod.global_config_path()
    own = config_mod.build(own_layers)
    merged = config_mod.build([(gpath, config_mod.read_file(gpath)), *own_layers])
    return own, merged


def _local_cache(root: str) -> Cache | None:
    """A local source's own cache, as its config places it (None when it has none)."""
    mlv_dir = os.path.join(root, MLV_DIR)
    if not os.path.isdir(mlv_dir):
        return None
    try:
        cfg = config_mod.load(mlv_dir, environ={})
    except MlvError:
        return None
    if cfg.cache_dir is None:
        folder = os.path.join(mlv_dir, "cache")
    else:
        folder = os.path.normpath(os.path.join(root, os.path.expanduser(cfg.cache_dir)))
    return _SourceCache(folder, cfg.hash) if os.path.isdir(folder) else None


class _SourceCache(Cache):
    """A source's own cache, as mlv reads from it: its regular files only (links followed).
    A clone may commit the source, and its cache with it: an object committed as a link to
    /dev/zero was copied until the disk was full, a FIFO (a local source's) blocked for
    ever. What is read is checked against its hash anyway."""

    def object_path(self, hash_id: str) -> str:
        path = super().object_path(hash_id)
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
        except (OSError, ValueError):
            regular = False
        return path if regular else ""  # "": no such file


def _opener(
    name: str | None,
    settings: config_mod.Config,
    local: str | None,
    shown: str,
    jobs: int | None,
) -> Callable[[], RemoteStore] | None:
    """Opens the source's default remote on first need; None when it has none."""
    if name is None:
        return None

    def opener() -> RemoteStore:
        from mlv.core.remotes import is_relative_folder, open_store

        options = settings.remotes.get(name)
        if options is None:
            raise RemoteError(
                f"{shown}: its default remote '{name}' is not configured",
                "fix the source's .mlv/config.yaml, or push the data from it",
            )
        url = options.get("url")
        if local is None and isinstance(url, str) and is_relative_folder(url):
            raise RemoteError(
                f"{shown}: its remote '{name}' is a folder relative to the repository "
                f"({url}), which only works for a local source",
                "clone the source next to that folder and give its path, or give the "
                "remote an absolute path or URL",
            )
        from mlv.core.remotes import (
            check_secret_destinations,
            check_source_options,
            check_source_secret_options,
        )

        check_source_options(settings, name)  # a source's config is its author's
        gpath = config_mod.global_config_path()  # the only config of this machine there
        check_secret_destinations(
            settings,
            name,
            local,
            lambda source: source == gpath,
            "mlv config --global remote.{name}.{option} {value}",
        )
        check_source_secret_options(settings, name, local)
        return open_store(name, options, local, jobs)

    return opener
