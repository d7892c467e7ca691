"""The repository: where it is, its config, cache, state database and lock.

Everything a use case needs is reached through one Repo object, opened once per command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

from mlv import config as config_mod
from mlv import git
from mlv.core import safepaths
from mlv.core.lock import RepoLock
from mlv.errors import ConfigError, NotARepoError, UsageError, rpath
from mlv.objects import names
from mlv.objects.pointer import SUFFIX
from mlv.objects.state import StateDB
from mlv.objects.store import Cache
from mlv.util import localfs

MLV_DIR = ".mlv"
GITIGNORE_BODY = "/cache/\n/tmp/\n/config.local.yaml\n"


def find_root(start: str) -> str:
    """The nearest folder at or above start that holds .mlv/, passing over a .mlv inside
    data mlv tracks (_in_tracked_data)."""
    path = os.path.realpath(start)
    while True:
        if os.path.isdir(os.path.join(path, MLV_DIR)) and not _in_tracked_data(path):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            raise NotARepoError(
                "not inside an mlv repository (no .mlv/ found here or above)",
                "run `mlv init` at the root of your git repository",
            )
        path = parent


def _in_tracked_data(path: str) -> bool:
    """Is path's .mlv part of data mlv tracks rather than a repository: .mlv itself, path
    or a folder above it has a pointer beside it (`data.mlv` for data/.mlv), up to the git
    work tree's root. A tree or pointer that holds a .mlv is refused (tree.check_name,
    names.problem), but an mlv before that check pulled `data/.mlv/config.local.yaml`, which
    `cd data && mlv push` took for this machine's config. One stat at a work tree's root."""
    if os.path.exists(os.path.join(path, ".git")):
        return False
    if os.path.isfile(os.path.join(path, MLV_DIR + SUFFIX)):
        return True
    folder = path
    while True:
        if os.path.isfile(folder + SUFFIX):  # a pointer in the folder above
            return True
        parent = os.path.dirname(folder)
        if parent == folder or os.path.exists(os.path.join(parent, ".git")):
            return False  # past the work tree's root, or at /
        folder = parent


def committed_cache_dir_refusal(root: str, value: str) -> str | None:
    """Why the committed config may not set cache.dir to value (None: it may). A cloned
    repository must not choose a folder outside itself (another project's cache, which its
    `mlv gc` would empty, or any folder a pull would write to), nor .git, followed through
    symbolic links: only config.local.yaml, the user's config and MLV_CACHE_DIR may."""
    folder = os.path.realpath(os.path.join(root, os.path.expanduser(value)))
    real_root = os.path.realpath(root)
    if not folder.startswith(real_root + os.sep):
        return "is outside the repository"
    rel = os.path.relpath(folder, real_root).replace(os.sep, "/")
    if names.problem(rel, line=False) == names.INSIDE_GIT:
        return names.INSIDE_GIT
    return None


def refuse_config_links(root: str) -> None:
    """Refuse .mlv/config.yaml or config.local.yaml when a link git tracks leads it out of
    the work tree (a clone's `.mlv/config.yaml -> ~/.config/app/hosts.yml`): their values
    are printed by `mlv config` and used by every command. Three lstat calls when neither
    the files nor .mlv are links."""
    names = (
        MLV_DIR,
        f"{MLV_DIR}/{config_mod.CONFIG_FILE}",
        f"{MLV_DIR}/{config_mod.LOCAL_CONFIG_FILE}",
    )
    if not any(os.path.islink(os.path.join(root, rel)) for rel in names):
        return
    from mlv.core.workspace import refuse_link_out

    for rel in names[1:]:
        refuse_link_out(root, rel)


@dataclass
class Repo:
    root: str
    lock_wait: float | None = 3.0
    _closing: list[StateDB] = field(default_factory=list, repr=False)
    _own_checked: bool = field(default=False, repr=False)  # _refuse_tracked_own_files ran
    _asked_ahead: bool = field(default=False, repr=False)  # ask_git_ahead ran

    @classmethod
    def open(cls, start: str | None = None, lock_wait: float | None = 3.0) -> Repo:
        return cls(find_root(start or os.getcwd()), lock_wait)

    @property
    def mlv_dir(self) -> str:
        return os.path.join(self.root, MLV_DIR)

    @property
    def tmp_dir(self) -> str:
        return os.path.join(self.mlv_dir, "tmp")

    @property
    def sweep_stamp(self) -> str:
        """Its mtime: when a write command last swept the cache's object folders for
        stale temporaries (Cache.remove_stale_tmp)."""
        return os.path.join(self.tmp_dir, "cache-swept")

    @cached_property
    def config(self) -> config_mod.Config:
        refuse_config_links(self.root)
        cfg = config_mod.load(self.mlv_dir)
        if os.path.lexists(os.path.join(self.mlv_dir, config_mod.LOCAL_CONFIG_FILE)):
            self._refuse_tracked_own_files(cfg)
        return cfg

    def _refuse_tracked_own_files(self, cfg: config_mod.Config) -> None:
        """Refuse (ConfigError) files git tracks where mlv keeps what belongs to this
        machine: .mlv/config.local.yaml (a clone that commits one would set the options a
        committed config may not, cache.dir outside the repository...), .mlv/tmp (the state
        database's trust records) and the cache when it lies inside the repository (objects
        planted under names their bytes do not have). Only .mlv/config.yaml and
        .mlv/.gitignore may be committed. One `git ls-files`, once per command. Asked
        whenever the repository lies in a git work tree, at its root or below it (a clone
        can commit `sub/.mlv/`, and `cd sub && mlv pull` must not trust it)."""
        if not self.in_git or self._own_checked:
            return
        self._own_checked = True
        places = self._own_places(cfg)
        allowed = {f"{MLV_DIR}/{config_mod.CONFIG_FILE}", f"{MLV_DIR}/.gitignore"}
        for path in git.tracked_files(self.root, places):
            if path in allowed:
                continue
            shown = path
            for folder in (f"{MLV_DIR}/tmp", f"{MLV_DIR}/cache", *places[1:]):
                if path.startswith(folder + "/"):
                    shown = folder
            raise ConfigError(
                f"{rpath(shown)} is tracked by git: a repository cannot commit what mlv keeps for "
                "this machine (local config, state, cache)",
                f"untrack it with `git rm -r --cached {rpath(shown)}` and commit; "
                "delete it unless you wrote it",
            )

    def _own_places(self, cfg: config_mod.Config) -> list[str]:
        """Where git may track nothing but .mlv/config.yaml and .mlv/.gitignore: .mlv, and
        the cache folder when it lies inside the repository (relative paths)."""
        places = [MLV_DIR]
        if cfg.cache_dir is not None:
            folder = os.path.join(self.root, os.path.expanduser(cfg.cache_dir))
            inside = os.path.relpath(os.path.normpath(folder), self.root)
            if not (inside == os.curdir or inside.startswith(os.pardir) or os.path.isabs(inside)):
                places.append(inside.replace(os.sep, "/"))
        return places

    def ask_git_ahead(self) -> None:
        """Start now the `git ls-files` that listing the pointers (targets.pointer_files)
        and the check of mlv's own files will run, ~3-4 ms each: they run beside this
        process while it imports and reads, and those calls take the answers
        (mlv.git._start); close() ends what no call took. Status's start-up. The check is
        asked about .mlv alone, its question unless cache.dir puts the cache inside the
        repository: the config is not read here, so that its errors come when and as they
        did."""
        if not self.scm:
            return
        self._asked_ahead = True
        git.start_list_files(self.root, f"*{SUFFIX}")
        if not self._own_checked:
            git.start_tracked_files(self.root, [MLV_DIR])

    @cached_property
    def scm(self) -> bool:
        """True when the repository lives in a git work tree, at its root (mlv init puts
        .mlv there)."""
        return os.path.exists(os.path.join(self.root, ".git"))

    @cached_property
    def in_git(self) -> bool:
        """True when git tracks files here: at the work tree's root (scm), or below it (a
        `mlv init --no-scm` folder inside a repository, or a `.mlv` a clone committed in a
        subfolder). The checks of what git tracks (mlv's own files, links) ask git then
        too, whatever scm says."""
        return self.scm or git.dot_git(os.path.dirname(self.root)) is not None

    @property
    def cache_dir(self) -> str:
        """The cache folder. A cache.dir from the committed config must lie inside the
        repository (see committed_cache_dir_refusal); elsewhere only this machine's config,
        the user's or the environment may put it."""
        cfg = self.config
        configured = cfg.cache_dir
        if configured is None:
            return os.path.join(self.mlv_dir, "cache")
        folder = os.path.normpath(os.path.join(self.root, os.path.expanduser(configured)))
        if cfg.cache_dir_from == os.path.join(self.mlv_dir, config_mod.CONFIG_FILE):
            refusal = committed_cache_dir_refusal(self.root, configured)
            if refusal is not None:
                raise ConfigError(
                    f"{MLV_DIR}/{config_mod.CONFIG_FILE}: cache.dir {configured!r} {refusal}: "
                    "a committed config cannot choose where mlv writes",
                    f"to use that folder on this machine, run `mlv cache dir --local {folder}`, "
                    "then `mlv config --unset cache.dir` and commit",
                )
        return folder

    @cached_property
    def cache(self) -> Cache:
        cfg = self.config
        cache_dir = self.cache_dir  # a committed cache.dir outside is refused first
        self._refuse_tracked_own_files(cfg)
        safepaths.check_own_folders(self.root, cache_dir)  # no committed links there
        return Cache(cache_dir, cfg.hash, cfg.cache_type, trust=self.state, fsync=cfg.fsync)

    @cached_property
    def state(self) -> StateDB:
        safepaths.check_own_folders(self.root)
        db = StateDB(os.path.join(self.tmp_dir, "state.db"))
        self._closing.append(db)
        return db

    def lock(self) -> RepoLock:
        """The write lock; `with repo.lock():` around anything that changes the repository."""
        safepaths.check_own_folders(self.root)
        return RepoLock(os.path.join(self.tmp_dir, "lock"), self.lock_wait)

    def close(self) -> None:
        if self._asked_ahead:
            git.forget_started()
        for db in self._closing:
            db.close()
        self._closing.clear()

    # ---- paths -----------------------------------------------------------------------

    def rel(self, path: str) -> str:
        """Posix path relative to the root; raises if path is outside the repository."""
        absolute = os.path.abspath(path)
        real_parent = os.path.realpath(os.path.dirname(absolute))
        absolute = os.path.join(real_parent, os.path.basename(absolute))
        rel = os.path.relpath(absolute, self.root)
        if rel == os.curdir:
            return ""
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            raise UsageError(
                f"{path}: outside the repository ({self.root})",
                "only paths inside the repository can be tracked",
            )
        return rel.replace(os.sep, "/")

    def abs(self, rel: str) -> str:
        return os.path.join(self.root, rel) if rel else self.root

    def stage(self, rel_paths: list[str]) -> None:
        if self.scm and rel_paths:
            git.add(self.root, rel_paths)


def init(path: str, no_scm: bool, force: bool) -> Repo:
    """Create .mlv/ at the git root (or at path with no_scm); stage it. A `.mlv` or
    `.mlv/tmp` that is a symbolic link is refused, --force or not, as by every command."""
    from mlv.errors import MlvError

    start = os.path.realpath(path)
    if no_scm:
        root = start
    else:
        top = git.toplevel(start)
        if top is None:
            raise UsageError(
                f"{start} is not inside a git repository",
                "run `git init` first, or `mlv init --no-scm` to use mlv without git",
            )
        root = top
    mlv_dir = os.path.join(root, MLV_DIR)
    safepaths.check_own_folders(root)  # a committed `.mlv -> ../x`: --force wrote through it
    if os.path.exists(mlv_dir) and not force:
        raise MlvError(f"{mlv_dir} already exists", "use --force to initialise it again")
    os.makedirs(os.path.join(mlv_dir, "tmp"), exist_ok=True)
    cfg = os.path.join(mlv_dir, config_mod.CONFIG_FILE)
    if not os.path.exists(cfg):
        localfs.write_text_atomic(cfg, "")
    localfs.write_text_atomic(os.path.join(mlv_dir, ".gitignore"), GITIGNORE_BODY)
    repo = Repo(root)
    if not no_scm:
        git.add(root, [f"{MLV_DIR}/{config_mod.CONFIG_FILE}", f"{MLV_DIR}/.gitignore"])
    return repo
