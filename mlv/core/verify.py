"""`mlv verify`: prove that what the selected pointers say about their data is true.

Three checks, each honest about what it reads:

- workspace: every tracked file matches its pointer. Hashes come from the state database
  (an unchanged file costs one stat), as in `mlv status`; with rehash every byte is read and
  the state database is neither read nor written.
- cache: every object the selection needs (trees walked down to the last file) is in the
  cache, and its bytes hash to its name. Every byte is read; trust records are not used.
- remote: every object the selection needs is on the remote, asked per object (a tree on
  the remote is not taken to stand for its directory, as push and `status --remote` do).
  With a sample or full, objects are also downloaded, into memory or a scratch folder, and
  re-hashed; every tree is then read from the remote too.

Nothing is written to the workspace, the cache or the remote. The state database (a cache
of hashes in .mlv/tmp) gets the rows of files hashed without rehash, as `mlv status` does.
Trees the cache lacks are read from the remote into memory, checked and not kept.
"""

from __future__ import annotations

import dataclasses
import os
import random
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass, field

from mlv import git
from mlv.core import selection
from mlv.core import targets as targets_mod
from mlv.core.progress import NullProgress, Progress
from mlv.core.repo import Repo
from mlv.core.targets import Target
from mlv.core.workspace import Scanner
from mlv.errors import MlvError, ObjectMissingError, UsageError, rpath
from mlv.objects import hashing, treediff
from mlv.objects import tree as tree_mod
from mlv.objects.remote import RemoteStore
from mlv.objects.state import StateDB
from mlv.objects.store import hash_path_mmap
from mlv.objects.tree import Entry, Tree

WORKSPACE = "workspace"
CACHE = "cache"
REMOTE = "remote"

# Problem.found
MISSING = "missing"  # not there
CORRUPT = "corrupt"  # there, bytes hash to something else (cache, remote)
MODIFIED = "modified"  # workspace content differs from the pointer
ADDED = "added"  # workspace file inside a tracked directory that the pointer does not name
FAILED = "failed"  # could not be checked (a read error, a transfer that kept failing)

# RemoteCheck.mode
PRESENCE = "presence"
SAMPLE = "sample"
FULL = "full"


@dataclass(frozen=True, kw_only=True)
class Options:
    workspace: bool = False
    cache: bool = False
    remote: str | None = None
    rehash: bool = False
    sample: float | None = None  # percent of the bytes, (0, 100]
    full: bool = False
    seed: int | None = None
    jobs: int | None = None
    changed_since: str | None = None

    def resolved(self) -> Options:
        """No check named: workspace and cache. Bad combinations are usage errors."""
        if self.sample is not None and self.full:
            raise UsageError("--sample and --full exclude each other", "choose one")
        if (self.sample is not None or self.full) and self.remote is None:
            raise UsageError("--sample and --full download from a remote", "add --remote NAME")
        if self.sample is not None and not 0 < self.sample <= 100:
            raise UsageError(f"--sample {self.sample:g}: not a percentage in (0, 100]")
        if self.seed is not None and self.sample is None:
            raise UsageError("--seed chooses the objects of --sample", "add --sample PCT")
        workspace, cache = self.workspace, self.cache
        if not (workspace or cache or self.remote is not None):
            workspace = cache = True
        if self.rehash and not workspace:
            raise UsageError(
                "--rehash applies to the workspace check (the cache check always reads every byte)",
                "add --workspace",
            )
        return dataclasses.replace(self, workspace=workspace, cache=cache)


@dataclass
class Problem:
    path: str  # a workspace path the object stands for (at `revision`, when not None)
    hash: str | None  # expected (None for a file the pointer does not name)
    found: str  # missing | corrupt | modified | added | failed
    where: str  # workspace | cache | remote
    got: str | None = None  # the hash of what was found
    reason: str | None = None
    revision: str | None = None  # commit id, for objects of --rev/--all-commits only


@dataclass
class Check:
    objects: int = 0  # files (workspace) or objects
    bytes: int = 0
    read_bytes: int = 0  # bytes actually read and hashed
    seconds: float = 0.0
    problems: int = 0


@dataclass
class Sample:
    percent: float
    seed: int
    objects: int
    bytes: int
    of_objects: int
    of_bytes: int
    too_large: int = 0  # objects larger than the whole budget: never eligible
    too_large_bytes: int = 0


@dataclass
class RemoteCheck(Check):
    name: str = ""
    url: str = ""
    mode: str = PRESENCE
    present: int = 0
    downloaded_objects: int = 0
    sample: Sample | None = None
    warnings: list[str] = field(default_factory=list)  # about the remote (unusable indexes)


@dataclass
class VerifiedTarget:
    path: str
    pointer: str
    revision: str | None  # None: the workspace's pointer


@dataclass
class Report:
    targets: list[VerifiedTarget] = field(default_factory=list)
    workspace: Check | None = None
    cache: Check | None = None
    remote: RemoteCheck | None = None
    rehash: bool = False
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


# ---- selection ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Selected:
    target: Target
    revision: str | None  # None: the workspace's


def select(
    repo: Repo, paths: list[str], revisions: selection.Revisions, changed_since: str | None
) -> list[Selected]:
    """selection.select's targets (the workspace's, plus the revisions'), remembering where
    each came from. changed_since: only the workspace pointers whose path, kind or hash
    differ from that revision's (new ones included)."""
    if changed_since is not None and revisions.any:
        raise UsageError(
            "--changed-since selects workspace pointers; it does not combine with --rev or --all-*",
            "run verify once for each",
        )
    workspace = targets_mod.resolve(repo, paths)
    if changed_since is not None:
        if not repo.scm:
            raise UsageError("--changed-since needs a git repository")
        commit = git.rev_parse(repo.root, changed_since)
        before = {
            (t.data_rel, t.pointer.kind, t.pointer.hash)
            for t in selection.targets_at(repo, commit, [])
        }
        workspace = [
            t for t in workspace if (t.data_rel, t.pointer.kind, t.pointer.hash) not in before
        ]
    chosen = [Selected(t, None) for t in workspace]
    seen = {(t.pointer.hash, t.sub) for t in workspace}
    for commit in selection.revision_commits(repo, revisions):
        for t in selection.targets_at(repo, commit, paths):
            if (t.pointer.hash, t.sub) not in seen:
                seen.add((t.pointer.hash, t.sub))
                chosen.append(Selected(t, commit))
    return chosen


# ---- trees ------------------------------------------------------------------------------


class Trees:
    """Tree objects from the cache and, when a remote is checked, from the remote, with
    what each source held. from_remote: read every tree from the remote (checking its
    copy), not only those the cache cannot give."""

    def __init__(self, repo: Repo, store: RemoteStore | None, from_remote: bool, scratch: str):
        self.cache = repo.cache
        self.store = store
        self.from_remote = from_remote
        self.scratch = scratch
        self.trees: dict[str, Tree] = {}
        self.undecodable: dict[str, str] = {}  # hash -> why its (intact) bytes do not parse
        self.in_cache: dict[str, tuple[str, str | None]] = {}  # hash -> (ok|found, got)
        self.on_remote: dict[str, tuple[str, str | None, str | None]] = {}  # found, got, why
        self.sizes: dict[str, int] = {}  # bytes of every tree read intact
        self.cache_bytes = 0
        self.remote_bytes = 0

    def _decode(self, h: str, data: bytes) -> None:
        self.sizes[h] = len(data)
        if h in self.trees or h in self.undecodable:
            return
        try:
            self.trees[h] = tree_mod.decode(data, f"tree {h}")
        except MlvError as e:
            self.undecodable[h] = str(e)

    def load(self, hashes: list[str]) -> None:
        """Read these trees from every source that applies (each once)."""
        todo = [h for h in hashes if h not in self.in_cache]
        for h in todo:
            try:
                with open(self.cache.object_path(h), "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                self.in_cache[h] = (MISSING, None)
                continue
            except OSError as e:
                self.in_cache[h] = (FAILED, e.strerror)
                continue
            self.cache_bytes += len(data)
            actual = hashing.hash_bytes(hashing.algorithm_of(h), data)
            if actual != h:
                self.in_cache[h] = (CORRUPT, actual)
                continue
            self.in_cache[h] = ("ok", None)
            self._decode(h, data)
        if self.store is None:
            return
        remote = [
            h
            for h in hashes
            if h not in self.on_remote and (self.from_remote or h not in self.trees)
        ]
        if not remote:
            return
        outcome = self.store.check(remote, self.scratch, keep=self._decode)
        self.remote_bytes += outcome.nbytes
        for h in outcome.done:
            self.on_remote[h] = ("ok", None, None)
        for h in outcome.missing:
            self.on_remote[h] = (MISSING, None, None)
        for h in outcome.corrupt:
            self.on_remote[h] = (CORRUPT, outcome.got.get(h), None)
        for h, why in outcome.failed.items():
            self.on_remote[h] = (FAILED, None, why)

    def tree(self, h: str) -> Tree:
        if h not in self.trees:
            self.load([h])
        tree = self.trees.get(h)
        if tree is None:
            why = self.undecodable.get(h, "in neither the cache nor the remote checked")
            raise ObjectMissingError(f"tree {h} cannot be read ({why})")
        return tree


@dataclass
class Need:
    path: str
    size: int  # files; trees: 0 (unknown until read)
    tree: bool
    revision: str | None


def root_entry(target: Target) -> Entry:
    ptr = target.pointer
    name = target.data_rel.rpartition("/")[2]
    return Entry(ptr.kind, name, ptr.hash, ptr.size, ptr.files or 1)


def walk(
    selected: list[Selected], trees: Trees, progress: Progress
) -> tuple[dict[str, Need], list[tuple[str, Need]]]:
    """Every object the selection needs (hash -> where it stands), level by level, and
    (hash, need) of trees whose content could not be listed from any source."""
    needs: dict[str, Need] = {}
    frontier: dict[str, Need] = {}
    unlisted: list[tuple[str, Need]] = []
    progress.begin("reading trees", None)
    for s in selected:
        t = s.target
        entry: Entry | None = root_entry(t)
        path = t.data_rel
        for part in t.sub.split("/") if t.sub else []:
            assert entry is not None
            needs.setdefault(entry.hash, Need(path, 0, True, s.revision))
            trees.load([entry.hash])
            tree = trees.trees.get(entry.hash)
            if tree is None:
                unlisted.append((entry.hash, needs[entry.hash]))
                entry = None
                break
            entry = tree.by_name().get(part)
            path = f"{path}/{part}"
            if entry is None:
                raise UsageError(f"{rpath(t.rel)}: no such path in {rpath(t.pointer_rel)}")
        if entry is None:
            continue
        if entry.hash in needs:
            continue
        need = Need(t.rel, 0 if entry.is_dir else entry.size, entry.is_dir, s.revision)
        needs[entry.hash] = need
        if entry.is_dir:
            frontier[entry.hash] = need
    while frontier:
        trees.load(sorted(frontier))
        following: dict[str, Need] = {}
        for h, need in frontier.items():
            tree = trees.trees.get(h)
            progress.advance(1, 0)
            if tree is None:
                unlisted.append((h, need))
                continue
            for e in tree.entries:
                if e.hash in needs:
                    continue
                child = Need(
                    f"{need.path}/{e.name}", 0 if e.is_dir else e.size, e.is_dir, need.revision
                )
                needs[e.hash] = child
                if e.is_dir:
                    following[e.hash] = child
        frontier = following
    progress.end()
    return needs, unlisted


# ---- the workspace ----------------------------------------------------------------------


class _NoState(StateDB):
    """A state database that knows nothing and keeps nothing: --rehash reads every byte."""

    def folder(self, rel_dir: str) -> dict[str, tuple[int, int, int, str]]:
        return {}

    def record(
        self, rel_dir: str, name: str, st: os.stat_result, hash_id: str, written: bool = False
    ) -> None:
        pass

    def snapshot(self, rel_dir: str) -> tuple[bytes, bytes] | None:
        return None

    def record_snapshot(self, rel_dir: str, sig: bytes, max_mtime_ns: int, rows: bytes) -> None:
        pass

    def flush(self) -> None:
        pass


class _Scanner(Scanner):
    """A read-only scan that counts the bytes it hashes."""

    def __init__(self, repo: Repo, algo: str, rehash: bool, progress: Progress) -> None:
        super().__init__(repo, store=False, progress=progress, algo=algo)
        self.hashed = 0
        if rehash:
            self.state = _NoState(os.path.join(repo.tmp_dir, "unused.db"))

    def _hash_new(
        self, path: str, rel_dir: str, name: str, st: os.stat_result, is_link: bool
    ) -> str:
        self.hashed += st.st_size
        return super()._hash_new(path, rel_dir, name, st, is_link)


def check_workspace(
    repo: Repo, selected: list[Selected], trees: Trees, rehash: bool, progress: Progress
) -> tuple[Check, list[Problem]]:
    check = Check()
    problems: list[Problem] = []
    started = time.monotonic()
    progress.begin("verifying the workspace", None)
    for s in selected:
        if s.revision is not None:
            continue
        t = s.target
        expected = _expected_entry(t, trees)
        if expected is None:
            problems.append(Problem(t.rel, None, FAILED, WORKSPACE, reason=_unreachable(t)))
            continue
        check.objects += expected.files if expected.is_dir else 1
        check.bytes += expected.size
        scanner = _Scanner(repo, hashing.algorithm_of(expected.hash), rehash, progress)
        try:
            actual = scanner.scan(t.rel)
        except MlvError as e:
            problems.append(Problem(t.rel, expected.hash, FAILED, WORKSPACE, reason=e.text()))
            continue
        finally:
            check.read_bytes += scanner.hashed
        if actual is None:
            problems.append(Problem(t.rel, expected.hash, MISSING, WORKSPACE))
        elif actual.kind != expected.kind or not expected.is_dir:
            if actual.hash != expected.hash or actual.kind != expected.kind:
                got = actual.hash if not actual.is_dir else f"{actual.hash} (a directory)"
                problems.append(Problem(t.rel, expected.hash, MODIFIED, WORKSPACE, got))
        elif actual.hash != expected.hash:
            problems += _dir_changes(t.rel, expected.hash, actual.hash, scanner, trees)
    progress.end()
    check.seconds = time.monotonic() - started
    check.problems = len(problems)
    return check, problems


def _unreachable(t: Target) -> str:
    return f"the trees on the way to {rpath(t.rel)} in {rpath(t.pointer_rel)} cannot be read"


def _expected_entry(t: Target, trees: Trees) -> Entry | None:
    entry = root_entry(t)
    for part in t.sub.split("/") if t.sub else []:
        try:
            child = trees.tree(entry.hash).by_name().get(part)
        except MlvError:
            return None
        if child is None:
            raise UsageError(f"{rpath(t.rel)}: no such path in {rpath(t.pointer_rel)}")
        entry = child
    return entry


def _dir_changes(
    rel: str, expected: str, actual: str, scanner: Scanner, trees: Trees
) -> list[Problem]:
    def load(h: str) -> Tree:
        return scanner.load_tree(h) if h in scanner.trees else trees.tree(h)

    found: list[Problem] = []
    try:
        for change in treediff.diff(load, expected, actual):
            old, new = change.old, change.new
            path = f"{rel}/{change.path}"
            if old is not None and new is not None and old.kind == new.kind:
                found.append(Problem(path, old.hash, MODIFIED, WORKSPACE, new.hash))
            elif old is not None and new is None:
                if not old.is_dir or not old.files:
                    found.append(Problem(path, old.hash, MISSING, WORKSPACE))
            elif old is None and new is not None:
                if not new.is_dir or not new.files:
                    found.append(Problem(path, None, ADDED, WORKSPACE, new.hash))
            else:  # a file became a folder or the other way round
                assert old is not None and new is not None
                found.append(Problem(path, old.hash, MODIFIED, WORKSPACE, new.hash))
    except MlvError as e:
        return [
            Problem(
                rel,
                expected,
                MODIFIED,
                WORKSPACE,
                actual,
                f"which files differ is unknown: {e.message}",
            )
        ]
    return found


# ---- the cache ----------------------------------------------------------------------------


def check_cache(
    repo: Repo, needs: dict[str, Need], trees: Trees, progress: Progress
) -> tuple[Check, list[Problem]]:
    check = Check()
    problems: list[Problem] = []
    started = time.monotonic()
    cache = repo.cache
    files = sorted((n.path, h) for h, n in needs.items() if not n.tree)
    progress.begin("verifying the cache", len(files))
    for h, need in needs.items():
        if not need.tree:
            continue
        check.objects += 1
        found, got = trees.in_cache.get(h, (MISSING, None))
        if found != "ok":
            problems.append(_problem(need, h, found, CACHE, got))
    check.read_bytes += trees.cache_bytes
    check.bytes += trees.cache_bytes
    for _path, h in files:
        need = needs[h]
        check.objects += 1
        check.bytes += need.size
        try:
            actual = hash_path_mmap(hashing.algorithm_of(h), cache.object_path(h))
        except FileNotFoundError:
            problems.append(_problem(need, h, MISSING, CACHE))
            continue
        except OSError as e:
            problems.append(_problem(need, h, FAILED, CACHE, reason=e.strerror))
            continue
        finally:
            progress.advance(1, need.size)
        check.read_bytes += need.size
        if actual != h:
            problems.append(_problem(need, h, CORRUPT, CACHE, actual))
    progress.end()
    check.seconds = time.monotonic() - started
    check.problems = len(problems)
    return check, problems


def _problem(
    need: Need, h: str, found: str, where: str, got: str | None = None, reason: str | None = None
) -> Problem:
    return Problem(need.path, h, found, where, got, reason, need.revision)


# ---- the remote ---------------------------------------------------------------------------


def choose_sample(sizes: dict[str, int], budget: float, seed: int) -> list[str]:
    """A seeded random sample of at most budget bytes: the objects in a shuffled order,
    each taken when it still fits. The bytes never pass the budget (a sample is a bounded
    cost); an object larger than the whole budget can never be drawn, and the caller
    reports those (`too_large`), so that no one mistakes them for sampled."""
    order = sorted(sizes)
    random.Random(seed).shuffle(order)
    picked: list[str] = []
    used = 0
    for h in order:
        if used + sizes[h] <= budget:
            picked.append(h)
            used += sizes[h]
    return sorted(picked)


def check_remote(
    store: RemoteStore,
    needs: dict[str, Need],
    trees: Trees,
    opts: Options,
    scratch: str,
    progress: Progress,
) -> tuple[RemoteCheck, list[Problem]]:
    mode = FULL if opts.full else SAMPLE if opts.sample is not None else PRESENCE
    check = RemoteCheck(name=store.name, url=store.url, mode=mode)
    problems: list[Problem] = []
    started = time.monotonic()
    check.objects = len(needs)
    # Trees read from the remote: their presence and bytes are known already.
    for h, (found, got, why) in trees.on_remote.items():
        if h in needs and found != "ok":
            problems.append(_problem(needs[h], h, found, REMOTE, got, why))
    read = {h for h in trees.on_remote if h in needs}
    check.downloaded_objects += len(read)
    check.read_bytes += trees.remote_bytes
    asked = [h for h in needs if h not in read]
    # Packed objects count when their pack is listed with the size their index records.
    present = store.prove(asked)
    check.present = len(present) + sum(1 for h in read if trees.on_remote[h][0] in ("ok", CORRUPT))
    for h in sorted(set(asked) - present, key=lambda x: needs[x].path):
        problems.append(_problem(needs[h], h, MISSING, REMOTE))
    files = {h: needs[h].size for h in present if not needs[h].tree}
    cached_trees = {h: trees.sizes[h] for h in present if needs[h].tree and h in trees.sizes}
    check.bytes = sum(files.values()) + sum(cached_trees.values()) + trees.remote_bytes
    if mode != PRESENCE:
        if mode == FULL:
            chosen = sorted(files)  # every tree was read from the remote already
        else:
            # Trees read to list the directories (the cache lacked them) count against
            # the budget; the rest is a sample of files and of trees the cache gave.
            assert opts.sample is not None
            seed = opts.seed if opts.seed is not None else secrets.randbelow(1 << 31)
            pool = files | cached_trees
            budget = check.bytes * opts.sample / 100 - trees.remote_bytes
            chosen = choose_sample(pool, budget, seed)
            check.sample = Sample(
                opts.sample,
                seed,
                len(chosen),
                sum(pool[h] for h in chosen),
                len(pool),
                sum(pool.values()),
                sum(1 for v in pool.values() if v > budget),
                sum(v for v in pool.values() if v > budget),
            )
        sizes = {h: files.get(h, 0) for h in chosen}
        progress.begin(f"downloading from {store.name} to check", len(chosen))

        def done(nbytes: int) -> None:
            progress.advance(1, nbytes)

        outcome = store.check(chosen, scratch, sizes, done)
        progress.end()
        check.downloaded_objects += len(chosen)
        check.read_bytes += outcome.nbytes
        for h in outcome.corrupt:
            problems.append(_problem(needs[h], h, CORRUPT, REMOTE, outcome.got.get(h)))
        for h in outcome.missing:  # listed a moment ago, gone now
            problems.append(_problem(needs[h], h, MISSING, REMOTE))
        for h, why in outcome.failed.items():
            problems.append(_problem(needs[h], h, FAILED, REMOTE, reason=why))
    check.seconds = time.monotonic() - started
    check.problems = len(problems)
    return check, problems


# ---- the entry point ----------------------------------------------------------------------


def verify(
    repo: Repo,
    paths: list[str],
    revisions: selection.Revisions,
    options: Options,
    progress: Progress | None = None,
) -> Report:
    from mlv.core import remotes

    progress = progress or NullProgress()
    opts = options.resolved()
    started = time.monotonic()
    report = Report(rehash=opts.rehash)
    selected = select(repo, paths, revisions, opts.changed_since)
    report.targets = [
        VerifiedTarget(s.target.rel, s.target.pointer_rel, s.revision) for s in selected
    ]
    store = None
    scratch = ""
    if opts.remote is not None:
        store = remotes.open_remote(repo, opts.remote or None, opts.jobs)  # "": the default
        scratch = tempfile.mkdtemp(prefix="verify-", dir=_scratch_root(repo))
    try:
        trees = Trees(repo, store, store is not None and opts.full, scratch)
        if opts.workspace:
            report.workspace, found = check_workspace(repo, selected, trees, opts.rehash, progress)
            report.problems += found
        if opts.cache or store is not None:
            walk_started = time.monotonic()
            needs, unlisted = walk(selected, trees, progress)
            walked = time.monotonic() - walk_started
            if opts.cache:
                report.cache, found = check_cache(repo, needs, trees, progress)
                report.problems += found
            if store is not None:
                report.remote, found = check_remote(store, needs, trees, opts, scratch, progress)
                report.remote.seconds += walked
                report.remote.warnings = list(store.warnings)
                report.problems += found
            elif report.cache is not None:
                report.cache.seconds += walked
            _explain_unlisted(report, unlisted, trees, CACHE if opts.cache else REMOTE)
    finally:
        if store is not None:
            shutil.rmtree(scratch, ignore_errors=True)
            store.close()
        repo.state.flush()
    report.seconds = time.monotonic() - started
    return report


def _scratch_root(repo: Repo) -> str:
    os.makedirs(repo.tmp_dir, exist_ok=True)
    return repo.tmp_dir


def _explain_unlisted(
    report: Report, unlisted: list[tuple[str, Need]], trees: Trees, where: str
) -> None:
    """A tree no source could give: what it names was not checked. Say so on its problems,
    and make one for a tree whose intact bytes do not parse (a newer tree format)."""
    note = "what it names could not be listed, so was not checked"
    explained: set[str] = set()
    hashes = {h for h, _ in unlisted}
    for p in report.problems:
        if p.where != WORKSPACE and p.hash in hashes:
            p.reason = f"{p.reason}; {note}" if p.reason else note
            explained.add(p.hash)
    for h, need in unlisted:
        if h not in explained:
            why = trees.undecodable.get(h, "cannot be read")
            report.problems.append(_problem(need, h, FAILED, where, reason=f"{why}; {note}"))
