"""`mlv add` and `mlv commit`: hash tracked paths into the cache and write their pointers.

Outputs of pipeline stages are recorded by `mlv repro` in mlv.lock, never in a pointer: add
and commit refuse them by name, and `mlv commit` of everything passes over them.

Order matters for safety: every object (files, then trees bottom-up) is in the cache before
the pointer that names it is written, and the pointer is written atomically. A killed add
leaves at most unreferenced objects and stray temporaries, never a pointer to a missing
object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

from mlv import git
from mlv.core import gitignore, safepaths, status, targets
from mlv.core.progress import NullProgress, Progress
from mlv.core.repo import Repo
from mlv.core.workspace import SKIPPED_NAME, Scanner, check_name
from mlv.errors import MlvError, UsageError, WorkspaceError, rpath
from mlv.objects import hashing, names
from mlv.objects import pointer as pointer_mod
from mlv.objects.names import is_git_name
from mlv.objects.pointer import SUFFIX, Pointer


@dataclass(frozen=True)
class Tracked:
    """What add or commit recorded for one path."""

    path: str  # data path relative to the root
    pointer: str  # pointer file relative to the root
    kind: str
    hash: str
    size: int
    files: int | None
    changed: bool  # the pointer file was written (new or different content)
    # the pointer was unchanged, but the cache lacked objects it names: they are stored now
    filled: bool = False


class CommitError(MlvError):
    """Some targets of a commit could not be recorded. recorded: what was (pointers written
    and staged); errors: why each of the others failed. The message is the first error's."""

    def __init__(self, recorded: list[Tracked], errors: list[MlvError]) -> None:
        super().__init__(errors[0].marked_message, errors[0].marked_hint)
        self.recorded = recorded
        self.errors = errors
        self.exit_code = max(e.exit_code for e in errors)


COMMIT_HINT = (
    "run `mlv commit` to record its changes in mlv.lock, or `mlv repro {stage}` to make it anew"
)


def _validate_new(
    repo: Repo, raw: str, known: list[targets.Target], outputs: dict[str, tuple[str, str]]
) -> str:
    rel = repo.rel(raw)
    if rel == "":
        raise UsageError(f"{raw}: cannot track the repository root", "add a file or folder in it")
    if names.problem(rel) == names.INSIDE_GIT and not is_git_name(rel.split("/")[0]):
        raise UsageError(
            f"{raw}: mlv never tracks {SKIPPED_NAME} folders or what is in them",
            "add the folder that holds it (its .git is skipped)",
        )
    targets.refuse_unwritable(raw, rel)
    recorded = any(  # a stage that ran: commit records an edit; one that never ran: repro
        where == targets.LOCK_FILE
        and (out == rel or out.startswith(rel + "/") or rel.startswith(out + "/") or rel == "")
        for out, (_, where) in outputs.items()
    )
    hint = COMMIT_HINT if recorded else "run `mlv repro {stage}` to make it"
    refusal = targets.stage_out_error(raw, rel, outputs, hint)
    if refusal is not None:  # mlv.lock records it, not a pointer file
        raise refusal
    if rel.endswith(SUFFIX) and os.path.isfile(repo.abs(rel)):
        raise UsageError(
            f"{raw}: is a pointer file", f"add the data path {rpath(rel[: -len(SUFFIX)])}"
        )
    if not os.path.lexists(repo.abs(rel)):
        raise UsageError(f"{raw}: no such file or directory")
    if os.path.islink(repo.abs(rel)) and os.path.isdir(repo.abs(rel)):
        raise UsageError(f"{raw}: is a symbolic link to a directory", "add the directory itself")
    for t in known:
        if rel == t.data_rel:
            continue
        if rel.startswith(t.data_rel + "/"):
            raise UsageError(
                f"{raw}: inside {rpath(t.data_rel)}, which {rpath(t.pointer_rel)} already tracks",
                f"run `mlv commit {rpath(t.data_rel)}` to record changes to it",
            )
        if t.data_rel.startswith(rel + "/") or t.pointer_rel.startswith(rel + "/"):
            raise UsageError(
                f"{raw}: contains {rpath(t.data_rel)}, which {rpath(t.pointer_rel)} already tracks",
                f"run `mlv rm {rpath(t.pointer_rel)}` first, or add a path that does not "
                "contain it",
            )
    if repo.scm and git.tracked(repo.root, [rel]):
        raise UsageError(
            f"{raw}: is tracked by git",
            f"run `git rm -r --cached '{rpath(rel)}'` first to hand it over to mlv",
        )
    return rel


def add(
    repo: Repo, paths: list[str], progress: Progress | None = None, desc: str | None = None
) -> list[Tracked]:
    """Start tracking paths (or record new content of paths already tracked)."""
    progress = progress or NullProgress()
    for raw in paths:  # before the lock, which writes the command line as UTF-8
        check_name(raw, raw, "rename it")
    with repo.lock():
        repo.cache.remove_stale_tmp(repo.sweep_stamp)
        known, broken = targets.readable_targets(repo)  # a broken pointer elsewhere
        for pointer_rel, error in broken:  # does not block adding something else
            if any(repo.rel(p) + SUFFIX == pointer_rel for p in paths):
                raise error
        outputs = targets.stage_outputs(repo)
        rels = [_validate_new(repo, p, known, outputs) for p in paths]
        by_data = {t.data_rel: t for t in known}
        results = []
        for rel in rels:
            existing = by_data.get(rel)
            results.append(
                _track(repo, rel, existing.pointer if existing else None, progress, desc)
            )
        return results


def commit(repo: Repo, paths: list[str], progress: Progress | None = None) -> list[Tracked]:
    """Record workspace changes of tracked paths into their pointers.

    Every target is checked before anything is written (bad usage records nothing). Then
    each is recorded on its own: one that fails (missing, unreadable) does not stop the
    others, and CommitError then carries both what was recorded and what failed."""
    progress = progress or NullProgress()
    targets.refuse_undecodable(paths)
    with repo.lock():
        repo.cache.remove_stale_tmp(repo.sweep_stamp)
        chosen = targets.resolve(repo, paths)
        todo = []
        stages: set[str] = set()  # stages whose outputs were named
        any_stage_out = False
        outputs = targets.stage_outputs(repo) if paths else {}
        for t in chosen:
            if t.pointer_rel == targets.LOCK_FILE:  # recorded in mlv.lock, as `dvc commit`
                any_stage_out = True
                if t.data_rel in outputs:
                    stages.add(outputs[t.data_rel][0])
                continue
            if t.sub:
                raise UsageError(
                    f"{rpath(t.rel)}: is inside tracked directory {rpath(t.data_rel)}",
                    f"commit the whole directory: `mlv commit {rpath(t.data_rel)}`",
                )
            todo.append(t)
        results: list[Tracked] = []
        errors: list[MlvError] = []
        if any_stage_out:
            from mlv.core.pipeline import repro

            try:  # named outputs: their stages; none named: every stage with an edit
                results += repro.commit_stages(repo, sorted(stages) if paths else None)
            except MlvError as e:
                errors.append(e)
        for t in todo:
            algo = hashing.algorithm_of(t.pointer.hash)
            try:
                complete = _complete(repo, t, algo)
                tracked = _track(repo, t.data_rel, t.pointer, progress, None, algo)
            except MlvError as e:
                errors.append(e)
                continue
            if not complete and not tracked.changed:
                tracked = replace(tracked, filled=True)
            results.append(tracked)
        if errors:
            raise CommitError(results, errors)
        return results


def record(repo: Repo, target: targets.Target) -> Tracked:
    """Record a tracked path's workspace content in its pointer, as `mlv commit PATH` does
    (for `mlv repro`, whose stage read the new content). The caller holds the lock."""
    algo = hashing.algorithm_of(target.pointer.hash)
    return _track(repo, target.data_rel, target.pointer, NullProgress(), None, algo)


def _complete(repo: Repo, target: targets.Target, algo: str) -> bool:
    """Does the cache hold every object of the target's pointer? (Cheap once known true.)"""
    return status.in_cache(repo, Scanner(repo, store=False, algo=algo), target)


COUNT_BUDGET = 1.0  # seconds a count of files before hashing may take; longer: no total


def count_files(repo: Repo, rel: str, budget: float = COUNT_BUDGET) -> int | None:
    """How many files the scan of rel will hash, for a progress bar's total: a walk of
    its folders' names (no stat of the files), skipping what the scan skips (.mlvignore,
    .git, mlv's temporaries). None when the walk takes longer than budget seconds: a bar
    without a total beats a long wait before the hashing starts."""
    import time

    from mlv.core.workspace import ignore_rules_above
    from mlv.objects.ignore import IGNORE_FILE
    from mlv.util.localfs import TMP_MARK

    top = repo.abs(rel)
    if not os.path.isdir(top):
        return 1
    deadline = time.monotonic() + budget
    count = 0
    pending = [(top, rel, ignore_rules_above(repo, rel))]
    while pending:
        if time.monotonic() > deadline:
            return None
        path, here, rules = pending.pop()
        rules = rules.with_file(os.path.join(path, IGNORE_FILE), here)
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue  # the scan itself reports it
        for e in entries:
            name = e.name
            if name.startswith(TMP_MARK) or is_git_name(name):
                continue
            child = f"{here}/{name}"
            is_dir = e.is_dir(follow_symlinks=False)
            if rules and rules.is_ignored(child, is_dir):
                continue
            if is_dir:
                pending.append((e.path, child, rules))
            else:
                count += 1
    return count


def _track(
    repo: Repo,
    rel: str,
    old: Pointer | None,
    progress: Progress,
    desc: str | None,
    algo: str | None = None,
) -> Tracked:
    """Scan rel into the cache (with algo, default core.hash) and write its pointer."""
    safepaths.check_data(repo.root, rel)  # a committed link could lead outside
    scanner = Scanner(repo, store=True, progress=progress, algo=algo, clean_tmp=True)
    progress.begin(f"hashing {rel}", lambda: count_files(repo, rel))
    try:
        with repo.cache.writing():  # small objects partly by a helper, trees after them
            entry = scanner.scan(rel)
    except OSError as e:  # an object the helper left, written here at the end
        refused = repo.cache.write_refused(e)
        if refused is None:
            raise
        raise refused from None
    finally:
        progress.end()
    repo.state.flush()  # the trust records of the objects the helper wrote
    if entry is None:
        raise WorkspaceError(
            f"{rpath(rel)}: missing from the workspace",
            "nothing to record; run `mlv checkout` to restore it",
        )
    generation = repo.cache.generation(scanner.algo)
    for tree_hash in scanner.stored_trees:
        repo.state.mark_complete(tree_hash, generation)
    name = rel.rpartition("/")[2]
    files = entry.files if entry.is_dir else None
    if old is not None:
        # desc, meta and an import's source stay (DVC keeps an import's origin too)
        ptr = replace(old.with_content(entry.hash, entry.size, files), kind=entry.kind)
        if desc:
            ptr = replace(ptr, desc=desc)
    else:
        ptr = Pointer(name, entry.kind, entry.hash, entry.size, files, desc)
    pointer_rel = rel + SUFFIX
    changed = pointer_mod.write(repo.abs(pointer_rel), ptr)
    gitignore.add_entry(repo.root, rel)
    # The .gitignore is staged even when it already held the entry: a command killed
    # between writing it and `git add` left it unstaged, and this same `git add` call fixes
    # that at no cost.
    folder = rel.rpartition("/")[0]
    repo.stage([pointer_rel, f"{folder}/.gitignore" if folder else ".gitignore"])
    return Tracked(rel, pointer_rel, entry.kind, entry.hash, entry.size, files, changed)
