"""`mlv checkout`: make the workspace match the pointers.

What differs is replaced only when the workspace's version is safe in the cache (the usual
case after `git checkout OLD`). Content the cache lacks (an edit never added) is never
overwritten or deleted without force: it is reported as a conflict and left alone, while
everything else is restored. Every file is written under a temporary name and renamed into
place, and every object copied out is checked against its name first.
"""

from __future__ import annotations

import collections
import itertools
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlv.core import gitignore, safepaths, targets
from mlv.core.progress import NullProgress, Progress
from mlv.core.repo import Repo
from mlv.core.targets import Target
from mlv.core.workspace import Scanner
from mlv.errors import (
    MlvError,
    ObjectCorruptError,
    ObjectMissingError,
    TreeError,
    WorkspaceError,
    rpath,
    text_of,
)
from mlv.objects import hashing, linker, treediff
from mlv.objects.store import Cache
from mlv.objects.tree import DIR, Entry, check_depth

if TYPE_CHECKING:  # concurrent.futures (and logging) load only for large files: ~4 ms
    from concurrent.futures import Future, ThreadPoolExecutor

PARALLEL_SIZE = 8 << 20  # files this large are copied two at a time
PREFETCH = 2000  # changes whose objects' trust records are read in one go
LINK_BATCH = 1000  # files hard-linked in one go (by the link helper, or Cache.link_many)
# The link helper's first batch, smaller: it starts linking while the next ones are read
# (the first link ~3 ms sooner at 20,000 files; docs/performance.md).
FIRST_BATCH = 200


def _tree_error(rel: str, e: BaseException) -> str:
    """A target's error line. A tree the cache lacks (the pointer came with `git pull`,
    its data was never fetched) names the path and the command that brings it: its hint
    was `re-add the data with mlv add`, of data this machine never had."""
    if isinstance(e, ObjectMissingError):
        return (
            f"{rpath(rel)}: {e.marked_message}: `mlv pull {rpath(rel)}` fetches it from the "
            "remote, or re-add the data where it exists"
        )
    return text_of(e)


@dataclass
class CheckoutResult:
    path: str
    restored: list[str] = field(default_factory=list)  # files written
    removed: list[str] = field(default_factory=list)  # files deleted (safe in the cache)
    conflicts: list[str] = field(default_factory=list)  # unsaved content left alone
    missing: list[str] = field(default_factory=list)  # objects not in the cache
    corrupt: list[str] = field(default_factory=list)  # objects that failed their check
    corrupt_objects: dict[str, str] = field(default_factory=dict)  # path -> object file
    corrupt_hashes: dict[str, str] = field(default_factory=dict)  # path -> hash id
    unreadable: dict[str, str] = field(default_factory=dict)  # path -> why its object failed
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not (self.conflicts or self.missing or self.corrupt or self.unreadable or self.error)


_Trust = tuple[int, int, int]  # an object's trust record: ino, mtime_ns, size
# rel, entry, result, absolute path, and the object's trust record when already known
_Link = tuple[str, Entry, CheckoutResult, str, _Trust | None]


def _subtree(scanner: Scanner, root: Entry, sub: str) -> Entry | None:
    """The entry at path sub below root (a dir entry), None if the pointer has no such path."""
    entry: Entry | None = root
    for part in sub.split("/"):
        if entry is None or not entry.is_dir:
            return None
        entry = scanner.load_tree(entry.hash).by_name().get(part)
    return entry


class _Checkout:
    def __init__(
        self,
        repo: Repo,
        force: bool,
        relink: bool,
        progress: Progress,
        cache: Cache | None = None,
        ignore: bool = True,
    ) -> None:
        """cache: the cache to write from (one with other link types); ignore: add each
        target to .gitignore (not for outputs that git tracks)."""
        self.repo = repo
        self.force = force
        self.relink = relink
        self.progress = progress
        self.cache = cache or repo.cache
        self.ignore = ignore
        self.state = repo.state
        self.scanner = Scanner(repo, store=False)
        self.guard = safepaths.Guard(repo.root)  # no write through a symbolic link
        self._kept: set[str] = set()  # paths that should have gone but were kept (conflicts)
        self._top = 0  # how many "/" the target being checked out has (_apply_dir)
        self._blocked: set[str] = set()  # folders that could not be made: skip what is inside
        self._intact: dict[str, bool] = {}  # hash id -> the cache holds it intact
        self._unreadable: dict[str, str] = {}  # hash id -> why its object cannot be read
        self._pool: ThreadPoolExecutor | None = None
        self._linking = self.cache.link_type == "hardlink"
        self._links: list[_Link] = []  # for _link_batch
        # the link helper (objects/linker.py), started by the first full batch, and the
        # batches it was given, with each file's trust record, not yet booked
        self._helper: linker.LinkHelper | None = None
        self._helper_tried = False
        self._flight: collections.deque[list[tuple[_Link, _Trust]]] = collections.deque()
        self._tree_trust_used = False  # a tree's trust records stood for its objects' own
        self._pending: list[tuple[str, Entry, CheckoutResult, Future[os.stat_result]]] = []

    def run(self, target: Target) -> CheckoutResult:
        result = CheckoutResult(target.rel)
        ptr = target.pointer
        self.scanner = Scanner(
            self.repo, store=False, algo=hashing.algorithm_of(ptr.hash), clean_tmp=True
        )
        desired: Entry | None = Entry(
            ptr.kind, target.data_rel.rpartition("/")[2], ptr.hash, ptr.size, ptr.files or 1
        )
        if target.sub:
            assert desired is not None
            try:
                desired = _subtree(self.scanner, desired, target.sub)
            except (ObjectMissingError, ObjectCorruptError, TreeError) as e:
                result.error = _tree_error(target.rel, e)
                return result
            if desired is None:
                result.error = f"{rpath(target.rel)}: not in {rpath(target.pointer_rel)}"
                return result
        assert desired is not None
        try:
            self._link_at_target(target.rel, desired, result)
        except (MlvError, OSError) as e:
            result.error = text_of(e)
            return result
        try:
            actual = self.scanner.scan(target.rel)
            self._apply(target.rel, desired, actual, result)
            self._drain()
        except (MlvError, OSError) as e:
            result.error = _tree_error(target.rel, e)
            try:
                self._drain()  # book what was written in the background meanwhile
            except (MlvError, OSError):
                pass
        if not target.sub and self.ignore:
            try:
                ignore_file = gitignore.add_entry(self.repo.root, target.data_rel)
            except WorkspaceError as e:  # a .gitignore that is a symbolic link
                result.error = result.error or text_of(e)
                return result
            if ignore_file:
                self.repo.stage([ignore_file])
        return result

    def _link_at_target(self, rel: str, desired: Entry, result: CheckoutResult) -> None:
        """Refuse a target below a symbolic link. A link at the target itself is replaced
        (the link, never what it points to) when it stands where a folder goes or points
        to a folder, and only with --force; a link to a file where a file goes is replaced
        by the rename that writes the file, as any file is."""
        self.guard.parents(rel)
        if not safepaths.is_link(self.repo.root, rel):
            return
        path = self.repo.abs(rel)
        if not desired.is_dir and not os.path.isdir(path):
            return
        if not self.force:
            raise safepaths.link_error(rel, rel, self.repo.root, force=True)
        os.unlink(path)
        result.removed.append(rel)

    # -- planning and applying ----------------------------------------------------------

    def _held(self, hash_id: str) -> bool:
        """Does the cache hold this content intact? A present but damaged object holds
        nothing. Cheap for objects checked before (the state db's trust record)."""
        held = self._intact.get(hash_id)
        if held is None:
            try:
                held = self.cache.is_intact(hash_id)
            except OSError as e:  # unreadable: it vouches for nothing
                why = (e.strerror or type(e).__name__).lower()
                self._unreadable[hash_id] = f"{self.cache.object_path(hash_id)}: {why}"
                held = False
            self._intact[hash_id] = held
        return held

    def _safe(self, entry: Entry, path: str, result: CheckoutResult) -> bool:
        """May the workspace version `entry` at `path` be replaced or deleted?"""
        if self.force:
            return True
        if entry.is_dir:
            unsafe = self._unsaved_below(path, entry)
            result.conflicts.extend(unsafe)
            return not unsafe
        if self._held(entry.hash):
            return True
        if entry.hash in self._unreadable:  # left alone until its object can be read
            result.unreadable[path] = self._unreadable[entry.hash]
        else:
            result.conflicts.append(path)
        return False

    def _unsaved_below(self, rel: str, entry: Entry) -> list[str]:
        """What deleting folder rel would lose: everything on disk below it that the cache
        does not hold intact. The disk is walked, not the scan (which skips .mlvignore'd
        files, nested .git folders and the like): a file or link the scan did not record
        is unsaved, and so is a non-empty folder it skipped (listed as the folder)."""
        known = dict(treediff.walk(self.scanner.load_tree, entry.hash))
        unsafe: list[str] = []

        def visit(folder: str, prefix: str) -> None:
            with os.scandir(folder) as it:
                items = sorted(it, key=lambda d: d.name)
            for item in items:
                sub = f"{prefix}{item.name}"
                seen = known.get(sub)
                if item.is_dir(follow_symlinks=False):
                    if seen is not None and seen.is_dir:
                        visit(item.path, sub + "/")
                    elif os.listdir(item.path):
                        unsafe.append(f"{rel}/{sub}")
                elif seen is None or seen.is_dir or not self._held(seen.hash):
                    unsafe.append(f"{rel}/{sub}")

        visit(self.repo.abs(rel), "")
        return unsafe

    def _apply(
        self, rel: str, desired: Entry | None, actual: Entry | None, result: CheckoutResult
    ) -> None:
        if desired is None:
            return
        if actual is not None and actual.kind != desired.kind:
            if not self._safe(actual, rel, result):
                return
            self._remove(rel, actual, result)
            actual = None
        if desired.kind != DIR:
            if actual is None or actual.hash != desired.hash or self.relink:
                if (
                    actual is not None
                    and actual.hash != desired.hash
                    and not self._safe(actual, rel, result)
                ):
                    return
                if actual is None:  # one file of a directory not checked out yet
                    os.makedirs(os.path.dirname(self.repo.abs(rel)), exist_ok=True)
                self._write(rel, desired, result)
            return
        abs_root = self.repo.abs(rel)
        if actual is None:
            os.makedirs(abs_root, exist_ok=True)
        self.progress.begin(f"checking out {rel}", desired.files)
        if actual is None and desired.files >= LINK_BATCH:
            self._start_helper()  # it starts while the first trees are read
        try:
            self._apply_dir(rel, desired.hash, actual.hash if actual else None, result)
        finally:
            self.progress.end()

    def _apply_dir(self, rel: str, want: str, have: str | None, result: CheckoutResult) -> None:
        load = self.scanner.load_tree
        if have == want and not self.relink:
            return
        self._top = rel.count("/")  # _fill counts a folder's depth below rel
        changes = treediff.diff(load, have, want, whole_new=True)  # new folders: _fill
        if self.relink and have == want:
            changes = (treediff.Change(p, e, e) for p, e in treediff.walk(load, want))
        for change in self._prefetched(changes):
            path = f"{rel}/{change.path}"
            self.guard.parents(path)
            old, new = change.old, change.new
            if self._blocked and self._under_blocked(path):
                continue  # its folder could not be made: reported as the folder's conflict
            if new is None:
                if old is None:
                    continue
                if old.is_dir:  # its content came first; it is empty unless something stayed
                    try:
                        os.rmdir(self.repo.abs(path))
                    except OSError:
                        self._kept.add(path)
                elif self._safe(old, path, result):
                    self._remove(path, old, result)
                else:
                    self._kept.add(path)
                continue
            if path in self._kept:
                if path not in result.conflicts:  # not listed yet as unsaved content
                    result.conflicts.append(path)  # could not be removed to make room
                if new.is_dir:
                    self._blocked.add(path)
                continue
            if new.is_dir:
                try:
                    os.makedirs(self.repo.abs(path), exist_ok=True)
                except OSError:
                    result.conflicts.append(path)
                    self._blocked.add(path)
                    continue
                if old is None:  # a folder the workspace lacked: its content too
                    self._fill(path, new.hash, result)
                continue
            if old is not None and old.hash != new.hash and not self._safe(old, path, result):
                continue
            self._write(path, new, result)
        self._drain()
        if self.relink and have != want:
            # what the diff did not touch is unchanged content: link it anew as configured
            done = set(result.restored + result.conflicts + result.missing + result.corrupt)
            done |= self._kept
            for sub, entry in treediff.walk(load, want):
                path = f"{rel}/{sub}"
                if self._blocked and self._under_blocked(path):
                    continue
                if not entry.is_dir and path not in done:
                    self._write(path, entry, result)

    def _fill(self, rel: str, tree_hash: str, result: CheckoutResult) -> None:
        """Write the content of folder rel, which the workspace lacked (it was just made):
        nothing below it can be unsaved work, so no file needs a safety check, and the
        hard links are queued straight from the tree, without a change per file. A
        folder's files go before its subfolders (whose trust records replace its own)."""
        self.guard.parents(f"{rel}/-")  # rel itself is a real folder, not a link
        base = f"{self.repo.root}/{rel}/"
        entries = self.scanner.load_tree(tree_hash).entries
        files = [e for e in entries if e.kind != DIR]
        if self._linking:
            trust = self._tree_trust(tree_hash, files)
            batch = self._batch_size()
            for entry, known in zip(files, trust, strict=True):
                if entry.size < PARALLEL_SIZE:
                    path = base + entry.name
                    self._links.append((f"{rel}/{entry.name}", entry, result, path, known))
                    if len(self._links) >= batch:
                        self._link_batch()
                        batch = self._batch_size()
                else:
                    self._write(f"{rel}/{entry.name}", entry, result)
        else:
            if self.cache.link_type != "copy":  # symlinks, reflinks: as _prefetched does
                self.state.prefetch_objects([e.hash for e in files])
            for entry in files:
                self._write(f"{rel}/{entry.name}", entry, result)
        for entry in entries:
            if entry.kind == DIR:
                sub = f"{rel}/{entry.name}"
                check_depth(sub.split("/", self._top + 1)[-1], tree_hash)  # before makedirs
                try:
                    os.makedirs(base + entry.name, exist_ok=True)
                except OSError:
                    result.conflicts.append(sub)
                    self._blocked.add(sub)
                    continue
                self._fill(sub, entry.hash, result)

    def _tree_trust(self, tree_hash: str, files: list[Entry]) -> list[_Trust | None]:
        """The trust records of a tree's files, in order: the tree's own row when it has
        one (one query for the folder), else the objects' rows (then kept as the tree's,
        for the next checkout, when every file has one)."""
        known = self.state.tree_trust(tree_hash)
        if known is not None and len(known) == len(files):
            self._tree_trust_used = True
            return known
        self.state.prefetch_objects([e.hash for e in files])
        record = self.state.object_record
        trust = [record(e.hash) for e in files]
        if files and None not in trust:
            self.state.record_tree_trust(tree_hash, trust)
        return trust

    def _prefetched(self, changes: Iterator[treediff.Change]) -> Iterator[treediff.Change]:
        """The changes, PREFETCH at a time, with the trust records of the objects that a
        link checkout is about to link read ahead in one query per batch (hard links:
        _link_batch reads those of its own batch)."""
        if self.cache.link_type == "copy" or self._linking:  # copies hash their bytes
            yield from changes
            return
        while batch := list(itertools.islice(changes, PREFETCH)):
            self._link_batch()  # the links of the batch before, while its records are read
            self.state.prefetch_objects(
                c.new.hash for c in batch if c.new is not None and not c.new.is_dir
            )
            yield from batch

    def _under_blocked(self, path: str) -> bool:
        parts = path.split("/")
        return any("/".join(parts[:i]) in self._blocked for i in range(1, len(parts)))

    def _write(self, rel: str, entry: Entry, result: CheckoutResult) -> None:
        self.guard.parents(rel)
        path = f"{self.repo.root}/{rel}"
        if self._linking and entry.size < PARALLEL_SIZE:
            # hardlinks: a batch at a time, in one loop (Cache.link_many)
            self._links.append((rel, entry, result, path, None))
            if len(self._links) >= self._batch_size():
                self._link_batch()
            return
        if entry.size >= PARALLEL_SIZE:
            # large files: two copies at once keep both cores (and the disk) busy
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=2)
            job = self._pool.submit(self.cache.materialize, entry.hash, path, entry.size)
            self._pending.append((rel, entry, result, job))
            return
        self._finish(
            rel, entry, result, lambda: self.cache.materialize(entry.hash, path, entry.size)
        )

    def _link_batch(self, final: bool = False) -> None:
        """Link the batch, and book it. A large checkout hands the files whose objects have
        a trust record to the link helper and books each batch when the next one has gone
        out (final: book every batch in flight); the rest, and anything the helper did not
        do, is linked here (Cache.link_many) and booked as _book does."""
        links, self._links = self._links, []
        unknown = [e.hash for _, e, _, _, known in links if known is None]
        if unknown:  # one query for the batch's trust records, not one per file
            self.state.prefetch_objects(unknown)
        if len(links) >= LINK_BATCH:
            self._start_helper()
        helper = self._helper
        if helper is None:
            self._link_here(links)
            return
        here: list[_Link] = []
        sent: list[tuple[_Link, _Trust]] = []
        record = self.state.object_record
        for link in links:
            trust = link[4] or record(link[1].hash)
            if trust is None:
                here.append(link)
            else:
                sent.append((link, trust))
        if sent:
            object_path = self.cache.object_path
            jobs = [(object_path(e.hash), path, *t) for (_, e, _, path, _), t in sent]
            try:
                helper.send(jobs)
                self._flight.append(sent)
            except linker.HelperGone:
                self._helper_lost()
                here += [link for link, _ in sent]
        self._link_here(here)
        while len(self._flight) > (0 if final else 1):
            self._book_flight()

    def _batch_size(self) -> int:
        """Links per batch: a helper not given any yet gets FIRST_BATCH, to start sooner."""
        if self._helper is not None and self._helper.sent == 0:
            return min(FIRST_BATCH, LINK_BATCH)
        return LINK_BATCH

    def _start_helper(self) -> None:
        """Start the link helper for a hard-link checkout of many files, once."""
        if self._linking and not (self._helper_tried or self.relink):  # relink: all there
            self._helper_tried = True
            self._helper = linker.start()

    def _book_flight(self) -> None:
        """Book the oldest batch the helper was given: what it linked, in bulk (the trust
        record's stat is the new file's: the same inode); the rest is linked here."""
        batch = self._flight.popleft()
        assert self._helper is not None
        try:
            codes = self._helper.receive()
        except linker.HelperGone:
            redo = [link for link, _ in batch]
            for more in self._flight:
                redo += [link for link, _ in more]
            self._flight.clear()
            self._helper_lost()
            self._link_here(redo)
            return
        rows: list[tuple[str, str, int, int, int, str]] = []
        nbytes = 0
        here: list[_Link] = []
        for (link, trust), code in zip(batch, codes, strict=True):
            if code == linker.LINKED:
                rel, entry, result, _, _ = link
                rel_dir, _, name = rel.rpartition("/")
                rows.append((rel_dir, name, *trust, entry.hash))
                result.restored.append(rel)
                nbytes += entry.size
            else:
                here.append(link)
        if here and self._tree_trust_used:  # a tree's record may be what no longer holds
            self.state.forget_tree_trust()
            self._tree_trust_used = False
        self.state.record_many(rows, written=True)
        # written now, while the helper links the next batch, not all at the end (the
        # files are links: their mtime is the object's, so none of them looks racy)
        self.state.flush()
        self.progress.advance(len(rows), nbytes)
        self._link_here(here)

    def _helper_lost(self) -> None:
        """The helper stopped: what it was given is redone here (a link it made is found
        by materialize), and so is everything after."""
        if self._helper is not None:
            self._helper.close()
            self._helper = None

    def _link_here(self, links: list[_Link]) -> None:
        """Link in this process (Cache.link_many), and book: the files linked in bulk
        (their state rows in one call), anything else one by one as _book does."""
        if not links:
            return
        outcomes = self.cache.link_many([(e.hash, path, e.size) for _, e, _, path, _ in links])
        rows: list[tuple[str, str, int, int, int, str]] = []
        nbytes = 0
        stop: BaseException | None = None  # a workspace error: raised once all are booked
        for (rel, entry, result, _, _), outcome in zip(links, outcomes, strict=True):
            if type(outcome) is os.stat_result:
                rel_dir, _, name = rel.rpartition("/")
                rows.append(
                    (
                        rel_dir,
                        name,
                        outcome.st_ino,
                        outcome.st_mtime_ns,
                        outcome.st_size,
                        entry.hash,
                    )
                )
                result.restored.append(rel)
                nbytes += entry.size
            else:
                try:
                    self._book(rel, entry, result, outcome)
                except (MlvError, OSError) as e:
                    stop = stop or e
        self.state.record_many(rows, written=True)
        self.progress.advance(len(rows), nbytes)
        if stop is not None:
            raise stop

    def _drain(self) -> None:
        """Book the files linked in a batch, and the large files written in the background
        (in the main thread)."""
        self._link_batch(final=True)
        pending, self._pending = self._pending, []
        for rel, entry, result, job in pending:
            self._finish(rel, entry, result, job.result)

    def _finish(
        self, rel: str, entry: Entry, result: CheckoutResult, write: Callable[[], os.stat_result]
    ) -> None:
        try:
            outcome: os.stat_result | MlvError | OSError = write()
        except (MlvError, OSError) as e:
            outcome = e
        self._book(rel, entry, result, outcome)

    def _book(
        self,
        rel: str,
        entry: Entry,
        result: CheckoutResult,
        outcome: os.stat_result | MlvError | OSError,
    ) -> None:
        """Book one file's write: its state row, or what went wrong with its object."""
        if isinstance(outcome, os.stat_result):
            rel_dir, _, name = rel.rpartition("/")
            self.state.record(rel_dir, name, outcome, entry.hash, written=True)
            result.restored.append(rel)
            self.progress.advance(1, entry.size)
        elif isinstance(outcome, ObjectMissingError):
            result.missing.append(rel)
        elif isinstance(outcome, ObjectCorruptError):
            result.corrupt.append(rel)
            result.corrupt_objects[rel] = self.cache.object_path(entry.hash)
            result.corrupt_hashes[rel] = entry.hash
        elif isinstance(outcome, OSError) and outcome.filename == self.cache.object_path(
            entry.hash
        ):
            # one unreadable object costs its own file only; the rest is restored
            why = (outcome.strerror or type(outcome).__name__).lower()
            result.unreadable[rel] = f"{outcome.filename}: {why}"
        else:
            raise outcome  # not the object (the workspace, say): the target stops

    def close(self) -> None:
        if self._helper is not None:
            self._helper.close()
            self._helper = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _remove(self, rel: str, entry: Entry, result: CheckoutResult) -> None:
        self.guard.parents(rel)
        path = self.repo.abs(rel)
        if entry.is_dir and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        result.removed.append(rel)


def checkout(
    repo: Repo,
    paths: list[str],
    force: bool = False,
    relink: bool = False,
    progress: Progress | None = None,
) -> list[CheckoutResult]:
    progress = progress or NullProgress()
    targets.refuse_undecodable(paths)
    with repo.lock():
        chosen = targets.resolve(repo, paths)
        targets.require_sub(repo, chosen, workspace=False)  # nothing to restore there
        unstaged = _Unstaged(repo, [t.data_rel for t in chosen if not t.sub])
        runner = _Checkout(repo, force, relink, progress)
        try:
            results = [runner.run(t) for t in chosen]
            repo.stage(unstaged.result())
        finally:
            unstaged.join()
            runner.close()
            repo.state.flush()
        if runner.cache.link_type in ("copy", "reflink"):
            _snapshot_written(repo, chosen, results)
        return results


class _Unstaged:
    """gitignore.unstaged of the targets (the .gitignore entries a killed command wrote but
    never staged), asked in a thread as the checkout starts: its `git cat-file` (~5 ms)
    then runs beside the checkout instead of after it. What it finds is what it would find
    at the end: the entries this checkout adds, it stages itself."""

    def __init__(self, repo: Repo, data_rels: list[str]) -> None:
        self._found: list[str] = []
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if repo.scm and data_rels:
            self._thread = threading.Thread(
                target=self._ask, args=(repo.root, data_rels), daemon=True
            )
            self._thread.start()

    def _ask(self, root: str, data_rels: list[str]) -> None:
        try:
            self._found = gitignore.unstaged(root, data_rels)
        except BaseException as e:  # raised where the caller asks for the answer
            self._error = e

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def result(self) -> list[str]:
        """The .gitignore files to stage; what the question raised (git missing...)."""
        self.join()
        if self._error is not None:
            raise self._error
        return self._found


def _snapshot_written(repo: Repo, chosen: list[Target], results: list[CheckoutResult]) -> None:
    """Scan the folders a copy checkout wrote files into, as status does, once their rows
    are flushed: the folder snapshots status keeps are then recorded here, and the first
    status after a checkout costs what the next one does (a stat per file) instead of
    reading and checking every file's row and writing a snapshot per folder (~40 ms of
    ~0.17 s at 20,000 files). The racy-timestamp rule judges the rows as status would:
    files written in the last moments before the flush are read again, and their folders
    get no snapshot yet. The scan costs a stat per file of the target (~3 us), a copied
    file ~0.1-0.5 ms of disk: a target is scanned when the checkout wrote at least 1 % of
    its files, so that the scan stays a few percent of the checkout (a folder the checkout
    did not write into keeps its snapshot anyway). A hard-link checkout (~15 us a file) is
    not scanned: its files keep their objects' timestamps, so status takes them at once.
    Only a cache: anything the scan cannot read is left for status to report."""
    for target, result in zip(chosen, results, strict=True):
        ptr = target.pointer
        if ptr.kind != DIR or not result.restored or len(result.restored) * 100 < (ptr.files or 0):
            continue
        scanner = Scanner(repo, store=False, algo=hashing.algorithm_of(ptr.hash))
        try:
            scanner.scan(target.rel)
        except (MlvError, OSError):
            pass


def restore(
    repo: Repo, target: Target, cache: Cache | None = None, ignore: bool = True
) -> CheckoutResult:
    """Write one target's content over whatever is there (the caller has saved it), from
    cache (default the repository's; a copy-only view for files git tracks); ignore: add
    the target to .gitignore. The caller holds the repository lock."""
    runner = _Checkout(repo, True, False, NullProgress(), cache=cache, ignore=ignore)
    try:
        return runner.run(target)
    finally:
        runner.close()
