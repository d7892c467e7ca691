"""Reading tracked paths of the workspace into entries and trees.

One scan serves add and commit (objects are stored in the cache as they are met) and status
and checkout (trees are kept in memory to compare with the pointer's). Each folder's state
rows are loaded with one query, so an unchanged file costs one stat and a dictionary look-up;
a file is read only when the state database has no trusted row for it.

Rules inside tracked directories:
- `.mlvignore` files (gitignore syntax) at the repository root, in folders above the tracked
  directory and inside it exclude paths; mlv's own temporaries are always skipped, and so
  is anything named `.git` (a nested repository's metadata, or a submodule's `.git` file),
  as git and DVC skip it. A `.mlv` (any spelling) is an error until .mlvignore excludes
  it: no tree may hold one (tree.check_name).
- A symbolic link to a file is followed: its target's content is stored and a checkout
  writes a regular file. Links to directories, dangling links and special files (fifos,
  sockets, devices) are errors that name the path; exclude them with .mlvignore.
- Except a link that git tracks (a clone's), or a chain of links through one, whose target
  lies outside the work tree or in .git or .mlv, or is a file outside the tracked folder
  being scanned whose work-tree copy git would not commit (an ignored `.env`, a
  skip-worktree config, unstaged edits): it is refused before a byte is read, as git never
  follows a link (docs/security.md). Only links met ask git, once per index (and twice per
  folder for such targets).
- Empty directories are kept (a tree with no entries).
"""

from __future__ import annotations

import marshal
import os
import shlex
import stat as stat_mod
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from mlv import git
from mlv.core import gitignore
from mlv.core.progress import NullProgress, Progress
from mlv.core.repo import MLV_DIR, Repo
from mlv.errors import WorkspaceError, rpath
from mlv.objects import hashing
from mlv.objects.ignore import IGNORE_FILE, IgnoreRules
from mlv.objects.names import is_git_name, is_mlv_name
from mlv.objects.store import Cache
from mlv.objects.tree import (
    DIR,
    FILE,
    MAX_DEPTH,
    Entry,
    Tree,
    decode,
    decode_rows,
    encode_rows,
    from_rows,
    merge_rows,
)
from mlv.util.localfs import TMP_MARK

if TYPE_CHECKING:  # imported where used: status never needs the threads
    from concurrent.futures import Future, ThreadPoolExecutor

_XXH = hashing.fingerprint
LOADED_TREES = 256  # decoded trees a scanner keeps (each is decoded again when needed)
# new files this large are stored two at a time: a copy into the cache and its hash are
# bound by one file's lock, two files copy at once (docs/performance.md, issue 17)
INGEST_AHEAD = 8 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


def ignore_rules_above(repo: Repo, rel: str) -> IgnoreRules:
    """Rules from .mlvignore files at the root and in every folder above rel."""
    rules = with_ignore_file(repo.root, IgnoreRules.empty(), "")
    parts = rel.split("/")[:-1] if rel else []
    for depth in range(1, len(parts) + 1):
        rules = with_ignore_file(repo.root, rules, "/".join(parts[:depth]))
    return rules


def with_ignore_file(root: str, rules: IgnoreRules, folder: str) -> IgnoreRules:
    """rules and those of folder's .mlvignore (folder relative to root), if it has one. One
    that a link git tracks leads out of the work tree is refused, as git reads no
    .gitignore through a link: checked only when a file was there (a stat per folder is
    all an absent one costs)."""
    rel = f"{folder}/{IGNORE_FILE}" if folder else IGNORE_FILE
    more = rules.with_file(os.path.join(root, rel), folder)
    if more is not rules:
        refuse_link_out(root, rel)
    return more


# ---- symbolic links that git tracks (docs/security.md) ------------------------------------

_MAX_HOPS = 40  # as the kernel's ELOOP limit
# root -> (the index's inode, mtime and size; the links it holds): one `git ls-files` per
# index, however many scanners a command makes
_TRACKED_LINKS: dict[str, tuple[tuple[int, int, int], frozenset[str]]] = {}


def tracked_links(root: str) -> frozenset[str]:
    """The symbolic links git tracks (paths relative to root); empty without git. root may
    lie below the work tree's root (a `.mlv` a clone committed in a subfolder): git, run
    there, names the links below it relative to it."""
    dot_git = git.dot_git(root)
    if dot_git is None:
        return frozenset()
    try:
        st = os.stat(os.path.join(_git_dir(dot_git), "index"))
        sig: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:  # no index yet: asked again next time
        sig = None
    known = _TRACKED_LINKS.get(root)
    if sig is not None and known is not None and known[0] == sig:
        return known[1]
    links = frozenset(git.tracked_links(root))
    if sig is not None:
        _TRACKED_LINKS[root] = (sig, links)
    return links


def _git_dir(dot_git: str) -> str:
    """The folder of the index: .git itself, or what a `.git` file names (a linked worktree,
    a submodule: `gitdir: PATH`)."""
    if os.path.isdir(dot_git):
        return dot_git
    try:
        with open(dot_git, "rb") as fh:
            line = fh.read(4096).decode("utf-8", "surrogateescape").strip()
    except OSError:
        return dot_git
    found = line.removeprefix("gitdir:").strip()
    return os.path.join(os.path.dirname(dot_git), found)


def resolve(start: str, rest: str, folders: set[str] | None = None) -> tuple[str, list[str]]:
    """rest (relative to the real folder start, or absolute) resolved as realpath does;
    returns (the real path, every link met on the way, each named by its real folder and
    its own name: the path git would know it by). folders: real folders (no link) already
    met, and added to: thousands of links into one download folder stat it once."""
    cur = "/" if rest.startswith("/") else start
    todo = rest.split("/")[::-1]  # the next component last
    links: list[str] = []
    while todo:
        comp = todo.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            cur = os.path.dirname(cur)
            continue
        nxt = (cur if cur != "/" else "") + "/" + comp
        if folders is not None and nxt in folders:
            cur = nxt
            continue
        try:
            mode = os.lstat(nxt).st_mode
        except OSError:  # absent: the rest is taken as it is
            mode = 0
        is_link = stat_mod.S_ISLNK(mode)
        if folders is not None and stat_mod.S_ISDIR(mode):
            folders.add(nxt)
        if not is_link or len(links) >= _MAX_HOPS:
            cur = nxt
            continue
        try:
            target = os.readlink(nxt)
        except OSError:  # replaced meanwhile: the read that follows says what it is
            cur = nxt
            continue
        links.append(nxt)
        if target.startswith("/"):
            cur = "/"
        todo.extend(target.split("/")[::-1])
    return cur, links


def _where(root: str, real: str) -> str | None:
    """Where real lies when a tracked link may not lead there, else None."""
    if real == root:
        return None
    if not real.startswith(root + "/"):
        return "out of the work tree"
    parts = real[len(root) + 1 :].split("/")
    if parts[0] == MLV_DIR:
        return "into .mlv"
    if any(is_git_name(part) for part in parts):  # a nested repository's too: its config
        return "into .git"
    return None


def refuse_link_out(root: str, rel: str) -> None:
    """Refuse to read the file rel (relative to root) when a link that git tracks leads it
    out of the work tree (or into .git or .mlv): for files mlv parses and records, such as
    params files, whose values go into mlv.lock."""
    root = os.path.realpath(root)
    real, links = resolve(root, rel)
    if links:
        refuse_tracked_link_out(root, rel, real, links, False)


def refuse_tracked_link_out(
    root: str, rel: str, real: str, links: list[str], inside_dir: bool
) -> None:
    """Raise WorkspaceError when rel, read through links to real, leaves the work tree (or
    enters .git or .mlv) through a link that git tracks: a cloned repository must not make
    mlv read (and store, and push) a file of the user's such as ~/.ssh/id_rsa."""
    where = _where(root, real)
    if where is None:
        return
    hit = _tracked_hit(root, links)
    if hit is not None:
        _refuse(rel, hit, where, real, inside_dir)


def refuse_tracked_link_away(
    root: str, found: list[tuple[str, str, list[str]]], inside: str | None, inside_dir: bool
) -> None:
    """Raise WorkspaceError for the first of found (rel, real path, links met) that a link
    git tracks leads to a file whose work-tree copy git would not commit, outside the real
    folder inside being scanned (None: a target of its own, inside nothing): a file git
    does not track (ignored or untracked: `.env`), one git is told not to look at
    (skip-worktree, assume-unchanged: local credentials in a tracked template), or one
    with edits not staged. Such a copy is the user's, not the repository's: a
    clone's `data/settings -> ../.env` (or `-> ../config/db.yml`, skip-worktree) had the
    user's secret hashed by `mlv commit` and sent by `mlv push`. A target inside the folder
    is hashed anyway, a tracked file as the index holds it is the repository's own content:
    both are followed, as are links the user made. Call refuse_tracked_link_out first:
    targets out of the work tree or into .git or .mlv are its. Two git calls for all of
    found (git.index_states)."""
    prefix = root + "/"
    away = []
    tracked: frozenset[str] | None = None
    for rel, real, links in found:
        if inside is not None and (real == inside or real.startswith(inside + "/")):
            continue
        if tracked is None:
            tracked = tracked_links(root)
        hit = _tracked_hit(root, links, tracked)  # None for the user's links: the usual case
        if hit is None:
            continue
        if real != root and (not real.startswith(prefix) or _where(root, real) is not None):
            continue  # out of the work tree, .git or .mlv: refuse_tracked_link_out's
        away.append((rel, real, hit))
    if not away:
        return
    wanted = sorted({real[len(prefix) :] for _, real, _ in away if real != root})
    states: dict[str, str] = {}
    for start in range(0, len(wanted), 1000):  # far below the limit of a command line
        states.update(git.index_states(root, wanted[start : start + 1000]))
    for rel, real, hit in away:
        state = states.get(real[len(prefix) :]) if real != root else None
        if state == "clean":
            continue
        stage = ""
        if state is None:
            what = "a folder" if os.path.isdir(real) else "a file"
            where = f"to {what} git does not track"
        elif state == "unstaged":
            where = "to a file with edits that git has not staged"
            target = shlex.quote(real[len(prefix) :])
            stage = f"stage the edit if it is the repository's (`git add {target}`), or "
        else:
            where = f"to a file git is told not to look at ({state})"
        if inside is not None:
            where = f"out of the tracked folder {where}"
        _refuse(rel, hit, where, real, inside_dir, stage)


def _tracked_hit(root: str, links: list[str], tracked: frozenset[str] | None = None) -> str | None:
    """The first of links (real paths) that git tracks, relative to root; None if none.
    tracked: tracked_links(root), when the caller has it."""
    prefix = root + "/"
    chain = [link[len(prefix) :] for link in links if link.startswith(prefix)]
    if not chain:
        return None
    if tracked is None:
        tracked = tracked_links(root)
    return next((link for link in chain if link in tracked), None)


def _refuse(rel: str, hit: str, where: str, real: str, inside_dir: bool, first: str = "") -> None:
    """The one line refusing rel, which hit (a link git tracks) leads where (to real);
    first: a hint put before the usual ones."""
    if hit == rel:
        what = f"{rpath(rel)}: a symbolic link that git tracks leads {where} (to {real})"
    else:
        what = (
            f"{rpath(rel)}: leads {where} (to {real}) through {rpath(hit)}, a symbolic link "
            "that git tracks"
        )
    name = shlex.quote(hit)
    exclude = ", or exclude it in .mlvignore" if inside_dir and hit == rel else ""
    raise WorkspaceError(
        f"{what}: mlv does not follow such a link",
        f"{first}remove it (`git rm -f {name}`){exclude}; a link you made yourself: "
        f"`git rm --cached {name}`, and mlv follows it",
    )


SKIPPED_NAME = ".git"  # never part of a tracked directory (nor what git takes for it)
_GIT_FIRST = frozenset(".gG")


def printable(path: str) -> str:
    """path for a message: bytes that are not UTF-8 (surrogate-escaped by Python) shown as
    \\xNN, the rest as it is."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def check_name(name: str, path: str, hint: str = "rename it, or exclude it in .mlvignore") -> None:
    """Raise WorkspaceError when name is not valid UTF-8 (path names it in the message)."""
    if not name.isascii():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise WorkspaceError(f"{printable(path)}: file name is not valid UTF-8", hint) from None


class Scanner:
    """Walks tracked paths; with store=True every object goes into the cache."""

    def __init__(
        self,
        repo: Repo,
        store: bool,
        progress: Progress | None = None,
        algo: str | None = None,
        clean_tmp: bool = False,
        cache: Cache | None = None,
    ) -> None:
        """algo: the hash algorithm to compute (a pointer's own, or core.hash by default).
        clean_tmp: delete temporaries a killed mlv left in the workspace (only under the
        repository lock, when no other mlv can be writing them)."""
        self.clean_tmp = clean_tmp
        self.repo = repo
        self.store = store
        self.cache = cache or repo.cache
        self.state = repo.state
        self.algo = algo or repo.config.hash
        self.progress = progress or NullProgress()
        self._report = progress is not None
        self.trees: dict[str, bytes] = {}  # trees built by a read-only scan (encoded)
        # decoded trees, the most recently used last: a checkout of a million files visits
        # each of its 1,000 trees once, and keeping them all cost ~200 MB
        self._loaded: OrderedDict[str, Tree] = OrderedDict()
        self._link = self.cache.link_type if store else "copy"
        self.stored_trees: list[str] = []
        self.notes: list[str] = []  # warnings for the user (also sent to progress.warn)
        self._unsettled: set[str] = set()  # folders whose snapshot must not be recorded
        self._folders: set[str] = set()  # real folders that links led through (resolve)
        self._pool: ThreadPoolExecutor | None = None  # large files stored two at a time
        self._ahead: dict[str, Future[str]] = {}  # path -> its hash id, being stored
        self._top = 0  # how many "/" the folder being scanned has: depth is counted from it
        self._inside = ""  # the real path of the folder being scanned: links may lead in it
        # tracked_links' answer, and the same links as real paths (as resolve names them)
        self._real_links: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())

    # ---- trees -------------------------------------------------------------------------

    def load_tree(self, hash_id: str) -> Tree:
        """A tree built by this scan, or read (and checked) from the cache."""
        tree = self._loaded.get(hash_id)
        if tree is not None:
            self._loaded.move_to_end(hash_id)
        else:
            data = self.trees.get(hash_id)
            if data is None:
                data = self.cache.read_bytes(hash_id)
            tree = decode(data, f"tree {hash_id}")
            self._loaded[hash_id] = tree
            if len(self._loaded) > LOADED_TREES:
                self._loaded.popitem(last=False)
        return tree

    # ---- scanning ----------------------------------------------------------------------

    def scan(self, rel: str, rules: IgnoreRules | None = None) -> Entry | None:
        """The entry for workspace path rel (relative to the root), None if it is absent."""
        path = self.repo.abs(rel)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if os.path.lexists(path):
                raise WorkspaceError(
                    f"{rpath(rel)}: dangling symbolic link", "remove it or point it at a file"
                ) from None
            return None
        except OSError as e:
            raise WorkspaceError(f"{rpath(rel)}: cannot read ({e.strerror})") from None
        real, links = resolve(self.repo.root, rel)
        if links:
            refuse_tracked_link_out(self.repo.root, rel, real, links, False)
            refuse_tracked_link_away(self.repo.root, [(rel, real, links)], None, False)
        rel_dir, _, name = rel.rpartition("/")
        if stat_mod.S_ISDIR(st.st_mode):
            self._inside = real
            if rules is None:
                rules = ignore_rules_above(self.repo, rel)
            self._top = rel.count("/")
            try:
                entry = self._dir(path, rel, name, rules)
            finally:
                if self._pool is not None:  # after an error: what was not started, never
                    self._pool.shutdown(wait=True, cancel_futures=True)
                    self._pool = None
                self._ahead.clear()
        elif stat_mod.S_ISREG(st.st_mode):
            row = self.state.file(rel_dir, name)
            rows = {} if row is None else {name: row}
            hash_id = self._file_hash(path, rel_dir, name, st, rows, os.path.islink(path))
            entry = Entry(FILE, name, hash_id, st.st_size)
        else:
            raise WorkspaceError(f"{rpath(rel)}: not a regular file or directory")
        self.state.flush()
        return entry

    def _file_hash(
        self,
        path: str,
        rel_dir: str,
        name: str,
        st: os.stat_result,
        rows: dict[str, tuple[int, int, int, str]],
        is_link: bool,
    ) -> str:
        row = rows.get(name)
        if self._trusted(row, st):
            assert row is not None
            hash_id = row[3]
            if self.store:
                self._ensure_stored(path, rel_dir, name, st, hash_id, is_link)
        else:
            previous = row
            if st.st_nlink > 1:  # a hard link: which hash did mlv last see at this inode?
                previous = self.state.file(rel_dir, name, trusted=False)
            hash_id = self._hash_new(path, rel_dir, name, st, is_link)
            if previous is not None and previous[0] == st.st_ino and previous[3] != hash_id:
                self._edited_through_link(path, rel_dir, name, previous[3], st)
        if self._report:
            self.progress.advance(1, st.st_size)
        return hash_id

    def _edited_through_link(
        self, path: str, rel_dir: str, name: str, old_hash: str, st: os.stat_result
    ) -> None:
        """The file is the inode that was hardlinked from the cache object old_hash, and its
        content changed in place (root ignores the read-only bit): that object now holds
        other bytes than its name says. Say so; when storing, drop the damaged name (the
        new content has its own), so nothing passes it off as the old version."""
        obj = self.cache.object_path(old_hash)
        try:
            ost = os.stat(obj)
        except FileNotFoundError:
            return
        if (ost.st_ino, ost.st_dev) != (st.st_ino, st.st_dev):
            return
        rel = self.repo.rel(path)
        if self.store:
            os.unlink(obj)
            what = "its object was deleted from the cache"
        else:  # keep the old row (and no folder snapshot), so the storing scan sees it too
            self.state.unrecord(rel_dir, name)
            self._unsettled.add(rel_dir)
            what = "`mlv commit` will delete that object from the cache"
        note = (
            f"{rpath(rel)} was edited in place through a hard link into the cache: the previous "
            f"version's object ({old_hash}) now holds the new bytes, so {what}; "
            "`mlv pull` brings that version back from a remote that has it "
            "(run `mlv unprotect` before editing)"
        )
        self.notes.append(note)
        self.progress.warn(note)

    def _ensure_stored(
        self, path: str, rel_dir: str, name: str, st: os.stat_result, hash_id: str, is_link: bool
    ) -> None:
        """State says the content is hash_id: make sure the cache has it, linked as configured."""
        if not self.cache.has(hash_id):
            self._hash_new(path, rel_dir, name, st, is_link)
            return
        kind = self._link
        if (kind == "hardlink" and st.st_nlink == 1) or (kind == "symlink" and not is_link):
            self.cache.link_workspace(hash_id, path, kind)
            self.state.record(rel_dir, name, os.stat(path), hash_id)

    def _trusted(self, row: tuple[int, int, int, str] | None, st: os.stat_result) -> bool:
        """Does the state row vouch for the file's content (same inode, mtime, size)?"""
        return (
            row is not None
            and row[0] == st.st_ino
            and row[1] == st.st_mtime_ns
            and row[2] == st.st_size
            and row[3].startswith(self.algo)
        )

    def _ingest_ahead(
        self,
        path: str,
        files: list[tuple[str, os.stat_result, bool]],
        rows: dict[str, tuple[int, int, int, str]],
    ) -> None:
        """Start storing a folder's large new files two at a time: the kernel's copies
        into one file are serialised by its inode lock, so a second file is what keeps the
        second core busy (two 512 MiB files: ~0.24 s against ~0.35 s one after the other).
        _hash_new takes each result in turn, and the bookkeeping (state rows, progress,
        messages) stays in this thread."""
        big = [
            (child, st, is_link)
            for child, st, is_link in files
            if st.st_size >= INGEST_AHEAD and not self._trusted(rows.get(child), st)
        ]
        if len(big) < 2:
            return
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=2)
        for child, st, is_link in big:
            item = path + "/" + child
            self._ahead[item] = self._pool.submit(
                self.cache.ingest, item, st.st_size, self.algo, is_link
            )

    def _hash_new(
        self, path: str, rel_dir: str, name: str, st: os.stat_result, is_link: bool
    ) -> str:
        try:
            if self.store:
                ahead = self._ahead.pop(path, None)
                if ahead is not None:
                    hash_id = ahead.result()
                else:
                    hash_id = self.cache.ingest(path, st.st_size, self.algo, follow=is_link)
                if self._link in ("hardlink", "symlink"):
                    st = os.stat(path)
            elif st.st_size <= hashing.SMALL_FILE:
                with open(path, "rb") as fh:
                    hash_id = hashing.hash_bytes(self.algo, fh.read())
            else:
                hash_id = hashing.hash_file(self.algo, path)[0]
        except PermissionError as e:
            refused = self.cache.write_refused(e, self._shown) if self.store else None
            if refused is not None:  # the cache, not the workspace file, is the problem
                raise refused from None
            raise WorkspaceError(
                f"{rpath(self.repo.rel(path))}: permission denied", "make it readable, or ignore it"
            ) from None
        except FileNotFoundError:
            raise WorkspaceError(
                f"{rpath(self.repo.rel(path))}: disappeared while mlv was reading it", "run again"
            ) from None
        except OSError as e:  # a read-only file system under the cache
            refused = self.cache.write_refused(e, self._shown) if self.store else None
            if refused is None:
                raise
            raise refused from None
        self.state.record(rel_dir, name, st, hash_id)
        return hash_id

    def _shown(self, path: str) -> str:
        """A path for a message: relative to the repository root when inside it."""
        rel = os.path.relpath(path, self.repo.root)
        return path if rel.startswith("..") else rel

    def _list(
        self, fd: int, path: str, rel: str, rules: IgnoreRules
    ) -> list[tuple[str, os.stat_result | None, bool]]:
        """A folder's entries in name order: (name, stat, is_link) for files, (name, None,
        False) for subfolders. listdir + lstat relative to the folder's descriptor is the
        cheapest way to stat every file from Python."""
        names = os.listdir(fd)
        names.sort()
        prefix = rel + "/" if rel else ""
        has_rules = bool(rules)
        lstat = os.lstat
        out: list[tuple[str, os.stat_result | None, bool]] = []
        real_dir: str | None = None  # the folder's real path, once a link is met
        git_links: frozenset[str] = frozenset()
        met: list[tuple[str, str, list[str]]] = []  # links that a tracked link leads on
        real_links: frozenset[str] = frozenset()
        inside = self._inside + "/"
        for child in names:
            if child.startswith(TMP_MARK):
                if self.clean_tmp:
                    try:
                        os.unlink(child, dir_fd=fd)
                    except OSError:
                        pass
                continue
            if child == SKIPPED_NAME:
                continue
            if not child.isascii():
                check_name(child, prefix + child)
                if is_git_name(child):
                    continue
            elif child[0] in _GIT_FIRST and is_git_name(child):
                continue  # .GIT, git~1...: what git takes for .git is skipped like .git
            st = lstat(child, dir_fd=fd)
            mode = st.st_mode
            if stat_mod.S_ISREG(mode):
                if has_rules and rules.is_ignored(prefix + child, False):
                    continue
                out.append((child, st, False))
            elif stat_mod.S_ISDIR(mode):
                if has_rules and rules.is_ignored(prefix + child, True):
                    continue
                out.append((child, None, False))
            elif has_rules and rules.is_ignored(prefix + child, False):
                continue
            elif stat_mod.S_ISLNK(mode):
                out.append((child, self._follow(fd, child, prefix + child), True))
                if real_dir is None:
                    git_links = tracked_links(self.repo.root)
                    real_dir = os.path.realpath(path) if git_links else ""
                    real_links = self._as_real(git_links)
                if git_links:  # no link in git: none can lead a clone's reads out
                    real, links = resolve(real_dir, child, self._folders)
                    refuse_tracked_link_out(self.repo.root, prefix + child, real, links, True)
                    if not real.startswith(inside) and not real_links.isdisjoint(links):
                        met.append((prefix + child, real, links))
            else:
                raise WorkspaceError(
                    f"{rpath(prefix + child)}: not a regular file (fifo, socket or device)",
                    "exclude it in .mlvignore",
                )
        if met:  # before a byte is read: _dir hashes what _list returns
            refuse_tracked_link_away(self.repo.root, met, self._inside, True)
        return out

    def _as_real(self, git_links: frozenset[str]) -> frozenset[str]:
        """git_links (relative to the root) as real paths, built once per answer of git:
        a folder of 20,000 links of the user's costs a set look-up each."""
        if self._real_links[0] is not git_links:
            prefix = self.repo.root + "/"
            self._real_links = (git_links, frozenset(prefix + link for link in git_links))
        return self._real_links[1]

    @staticmethod
    def _follow(fd: int, child: str, rel: str) -> os.stat_result:
        """The rule for symbolic links inside tracked directories: follow links to files."""
        try:
            st = os.stat(child, dir_fd=fd)
        except FileNotFoundError:
            raise WorkspaceError(
                f"{rpath(rel)}: dangling symbolic link inside a tracked directory",
                "remove it, or exclude it in .mlvignore",
            ) from None
        except OSError as e:  # ELOOP, EACCES: a link mlv cannot follow
            raise WorkspaceError(
                f"{rpath(rel)}: cannot follow symbolic link ({e.strerror})",
                "fix or remove it, or exclude it in .mlvignore",
            ) from None
        if stat_mod.S_ISDIR(st.st_mode):
            raise WorkspaceError(
                f"{rpath(rel)}: symbolic link to a directory inside a tracked directory",
                "mlv follows links to files only; exclude it in .mlvignore",
            )
        if not stat_mod.S_ISREG(st.st_mode):
            raise WorkspaceError(
                f"{rpath(rel)}: symbolic link to a special file", "exclude it in .mlvignore"
            )
        return st

    def _dir(self, path: str, rel: str, name: str, rules: IgnoreRules) -> Entry:
        """Scan one folder (and, recursively, its subfolders) into a tree entry.

        Hot path of status: per file, one stat and a tuple; the folder's file hashes come
        from its snapshot row when the listing digest matches.
        """
        denied = WorkspaceError(
            f"{rpath(rel)}: permission denied", "make it readable, or exclude it in .mlvignore"
        )
        try:
            fd = os.open(path, _DIR_FLAGS)
        except PermissionError:
            raise denied from None
        try:
            rules = with_ignore_file(self.repo.root, rules, rel)
            entries = self._list(fd, path, rel, rules)
        except PermissionError:
            raise denied from None
        finally:
            os.close(fd)
        subdirs: list[Entry] = []
        files: list[tuple[str, os.stat_result, bool]] = []
        sig_items: list[tuple[str, int, int, int]] = []
        prefix = rel + "/" if rel else ""
        for child, st, is_link in entries:
            if "\\" in child:  # tree.check_name refuses it: a tree mlv could not read back
                raise WorkspaceError(
                    f"{printable(prefix + child)}: name holds a backslash, "
                    "which Windows reads as a folder separator",
                    "rename it, or exclude it in .mlvignore",
                )
            if (child[0] in _MLV_FIRST or not child.isascii()) and is_mlv_name(child):
                raise _own_folder_inside(rel, child, st is None)  # tree.check_name's too
            if st is None:
                if (prefix + child).count("/") - self._top >= MAX_DEPTH:
                    raise WorkspaceError(  # a tree no walk could read back (tree.MAX_DEPTH)
                        f"{printable(prefix + child)[:60]}...: folders nested more than "
                        f"{MAX_DEPTH} deep below the tracked folder",
                        "move the data up, or exclude the deep part in .mlvignore",
                    )
                subdirs.append(self._dir(path + "/" + child, prefix + child, child, rules))
            else:
                files.append((child, st, is_link))
                sig_items.append((child, st.st_ino, st.st_mtime_ns, st.st_size))
        # The algorithm's name is hashed as bytes, not marshalled: marshal writes an
        # interned string differently from an equal one that is not, and callers get the
        # name from the config or from a pointer, so two commands disagreed on every
        # folder's digest and each re-read what the other had just recorded.
        sig = _XXH(self.algo.encode() + b"\0" + marshal.dumps(sig_items))
        snap = self.state.snapshot(rel)
        if snap is not None and snap[0] == sig:
            fragment, size, count = marshal.loads(snap[1])
            if self.store:
                rows = decode_rows(fragment)
                for (child, st, is_link), row in zip(files, rows, strict=True):
                    self._ensure_stored(path + "/" + child, rel, child, st, row[2], is_link)
                    if self._report:
                        self.progress.advance(1, st.st_size)
        else:
            state_rows = self.state.folder(rel)
            if self.store:
                self._ingest_ahead(path, files, state_rows)
            rows = [
                [
                    FILE,
                    child,
                    self._file_hash(item_path, rel, child, st, state_rows, is_link),
                    st.st_size,
                ]
                for child, st, is_link in files
                for item_path in (path + "/" + child,)
            ]
            fragment = encode_rows(rows)
            size = sum([r[3] for r in rows])
            count = len(rows)
            max_mtime = max([st.st_mtime_ns for _, st, _ in files]) if files else 0
            blob = marshal.dumps((fragment, size, count))
            if rel not in self._unsettled:
                self.state.record_snapshot(rel, sig, max_mtime, blob)
        if subdirs:
            size += sum([e.size for e in subdirs])
            count += sum([e.files for e in subdirs])
            fragment = merge_rows(fragment, subdirs)
        data = from_rows(fragment)
        hash_id = hashing.hash_bytes(self.algo, data)
        if self.store:
            try:
                self.cache.put_bytes(data, hash_id)
            except OSError as e:
                refused = self.cache.write_refused(e, self._shown)
                if refused is None:
                    raise
                raise refused from None
            self.stored_trees.append(hash_id)
        else:
            self.trees[hash_id] = data
        return Entry(DIR, name, hash_id, size, count)


_MLV_FIRST = frozenset(".mM")  # how an ASCII name that names .mlv (.MLV, mlv~1) starts


def _own_folder_inside(rel: str, child: str, is_dir: bool) -> WorkspaceError:
    """The refusal of a `.mlv` (any spelling) inside the tracked folder rel: in a tree, it
    would plant a repository's config (cache.dir, a remote's proxy_command) that commands
    run in that folder take for this machine's, so no tree may hold one (tree.check_name)."""
    ignore_file = f"{rel}/{IGNORE_FILE}"
    shown = rpath(ignore_file)
    if shlex.quote(ignore_file) != ignore_file:
        shown = shlex.quote(shown)
    what = "folder" if is_dir else "file"
    return WorkspaceError(
        f"{rpath(printable(rel + '/' + child))}: a .mlv {what} inside tracked data, which "
        "commands run there would take for a repository of their own",
        f"exclude it: `echo {shlex.quote(gitignore.escape(child))} >> {shown}`",
    )


def tree_loader(scanner: Scanner) -> Callable[[str], Tree]:
    return scanner.load_tree
