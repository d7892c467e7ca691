"""`mlv repro`: run the stages whose inputs or outputs changed since mlv.lock, in order.

For each selected stage, in dependency order, the stage's command, the hashes of its deps,
its param values and the hashes of its outs are compared with what mlv.lock recorded. A
stage with no difference is up to date. Any other stage is restored from the run cache when
exactly these inputs were run before and every object of that run is in the cache, else its
commands run (in wdir, by /bin/sh, output streamed). Its outs then go into the cache, the
run cache records the run, and mlv.lock is rewritten with that stage: a stage that fails
leaves the lock of the stages before it written and its own entry untouched.

Outputs are deleted before their stage runs (unless `persist`), as DVC does, so a stage
never sees stale results; a version the cache does not hold yet is first saved in the cache,
so no content is ever lost. Each dep path is hashed once per run (the state database makes
that a stat per file), which keeps a run with nothing to do about as fast as `mlv status`.

With -j N (run_parallel) up to N stages' commands run at once, from worker threads; all
the rest (deciding, restoring, saving, mlv.lock) stays in the calling thread, as above.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from mlv import git
from mlv.core import add, checkout, gitignore, targets
from mlv.core.lock import RepoLock
from mlv.core.pipeline import dag, lockfile, metrics, params, runcache, shell, spec, stage_env
from mlv.core.pipeline.lockfile import Lock, LockedStage, Recorded
from mlv.core.pipeline.spec import LOCK_FILE, Stage
from mlv.core.repo import Repo
from mlv.core.status import tree_complete
from mlv.core.workspace import Scanner
from mlv.errors import LockedError, MlvError, PipelineError, rpath
from mlv.objects import hashing, treediff
from mlv.objects.pointer import Pointer
from mlv.objects.tree import DIR, FILE, Entry

UP_TO_DATE = "up to date"
RAN = "ran"
RESTORED = "restored"
UPDATED = "updated"  # outputs already as wanted (only their cache flag changed): lock rewritten
WOULD_RUN = "would run"
WOULD_RESTORE = "would restore"
WOULD_UPDATE = "would update"
FAILED = "failed"
SKIPPED = "skipped"  # a stage it needs failed
NOT_RUN = "not run"  # an earlier stage failed and --keep-going was not given

# The pipeline's files as messages name them (shown from the current folder, see rpath)
_LOCK = rpath(LOCK_FILE)
_SPEC = rpath(spec.PIPELINE_FILE)


class Events(Protocol):
    """What the CLI shows while stages run (the core prints nothing)."""

    def up_to_date(self, name: str) -> None: ...
    def starting(self, name: str, reasons: list[str]) -> None: ...
    def command(self, name: str, cmd: str) -> None: ...
    def restored(self, name: str, reasons: list[str], run_cache: bool) -> None: ...
    def updated(self, name: str, reasons: list[str]) -> None: ...
    def would_run(self, name: str, reasons: list[str], cmds: tuple[str, ...]) -> None: ...
    def would_restore(self, name: str, reasons: list[str], run_cache: bool) -> None: ...
    def would_update(self, name: str, reasons: list[str]) -> None: ...
    def note(self, line: str) -> None: ...
    def recorded_data(self, path: str, pointer: str, dry: bool) -> None: ...
    def frozen(self, name: str) -> None: ...
    def output(self, name: str, line: bytes, err: bool) -> None:
        """A line a command wrote, with -j N (else its output goes straight through)."""


@dataclass
class StageResult:
    name: str
    status: str
    reasons: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class Launch:
    """A stage whose commands are to run: what finish() records once they did."""

    name: str
    stage: Stage
    deps: list[Recorded]
    values: dict[str, dict[str, Any]]
    reasons: list[str]
    key: str  # its run-cache key


@dataclass
class ReproResult:
    stages: list[StageResult] = field(default_factory=list)
    lock_written: bool = False  # mlv.lock's bytes differ from what they were before the run
    lock_as_committed: bool = False  # ... and are now those of the commit checked out

    @property
    def ok(self) -> bool:
        return not any(s.status in (FAILED, SKIPPED, NOT_RUN) for s in self.stages)

    def count(self, status: str) -> int:
        return sum(1 for s in self.stages if s.status == status)


@dataclass(frozen=True, kw_only=True)
class Options:
    force: bool = False
    dry: bool = False
    keep_going: bool = False
    downstream: bool = False
    run_cache: bool = True
    single: bool = False  # only the named stages, not those they need
    jobs: int = 1  # stages whose commands may run at once


def load_graph(
    repo: Repo, tracked: list[tuple[str, str]] | None = None, gated: bool = True
) -> dag.Graph:
    """The checked graph of the workspace's mlv.yaml (an error when it has no stages);
    tracked: tracked_paths(repo), when the caller has it. gated: see spec.load (False
    only where stages run, or are recorded as run)."""
    pipeline = spec.load(repo.root, gated)
    if not pipeline.stages:
        raise PipelineError(f"no stages in {_SPEC}", "add one with `mlv stage add NAME -- CMD`")
    return dag.build(pipeline, tracked_paths(repo) if tracked is None else tracked)


def check_outs_inside(root: str, stage: Stage) -> None:
    """Refuse an out (or metric) whose folder is, or lies below, a symbolic link: mlv
    would delete, write and list in .gitignore what lies there, which may be outside the
    repository (paths in mlv.yaml cannot name `..`, so with no link on the way an out is
    inside). The out itself may be a link: mlv replaces the link, never what it points to."""
    for path in stage.out_paths:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            folder = "/".join(parts[:i])
            if os.path.islink(os.path.join(root, folder)):
                raise PipelineError(
                    f"stage '{stage.name}': output {rpath(path)} lies below {rpath(folder)}, "
                    "a symbolic link, so it could be written outside the repository",
                    f"make {rpath(folder)} a real folder, or give the stage an output path "
                    "without links",
                )


def tracked_paths(repo: Repo) -> list[tuple[str, str]]:
    """(data path, pointer file) of every readable pointer file."""
    tracked = []
    for pointer_rel in targets.pointer_files(repo):
        try:
            t = targets.load_target(repo, pointer_rel)
        except MlvError:
            continue  # a broken pointer is status's to report, not the pipeline's
        tracked.append((t.data_rel, t.pointer_rel))
    return tracked


def repro(repo: Repo, names: list[str], options: Options, events: Events) -> ReproResult:
    running = os.environ.get("MLV_STAGE")
    if running:
        raise PipelineError(
            f"mlv repro cannot run inside stage '{running}' of a pipeline",
            "a stage's command must not run the pipeline; remove `mlv repro` from it",
        )
    # one repro at a time: the repository lock is let go while commands run, this one not
    with RepoLock(os.path.join(repo.tmp_dir, "repro.lock"), repo.lock_wait):
        return _repro(repo, names, options, events)


def _repro(repo: Repo, names: list[str], options: Options, events: Events) -> ReproResult:
    tracked = tracked_paths(repo)
    graph = load_graph(repo, tracked, gated=options.dry)  # --dry only prints
    if options.single and names:
        wanted = set(graph.pipeline.expand_names(names))  # a group: each stage it made
        chosen = [n for n in graph.order if n in wanted]
    else:
        chosen = graph.select(names, options.downstream)
    result = ReproResult()
    repo_lock = repo.lock()
    repo_lock.acquire()
    runner: _Runner | None = None
    try:
        lock = lockfile.load(repo.root)  # read under the lock: another mlv may have written it
        start = lockfile.read_bytes(repo.root)
        runner = _Runner(repo, graph, lock, options, events, repo_lock)
        if not options.dry:
            runner.drop_removed_stages()
        runner.record_tracked_inputs(chosen, tracked)
        if options.jobs > 1 and not options.dry:
            result.stages = runner.run_parallel(chosen)
        else:
            result.stages = _run_in_order(runner, graph, chosen, options)
        runner.warn_ignored(chosen)
        result.lock_written = runner.lock_written and runner.lock_bytes != start
        if result.lock_written and repo.scm:
            head = git.read_blobs(repo.root, [f"HEAD:{LOCK_FILE}"]).get(f"HEAD:{LOCK_FILE}")
            result.lock_as_committed = head == runner.lock_bytes
    finally:
        try:
            if runner is not None:
                runner.stage_files()
        finally:  # a failed `git add` must not keep the repository locked
            repo_lock.release()
    return result


def commit_stages(repo: Repo, wanted: list[str] | None) -> list[add.Tracked]:
    """`mlv commit` for stage outputs, as DVC's `dvc commit`: each stage of wanted (None:
    every stage in mlv.lock with an output that differs from it) is recorded in mlv.lock
    as it is now, deps, params and outs, its outs stored in the cache, without running it.
    For an output edited by hand that is to be kept. The caller holds the repository lock.
    Returns the stage outputs whose recorded hash changed (as `mlv commit` shows them)."""
    graph = load_graph(repo, gated=False)  # records the stages as a run would
    lock = lockfile.load(repo.root)
    for name in wanted or []:
        if name not in graph.pipeline.stages:  # mlv.lock names it, mlv.yaml no longer does
            raise PipelineError(
                f"stage '{name}' is in {_LOCK} but no longer in {_SPEC}",
                "run `mlv repro` to drop it from mlv.lock",
            )
    runner = _Runner(repo, graph, lock, Options(), _Silent(), None)
    results: list[add.Tracked] = []
    try:
        for name in graph.order:
            if wanted is not None and name not in wanted:
                continue
            stage = graph.stage(name)
            if stage_running(repo.root, name):  # its outputs are being written right now
                if wanted is None:
                    continue  # the mlv repro running it records them when it ends
                raise PipelineError(
                    f"stage '{name}' is running in mlv repro: its outputs are not finished",
                    "wait for that mlv repro to end; it records them in mlv.lock",
                )
            locked = lock.stages.get(name)
            now = runner._outs(stage.out_paths)
            missing = [p for p, r in now.items() if r is None]
            cached = {o.path for o in stage.outs if o.cache}
            lacking = set()  # outputs whose objects the cache lacks: stored, as commit does
            for path in cached:
                entry = runner._hash(path)
                if entry is not None and not runner._complete(entry):
                    lacking.add(path)
            if wanted is None:
                before = {r.path: r.hash for r in locked.outs + locked.metrics} if locked else {}
                edited = [p for p, r in now.items() if r is not None and before.get(p) != r.hash]
                if locked is None or missing or not (edited or lacking):
                    continue
            if missing:
                raise PipelineError(
                    f"stage '{name}': output {rpath(missing[0])} is missing, so there is nothing "
                    "to record",
                    f"run `mlv repro {name}` to make it",
                )
            check_outs_inside(repo.root, stage)
            runner._refuse_git_tracked(name, stage)
            deps, missing = runner._deps(stage)
            if missing:
                raise PipelineError(
                    f"stage '{name}': dependency {rpath(missing[0])} does not exist",
                    _missing_hint(repo, missing[0]),
                )
            values = runner._params(stage)
            before = {r.path: r.hash for r in locked.outs} if locked else {}
            outs, _ = runner._save_outs(stage)
            runner._record(name, stage, deps, values)
            for rec in outs:
                if rec.path in cached:
                    results.append(
                        add.Tracked(
                            rec.path,
                            LOCK_FILE,
                            rec.kind,
                            rec.hash,
                            rec.size,
                            rec.files,
                            before.get(rec.path) != rec.hash,
                            before.get(rec.path) == rec.hash and rec.path in lacking,
                        )
                    )
    finally:
        runner.stage_files()
    return results


class _Silent:
    """Events for commit_stages, which runs nothing and shows nothing on its own."""

    def up_to_date(self, name: str) -> None: ...
    def starting(self, name: str, reasons: list[str]) -> None: ...
    def command(self, name: str, cmd: str) -> None: ...
    def restored(self, name: str, reasons: list[str], run_cache: bool) -> None: ...
    def updated(self, name: str, reasons: list[str]) -> None: ...
    def would_run(self, name: str, reasons: list[str], cmds: tuple[str, ...]) -> None: ...
    def would_restore(self, name: str, reasons: list[str], run_cache: bool) -> None: ...
    def would_update(self, name: str, reasons: list[str]) -> None: ...
    def note(self, line: str) -> None: ...
    def recorded_data(self, path: str, pointer: str, dry: bool) -> None: ...
    def frozen(self, name: str) -> None: ...
    def output(self, name: str, line: bytes, err: bool) -> None: ...


def _run_in_order(
    runner: _Runner, graph: dag.Graph, chosen: list[str], options: Options
) -> list[StageResult]:
    """One stage after another, in the graph's order (also --dry, whatever -j says)."""
    results: list[StageResult] = []
    failed: set[str] = set()
    pending: set[str] = set()  # would run (dry): what needs them would run too
    stop = False
    for name in chosen:
        if stop:
            results.append(StageResult(name, NOT_RUN))
            continue
        upstream = graph.upstream_of(name) if failed else set()
        if upstream & failed:
            bad = sorted(upstream & failed)[0]
            results.append(StageResult(name, SKIPPED, error=f"stage '{bad}' it needs failed"))
            failed.add(name)
            continue
        waiting = [p for p in graph.parents[name] if p in pending]
        outcome = runner.stage(name, waiting)
        results.append(outcome)
        if outcome.status == WOULD_RUN:
            pending.add(name)
        elif outcome.status == FAILED:
            failed.add(name)
            stop = not options.keep_going
    return results


class _Runner:
    def __init__(
        self,
        repo: Repo,
        graph: dag.Graph,
        lock: Lock,
        options: Options,
        events: Events,
        repo_lock: RepoLock | None,
    ) -> None:
        self.repo = repo
        self.graph = graph
        self.lock = lock
        self.lock_bytes = lockfile.read_bytes(repo.root)  # mlv.lock as self.lock knows it
        self.base = dict(lock.stages)  # the stages of mlv.lock as last read or written
        self.options = options
        self.events = events
        self.repo_lock = repo_lock
        self.algo = repo.config.hash
        self.scanner = Scanner(repo, store=False, algo=self.algo)
        self.seen: dict[str, Entry | None] = {}  # path -> as hashed in this run
        self.param_files: dict[str, dict[str, Any] | None] = {}  # parsed once (None: absent)
        self.lock_written = False
        self.to_stage: set[str] = set()  # files mlv wrote for git: staged once, at the end
        # .gitignore files of the cached outs of the stages looked at: staged with them,
        # changed or not (a run killed before its `git add` left them unstaged)
        self.managed: set[str] = set()
        self._git_tracked: set[str] | None = None
        self._leftovers: dict[str, str] | None = None  # see leftovers()
        self.renderer = lockfile.Renderer()
        # objects of outputs git tracks are kept for the run cache as plain copies
        self.copy_cache = replace(repo.cache, link_types=("copy",))

    def drop_removed_stages(self) -> None:
        """Entries of stages no longer in mlv.yaml leave mlv.lock (their outputs stop being
        tracked data), whether or not anything else runs."""
        gone = [n for n in self.lock.stages if n not in self.graph.pipeline.stages]
        if gone:
            for name in gone:
                del self.lock.stages[name]
            self._write_lock()
            self.events.note(f"dropped stage(s) {', '.join(gone)} from {_LOCK}")

    def record_tracked_inputs(self, chosen: list[str], tracked: list[tuple[str, str]]) -> None:
        """Data that a pointer file tracks and a chosen stage reads, changed in the
        workspace since its pointer: recorded in the pointer (and staged) as `mlv commit`
        would, before any stage runs, so that the pointer and mlv.lock, which records what
        the stage read, never disagree (DVC updates the .dvc file too)."""
        inputs = [
            path
            for name in chosen
            if not self.graph.stage(name).frozen
            for path in self._inputs(self.graph.stage(name))
        ]
        if not inputs or not tracked:
            return
        read = dag.overlaps_any(inputs)
        for data_rel, pointer_rel in tracked:
            if not read(data_rel):
                continue
            try:
                target = targets.load_target(self.repo, pointer_rel)
            except MlvError:
                continue  # a broken pointer is status's to report
            ptr = target.pointer
            if hashing.algorithm_of(ptr.hash) == self.algo:
                entry = self._hash(data_rel)
            else:
                algo = hashing.algorithm_of(ptr.hash)
                entry = Scanner(self.repo, store=False, algo=algo).scan(data_rel)
            if entry is None or (entry.hash == ptr.hash and entry.kind == ptr.kind):
                continue  # missing: the stage that reads it says what to do
            if self.repo.cache.has(entry.hash) and (
                self._as_committed(pointer_rel) or self._lock_read_other(data_rel, ptr.hash)
            ):
                # a version mlv had, under a pointer git checked out (a pull, a checkout of
                # a branch) or that mlv.lock's last run did not read (`git checkout OLD --
                # PTR`): the pointer moved, the data did not follow
                data, pointer = rpath(data_rel), rpath(pointer_rel)
                raise PipelineError(
                    f"{data} holds another version than {pointer} records, one the cache "
                    "has (the pointer changed, by git pull or git checkout, and the data "
                    "did not follow): mlv repro does not record it over the pointer",
                    f"run `mlv checkout {data}` (or `mlv pull {data}`) to get the recorded "
                    f"version, or `mlv commit {data}` to keep the workspace's, then run "
                    "mlv repro again",
                )
            if not self.options.dry:
                add.record(self.repo, target)
            self.events.recorded_data(data_rel, pointer_rel, self.options.dry)

    def warn_ignored(self, chosen: list[str]) -> None:
        """Metrics and params files are committed by git, not cached: say so when git
        ignores one, with the way out (metrics.ignored_notes)."""
        stages = [self.graph.stage(name) for name in chosen]
        for line in metrics.ignored_notes(self.repo, stages):
            self.events.note(line)

    def _lock_read_other(self, rel: str, hash_id: str) -> bool:
        """mlv.lock records a stage that read rel with another hash than hash_id."""
        return any(
            d.path == rel and d.hash != hash_id
            for locked in self.lock.stages.values()
            for d in locked.deps
        )

    def _as_committed(self, rel: str) -> bool:
        """The file at rel holds what HEAD's commit holds (git wrote it: a pull, a checkout,
        a merge), not an edit of mlv's or the user's made since."""
        if not self.repo.scm or any(c in rel for c in "\n\r\0"):  # git's batch: a name a line
            return False
        try:
            with open(self.repo.abs(rel), "rb") as f:
                now = f.read(1 << 20)
            spec_str = f"HEAD:{rel}"
            return git.read_blobs(self.repo.root, [spec_str]).get(spec_str) == now
        except (OSError, MlvError):
            return False

    @staticmethod
    def _inputs(stage: Stage) -> list[str]:
        return list(stage.deps) + [p.file for p in stage.params]

    # ---- looking ------------------------------------------------------------------------

    def _hash(self, rel: str) -> Entry | None:
        if rel not in self.seen:
            self.seen[rel] = self.scanner.scan(rel)
        return self.seen[rel]

    def _forget(self, stage: Stage) -> None:
        """Drop what this run knows of paths the stage writes (or may have written)."""
        written = dag.overlaps_any(stage.out_paths)
        for path in [p for p in self.seen if written(p)]:
            del self.seen[path]
        for file in [f for f in self.param_files if written(f)]:
            del self.param_files[file]

    def _deps(self, stage: Stage) -> tuple[list[Recorded], list[str]]:
        """The deps as they are now, and the missing ones."""
        found, missing = [], []
        for path in stage.deps:
            entry = self._hash(path)
            if entry is None:
                missing.append(path)
            else:
                found.append(_recorded(path, entry))
        return found, missing

    def _params(self, stage: Stage) -> dict[str, dict[str, Any]]:
        values: dict[str, dict[str, Any]] = {}
        for ref in stage.params:
            if ref.file not in self.param_files:
                self.param_files[ref.file] = params.read_file(self.repo.root, ref.file)
            values.setdefault(ref.file, {}).update(
                params.values_in(self.param_files[ref.file], ref)
            )
        return values

    def _outs(self, paths: tuple[str, ...]) -> dict[str, Recorded | None]:
        found: dict[str, Recorded | None] = {}
        for path in paths:
            entry = self._hash(path)
            found[path] = None if entry is None else _recorded(path, entry)
        return found

    # ---- deciding -----------------------------------------------------------------------

    def stage(self, name: str, waiting: list[str]) -> StageResult:
        """Bring one stage up to date, its commands run here (one stage at a time)."""
        begun = self.begin(name, waiting)
        if isinstance(begun, StageResult):
            return begun
        try:
            self._run_commands(begun.stage)
        except MlvError as e:
            return self.failed(begun, e)
        except BaseException:  # interrupted: what the command left is its own, too
            self._note_leftovers(begun.stage)
            raise
        return self.finish(begun)

    def begin(self, name: str, waiting: list[str]) -> StageResult | Launch:
        """Decide about a stage and do what needs no command (up to date, restored, or
        refused); else clear its outputs and return what to run, for finish() after."""
        stage = self.graph.stage(name)
        try:
            check_outs_inside(self.repo.root, stage)
            self.managed.update(gitignore.file_of(o.path) for o in stage.outs if o.cache)
            if stage.frozen:
                return self._frozen(name, stage)
            deps, missing = self._deps(stage)
            if missing and not waiting:
                raise PipelineError(
                    f"stage '{name}': dependency {rpath(missing[0])} does not exist",
                    _missing_hint(self.repo, missing[0]),
                )
            values = self._params(stage)
            reasons = self._reasons(name, stage, deps, values, waiting)
            if stage.always_changed:
                reasons = ["always changed", *reasons]
            if self.options.force:
                reasons = ["forced", *reasons]
            if not reasons:
                self.events.up_to_date(name)
                return StageResult(name, UP_TO_DATE)
            if self.options.dry:
                return self._predict(name, stage, deps, values, reasons, waiting)
            return self._bring_up_to_date(name, stage, deps, values, reasons)
        except MlvError as e:
            return StageResult(name, FAILED, error=e.text())

    def _frozen(self, name: str, stage: Stage) -> StageResult:
        """A frozen stage never runs (DVC's `frozen: true`): its deps and params are not
        compared, its outputs are checked against its mlv.lock entry and, when they differ,
        restored from the cache as that entry records them."""
        locked = self.lock.stages.get(name)
        if locked is None:
            raise PipelineError(
                f"stage '{name}' is frozen but has never run (it is not in {_LOCK})",
                f"remove `frozen: true` from stage '{name}' in {_SPEC}, then "
                f"run `mlv repro {name}`",
            )
        recorded = [(r.path, _entry(r)) for r in locked.outs + locked.metrics]
        other = sorted({p for p, _ in recorded} ^ set(stage.out_paths))
        if other:  # only the outs of mlv.yaml are checked inside the repository
            raise PipelineError(
                f"stage '{name}' is frozen and {_LOCK} records other outputs for it than "
                f"{_SPEC} gives it ({rpath(other[0])})",
                f"remove `frozen: true` from stage '{name}' in {_SPEC}, then "
                f"run `mlv repro {name}`",
            )
        now = {p: self._hash(p) for p, _ in recorded}
        differ = [p for p, e in recorded if (now[p] or e).hash != e.hash or now[p] is None]
        if not differ:
            self.events.frozen(name)
            return StageResult(name, UP_TO_DATE)
        todo = self._missing_from_recorded(recorded)
        if todo is None:
            raise PipelineError(
                f"stage '{name}' is frozen, so mlv repro does not run it, and its output "
                f"{rpath(differ[0])} differs from {_LOCK} while the cache lacks the "
                "recorded version",
                f"run `mlv pull {rpath(differ[0])}` to fetch it from the remote, or remove "
                f"`frozen: true` from stage '{name}' in {_SPEC} to run it",
            )
        reasons = [f"out {rpath(p)} {'missing' if now[p] is None else 'changed'}" for p in todo]
        self._refuse_unknown(stage, self._unknown_outs(stage, list(todo)))
        if self.options.dry:
            self.seen.update(todo)
            self.events.would_restore(name, ["frozen", *reasons], False)
            return StageResult(name, WOULD_RESTORE, reasons)
        self._restore(stage, todo)
        self.events.restored(name, ["frozen", *reasons], False)
        return StageResult(name, RESTORED, reasons)

    def _predict(
        self,
        name: str,
        stage: Stage,
        deps: list[Recorded],
        values: dict[str, dict[str, Any]],
        reasons: list[str],
        waiting: list[str],
    ) -> StageResult:
        """--dry: what _bring_up_to_date would do, refusals included, doing nothing."""
        source = None
        if not waiting:  # else the inputs it would see are not known yet
            source = self._restorable(name, stage, deps, values, self._key(stage, deps, values))
        # restoring or running, the outs that change are cleared first: the same refusal
        self._refuse_unknown(stage, self._unknown_outs(stage))
        if source is not None:  # what depends on it sees the restored outs
            todo, from_run_cache = source
            self._cache_flags_changeable(name, stage)
            self.seen.update(todo)
            if not todo:
                self.events.would_update(name, reasons)
                return StageResult(name, WOULD_UPDATE, reasons)
            self.events.would_restore(name, reasons, from_run_cache)
            return StageResult(name, WOULD_RESTORE, reasons)
        self._refuse_git_tracked(name, stage)
        self.events.would_run(name, reasons, stage.cmd)
        return StageResult(name, WOULD_RUN, reasons)

    def _reasons(
        self,
        name: str,
        stage: Stage,
        deps: list[Recorded],
        values: dict[str, dict[str, Any]],
        waiting: list[str],
    ) -> list[str]:
        reasons = [f"stage '{w}' would run first" for w in waiting]
        locked = self.lock.stages.get(name)
        if locked is None:
            return [*reasons, f"not in {_LOCK} yet"]
        if locked.cmd != stage.command:
            reasons.append("cmd changed")
        before = {d.path: d.hash for d in locked.deps}
        now = {d.path: d.hash for d in deps}
        for path in stage.deps:
            if path not in before:
                reasons.append(f"dep {rpath(path)} added")
            elif path in now and now[path] != before[path]:
                reasons.append(f"dep {rpath(path)} changed")
        reasons += [f"dep {rpath(p)} removed" for p in before if p not in stage.deps]
        for file in sorted(set(values) | set(locked.params)):
            old, new = locked.params.get(file, {}), values.get(file, {})
            for key in sorted(set(old) | set(new)):
                if key not in new:
                    reasons.append(f"param {key} removed")
                elif key not in old:
                    reasons.append(f"param {key} added")
                elif not params.same(old[key], new[key]):
                    reasons += [
                        f"param {k} changed" for k in _changed_keys(key, old[key], new[key])
                    ]
        recorded = {r.path: r for r in locked.outs + locked.metrics}
        for path, rec in self._outs(stage.out_paths).items():
            if path not in recorded:
                reasons.append(f"out {rpath(path)} added")
            elif rec is None:
                reasons.append(f"out {rpath(path)} missing")
            elif rec.hash != recorded[path].hash:
                reasons.append(f"out {rpath(path)} changed")
        for out in stage.outs:
            if out.path in recorded and recorded[out.path].cache != out.cache:
                reasons.append(f"out {rpath(out.path)} cache changed")
        reasons += [f"out {rpath(p)} removed" for p in recorded if p not in stage.out_paths]
        return reasons

    # ---- acting -------------------------------------------------------------------------

    def _bring_up_to_date(
        self,
        name: str,
        stage: Stage,
        deps: list[Recorded],
        values: dict[str, dict[str, Any]],
        reasons: list[str],
    ) -> StageResult | Launch:
        key = self._key(stage, deps, values)
        source = self._restorable(name, stage, deps, values, key)
        if source is not None:
            todo, from_run_cache = source
            self._cache_flags_changeable(name, stage)
            self._restore(stage, todo)
            self._apply_cache_flags(stage)
            self._record(name, stage, deps, values)
            if not todo:
                self.events.updated(name, reasons)
                return StageResult(name, UPDATED, reasons)
            self.events.restored(name, reasons, from_run_cache)
            return StageResult(name, RESTORED, reasons)
        self._refuse_git_tracked(name, stage)
        self.events.starting(name, reasons)
        self._clear_outs(stage)
        self._unprotect_persisted(stage)
        return Launch(name, stage, deps, values, reasons, key)

    def finish(self, launch: Launch) -> StageResult:
        """After a stage's commands succeeded: its outs into the cache and mlv.lock."""
        name, stage = launch.name, launch.stage
        try:
            self._forget(stage)
            check_outs_inside(self.repo.root, stage)  # the command may have made a link
            for path in stage.out_paths:
                if self._hash(path) is None:
                    raise PipelineError(
                        f"stage '{name}' did not produce its output {rpath(path)}",
                        f"make its command write {rpath(path)}, or remove it from the stage's outs",
                    )
            outs, metrics = self._save_outs(stage)
            if not (any(o.persist for o in stage.outs) or stage.always_changed):
                runcache.write(
                    self.repo.cache,
                    launch.key,
                    [r.to_dict() for r in outs],
                    [r.to_dict() for r in metrics],
                )
            self._record(name, stage, launch.deps, launch.values)
        except MlvError as e:  # e.g. an out not produced: the others are its leftovers
            self._note_leftovers(stage)
            return StageResult(name, FAILED, error=e.text())
        return StageResult(name, RAN, launch.reasons)

    def failed(self, launch: Launch, error: MlvError) -> StageResult:
        """After a stage's command failed: what it wrote is not known any more."""
        self._note_leftovers(launch.stage)
        return StageResult(launch.name, FAILED, error=error.text())

    # ---- what failed or interrupted commands left -----------------------------------------

    def _leftovers_path(self) -> str:
        return os.path.join(self.repo.tmp_dir, "repro-leftovers.json")

    def leftovers(self) -> dict[str, str]:
        """out path -> fingerprint (_fingerprint) of what a failed or interrupted command of
        its stage left there (mlv had cleared the out before it ran): the next run clears it
        without asking, as it is no one's work. A path changed since (an edit) is asked
        about as before. Stats, not hashes: noted at once after a Ctrl-C, whatever the size."""
        if self._leftovers is None:
            self._leftovers = {}
            try:
                with open(self._leftovers_path(), "rb") as f:
                    doc = json.loads(f.read(1 << 20))
                found = doc.get("outs") if isinstance(doc, dict) else None
                if isinstance(found, dict):
                    self._leftovers = {
                        k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, str)
                    }
            except (OSError, ValueError):
                pass
        return self._leftovers

    def _note_leftovers(self, stage: Stage) -> None:
        """Remember what the stage's command left in its (cleared) outs; see leftovers()."""
        self._forget(stage)
        left = self.leftovers()
        before = dict(left)
        for path in self._to_clear(stage):
            mark = _fingerprint(self.repo.abs(path))
            if mark is None:
                left.pop(path, None)
            else:
                left[path] = mark
        if left != before:
            self._write_leftovers()

    def _left_over(self, path: str) -> bool:
        mark = self.leftovers().get(path)
        return mark is not None and mark == _fingerprint(self.repo.abs(path))

    def _write_leftovers(self) -> None:
        from mlv.util import localfs

        data = json.dumps({"version": 1, "outs": self.leftovers()}, sort_keys=True)
        try:
            os.makedirs(self.repo.tmp_dir, exist_ok=True)
            localfs.write_bytes_atomic(self._leftovers_path(), data.encode())
        except OSError:
            pass  # only a convenience: the next run then asks about them, as before

    def _refuse_git_tracked(self, name: str, stage: Stage, paths: list[str] | None = None) -> None:
        """A cached out (of paths, default all) that git tracks is refused: git would keep
        tracking what .gitignore then lists."""
        cached = [o.path for o in stage.outs if o.cache and (paths is None or o.path in paths)]
        in_git = [p for p in cached if p in self._outs_git_tracks()]
        if in_git:
            raise PipelineError(
                f"stage '{name}': output {rpath(in_git[0])} is tracked by git",
                f"run `git rm -r --cached '{rpath(in_git[0])}'` to hand it to mlv, "
                "or mark it `cache: false`",
            )

    def _flag_changes(self, stage: Stage) -> list[str]:
        """The outs whose `cache` flag differs from what mlv.lock records."""
        locked = self.lock.stages.get(stage.name)
        if locked is None:
            return []
        recorded = {r.path: r.cache for r in locked.outs}
        return [o.path for o in stage.outs if recorded.get(o.path, o.cache) != o.cache]

    def _cache_flags_changeable(self, name: str, stage: Stage) -> None:
        """An out that becomes cached without running must not be tracked by git."""
        changed = self._flag_changes(stage)
        if changed:
            self._refuse_git_tracked(name, stage, changed)

    def _apply_cache_flags(self, stage: Stage) -> None:
        """Outs restored (or left in place) whose `cache` flag changed: a newly cached out
        goes into the cache, linked as configured, and into .gitignore; an out git is to
        track becomes a plain file and leaves .gitignore."""
        from mlv.core.unprotect import unprotect_path

        changed = set(self._flag_changes(stage))
        for out in stage.outs:
            if out.path not in changed:
                continue
            if out.cache:
                self._save(out.path, True)
                self._ignore(out.path, True)
            else:
                unprotect_path(self.repo, out.path)
                self._ignore(out.path, False)

    def _ignore(self, path: str, ignored: bool) -> None:
        """List path in (or take it out of) its folder's .gitignore; staged at the end."""
        if ignored:
            changed = gitignore.add_entry(self.repo.root, path)
        else:
            changed = gitignore.remove_entry(self.repo.root, path)
        if changed:
            self.to_stage.add(changed)

    def _outs_git_tracks(self) -> set[str]:
        """The cached outs of the whole pipeline that git tracks: one `git ls-files`."""
        if self._git_tracked is None:
            cached = [
                o.path for st in self.graph.pipeline.stages.values() for o in st.outs if o.cache
            ]
            scm = self.repo.scm
            self._git_tracked = set(git.tracked(self.repo.root, cached)) if scm else set()
        return self._git_tracked

    def _run_commands(self, stage: Stage) -> None:
        cwd, env = self._where(stage)
        assert self.repo_lock is not None
        marker = mark_running(self.repo.root, stage.name)
        self.repo_lock.release()  # commands may run mlv themselves
        try:
            with shell.run_commands() as runner:  # a signal to mlv stops all they started
                for cmd in stage.cmd:
                    self.events.command(stage.name, cmd)
                    _check_exit(stage, cmd, runner.run(cmd, cwd, env))
        except MlvError:  # failed: the run goes on (-k), under the lock
            self._take_back(stage.name)
            raise
        except BaseException:  # interrupted: leaving, so no long wait for the lock
            _try_lock(self.repo_lock)
            raise
        else:
            self._take_back(stage.name)
        finally:
            unmark_running(self.repo.root, stage.name, marker)
        self.sync_lock()

    def _take_back(self, names: str, par: shell.Parallel | None = None) -> None:
        """Take the repository lock back once commands ran, however long another mlv holds
        it: what they made is to be recorded (after the lock's few seconds a finished stage
        was reported failed, and the run went on without the lock, writing mlv.lock). A
        signal meanwhile still stops the run (-j: par's signal is acted on here)."""
        assert self.repo_lock is not None
        wait = self.repo_lock.wait
        self.repo_lock.wait = 0.5
        told = False
        try:
            while True:
                try:
                    self.repo_lock.acquire()
                    return
                except LockedError:
                    if par is not None:
                        par.close()  # a signal that came while waiting: stop everything
                    if not told:
                        self.events.note(
                            "waiting for another mlv process to let go of the repository "
                            f"lock, to record stage(s) {names}"
                        )
                        told = True
        finally:
            self.repo_lock.wait = wait

    def _where(self, stage: Stage) -> tuple[str, dict[str, str]]:
        """The folder and the environment the stage's commands run in."""
        cwd = self.repo.abs(stage.wdir)
        if not os.path.isdir(cwd):
            raise PipelineError(f"stage '{stage.name}': wdir {rpath(stage.wdir)} does not exist")
        return cwd, stage_env.stage_env(self.repo.root, stage.name, os.environ)

    # ---- several stages at once ---------------------------------------------------------

    def run_parallel(self, chosen: list[str]) -> list[StageResult]:
        """-j N: the chosen stages in the graph's order, each started once every chosen
        stage it needs is done, at most N commands running at once. Deciding, restoring,
        saving outputs and writing mlv.lock happen in this thread, under the repository
        lock, one stage at a time, as without -j; worker threads only run commands, and the
        lock is let go while this thread waits for them. A stage that fails: what needs it
        is skipped; without --keep-going nothing new starts, and the stages already
        running finish and are recorded (as `make -j` waits for its unfinished jobs)."""
        assert self.repo_lock is not None
        jobs = self.options.jobs
        among = set(chosen)
        results: dict[str, StageResult] = {}
        todo = list(chosen)
        running: dict[Future[None], Launch] = {}
        markers: dict[str, int] = {}  # stage -> its mark_running descriptor
        bad: set[str] = set()  # failed or skipped
        stop = False
        with (
            _closing(markers),
            shell.parallel_commands() as par,
            ThreadPoolExecutor(jobs, thread_name_prefix="mlv-stage") as pool,
        ):
            while todo or running:
                for name in list(todo):
                    if stop or len(running) >= jobs:
                        break
                    needs = [p for p in self.graph.parents[name] if p in among]
                    broken = [p for p in needs if p in bad]
                    if broken:
                        todo.remove(name)
                        results[name] = StageResult(
                            name, SKIPPED, error=f"stage '{sorted(broken)[0]}' it needs failed"
                        )
                        bad.add(name)
                    elif all(p in results for p in needs):
                        todo.remove(name)
                        begun = self.begin(name, [])
                        if isinstance(begun, Launch):
                            markers[name] = mark_running(self.repo.root, name)
                            running[pool.submit(self._commands, par, begun)] = begun
                            continue
                        results[name] = begun
                        if begun.status == FAILED:
                            bad.add(name)
                            stop = not self.options.keep_going
                if not running:
                    if stop or not todo:
                        break
                    continue  # stages just decided without a command: look again
                self.repo_lock.release()  # commands may run mlv themselves
                try:
                    done = par.wait(running)
                except BaseException:  # interrupted: what the commands left is theirs
                    _try_lock(self.repo_lock)  # leaving, so no long wait for the lock
                    for launch in running.values():
                        self._note_leftovers(launch.stage)
                    raise
                self._take_back(", ".join(sorted(r.name for r in running.values())), par)
                self.sync_lock()
                for future in [f for f in running if f in done]:
                    launch = running.pop(future)
                    unmark_running(self.repo.root, launch.name, markers.pop(launch.name))
                    error = future.exception()
                    if error is None:
                        outcome = self.finish(launch)
                    elif isinstance(error, MlvError):
                        outcome = self.failed(launch, error)
                    else:
                        raise error
                    results[launch.name] = outcome
                    if outcome.status == FAILED:
                        bad.add(launch.name)
                        stop = not self.options.keep_going
        for name in todo:
            results[name] = StageResult(name, NOT_RUN)
        return [results[n] for n in chosen]

    def _commands(self, par: shell.Parallel, launch: Launch) -> None:
        """A worker thread: run the stage's commands, one after another."""
        stage = launch.stage
        cwd, env = self._where(stage)

        def lines(line: bytes, err: bool) -> None:
            self.events.output(stage.name, line, err)

        for cmd in stage.cmd:
            self.events.command(stage.name, cmd)
            try:
                code = par.run(cmd, cwd, env, lines)
            except OSError as e:
                raise PipelineError(
                    f"stage '{stage.name}': cannot start `{cmd}`: {e.strerror or e}"
                ) from None
            _check_exit(stage, cmd, code)

    def _clear_outs(self, stage: Stage, paths: list[str] | None = None) -> None:
        """Delete the outs (all, or paths) that will be written anew. Content that mlv did
        not produce (neither what mlv.lock records nor in the cache: a file made by hand,
        an edit, uncommitted work in a folder git tracks) is refused unless --force; then
        it is stored in the cache first and its hash printed, so nothing is lost."""
        chosen = self._to_clear(stage, paths)
        unknown = self._unknown_outs(stage, paths)
        self._refuse_unknown(stage, unknown)
        for path in chosen:
            if not os.path.lexists(self.repo.abs(path)):
                continue
            if path in unknown:
                saver = Scanner(self.repo, store=True, algo=self.algo, cache=self.copy_cache)
                saved = saver.scan(path)
                if saved is not None:
                    self.events.note(
                        f"{rpath(path)}: its previous content is kept in the cache as {saved.hash}"
                    )
            _remove(self.repo.abs(path))
        if any(p in self.leftovers() for p in chosen):  # gone: nothing left over to know
            for path in chosen:
                self.leftovers().pop(path, None)
            self._write_leftovers()
        self._forget(stage)

    def _to_clear(self, stage: Stage, paths: list[str] | None = None) -> list[str]:
        persist = {o.path for o in stage.outs if o.persist}
        return [p for p in (stage.out_paths if paths is None else paths) if p not in persist]

    def _unknown_outs(self, stage: Stage, paths: list[str] | None = None) -> list[str]:
        """The outs (all, or paths) to be cleared that hold content mlv did not produce."""
        locked = self.lock.stages.get(stage.name)
        recorded = {r.path: r.hash for r in locked.outs + locked.metrics} if locked else {}
        unknown = []
        for path in self._to_clear(stage, paths):
            entry = self._hash(path)
            if entry is not None and not (
                recorded.get(path) == entry.hash
                or self._left_over(path)
                or self._complete(entry)
                or self._held(entry)
            ):
                unknown.append(path)
        return unknown

    def _held(self, entry: Entry) -> bool:
        """Every file of a folder is in the cache, so deleting it loses nothing: a recorded
        output folder with files deleted (its own tree is new, its files are not)."""
        if not entry.is_dir:
            return False
        cache = self.repo.cache
        try:
            walked = treediff.walk(self.scanner.load_tree, entry.hash)
            return all(e.is_dir or cache.has(e.hash) for _, e in walked)
        except MlvError:
            return False

    def _refuse_unknown(self, stage: Stage, unknown: list[str]) -> None:
        if unknown and not self.options.force:
            raise PipelineError(
                f"stage '{stage.name}': {rpath(unknown[0])} holds content that mlv did not produce "
                "(an edit, or a file made outside mlv repro)",
                f"move it away, or run `mlv repro --force -s {stage.name}` to replace it "
                "(its content is then kept in the cache)",
            )

    def _unprotect_persisted(self, stage: Stage) -> None:
        """Persistent outs are written in place by the command: links into the cache
        (hardlink, symlink) become private copies first, or the command would write
        into cache objects."""
        from mlv.core.unprotect import unprotect_path

        for out in stage.outs:
            if out.persist and os.path.lexists(self.repo.abs(out.path)):
                unprotect_path(self.repo, out.path)

    def _complete(self, entry: Entry) -> bool:
        cache = self.repo.cache
        if entry.is_dir:
            return tree_complete(self.repo, cache, self.scanner.load_tree, entry.hash)
        return cache.has(entry.hash)

    def _save_outs(self, stage: Stage) -> tuple[list[Recorded], list[Recorded]]:
        """Store the outs in the cache: cached ones linked as configured (and ignored by
        git), those git tracks as copies (for the run cache). Returns (outs, metrics)."""
        outs: list[Recorded] = []
        for out in stage.outs:
            outs.append(self._save(out.path, out.cache))
            self._ignore(out.path, out.cache)
        metrics = [self._save(path, False) for path in stage.metrics]
        return outs, metrics

    def _save(self, path: str, cached: bool) -> Recorded:
        cache = self.repo.cache if cached else self.copy_cache
        saver = Scanner(self.repo, store=True, algo=self.algo, cache=cache)
        entry = saver.scan(path)
        if entry is None:
            raise PipelineError(f"{rpath(path)} disappeared while mlv was saving it", "run again")
        generation = self.repo.cache.generation(self.algo)
        for tree_hash in saver.stored_trees:
            self.repo.state.mark_complete(tree_hash, generation)
        self.seen[path] = entry
        return _recorded(path, entry)

    def _recorded_run(
        self, name: str, stage: Stage, deps: list[Recorded], values: dict[str, dict[str, Any]]
    ) -> list[tuple[str, Entry]] | None:
        """The outs mlv.lock records for the stage when its inputs are still the ones it
        records (only outputs differ: deleted, or edited by hand); else None."""
        locked = self.lock.stages.get(name)
        if locked is None or locked.cmd != stage.command:
            return None
        if not lockfile.same_params(locked.params, values):
            return None
        if {(d.path, d.hash) for d in locked.deps} != {(d.path, d.hash) for d in deps}:
            return None
        return [(r.path, _entry(r)) for r in locked.outs + locked.metrics]

    def _key(self, stage: Stage, deps: list[Recorded], values: dict[str, dict[str, Any]]) -> str:
        return runcache.run_key(
            stage.command,
            [(d.path, d.hash) for d in deps],
            values,
            [(o.path, o.cache) for o in stage.outs] + [(m, False) for m in stage.metrics],
        )

    def _restorable(
        self,
        name: str,
        stage: Stage,
        deps: list[Recorded],
        values: dict[str, dict[str, Any]],
        key: str,
    ) -> tuple[dict[str, Entry], bool] | None:
        """What to check out instead of running, and whether it comes from the run cache:
        first the outs mlv.lock records (when only outputs differ), then a recorded run
        with this key. None when neither is usable (or --force)."""
        if self.options.force or stage.always_changed:
            return None
        recorded = self._recorded_run(name, stage, deps, values)
        if recorded is not None:
            todo = self._missing_from(stage, recorded)
            if todo is not None:
                return todo, False
        if not self.options.run_cache or any(o.persist for o in stage.outs):
            return None
        named = runcache.read(self.repo.cache, key)
        todo = None if named is None else self._missing_from(stage, named)
        return None if todo is None else (todo, True)

    def _missing_from(
        self, stage: Stage, named: list[tuple[str, Entry]]
    ) -> dict[str, Entry] | None:
        """The outs of named (path -> object) that the workspace lacks; None when named is
        not this stage's outs or the cache lacks one of those objects."""
        if {p for p, _ in named} != set(stage.out_paths):
            return None
        return self._missing_from_recorded(named)

    def _missing_from_recorded(self, named: list[tuple[str, Entry]]) -> dict[str, Entry] | None:
        """The paths of named (path -> object) that the workspace lacks; None when the
        cache lacks one of those objects."""
        todo = {}
        for path, entry in dict(named).items():
            now = self._hash(path)
            if now is None or now.hash != entry.hash:
                if not self._complete(entry):
                    return None
                todo[path] = entry
        return todo

    def _restore(self, stage: Stage, todo: dict[str, Entry]) -> None:
        """Check out the objects of todo (path -> object) over the stage's outs."""
        self._clear_outs(stage, list(todo))
        cached = {o.path for o in stage.outs if o.cache}
        for path, entry in todo.items():
            files = entry.files if entry.is_dir else None
            ptr = Pointer(entry.name, entry.kind, entry.hash, entry.size, files)
            target = targets.Target(LOCK_FILE, path, ptr)
            if path in cached:
                done = checkout.restore(self.repo, target)
            else:
                done = checkout.restore(self.repo, target, self.copy_cache, ignore=False)
            if not done.ok:
                problem = done.error or "objects missing or corrupt in the cache"
                raise PipelineError(
                    f"stage '{stage.name}': could not restore {rpath(path)}: {problem}"
                )
            self.seen[path] = entry

    def _record(
        self, name: str, stage: Stage, deps: list[Recorded], values: dict[str, dict[str, Any]]
    ) -> None:
        """Write the stage's new entry into mlv.lock (outs as they are now) and stage it."""
        outs = self._outs(tuple(o.path for o in stage.outs))
        metrics = self._outs(stage.metrics)
        uncached = {o.path for o in stage.outs if not o.cache}
        entry = LockedStage(
            stage.command,
            tuple(deps),
            values,
            tuple(
                replace(r, cache=False) if r.path in uncached else r
                for r in outs.values()
                if r is not None
            ),
            tuple(r for r in metrics.values() if r is not None),
        )
        if self.lock.stages.get(name) == entry and self._lock_on_disk_has(name):
            return
        self.lock.stages[name] = entry
        self._write_lock()

    def _write_lock(self) -> None:
        order = list(self.graph.pipeline.stages)
        kept = Lock({n: s for n, s in self.lock.stages.items() if n in self.graph.pipeline.stages})
        self.lock_bytes = lockfile.write(self.repo.root, kept, order, self.renderer)
        self.base = dict(kept.stages)
        self.lock_written = True
        self.to_stage.add(LOCK_FILE)

    def sync_lock(self) -> None:
        """Once the repository lock is taken again after commands ran: what another mlv
        wrote into mlv.lock meanwhile (`mlv commit` of another stage's edited output) is
        kept, so that this run's next write does not put back what it replaced. Stages it
        changed take its entries; the others keep this run's. A file that no longer parses
        is left for this run to rewrite."""
        now = lockfile.read_bytes(self.repo.root)
        if now == self.lock_bytes:
            return
        try:
            disk = Lock() if now is None else lockfile.parse(now, LOCK_FILE)
        except PipelineError:
            return
        for name in set(disk.stages) | set(self.base):
            theirs = disk.stages.get(name)
            if theirs == self.base.get(name):
                continue
            if theirs is None:
                self.lock.stages.pop(name, None)
            else:
                self.lock.stages[name] = theirs
        self.base = dict(disk.stages)
        self.lock_bytes = now

    def stage_files(self) -> None:
        """Stage in git what the run wrote (mlv.lock, .gitignore files): once, at the end,
        so that a run of many stages is not a run of as many `git add`s. mlv.lock and the
        .gitignore files of the outs looked at are staged whether or not this run changed
        them: a run killed between writing them and staging them left them unstaged, and
        the next run fixes that in the same `git add` (a missing file is skipped)."""
        if self.options.dry:
            return
        paths = sorted(self.to_stage | self.managed | {LOCK_FILE})
        self.repo.stage(paths)
        if self.to_stage:
            gone = [p for p in sorted(self.to_stage) if not os.path.lexists(self.repo.abs(p))]
            if gone and self.repo.scm:  # a .gitignore emptied and deleted: stage that too
                git.remove_cached(self.repo.root, gone)
            self.to_stage.clear()

    def _lock_on_disk_has(self, name: str) -> bool:
        """mlv.lock on disk holds exactly what this run knows of every stage (a file
        edited meanwhile by hand is rewritten). Unchanged bytes need no parsing."""
        if lockfile.read_bytes(self.repo.root) == self.lock_bytes:
            return True
        try:
            return lockfile.load(self.repo.root).stages == self.lock.stages
        except PipelineError:
            return False


def _try_lock(lock: RepoLock) -> None:
    """Take lock if another mlv lets go of it within its usual wait; else go on without."""
    try:
        lock.acquire()
    except LockedError:
        pass


def _fingerprint(full: str) -> str | None:
    """What a path holds as its stats tell (kind, size, mtime, inode of each file below it),
    hashed; None when absent or unreadable. Changed by any edit, and cheap to take."""
    digest = hashlib.sha256()
    try:
        st = os.lstat(full)
        digest.update(f"{st.st_mode}:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}".encode())
        if os.path.isdir(full) and not os.path.islink(full):
            for folder, dirs, files in os.walk(full):
                dirs.sort()
                for name in sorted(files + dirs):
                    sub = os.lstat(os.path.join(folder, name))
                    rel = os.path.relpath(os.path.join(folder, name), full)
                    line = f"{rel}\0{sub.st_mode}:{sub.st_size}:{sub.st_mtime_ns}:{sub.st_ino}\n"
                    digest.update(line.encode("utf-8", "surrogateescape"))
    except OSError:
        return None
    return digest.hexdigest()


def _running_path(root: str, name: str) -> str:
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return os.path.join(root, ".mlv", "tmp", "running", digest)


def mark_running(root: str, name: str) -> int:
    """Mark stage name as having its commands run by this process, until the descriptor
    returned is closed (or the process ends: the kernel lets go of the flock). Taken and
    let go under the repository lock, so that one who holds it sees a settled state."""
    path = _running_path(root, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise PipelineError(f"stage '{name}' is running in another mlv repro") from None
    return fd


def unmark_running(root: str, name: str, fd: int) -> None:
    """The end of mark_running (under the repository lock too): the marker goes."""
    with contextlib.suppress(OSError):
        os.unlink(_running_path(root, name))
    os.close(fd)


def stage_running(root: str, name: str) -> bool:
    """Another process runs the commands of stage name now (mark_running)."""
    try:
        fd = os.open(_running_path(root, name), os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


class _closing:
    """Closes the descriptors left in a dict when the block ends (an error, a signal)."""

    def __init__(self, fds: dict[str, int]) -> None:
        self.fds = fds

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def _check_exit(stage: Stage, cmd: str, code: int) -> None:
    if code != 0:
        how = f"exit code {code}" if code > 0 else f"signal {-code}"
        raise PipelineError(
            f"stage '{stage.name}' failed: `{cmd}` ended with {how}",
            f"fix it and run `mlv repro {stage.name}` again",
        )


def _changed_keys(key: str, old: Any, new: Any) -> list[str]:
    """The dotted keys that differ below key (key itself unless both are mappings)."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [key]
    a = params.flatten(old, key + ".")
    b = params.flatten(new, key + ".")
    return sorted(
        k for k in set(a) | set(b) if k not in a or k not in b or not params.same(a[k], b[k])
    ) or [key]


def _entry(rec: Recorded) -> Entry:
    kind = FILE if rec.files is None else DIR
    files = 1 if rec.files is None else rec.files
    return Entry(kind, rec.path.rpartition("/")[2], rec.hash, rec.size, files)


def _recorded(path: str, entry: Entry) -> Recorded:
    return Recorded(path, entry.hash, entry.size, entry.files if entry.is_dir else None)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _missing_hint(repo: Repo, path: str) -> str:
    for pointer_rel in targets.pointer_files(repo):
        data = pointer_rel[: -len(".mlv")]
        if dag.overlaps(data, path):
            return (
                f"run `mlv checkout {rpath(data)}` (or `mlv pull {rpath(data)}`) to bring it back"
            )
    if repo.scm and git.tracked(repo.root, [path]):
        return f"restore it with `git checkout -- {rpath(path)}`"
    return "create it, or fix the stage's deps in mlv.yaml"
