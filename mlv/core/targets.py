"""Finding pointer files and resolving what the user named on the command line.

A target is one pointer and, optionally, a sub-path inside the directory it tracks
(`mlv checkout images/cats` where images.mlv tracks images/).

The cached outputs of pipeline stages are targets too: mlv.lock records them (hash, size,
files) where a pointer file would, so a target's pointer_rel is then "mlv.lock" and its
pointer is built from the lock's entry (path relative to the root, like the lock itself).
Outs that mlv.yaml marks `cache: false` (git tracks them) and metrics are not targets.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from mlv import git
from mlv.core.repo import MLV_DIR, Repo
from mlv.core.workspace import printable
from mlv.errors import MlvError, PipelineError, PointerError, UsageError, WorkspaceError, rpath
from mlv.objects import names as names_mod
from mlv.objects import pointer as pointer_mod
from mlv.objects.pointer import SUFFIX, Pointer
from mlv.objects.tree import Entry, Tree
from mlv.objects.tree import decode as decode_tree
from mlv.util import localfs

# mlv.core.pipeline.spec's names, not imported from there: it loads PyYAML, which a status
# of a repository without a pipeline never needs.
LOCK_FILE = "mlv.lock"
PIPELINE_FILE = "mlv.yaml"


@dataclass(frozen=True)
class Target:
    pointer_rel: str  # the pointer file, relative to the root ("data/images.mlv")
    data_rel: str  # the tracked path, relative to the root ("data/images")
    pointer: Pointer
    sub: str = ""  # a path inside a tracked directory, relative to data_rel ("" = all)

    @property
    def rel(self) -> str:
        """The workspace path this target covers."""
        return f"{self.data_rel}/{self.sub}" if self.sub else self.data_rel

    def entry(self) -> Entry:
        """The pointer's object as a tree entry named after the tracked path."""
        ptr = self.pointer
        files = ptr.files if ptr.files is not None else (1 if ptr.kind == "file" else 0)
        return Entry(ptr.kind, self.data_rel.rpartition("/")[2], ptr.hash, ptr.size, files)


def load_target(repo: Repo, pointer_rel: str) -> Target:
    path = repo.abs(pointer_rel)
    if os.path.islink(path):  # a clone's `stolen.mlv -> ../private/model.bin.mlv`
        from mlv.core.workspace import refuse_link_out

        refuse_link_out(repo.root, pointer_rel)
    ptr = pointer_mod.read(path, rpath(pointer_rel))
    folder = pointer_rel.rpartition("/")[0]
    data_rel = f"{folder}/{ptr.path}" if folder else ptr.path
    data_rel = os.path.normpath(data_rel).replace(os.sep, "/")
    pointer_mod.check_place(data_rel, rpath(pointer_rel), shown=ptr.path)
    return Target(pointer_rel, data_rel, ptr)


def pointer_files(repo: Repo) -> list[str]:
    """Every pointer file in the repository (relative paths), skipping tracked data and
    anything git ignores."""
    if repo.scm:
        found = git.list_files(repo.root, f"*{SUFFIX}")
        return [p for p in found if os.path.isfile(repo.abs(p)) and not p.startswith(".mlv/")]
    return _walk_pointers(repo.root)


def _walk_pointers(root: str) -> list[str]:
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
        prefix = "" if rel_folder == "." else rel_folder + "/"
        pointers = {f for f in files if f.endswith(SUFFIX) and len(f) > len(SUFFIX)}
        dirs[:] = sorted(
            d for d in dirs if d not in (".git", MLV_DIR) and f"{d}{SUFFIX}" not in pointers
        )
        found.extend(prefix + f for f in sorted(pointers))
    return sorted(found)


# What reading mlv.lock or mlv.yaml can raise besides PipelineError when a file has a shape
# their parsers did not foresee.
_UNREADABLE = (PipelineError, OSError, TypeError, ValueError, AttributeError)


def lock_targets(repo: Repo) -> list[Target]:
    """The cached outs of the stages in the workspace's mlv.lock (none without one). A lock
    that cannot be read raises PointerError, like a broken pointer file."""
    from mlv.core.workspace import refuse_link_out

    refuse_link_out(repo.root, LOCK_FILE)  # a clone's mlv.lock -> a file of the user's
    lock_text = _read_if_there(repo.abs(LOCK_FILE), LOCK_FILE)
    if lock_text is None:
        return []
    try:
        refuse_link_out(repo.root, PIPELINE_FILE)
        spec_text = _read_if_there(repo.abs(PIPELINE_FILE), PIPELINE_FILE)
    except (PointerError, WorkspaceError):
        spec_text = None  # unreadable: every out counts as cached
    return outs_of_lock(lock_text, spec_text, rpath(LOCK_FILE), rpath(PIPELINE_FILE))


def _read_if_there(path: str, where: str) -> bytes | None:
    try:
        return localfs.read_small(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as e:
        raise PointerError(f"{where}: cannot read it ({e.strerror})") from None


def outs_of_lock(
    lock_text: bytes, spec_text: bytes | None, where: str, spec_where: str
) -> list[Target]:
    """Targets for the cached outs a lock file's text records. Outs that the lock or the
    pipeline (spec_text, when it parses) marks `cache: false` are left out; an out no longer
    in the pipeline counts as cached (a templated spec_text, read without its params files,
    may not parse: the lock's own flag still holds). Raises PointerError (naming where)
    for a malformed lock."""
    from mlv.core.pipeline import lockfile, spec

    try:
        lock = lockfile.parse(lock_text, where)
    except PipelineError as e:
        raise PointerError(e.marked_message, e.marked_hint) from None
    except _UNREADABLE:
        raise PointerError(
            f"{where}: not a valid lock file", "restore it with git, or `mlv repro` to rewrite it"
        ) from None
    uncached: set[str] = set()
    if spec_text is not None:
        try:
            pipeline = spec.parse(spec_text, spec_where)
        except _UNREADABLE:
            pass  # what it says is unknown: keeping every out tracked is the safe side
        else:
            uncached = {o.path for s in pipeline.stages.values() for o in s.outs if not o.cache}
    found: list[Target] = []
    seen: set[str] = set()
    for name, stage in lock.stages.items():
        for out in stage.outs:
            at = f"{where}: stage '{name}': out {out.path!r}"
            pointer_mod.check_relative(out.path, at)
            reason = names_mod.problem(out.path)
            if reason is not None:
                raise PointerError(
                    f"{at} {reason}: {names_mod.refusing(reason, 'a stage out')}",
                    "fix the outs in mlv.yaml, then `mlv repro` to rewrite mlv.lock",
                )
            if _bad_count(out.size) or (out.files is not None and _bad_count(out.files)):
                raise PointerError(f"{at}: invalid size or file count")
            if out.path in uncached or not out.cache or out.path in seen:
                continue
            seen.add(out.path)
            ptr = Pointer(out.path, out.kind, out.hash, out.size, out.files)
            found.append(Target(LOCK_FILE, out.path, ptr))
    return found


def _bad_count(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or value < 0


def all_targets(repo: Repo) -> list[Target]:
    return [load_target(repo, p) for p in pointer_files(repo)] + lock_targets(repo)


def readable_targets(repo: Repo) -> tuple[list[Target], list[tuple[str, PointerError]]]:
    """Every pointer that parses (stage outs of mlv.lock included), and (pointer, error)
    for those that do not: a report such as status shows the broken ones instead of
    stopping at the first."""
    good: list[Target] = []
    bad: list[tuple[str, PointerError]] = []
    for p in pointer_files(repo):
        try:
            good.append(load_target(repo, p))
        except PointerError as e:
            bad.append((p, e))
    try:
        good.extend(lock_targets(repo))
    except PointerError as e:
        bad.append((LOCK_FILE, e))
    return good, bad


def names_of(pointer_rel: str) -> set[str]:
    """The paths that name a pointer on the command line: the pointer file, and for a
    pointer file its data path (mlv.lock is named by itself only)."""
    if pointer_rel.endswith(SUFFIX):
        return {pointer_rel, pointer_rel[: -len(SUFFIX)]}
    return {pointer_rel}


def stage_outputs(repo: Repo) -> dict[str, tuple[str, str]]:
    """Every output of a pipeline stage (cached or not, metrics too): path -> (stage, the
    file that names it: mlv.lock, else mlv.yaml). Files that cannot be read add nothing."""
    from mlv.core.pipeline import lockfile, spec

    found: dict[str, tuple[str, str]] = {}
    try:
        lock = lockfile.load(repo.root)
    except _UNREADABLE:
        lock = lockfile.Lock()
    for name, locked in lock.stages.items():
        for rec in locked.outs + locked.metrics:
            found.setdefault(rec.path, (name, LOCK_FILE))
    try:
        pipeline = spec.load(repo.root)
    except _UNREADABLE:
        pipeline = spec.Pipeline()
    for name, stage in pipeline.stages.items():
        for path in stage.out_paths:
            found.setdefault(path, (name, PIPELINE_FILE))
    return found


def stage_out_error(
    raw: str, rel: str, outputs: dict[str, tuple[str, str]], hint: str
) -> UsageError | None:
    """The refusal for a command that writes pointers, when rel is a stage output, lies
    inside one or contains one (None otherwise). hint may name {stage}."""
    for out, (stage, where) in sorted(outputs.items()):
        if rel == out:
            what = f"{raw} is an output"
        elif rel.startswith(out + "/"):
            what = f"{raw} is inside {rpath(out)}, an output"
        elif rel == "" or out.startswith(rel + "/"):
            what = f"{raw} contains {rpath(out)}, an output"
        else:
            continue
        return UsageError(f"{what} of stage '{stage}' ({rpath(where)})", hint.format(stage=stage))
    return None


def stage_out_refusal(repo: Repo, raw: str, rel: str, hint: str) -> UsageError:
    """stage_out_error for a stage out of mlv.lock that a command writing pointers was
    given (rel: the out, or a path inside it)."""
    refusal = stage_out_error(raw, rel, stage_outputs(repo), hint)
    if refusal is None:  # mlv.lock and mlv.yaml changed meanwhile
        refusal = UsageError(
            f"{raw} is an output of a stage ({rpath(LOCK_FILE)})", hint.format(stage="NAME")
        )
    return refusal


def refuse_undecodable(paths: list[str]) -> None:
    """Refuse a command-line path that is not valid UTF-8: mlv never tracks one (names in
    pointers and trees are UTF-8). Run before anything else, the repository lock included."""
    for raw in paths:
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            raise UsageError(
                f"{printable(raw)}: not tracked by mlv (the name is not valid UTF-8)",
                "rename it, then `mlv add` it",
            ) from None


def refuse_unwritable(raw: str, rel: str) -> None:
    """Refuse (UsageError) a new path for tracked data that mlv must never write: inside
    .git (any spelling git refuses), inside .mlv, or with a control character that would
    split its .gitignore line (rules in mlv.objects.names)."""
    reason = names_mod.problem(rel)
    if reason is None:
        return
    if reason == names_mod.CONTROL:
        raise UsageError(
            f"{raw!r}: the name {reason}, which a .gitignore line cannot hold",
            "rename it without line breaks or control characters",
        )
    raise UsageError(f"{printable(raw)}: {reason}, which mlv never tracks")


def resolve(repo: Repo, paths: list[str], targets: list[Target] | None = None) -> list[Target]:
    """Targets for command-line paths: a pointer file, its data path, a path inside a
    tracked directory, or a folder (every pointer below it, and every stage out below it);
    mlv.lock names every stage out it records. No paths: every pointer and stage out."""
    if targets is None:
        targets, broken = readable_targets(repo)
        for pointer_rel, error in broken:
            named = {repo.rel(p) for p in paths}
            if not paths or named & names_of(pointer_rel):
                raise error  # a broken pointer stops only commands that need it
    if not paths:
        return targets
    result: list[Target] = []
    for raw in paths:
        rel = repo.rel(raw)
        matched = match(rel, targets)
        if not matched:
            if os.path.isfile(repo.abs(rel)) and rel.endswith(SUFFIX):
                matched = [load_target(repo, rel)]
            else:
                raise UsageError(
                    f"{printable(raw)}: not tracked by mlv",
                    "name a tracked path or its .mlv file (see `mlv status`), or `mlv add` it",
                )
        for target in matched:
            if target not in result:
                result.append(target)
    return result


def match(rel: str, targets: list[Target]) -> list[Target]:
    """The targets a repository-relative path names (see resolve)."""
    hits: list[Target] = []
    for t in targets:
        if rel in (t.pointer_rel, t.data_rel):
            hits.append(t)
        elif rel.startswith(t.data_rel + "/") and t.pointer.kind == "dir":
            hits.append(Target(t.pointer_rel, t.data_rel, t.pointer, rel[len(t.data_rel) + 1 :]))
        elif rel == "" or t.pointer_rel.startswith(rel + "/"):
            hits.append(t)
        elif t.pointer_rel == LOCK_FILE and t.data_rel.startswith(rel + "/"):
            hits.append(t)  # a stage out below the folder named (mlv.lock is at the root)
    return hits


def sub_entry(target: Target, load: Callable[[str], Tree]) -> Entry | None:
    """The pointer's entry at target.sub (the whole pointer without one); None when the
    pointer has no such path. Raises MlvError when a tree on the way cannot be read."""
    entry = target.entry()
    for part in target.sub.split("/") if target.sub else []:
        if not entry.is_dir:
            return None
        child = load(entry.hash).by_name().get(part)
        if child is None:
            return None
        entry = child
    return entry


def not_in_pointer(target: Target) -> UsageError:
    """The refusal for a path inside a tracked directory that its pointer does not name."""
    return UsageError(
        f"{rpath(target.rel)}: not tracked by mlv (no such path in {rpath(target.pointer_rel)})",
        f"check the name; `mlv ls {rpath(target.data_rel)}` lists what the pointer holds",
    )


def require_sub(repo: Repo, chosen: list[Target], workspace: bool = True) -> None:
    """Refuse (UsageError) a target inside a tracked directory that its pointer does not
    name, unless workspace is true and the path exists in the workspace (a new file there).
    When the pointer's trees cannot be read (not in the cache), nobody can tell: let it be."""

    def load(hash_id: str) -> Tree:
        return decode_tree(repo.cache.read_bytes(hash_id), f"tree {hash_id}")

    for t in chosen:
        if not t.sub or t.pointer.kind != "dir":
            continue
        if workspace and os.path.lexists(repo.abs(t.rel)):
            continue
        try:
            found = sub_entry(t, load)
        except MlvError:
            continue
        if found is None:
            raise not_in_pointer(t)


def check_named(repo: Repo, paths: list[str]) -> None:
    """Refuse what resolve refuses, and a path inside a tracked directory that neither its
    pointer nor the workspace has (require_sub), before a command acts on anything."""
    refuse_undecodable(paths)
    require_sub(repo, resolve(repo, paths))


def owner_of(rel: str, targets: list[Target]) -> Target | None:
    """The target whose tracked directory contains rel (or is rel)."""
    for t in targets:
        if rel == t.data_rel or rel.startswith(t.data_rel + "/"):
            return t
    return None


def at_commit(
    root: str,
    commit: str,
    names: list[str] | None = None,
    broken: list[tuple[str, MlvError]] | None = None,
) -> list[Target]:
    """The pointers of a commit (all, or those of the pointer files named), read through
    one `git cat-file --batch`; all of them includes the stage outs of the commit's
    mlv.lock (read with its mlv.yaml), and so does naming mlv.lock. Pointers that do not
    parse there are skipped (listed in broken as (pointer path, error) when a list is
    given); absent names are skipped."""
    if names is None:
        names = [n for n in git.files_at(root, commit, SUFFIX) if not n.startswith(MLV_DIR + "/")]
        names.append(LOCK_FILE)
    specs = [f"{commit}:{n}" for n in names]
    if LOCK_FILE in names:
        specs.append(f"{commit}:{PIPELINE_FILE}")
    blobs = git.read_blobs(root, specs)
    found: list[Target] = []
    for name in names:
        data = blobs.get(f"{commit}:{name}")
        if data is None:
            continue
        try:
            if name == LOCK_FILE:
                found.extend(
                    outs_of_lock(
                        data,
                        blobs.get(f"{commit}:{PIPELINE_FILE}"),
                        f"{LOCK_FILE} at {commit[:10]}",
                        f"{PIPELINE_FILE} at {commit[:10]}",
                    )
                )
                continue
            ptr = pointer_mod.parse(data, f"{name} at {commit[:10]}")
        except MlvError as e:
            if broken is not None:
                broken.append((name, e))
            continue
        folder = name.rpartition("/")[0]
        data_rel = f"{folder}/{ptr.path}" if folder else ptr.path
        try:
            pointer_mod.check_place(data_rel, f"{name} at {commit[:10]}", shown=ptr.path)
        except MlvError as e:
            if broken is not None:
                broken.append((name, e))
            continue
        found.append(Target(name, data_rel, ptr))
    return found
