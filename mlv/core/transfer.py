"""`mlv push`, `fetch`, `pull` and `status --remote`: moving objects between cache and remote.

Selection: the pointers of the workspace (all, or the paths named), plus those of git
revisions (--rev, --all-branches, --all-tags, --all-commits): see selection.py.

Push walks each directory's trees from the top and stops wherever the remote already holds
a tree: a tree is only ever written after everything it names, so a tree on the remote
stands for its complete directory (a no-op push costs one check per pointer). Files go up
first, then trees from the deepest level up, each only once all its entries are there.

`mlv push --verify` trusts no tree: it walks every tree of the selection (from the cache,
else from the remote), asks the remote for every object, re-sends what lacks and only then
writes the trees that lack: the repair for a remote that lost objects (a lifecycle rule, a
bad restore) while the trees above them stayed.

Fetch walks the same trees, downloading the missing ones level by level, then the missing
files; every object is checked against its hash before it enters the cache.

With --run-cache, the entries of the run cache (runs/KEY[:2]/KEY[2:], small JSON files
naming objects) move too, each only after the objects it names (see push_runs, fetch_runs).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlv.core import targets as targets_mod
from mlv.core.pipeline.runcache import (
    RUNS,
    local_runs,
    parse_run_entry,
    run_entry_key,
    run_key_of,
)
from mlv.core.progress import NullProgress, Progress
from mlv.core.repo import Repo
from mlv.core.selection import Revisions, select
from mlv.core.targets import Target
from mlv.errors import (
    MlvError,
    ObjectCorruptError,
    ObjectMissingError,
    RemoteError,
    UsageError,
    rpath,
)
from mlv.objects import tree as tree_mod
from mlv.objects.remote import Outcome, RemoteStore
from mlv.objects.tree import Entry, Tree
from mlv.util import localfs

if TYPE_CHECKING:
    from mlv.core.checkout import CheckoutResult


@dataclass
class TransferSummary:
    action: str  # push | fetch
    remote: str
    url: str
    transferred: int = 0  # objects
    bytes: int = 0
    skipped: int = 0  # objects already where they were going
    failed: dict[str, str] = field(default_factory=dict)  # hash -> reason
    missing: list[str] = field(default_factory=list)  # push: not in the cache; fetch: remote
    corrupt: list[str] = field(default_factory=list)  # fetch: remote bytes did not match
    objects: dict[str, str] = field(default_factory=dict)  # push: corrupt hash -> cache file
    paths: dict[str, str] = field(default_factory=dict)  # hash -> a path it stands for
    runs: RunsSummary | None = None  # with --run-cache
    verified: bool = False  # push --verify: every object asked for, no tree trusted
    warnings: list[str] = field(default_factory=list)  # about the remote (unusable indexes)
    # objects counted already, as transferred or skipped: the run cache's pass, which comes
    # second and names the same outputs, does not count them again as "already there"
    seen: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.missing or self.corrupt or (self.runs and self.runs.failed))

    def add(self, outcome: Outcome) -> None:
        self.transferred += len(outcome.done)
        self.bytes += outcome.nbytes
        self.failed.update(outcome.failed)
        known = set(self.missing)
        self.missing += [h for h in outcome.missing if h not in known]
        self.corrupt += outcome.corrupt


@dataclass
class RunsSummary:
    """What --run-cache moved: run-cache entries (runs/KEY[:2]/KEY[2:]), by key."""

    transferred: int = 0
    skipped: int = 0  # already where they were going
    incomplete: list[str] = field(default_factory=list)  # not moved: objects they name lack
    invalid: list[str] = field(default_factory=list)  # not entries this mlv reads: left alone
    failed: dict[str, str] = field(default_factory=dict)  # key -> reason


@dataclass
class Root:
    """One object tree to move: a pointer's object, or a subtree of it."""

    label: str  # the workspace path it stands for
    entry: Entry


# ---- trees ------------------------------------------------------------------------------


class Trees:
    """Tree objects read from the cache, each parsed once."""

    def __init__(self, repo: Repo) -> None:
        self.cache = repo.cache
        self._memo: dict[str, Tree] = {}

    def keep(self, hash_id: str, data: bytes) -> None:
        """A tree read (and checked against its hash) elsewhere: from the remote."""
        if hash_id not in self._memo:
            try:
                self._memo[hash_id] = tree_mod.decode(data, f"tree {hash_id}")
            except MlvError:
                pass  # reported as missing from the cache by whoever needs it

    def load(self, hash_id: str) -> Tree:
        tree = self._memo.get(hash_id)
        if tree is None:
            tree = tree_mod.decode(self.cache.read_bytes(hash_id), f"tree {hash_id}")
            self._memo[hash_id] = tree
        return tree


def _descend(
    trees: Trees, target: Target, fetch: RemoteStore | None, summary: TransferSummary
) -> Entry | None:
    """The entry of target.sub inside target's tree; trees on the way are fetched when a
    remote is given. None (and a reason in summary) when the path cannot be reached."""
    entry = target.entry()
    for part in target.sub.split("/") if target.sub else []:
        if not entry.is_dir:
            return None
        if fetch is not None and not trees.cache.has(entry.hash):
            summary.add(fetch.download(trees.cache, [entry.hash]))
        try:
            child = trees.load(entry.hash).by_name().get(part)
        except (ObjectMissingError, ObjectCorruptError):
            if entry.hash not in summary.missing:
                summary.missing.append(entry.hash)
            summary.paths.setdefault(entry.hash, target.data_rel)
            return None
        if child is None:
            raise UsageError(f"{rpath(target.rel)}: no such path in {rpath(target.pointer_rel)}")
        entry = child
    return entry


# ---- push -------------------------------------------------------------------------------


@dataclass
class PushPlan:
    files: dict[str, int] = field(default_factory=dict)  # hash -> size, to upload
    trees: dict[str, int] = field(default_factory=dict)  # hash -> depth, to upload
    children: dict[str, list[str]] = field(default_factory=dict)
    present: set[str] = field(default_factory=set)  # already on the remote
    missing: set[str] = field(default_factory=set)  # needed, not in the cache
    paths: dict[str, str] = field(default_factory=dict)
    trusted: set[str] = field(default_factory=set)  # trees on the remote taken as complete
    indexed: set[str] = field(default_factory=set)  # present because an index names them

    @property
    def pending(self) -> int:
        return len(self.files) + len(self.trees) + len(self.missing)


def plan_push(repo: Repo, store: RemoteStore, roots: list[Root], verify: bool = False) -> PushPlan:
    """What the remote lacks, walking down only where a tree is not there yet. verify:
    walk every tree (a tree the cache lacks is read from the remote) and ask the remote
    for every object, trusting no tree to stand for what it names."""
    plan = PushPlan()
    trees = Trees(repo)
    files: dict[str, int] = {}
    frontier: dict[str, tuple[int, str]] = {}
    for root in roots:
        plan.paths.setdefault(root.entry.hash, root.label)
        if root.entry.is_dir:
            frontier[root.entry.hash] = (0, root.label)
        else:
            files[root.entry.hash] = root.entry.size
    seen: set[str] = set()
    while frontier:
        if verify:
            present = store.prove(frontier)
        else:
            present = store.present(frontier, _cached_sizes(repo, frontier))
        # A tree named by an index is walked like one the remote lacks: asking the
        # indexes about what it names is free, so nothing is taken on trust.
        indexed = store.indexed(present)
        plan.indexed |= indexed
        plan.present |= present
        following: dict[str, tuple[int, str]] = {}
        # Trees to walk that the cache lacks (a fresh clone's, before its pull) but the
        # remote has: read from the remote, checked, kept in memory. Not counted missing:
        # `mlv status -r` of a clone said "not pushed" of every folder on a packed remote.
        walked = present if verify else indexed
        lacking = [h for h in walked if not repo.cache.has(h)]
        if lacking:
            store.check(lacking, repo.tmp_dir, keep=trees.keep)
        for tree_hash, (depth, label) in frontier.items():
            seen.add(tree_hash)
            if tree_hash in present and not verify and tree_hash not in indexed:
                plan.trusted.add(tree_hash)
                continue
            try:
                tree = trees.load(tree_hash)
            except (ObjectMissingError, ObjectCorruptError):
                plan.missing.add(tree_hash)
                plan.paths.setdefault(tree_hash, label)
                continue
            if tree_hash not in present:
                plan.trees[tree_hash] = max(depth, plan.trees.get(tree_hash, 0))
                plan.children[tree_hash] = [e.hash for e in tree.entries]
            for e in tree.entries:
                path = f"{label}/{e.name}"
                plan.paths.setdefault(e.hash, path)
                if e.is_dir:
                    if e.hash not in seen or plan.trees.get(e.hash, -1) < depth + 1:
                        following[e.hash] = (depth + 1, path)
                else:
                    files[e.hash] = e.size
        frontier = following
    present_files = store.prove(files) if verify else store.present(files, files)
    plan.present |= present_files
    plan.indexed |= store.indexed(present_files)
    for h, size in files.items():
        if h in present_files:
            continue
        if repo.cache.has(h):
            plan.files[h] = size
        else:
            plan.missing.add(h)
    return plan


def _cached_sizes(repo: Repo, hashes: Iterable[str]) -> dict[str, int]:
    """The sizes of those of hashes that the cache holds (trees: push packs small ones)."""
    sizes = {}
    for h in hashes:
        try:
            sizes[h] = os.stat(repo.cache.object_path(h)).st_size
        except OSError:
            continue
    return sizes


def push(
    repo: Repo,
    store: RemoteStore,
    chosen: list[Target],
    progress: Progress | None = None,
    verify: bool = False,
) -> TransferSummary:
    progress = progress or NullProgress()
    if store.read_only:
        raise RemoteError(
            f"remote '{store.name}' ({store.url}) is read-only (HTTP)",
            "push to a folder, S3, GCS, Azure or SSH remote instead",
        )
    summary = TransferSummary("push", store.name, store.url, verified=verify)
    trees = Trees(repo)
    roots = []
    for t in chosen:
        entry = _descend(trees, t, None, summary)
        if entry is not None:
            roots.append(Root(t.rel, entry))
    plan = plan_push(repo, store, roots, verify)
    summary.paths.update(plan.paths)
    summary.skipped = len(plan.present)
    summary.seen = plan.present | plan.files.keys() | plan.trees.keys()
    summary.missing += sorted(plan.missing - set(summary.missing))
    _send(repo, store, plan, summary, progress, f"push to {store.name}")
    summary.objects = {h: repo.cache.object_path(h) for h in summary.corrupt}
    return summary


def _send(
    repo: Repo,
    store: RemoteStore,
    plan: PushPlan,
    summary: TransferSummary,
    progress: Progress,
    label: str,
    report_unsent: bool = True,
) -> set[str]:
    """Upload what the plan lacks, files first, then trees from the deepest up, each tree
    only once everything it names is there. Returns the plan's objects now on the remote.
    A tree held back is listed as failed (report_unsent), though what held it back (a
    missing object, a failed upload) is reported on its own anyway."""
    progress.begin(label, len(plan.files) + len(plan.trees))
    done = _advance(progress)
    sent = store.upload(repo.cache, list(plan.files), done)  # walk order: folders together
    summary.add(sent)
    on_remote = plan.present | set(sent.done)
    if plan.trees and store.packs_all(_cached_sizes(repo, plan.trees).values()):
        # All trees go into packs under one index: they appear at once, so a tree is
        # ready when what it names is on the remote or is a ready tree of this same call.
        packed: set[str] = set()
        for depth in sorted(set(plan.trees.values()), reverse=True):
            for h in sorted(h for h, d in plan.trees.items() if d == depth):
                short = [c for c in plan.children[h] if c not in on_remote and c not in packed]
                if not short:
                    packed.add(h)
                elif report_unsent:
                    summary.failed[h] = (
                        f"not sent: {len(short)} object(s) it names are not on the remote"
                    )
        outcome = store.upload(repo.cache, sorted(packed), done, trees=True)
        summary.add(outcome)
        on_remote |= set(outcome.done)
        progress.end()
        return on_remote
    for depth in sorted(set(plan.trees.values()), reverse=True):
        level = sorted(h for h, d in plan.trees.items() if d == depth)
        ready = [h for h in level if all(c in on_remote for c in plan.children[h])]
        for h in level:
            if h not in ready and report_unsent:
                lacking = sum(1 for c in plan.children[h] if c not in on_remote)
                summary.failed[h] = f"not sent: {lacking} object(s) it names are not on the remote"
        outcome = store.upload(repo.cache, ready, done)
        summary.add(outcome)
        on_remote |= set(outcome.done)
    progress.end()
    return on_remote


# ---- fetch ------------------------------------------------------------------------------


def fetch(
    repo: Repo,
    store: RemoteStore,
    chosen: list[Target],
    progress: Progress | None = None,
) -> TransferSummary:
    progress = progress or NullProgress()
    summary = TransferSummary("fetch", store.name, store.url)
    trees = Trees(repo)
    roots = []
    for t in chosen:
        entry = _descend(trees, t, store, summary)
        if entry is not None:
            roots.append(Root(t.rel, entry))
    _download(repo, store, roots, trees, summary, progress)
    return summary


def _download(
    repo: Repo,
    store: RemoteStore,
    roots: list[Root],
    trees: Trees,
    summary: TransferSummary,
    progress: Progress,
) -> None:
    """Fetch the roots' objects the cache lacks: trees level by level, then files."""
    from mlv.core.status import tree_complete

    cache = repo.cache
    lock = threading.Lock()
    done = _advance(progress, lock)
    files: dict[str, int] = {}
    frontier: dict[str, str] = {}
    for root in roots:
        summary.paths.setdefault(root.entry.hash, root.label)
        if root.entry.is_dir:
            frontier[root.entry.hash] = root.label
        else:
            files[root.entry.hash] = root.entry.size
    progress.begin(f"fetch trees from {store.name}", None)
    seen: set[str] = set()
    while frontier:
        seen |= set(frontier)
        lacking = [h for h in frontier if not cache.has(h)]
        summary.skipped += sum(1 for h in frontier if h not in lacking and h not in summary.seen)
        summary.seen.update(frontier)
        summary.add(store.download(cache, lacking, done))
        following: dict[str, str] = {}
        for tree_hash, label in frontier.items():
            if tree_hash in summary.missing or tree_hash in summary.corrupt:
                continue
            if tree_hash not in lacking and tree_complete(repo, cache, trees.load, tree_hash):
                continue  # everything below it is here already
            try:
                tree = trees.load(tree_hash)
            except (ObjectMissingError, ObjectCorruptError):
                continue  # reported by the download as failed
            for e in tree.entries:
                path = f"{label}/{e.name}"
                summary.paths.setdefault(e.hash, path)
                if e.is_dir:
                    if e.hash not in seen:
                        following[e.hash] = path
                else:
                    files[e.hash] = e.size
        frontier = following
    progress.end()
    lacking_files = [h for h in files if not cache.has(h)]
    summary.skipped += sum(1 for h in files if h not in summary.seen) - sum(
        1 for h in lacking_files if h not in summary.seen
    )
    summary.seen.update(files)
    progress.begin(f"fetch from {store.name}", len(lacking_files))
    summary.add(store.download(cache, lacking_files, done, files, _received(progress, lock)))
    progress.end()


def _advance(progress: Progress, lock: threading.Lock | None = None) -> Callable[[int], None]:
    """done(nbytes) for worker threads: one object finished, with its bytes."""
    lock = lock or threading.Lock()

    def done(nbytes: int) -> None:
        with lock:
            progress.advance(1, nbytes)

    return done


def _received(progress: Progress, lock: threading.Lock) -> Callable[[int], None]:
    """arrived(nbytes) for worker threads: bytes as they come, before the objects they
    hold are checked and counted (the bar's bytes and rate move during a batch)."""

    def arrived(nbytes: int) -> None:
        with lock:
            progress.advance(0, nbytes)

    return arrived


# ---- the run cache (entries: mlv.core.pipeline.runcache) -------------------------------


def _remote_runs(store: RemoteStore) -> set[str]:
    """The run keys of the entries on the remote (one listing of runs/)."""
    return {k for k in map(run_key_of, store.list_files(RUNS + "/")) if k is not None}


def _merge_objects(summary: TransferSummary, scratch: TransferSummary) -> None:
    """Book the objects moved for run-cache entries. Objects missing where they should come
    from are not failures: their entries just stay behind (incomplete)."""
    summary.transferred += scratch.transferred
    summary.bytes += scratch.bytes
    summary.skipped += scratch.skipped
    summary.failed.update(scratch.failed)
    summary.corrupt += [h for h in scratch.corrupt if h not in summary.corrupt]
    for h, path in scratch.paths.items():
        summary.paths.setdefault(h, path)


def push_runs(
    repo: Repo, store: RemoteStore, summary: TransferSummary, progress: Progress
) -> RunsSummary:
    """Upload the run-cache entries the remote lacks, each after the objects it names."""
    runs = summary.runs = RunsSummary()
    local = local_runs(repo.cache)
    if not local:
        return runs
    there = _remote_runs(store)
    todo: dict[str, tuple[bytes, list[tuple[str, Entry]]]] = {}
    for key, path in sorted(local.items()):
        if key in there:
            runs.skipped += 1
            continue
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as e:
            runs.failed[key] = f"cannot read {path} ({e.strerror})"
            continue
        named = parse_run_entry(data)
        if named is None:
            runs.invalid.append(key)
        else:
            todo[key] = (data, named)
    if not todo:
        return runs
    roots = [Root(f"{p} (run {k[:12]})", e) for k, (_, named) in todo.items() for p, e in named]
    scratch = TransferSummary("push", store.name, store.url)
    plan = plan_push(repo, store, roots)
    scratch.paths.update(plan.paths)
    scratch.skipped = len(plan.present - summary.seen)  # not those this push counted
    label = f"push run cache to {store.name}"
    on_remote = _send(repo, store, plan, scratch, progress, label, report_unsent=False)
    _merge_objects(summary, scratch)
    ready: list[tuple[bytes, str]] = []
    for key, (data, named) in todo.items():
        if all(e.hash in on_remote for _, e in named):
            ready.append((data, run_entry_key(key)))
        else:
            runs.incomplete.append(key)
    _write_entries(store, ready, runs)
    return runs


def _write_entries(store: RemoteStore, items: list[tuple[bytes, str]], runs: RunsSummary) -> None:
    written = store.write_files(items)
    runs.transferred += len(written.done)
    for key, why in written.failed.items():
        runs.failed[run_key_of(key) or key] = why


def fetch_runs(
    repo: Repo, store: RemoteStore, summary: TransferSummary, progress: Progress
) -> RunsSummary:
    """Download the run-cache entries the cache lacks and the objects they name (checked);
    an entry is written into the cache only once all its objects are there."""
    from mlv.core.status import tree_complete

    runs = summary.runs = RunsSummary()
    local = local_runs(repo.cache)
    remote = _remote_runs(store)
    wanted = sorted(remote - set(local))
    runs.skipped = len(remote) - len(wanted)
    got: dict[str, tuple[bytes, list[tuple[str, Entry]]]] = {}
    read = store.read_files([run_entry_key(k) for k in wanted])
    for entry_key, why in read.failed.items():
        runs.failed[run_key_of(entry_key) or entry_key] = why
    for entry_key in read.done:  # those gone meanwhile (read.missing): nothing to do
        key = run_key_of(entry_key) or entry_key
        data = read.data.get(entry_key, b"")
        named = parse_run_entry(data)
        if named is None:
            runs.invalid.append(key)
        else:
            got[key] = (data, named)
    if not got:
        return runs
    roots = [Root(f"{p} (run {k[:12]})", e) for k, (_, named) in got.items() for p, e in named]
    scratch = TransferSummary("fetch", store.name, store.url)
    scratch.seen = summary.seen  # not those this fetch counted (a run's outputs, often)
    trees = Trees(repo)
    _download(repo, store, roots, trees, scratch, progress)
    _merge_objects(summary, scratch)
    cache = repo.cache
    for key, (data, named) in got.items():
        complete = all(
            tree_complete(repo, cache, trees.load, e.hash) if e.is_dir else cache.has(e.hash)
            for _, e in named
        )
        if not complete:
            runs.incomplete.append(key)
            continue
        path = os.path.join(cache.root, *run_entry_key(key).split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        localfs.write_bytes_atomic(path, data, 0o444)
        runs.transferred += 1
    return runs


# ---- status --remote ----------------------------------------------------------------------


@dataclass
class RemoteStatus:
    path: str
    pointer: str
    pushed: bool
    not_pushed: int  # objects the remote lacks
    not_in_cache: int  # of those, objects this cache cannot send either
    trusted: int = 0  # trees found on the remote and taken to stand for all they name
    indexed: int = 0  # objects taken as present because an index of the remote names them
    tree_lost: bool = False  # the folder's tree is on neither side: its files are unknown


def remote_status(repo: Repo, store: RemoteStore, chosen: Iterable[Target]) -> list[RemoteStatus]:
    out = []
    trees = Trees(repo)
    for t in chosen:
        scratch = TransferSummary("status", store.name, store.url)
        entry = _descend(trees, t, None, scratch)
        if entry is None:
            out.append(RemoteStatus(t.rel, t.pointer_rel, False, 1, 1, tree_lost=True))
            continue
        plan = plan_push(repo, store, [Root(t.rel, entry)])
        out.append(
            RemoteStatus(
                t.rel,
                t.pointer_rel,
                plan.pending == 0,
                plan.pending,
                len(plan.missing),
                len(plan.trusted),
                len(plan.indexed),
                tree_lost=entry.is_dir and entry.hash in plan.missing,
            )
        )
    return out


# ---- entry points used by the CLI ---------------------------------------------------------


@contextmanager
def _opened(
    repo: Repo, remote: str | None, jobs: int | None, absent_ok: bool = False
) -> Iterator[RemoteStore]:
    from mlv.core.remotes import open_remote

    store = open_remote(repo, remote, jobs, absent_ok)
    try:
        yield store
    finally:
        store.close()


def run_push(
    repo: Repo,
    remote: str | None,
    paths: list[str],
    revisions: Revisions,
    jobs: int | None,
    progress: Progress | None = None,
    run_cache: bool = False,
    verify: bool = False,
) -> TransferSummary:
    """Push the selection; with run_cache, then every run-cache entry the remote lacks.
    verify: trust no tree on the remote (see plan_push)."""
    progress = progress or NullProgress()
    with _opened(repo, remote, jobs, absent_ok=True) as store:  # push creates it
        summary = push(repo, store, select(repo, paths, revisions), progress, verify)
        if run_cache:
            push_runs(repo, store, summary, progress)
        summary.warnings = list(store.warnings)
        return summary


def run_fetch(
    repo: Repo,
    remote: str | None,
    paths: list[str],
    revisions: Revisions,
    jobs: int | None,
    progress: Progress | None = None,
    run_cache: bool = False,
) -> TransferSummary:
    """Fetch the selection; with run_cache, then every run-cache entry the cache lacks."""
    progress = progress or NullProgress()
    with _opened(repo, remote, jobs) as store, repo.lock():
        repo.cache.remove_stale_tmp(repo.sweep_stamp)
        try:
            summary = fetch(repo, store, select(repo, paths, revisions), progress)
            if run_cache:
                fetch_runs(repo, store, summary, progress)
            summary.warnings = list(store.warnings)
            return summary
        finally:
            repo.state.flush()


def run_refetch(
    repo: Repo,
    remote: str | None,
    hashes: list[str],
    jobs: int | None,
    progress: Progress | None = None,
) -> TransferSummary:
    """Download again objects found corrupt in the cache: each is checked, then takes the
    damaged copy's place (the damaged bytes are worth nothing: their name says otherwise)."""
    progress = progress or NullProgress()
    with _opened(repo, remote, jobs) as store, repo.lock():
        summary = TransferSummary("fetch", store.name, store.url)
        wanted = sorted(set(hashes))
        progress.begin(f"fetch again from {store.name}", len(wanted))
        try:
            summary.add(store.download(repo.cache, wanted, _advance(progress)))
        finally:
            progress.end()
        repo.state.flush()
        return summary


def repair_checkout(
    repo: Repo,
    remote: str | None,
    jobs: int | None,
    results: list[CheckoutResult],
    force: bool = False,
    progress: Progress | None = None,
) -> TransferSummary | None:
    """After a pull's checkout: download again the objects it found corrupt in the cache
    (see run_refetch), then check their paths out again, folding the outcome into results.
    None when the checkout found nothing corrupt."""
    from mlv.core import checkout as checkout_mod

    wanted = {h: p for r in results for p, h in r.corrupt_hashes.items()}
    if not wanted:
        return None
    summary = run_refetch(repo, remote, list(wanted), jobs, progress)
    for h, path in wanted.items():
        summary.paths.setdefault(h, path)
    bad = set(summary.missing) | set(summary.corrupt) | set(summary.failed)
    for r in results:
        again = [p for p, h in r.corrupt_hashes.items() if h not in bad]
        if not again:
            continue
        for p in again:
            r.corrupt.remove(p)
            del r.corrupt_objects[p]
            del r.corrupt_hashes[p]
        retried = checkout_mod.checkout(repo, [repo.abs(p) for p in again], force, False, progress)
        for fresh in retried:
            r.restored += fresh.restored
            r.removed += fresh.removed
            r.conflicts += fresh.conflicts
            r.missing += fresh.missing
            r.corrupt += fresh.corrupt
            r.corrupt_objects.update(fresh.corrupt_objects)
            r.corrupt_hashes.update(fresh.corrupt_hashes)
            r.error = r.error or fresh.error
    return summary


def run_status(
    repo: Repo, remote: str | None, paths: list[str], jobs: int | None = None
) -> tuple[str, str, list[RemoteStatus]]:
    # a folder that does not exist holds nothing: every target is not pushed (the CLI warns)
    with _opened(repo, remote, jobs, absent_ok=True) as store:
        return store.name, store.url, remote_status(repo, store, targets_mod.resolve(repo, paths))
