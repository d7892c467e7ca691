"""`mlv gc`: delete the objects of the cache (or of one remote) that nothing kept references.

Kept, whatever the scope flags say:
- every pointer file in the workspace (tracked by git or not, committed or not);
- every pointer staged in git's index (any merge stage);
- the cached stage outs of the workspace's mlv.lock and of the one staged in the index;
- the pointers of every `git stash` entry (its workspace, index and untracked files), which
  are uncommitted work too;
plus the pointers (and mlv.lock outs) of the revisions asked for (--rev, --all-branches, --all-tags,
--all-commits). References are recursive: a directory pointer keeps its tree object, every
subtree and every file below it.

gc must read every kept pointer and tree to know what it keeps. A workspace or index pointer
that does not parse, or a tree of one that it cannot read, stops it. A pointer or tree of a
kept revision that it cannot read stops it too, unless --force: then it warns and goes on,
and what only that pointer or tree names counts as unreferenced. For a remote, trees the
cache lacks are read from the remote.

Only names of the object form (ALGO/HEX[:2]/HEX[2:]) are ever considered: the cache's tmp/,
runs/ (the run cache) and other files are left alone, here and on remotes. Temporaries that
killed writers left (`.mlvtmp-*` untouched for an hour) are removed from the whole cache, and
from the whole of a folder remote, before anything else (not with --dry-run). The cache's
index/ (remote indexes kept locally) loses the copies no command used for 30 days.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlv import git
from mlv.core import targets as targets_mod
from mlv.core.progress import NullProgress, Progress
from mlv.core.repo import MLV_DIR, Repo
from mlv.core.selection import Revisions, revision_commits, targets_at
from mlv.errors import (
    MlvError,
    ObjectCorruptError,
    ObjectMissingError,
    PointerError,
    RemoteError,
    UsageError,
)
from mlv.objects import hashing
from mlv.objects import pointer as pointer_mod
from mlv.objects import tree as tree_mod
from mlv.objects.packs import chunked, prune
from mlv.objects.packs.locks import UNSURE, RemoteLock
from mlv.objects.pointer import SUFFIX
from mlv.objects.remote import BATCH, RemoteStore, hash_of_key
from mlv.objects.store import Cache
from mlv.objects.tree import Tree

TREE_MARK = tree_mod.MARK
INDEX_EXPIRY = 30 * 24 * 3600  # seconds: a cached remote index unused this long is deleted
_INDEX_FILE = re.compile(r"[0-9a-f]{32}\.idx")


@dataclass(frozen=True, kw_only=True)
class Scope:
    """What gc keeps besides the workspace and the index (which it always keeps)."""

    workspace: bool = False
    revisions: Revisions = field(default_factory=Revisions)

    @property
    def any(self) -> bool:
        return self.workspace or self.revisions.any


@dataclass(frozen=True)
class Root:
    """One kept pointer's object."""

    hash: str
    kind: str  # file | dir
    label: str  # "data/images (workspace)", "data/images at 1a2b3c4d5e"
    strict: bool  # workspace or index: an unreadable tree stops gc, even with --force


@dataclass
class GcPlan:
    """What gc is about to delete, shown (and for a remote confirmed) before it does."""

    where: str  # "cache" | "remote NAME"
    url: str
    doomed: dict[str, int]  # hash -> size (loose objects, or the cache's)
    kept: int  # objects of the store that stay
    packed: prune.PrunePlan | None = None  # a remote's packs: objects dropped, packs changed

    @property
    def count(self) -> int:
        if self.packed is None:
            return len(self.doomed)
        return len(self.doomed.keys() | self.packed.doomed.keys())

    @property
    def bytes(self) -> int:
        """Bytes freed: the loose objects', and the packs' deleted less what is copied."""
        return sum(self.doomed.values()) + (self.packed.freed if self.packed else 0)


@dataclass
class GcResult:
    where: str  # "cache" | "remote NAME"
    url: str
    dry_run: bool
    removed: int = 0  # objects deleted (with dry_run: that would be)
    bytes: int = 0
    kept: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # hash -> reason
    # kept objects found corrupt in a pack gc rewrote: not copied, so gone from the remote
    corrupt: dict[str, str] = field(default_factory=dict)  # hash -> pack name
    warnings: list[str] = field(default_factory=list)
    # a packed remote: packs deleted, written (kept objects copied), indexes written and
    # deleted, unindexed packs indexed again (with dry_run: the plan's)
    packs: dict[str, int] = field(default_factory=dict)
    # the cache: remote indexes in <cache>/index/ that no command used for INDEX_EXPIRY
    # (deleted, or with dry_run that would be): count and bytes
    indexes: int = 0
    index_bytes: int = 0
    # the cache: chunk lists in <cache>/chunks/ of objects no longer in the cache (deleted,
    # or with dry_run that would be): count and bytes
    chunk_lists: int = 0
    chunk_list_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.corrupt


Confirm = Callable[[GcPlan], bool]  # shown the plan; False: delete nothing


def run_gc(
    repo: Repo,
    scope: Scope,
    remote: str | None,
    dry_run: bool,
    force: bool,
    confirm: Confirm,
    progress: Progress | None = None,
) -> GcResult:
    """Delete what no kept pointer references: from the cache, or (remote given) from that
    remote only. confirm sees the plan before anything is deleted (not with dry_run)."""
    if not scope.any:
        raise UsageError(
            "gc needs a scope: -w (workspace), -a, -T, -A or --rev REV",
            "`mlv gc -w` keeps only what the workspace and git's index reference",
        )
    progress = progress or NullProgress()
    if remote is None:
        with repo.lock():
            return _gc_cache(repo, scope, dry_run, force, confirm, progress)
    from mlv.core.remotes import open_remote

    store = open_remote(repo, remote)
    try:
        return _gc_remote(repo, store, scope, dry_run, force, confirm, progress)
    finally:
        store.close()


# ---- what is kept -----------------------------------------------------------------------


def kept_roots(
    repo: Repo, scope: Scope, unreadable: list[tuple[str, MlvError]] | None = None
) -> list[Root]:
    """The objects of every kept pointer: workspace, index, then the revisions'. A
    pointer of a revision that does not parse goes to unreadable (where, error); one of the
    workspace or the index stops gc."""
    if unreadable is None:
        unreadable = []
    found: dict[str, Root] = {}

    def keep(root: Root) -> None:
        if root.hash not in found or (root.strict and not found[root.hash].strict):
            found[root.hash] = root

    targets, broken = targets_mod.readable_targets(repo)
    if broken:
        pointer_rel, error = broken[0]
        more = f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""
        raise PointerError(
            f"{error.message}{more}; gc cannot tell what it references",
            f"fix or remove {pointer_rel}, then run gc again",
        )
    for t in targets:
        keep(Root(t.pointer.hash, t.pointer.kind, f"{t.data_rel} (workspace)", True))
    commits = revision_commits(repo, scope.revisions)
    if repo.scm:
        for root in _index_roots(repo):
            keep(root)
        commits = sorted(set(commits) | set(git.stash_commits(repo.root)))
    for commit in commits:
        broken_here: list[tuple[str, MlvError]] = []
        for t in targets_at(repo, commit, [], broken_here):
            keep(Root(t.pointer.hash, t.pointer.kind, f"{t.data_rel} at {commit[:10]}", False))
        unreadable.extend((f"{name} at {commit[:10]}", e) for name, e in broken_here)
    return list(found.values())


def _index_roots(repo: Repo) -> list[Root]:
    """The objects of the pointers staged in git's index, and of the stage outs of a
    staged mlv.lock (read with the staged mlv.yaml)."""
    staged: list[tuple[str, str]] = []
    locks: list[tuple[str, str]] = []
    spec_oid: str | None = None
    for oid, name in git.staged_blobs(repo.root, ""):
        if name == targets_mod.LOCK_FILE:
            locks.append((oid, name))
        elif name == targets_mod.PIPELINE_FILE:
            spec_oid = spec_oid or oid
        elif _is_pointer_name(name):
            staged.append((oid, name))
    wanted = {oid for oid, _ in staged + locks} | ({spec_oid} if spec_oid else set())
    blobs = git.read_blobs(repo.root, sorted(wanted))
    roots = []
    for oid, name in staged:
        data = blobs.get(oid)
        if data is None:
            continue  # gone from git's object store: nothing to read
        where = f"{name} (staged in git's index)"
        try:
            ptr = pointer_mod.parse(data, where)
        except PointerError as e:
            raise PointerError(
                f"{e.message}; gc cannot tell what it references",
                f"fix {name} and `git add` it (or unstage it), then run gc again",
            ) from None
        folder = name.rpartition("/")[0]
        data_rel = f"{folder}/{ptr.path}" if folder else ptr.path
        roots.append(Root(ptr.hash, ptr.kind, f"{data_rel} (staged)", True))
    for oid, name in locks:
        data = blobs.get(oid)
        if data is None:
            continue
        try:
            outs = targets_mod.outs_of_lock(
                data,
                blobs.get(spec_oid) if spec_oid else None,
                f"{name} (staged in git's index)",
                f"{targets_mod.PIPELINE_FILE} (staged in git's index)",
            )
        except PointerError as e:
            raise PointerError(
                f"{e.message}; gc cannot tell what it references",
                f"fix {name} and `git add` it (or unstage it), then run gc again",
            ) from None
        for t in outs:
            roots.append(Root(t.pointer.hash, t.pointer.kind, f"{t.data_rel} (staged)", True))
    return roots


def _is_pointer_name(name: str) -> bool:
    return name.endswith(SUFFIX) and len(name) > len(SUFFIX) and not name.startswith(MLV_DIR + "/")


TreeLoader = Callable[[list[str]], dict[str, Tree | str]]  # hash -> tree, or why not


def referenced(roots: list[Root], load: TreeLoader) -> tuple[set[str], list[tuple[str, Root, str]]]:
    """Every object the roots reference, recursively, and (tree, root, reason) for each
    tree that could not be read. Strict roots are walked first, so a tree shared with an
    older revision is reported as the workspace's."""
    kept: set[str] = set()
    visited: set[str] = set()
    problems: list[tuple[str, Root, str]] = []
    for strict in (True, False):
        frontier: dict[str, Root] = {}
        for root in roots:
            if root.strict != strict:
                continue
            kept.add(root.hash)
            if root.kind == "dir" and root.hash not in visited:
                frontier.setdefault(root.hash, root)
        while frontier:
            visited |= set(frontier)
            loaded = load(sorted(frontier))
            following: dict[str, Root] = {}
            for tree_hash, root in frontier.items():
                got = loaded.get(tree_hash, "not found")
                if isinstance(got, str):
                    problems.append((tree_hash, root, got))
                    continue
                for entry in got.entries:
                    kept.add(entry.hash)
                    if entry.is_dir and entry.hash not in visited:
                        following.setdefault(entry.hash, root)
            frontier = following
    return kept, problems


def _check_pointers(unreadable: list[tuple[str, MlvError]], force: bool, result: GcResult) -> None:
    """Pointers of older revisions that do not parse (say, from a newer mlv): what they
    name is unknown, so gc stops unless --force."""
    if unreadable and not force:
        where, error = unreadable[0]
        more = f" (and {len(unreadable) - 1} more)" if len(unreadable) > 1 else ""
        raise PointerError(
            f"cannot read pointer {where}: {error.message}{more}",
            "gc cannot tell what it references: upgrade mlv if it is newer, or pass --force "
            "to go on without it (objects only it names are then deleted)",
        )
    for where, error in unreadable:
        result.warnings.append(
            f"cannot read pointer {where} ({error.message}): objects only it names count as "
            "unreferenced"
        )


def _check_problems(
    problems: list[tuple[str, Root, str]], force: bool, fetch_hint: str, result: GcResult
) -> None:
    strict = [p for p in problems if p[1].strict]
    if strict:
        tree_hash, root, reason = strict[0]
        more = f" (and {len(strict) - 1} more)" if len(strict) > 1 else ""
        raise ObjectMissingError(
            f"cannot read tree {tree_hash} of {root.label}: {reason}{more}",
            f"{fetch_hint}; gc must know everything the workspace references",
        )
    if problems and not force:
        tree_hash, root, reason = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ObjectMissingError(
            f"cannot read tree {tree_hash} of {root.label}: {reason}{more}",
            f"{fetch_hint} (same scope flags), or pass --force to go on without it "
            "(objects only it names are then deleted)",
        )
    for tree_hash, root, reason in problems:
        result.warnings.append(
            f"cannot read tree {tree_hash} of {root.label} ({reason}): "
            "objects only it names count as unreferenced"
        )


def _decode(tree_hash: str, data: bytes) -> Tree | str:
    try:
        return tree_mod.decode(data, f"tree {tree_hash}")
    except MlvError as e:
        return e.message


def _cache_loader(cache: Cache) -> Callable[[str], Tree | str]:
    def load(tree_hash: str) -> Tree | str:
        try:
            data = cache.read_bytes(tree_hash)
        except ObjectMissingError:
            return "not in the cache"
        except ObjectCorruptError:
            return "corrupt in the cache"
        return _decode(tree_hash, data)

    return load


# ---- the local cache --------------------------------------------------------------------


def cache_objects(cache: Cache) -> dict[str, int]:
    """hash -> size of every object file in the cache (names of the object form only)."""
    found: dict[str, int] = {}
    for algo in hashing.ALGORITHMS:
        base = os.path.join(cache.root, algo)
        try:
            with os.scandir(base) as it:
                shards = [e for e in it if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError):
            continue
        for shard in shards:
            if len(shard.name) != 2:
                continue
            with os.scandir(shard.path) as it:
                for entry in it:
                    h = hash_of_key(f"{algo}/{shard.name}/{entry.name}")
                    if h is None or not entry.is_file(follow_symlinks=False):
                        continue
                    try:
                        found[h] = entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        pass
    return found


def _gc_cache(
    repo: Repo, scope: Scope, dry_run: bool, force: bool, confirm: Confirm, progress: Progress
) -> GcResult:
    cache = repo.cache
    result = GcResult("cache", cache.root, dry_run)
    if not dry_run:
        cache.remove_stale_tmp(everywhere=True)
    _expire_indexes(cache, dry_run, result)
    unreadable: list[tuple[str, MlvError]] = []
    roots = kept_roots(repo, scope, unreadable)
    _check_pointers(unreadable, force, result)
    load_one = _cache_loader(cache)
    kept, problems = referenced(roots, lambda hashes: {h: load_one(h) for h in hashes})
    _check_problems(problems, force, "fetch it with `mlv fetch` first", result)
    present = cache_objects(cache)
    doomed = {h: size for h, size in sorted(present.items()) if h not in kept}
    plan = GcPlan("cache", cache.root, doomed, len(present) - len(doomed))
    result.kept = plan.kept
    if dry_run or not doomed or not confirm(plan):
        if dry_run:
            result.removed, result.bytes = plan.count, plan.bytes
            _drop_chunk_lists(cache, set(doomed), True, result)
        else:
            if not doomed:
                _drop_chunk_lists(cache, set(), False, result)
            result.kept = len(present)
        return result
    progress.begin("gc cache", len(doomed))
    shards: set[str] = set()
    try:
        for h, size in doomed.items():
            path = cache.object_path(h)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass  # gone already: nothing to free
            except OSError as e:
                result.failed[h] = f"{e.strerror or e}"
                continue
            else:
                result.removed += 1
                result.bytes += size
            shards.add(os.path.dirname(path))
            progress.advance(1, size)
    finally:
        # Completeness memos are keyed to the folders' mtimes, which the deletions changed;
        # drop them anyway, so no tree is ever vouched for after objects went away.
        repo.state.forget_completeness()
        for folder in sorted(shards):
            try:
                os.rmdir(folder)  # only if empty
            except OSError:
                pass
        progress.end()
    result.kept = len(present) - result.removed
    _drop_chunk_lists(cache, set(), False, result)
    return result


def _drop_chunk_lists(cache: Cache, going: set[str], dry_run: bool, result: GcResult) -> None:
    """Delete the chunk lists kept for objects the cache no longer holds (or, dry_run,
    count them and those of the objects in going): a list only serves to rebuild the next
    version of a file from the chunks of an object that is here."""
    folders: set[str] = set()
    for object_id, path in chunked.kept_lists(cache):
        folders.add(os.path.dirname(path))
        if object_id not in going and os.path.lexists(cache.object_path(object_id)):
            continue
        try:
            size = os.lstat(path).st_size
            if not dry_run:
                os.unlink(path)
        except FileNotFoundError:
            continue
        except OSError as e:
            result.warnings.append(f"cannot delete the chunk list {path}: {e}")
            continue
        result.chunk_lists += 1
        result.chunk_list_bytes += size
    if not dry_run:
        for folder in folders:
            with contextlib.suppress(OSError):
                os.rmdir(folder)  # only if empty


def _expire_indexes(cache: Cache, dry_run: bool, result: GcResult) -> None:
    """Delete the local copies of remote indexes untouched for INDEX_EXPIRY: every command
    that lists a remote's index/ touches the copies it names, so these are of indexes a gc
    replaced, or of remotes no longer used. One still needed is downloaded again."""
    from mlv.core.remotes import INDEX_CACHE

    folder = os.path.join(cache.root, INDEX_CACHE)
    cutoff = time.time() - INDEX_EXPIRY
    try:
        with os.scandir(folder) as it:
            entries = [e for e in it if _INDEX_FILE.fullmatch(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in sorted(entries, key=lambda e: e.name):
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_mtime >= cutoff:
            continue
        if not dry_run:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            except OSError as e:
                result.warnings.append(f"cannot delete the cached index {entry.path}: {e}")
                continue
        result.indexes += 1
        result.index_bytes += st.st_size


# ---- a remote ---------------------------------------------------------------------------


def _remote_loader(cache: Cache, store: RemoteStore) -> TreeLoader:
    """Trees from the cache, else from the remote (checked against their hash, read into
    memory, not stored)."""
    load_local = _cache_loader(cache)

    def load(hashes: list[str]) -> dict[str, Tree | str]:
        out: dict[str, Tree | str] = {}
        lacking = []
        for h in hashes:
            got = load_local(h)
            if isinstance(got, Tree):
                out[h] = got
            else:
                lacking.append(h)
        if not lacking:
            return out
        read: dict[str, bytes] = {}
        fetched = store.check(lacking, "", keep=read.__setitem__)  # into memory, checked
        for h in fetched.done:
            out[h] = _decode(h, read[h])
        for h in fetched.missing:
            out[h] = "neither in the cache nor on the remote"
        for h in fetched.corrupt:
            out[h] = "not in the cache, corrupt on the remote"
        for h in fetched.failed:
            out[h] = f"cannot read it from the remote ({fetched.kinds[h]})"
        return out

    return load


def _deletion_steps(
    cache: Cache, store: RemoteStore, doomed: dict[str, int], result: GcResult
) -> tuple[list[list[str]], dict[str, list[str]]]:
    """The order in which gc deletes: steps, each finished before the next starts, and the
    doomed objects each doomed tree names.

    A tree on a remote stands for its whole directory (push and `status --remote` trust
    it), so no tree may outlive what it names, whenever gc is killed: first the doomed
    trees that no other doomed tree names, then the trees those named, and so on down;
    files last. What is a tree is read from the cache, else from the first bytes of the
    object on the remote (a ranged read), then the whole tree. When an object cannot be
    read to tell (a read that kept failing), nothing is deleted."""
    heads: dict[str, bytes] = {}
    unknown: list[str] = []
    for h in doomed:
        try:
            with open(cache.object_path(h), "rb") as fh:
                heads[h] = fh.read(len(TREE_MARK))
        except OSError:
            unknown.append(h)
    read = store.read_heads(unknown, len(TREE_MARK))
    heads.update(read.data)
    heads.update(dict.fromkeys(read.missing, b""))  # gone already: deleting it again is free
    for h, why in read.failed.items():
        result.failed[h] = f"not deleted: cannot tell whether it is a tree ({why})"
    if result.failed:
        # One of them may be a tree naming any of the others: delete nothing this time.
        result.warnings.append(
            f"nothing deleted: {len(result.failed)} object(s) could not be read to tell trees "
            "from files; run gc again"
        )
        return [], {}
    trees = sorted(h for h, head in heads.items() if head == TREE_MARK)
    children: dict[str, list[str]] = {}
    loaded = _remote_loader(cache, store)(trees) if trees else {}
    for h in trees:
        got = loaded.get(h)
        # a tree that cannot be read names nothing gc knows of: deleting it early is safe
        children[h] = (
            [e.hash for e in got.entries if e.hash in doomed] if isinstance(got, Tree) else []
        )
    tree_set = set(trees)
    parents: dict[str, int] = dict.fromkeys(trees, 0)
    for h in trees:
        for c in children[h]:
            if c in tree_set:
                parents[c] += 1
    steps: list[list[str]] = []
    level = [h for h in trees if parents[h] == 0]
    placed: set[str] = set()
    while level:
        steps.append(level)
        placed |= set(level)
        following = []
        for h in level:
            for c in children[h]:
                if c in tree_set:
                    parents[c] -= 1
                    if parents[c] == 0:
                        following.append(c)
        level = sorted(set(following))
    if len(placed) < len(trees):  # a cycle cannot happen with names made of hashes; still
        steps.append(sorted(tree_set - placed))
    files = [h for h in doomed if h in heads and h not in tree_set]
    if files:
        steps.append(sorted(files))
    return steps, children


def _below(tree_hash: str, children: dict[str, list[str]]) -> set[str]:
    """Every doomed object under a doomed tree (children: from _deletion_steps)."""
    found: set[str] = set()
    todo = list(children.get(tree_hash, []))
    while todo:
        h = todo.pop()
        if h not in found:
            found.add(h)
            todo += children.get(h, [])
    return found


def _gc_remote(
    repo: Repo,
    store: RemoteStore,
    scope: Scope,
    dry_run: bool,
    force: bool,
    confirm: Confirm,
    progress: Progress,
) -> GcResult:
    if store.read_only and not dry_run:
        raise RemoteError(
            f"remote '{store.name}' ({store.url}) is read-only (HTTP): gc cannot delete there",
            "clean the store behind it with a folder, S3, GCS, Azure or SSH remote",
        )
    where = f"remote {store.name}"
    result = GcResult(where, store.url, dry_run)
    if not dry_run:
        store.remove_stale_tmp()
    unreadable: list[tuple[str, MlvError]] = []
    roots = kept_roots(repo, scope, unreadable)
    _check_pointers(unreadable, force, result)
    kept, problems = referenced(roots, _remote_loader(repo.cache, store))
    _check_problems(problems, force, "add or fetch it where it exists first", result)
    present = store.inventory()
    doomed = {h: size for h, size in sorted(present.items()) if h not in kept}
    # The exclusive lock before the listings the plan is made of (not for a dry run, which
    # writes nothing: readers take no lock).
    lock = None if dry_run else prune.lock(store.packs, f"mlv gc -r {store.name}")
    try:
        packed = (
            prune.PrunePlan()
            if store.read_only
            else prune.plan(store.packs, kept, lock.mtime if lock else None, repo.cache)
        )
        # A loose copy of a chunk a kept chunk list names is kept too.
        doomed = {h: size for h, size in doomed.items() if h not in packed.chunks}
        return _gc_remote_locked(
            repo, store, kept, present, doomed, packed, result, dry_run, confirm, progress, lock
        )
    finally:
        if lock is not None:
            lock.release()


def _invalid_warning(store: RemoteStore, invalid: dict[str, str]) -> str:
    name, why = sorted(invalid.items())[0]
    more = f" (and {len(invalid) - 1} more)" if len(invalid) > 1 else ""
    return (
        f"no pack deleted this run: index index/{name}.idx of remote '{store.name}' is not "
        f"usable ({why}){more} and may name any pack; remove or repair it, then run "
        f"`mlv gc -r {store.name}` again"
    )


def _gc_remote_locked(
    repo: Repo,
    store: RemoteStore,
    kept: set[str],
    present: dict[str, int],
    doomed: dict[str, int],
    packed: prune.PrunePlan,
    result: GcResult,
    dry_run: bool,
    confirm: Confirm,
    progress: Progress,
    lock: RemoteLock | None = None,
) -> GcResult:
    where = result.where
    stored = present.keys() | packed.hashes
    plan = GcPlan(where, store.url, doomed, 0, packed)
    plan.kept = len(stored) - plan.count
    result.kept = plan.kept
    if packed.invalid:
        result.warnings.append(_invalid_warning(store, packed.invalid))
    if packed.unknown:
        h, why = sorted(packed.unknown.items())[0]
        more = f" (and {len(packed.unknown) - 1} more)" if len(packed.unknown) > 1 else ""
        result.warnings.append(
            f"no pack deleted this run: the chunk list of kept object {h} on remote "
            f"'{store.name}' is not usable ({why}){more}, so the chunks it names are unknown; "
            f"check the remote with `mlv verify --remote {store.name} --full`, repair it, "
            f"then run `mlv gc -r {store.name}` again"
        )
    if packed.newer:
        result.warnings.append(
            f"no pack deleted: remote '{store.name}' holds {packed.newer} packed object(s) of "
            "a kind a newer mlv wrote, which may name others; upgrade mlv (pip install -U mlv), "
            f"then run `mlv gc -r {store.name}` again"
        )
    if packed.young:
        result.warnings.append(
            f"{packed.young} pack(s) that no index names are younger than "
            f"{prune.GRACE // 3600} h and kept: a push may be writing them; "
            f"`mlv gc -r {store.name}` deletes them once older"
        )
    if packed.missing:
        h, pack = sorted(packed.missing.items())[0]
        more = f" (and {len(packed.missing) - 1} more)" if len(packed.missing) > 1 else ""
        result.warnings.append(
            f"{len(packed.missing)} kept object(s) are not on remote '{store.name}': their "
            f"pack is lost ({h} in pack {pack}: {packed.lost[pack]}){more}; gc drops the "
            f"indexes naming lost packs; send them again with `mlv push --verify -r {store.name}`"
        )
    if dry_run or not (doomed or packed.work) or not confirm(plan):
        result.packs = _planned(packed if dry_run else prune.PrunePlan())
        if dry_run:
            result.removed, result.bytes = plan.count, plan.bytes
        else:
            result.kept = len(stored)
        return result
    pruned = prune.PruneResult()
    _still_locked(store, lock)  # a prompt may have waited long
    before = len(result.failed)
    steps, children = _deletion_steps(repo.cache, store, doomed, result)
    told = len(result.failed) == before  # trees told from files: deletions may start
    progress.begin(f"gc {store.name}", len(doomed))
    held: set[str] = set()  # below a tree that could not be deleted: kept this time
    try:
        # Loose trees, then the packed objects (indexes), then loose files: whenever gc is
        # killed, no tree outlives what it names, loose or packed.
        tree_steps = [s for s in steps if s[0] in children]  # children: one key per tree
        file_steps = [s for s in steps if s[0] not in children]
        for step in [*tree_steps, None, *file_steps]:
            if step is None:
                if told and len(result.failed) == before:
                    _still_locked(store, lock)
                    prune.rewrite(store.packs, packed, repo.cache.tmp_dir, pruned)
                elif told:
                    pruned.warnings.append(
                        "no packed object dropped: some unreferenced trees could not be "
                        "deleted; run gc again"
                    )
                continue
            order = [h for h in step if h not in held]
            for start in range(0, len(order), BATCH):
                chunk = order[start : start + BATCH]
                gone = store.delete(chunk)
                for h in gone.done:
                    result.removed += 1
                    result.bytes += doomed.get(h, 0)
                    progress.advance(1, doomed.get(h, 0))
                for h, why in gone.failed.items():
                    result.failed[h] = why
                    held |= _below(h, children)
        if held - set(result.failed):
            result.warnings.append(
                f"{len(held - set(result.failed))} object(s) kept: a tree naming them could "
                "not be deleted; run gc again"
            )
    finally:
        progress.end()
    _still_locked(store, lock)
    if told:
        prune.drop_packs(store.packs, packed, kept, pruned)
    if pruned.complete:
        result.removed += len(pruned.gone - doomed.keys())
    result.bytes += max(0, pruned.freed)
    result.failed.update(pruned.failed)
    result.corrupt.update(pruned.corrupt)
    result.warnings += pruned.warnings
    result.packs = {
        "deleted": pruned.packs_deleted,
        "written": pruned.packs_written,
        "indexes_written": pruned.indexes_written,
        "indexes_deleted": pruned.indexes_deleted,
        "reindexed": pruned.reindexed,
    }
    result.kept = len(stored) - result.removed - len(pruned.corrupt)
    return result


def _still_locked(store: RemoteStore, lock: RemoteLock | None) -> None:
    """Stop before deleting when the lock could not be refreshed for long (a suspended
    machine, a lost network): another gc or a push may hold the remote by now."""
    if lock is not None and not lock.held:
        raise RemoteError(
            f"remote '{store.name}' ({store.url}): gc could not refresh its lock for "
            f"{UNSURE // 60} minutes and may have lost it; nothing more deleted",
            f"run `mlv gc -r {store.name}` again",
        )


def _planned(packed: prune.PrunePlan) -> dict[str, int]:
    return {
        "deleted": len(packed.dead) + len(packed.rewrite) + len(packed.orphans),
        "written": 1 if packed.copy else 0,
        "indexes_written": 1 if packed.keep else 0,
        "indexes_deleted": len(packed.replace),
        "reindexed": 0,
    }
