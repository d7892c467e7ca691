"""`mlv get`, `mlv import` and `mlv update`: data from another repository.

get copies a path of another repository (tracked data, a path inside a tracked directory,
a file git tracks, or a folder of those) into a plain, untracked, writable copy. Objects go
through this repository's cache when there is one (so the next get is free), else through
a temporary cache. The copy is built under a temporary sibling name and renamed into
place: an interrupted get leaves no half-written output.

import does the same into this repository and tracks the result with a pointer whose
`source` records the URL, the path, the revision asked for and the commit it resolved to.
update resolves that revision again (or a new one) and moves the data and the pointer.
The data goes to the cache and is checked out as `mlv checkout` does; the pointer and the
.gitignore line are staged.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from dataclasses import dataclass, replace

from mlv import git
from mlv.core import checkout as checkout_mod
from mlv.core import gitignore, safepaths, targets
from mlv.core.external import Source, is_relative_path, open_source
from mlv.core.repo import Repo
from mlv.core.status import MODIFIED, status_of
from mlv.core.targets import Target
from mlv.core.view import FOLDER, GIT, Node, View
from mlv.errors import ObjectMissingError, PointerError, UsageError, WorkspaceError, rpath
from mlv.objects import pointer as pointer_mod
from mlv.objects.pointer import SUFFIX, Pointer, PointerSource
from mlv.objects.store import Cache
from mlv.util import localfs
from mlv.util.urls import has_credentials, redact


@dataclass(frozen=True)
class GetResult:
    out: str  # the path written, as the user named it (or the default name)
    kind: str  # file | dir
    files: int
    bytes: int
    url: str  # credentials redacted
    path: str  # in the source
    commit: str


@dataclass
class ImportResult:
    path: str  # data path, relative to the root
    pointer: str  # pointer file, relative to the root
    url: str  # as recorded
    source_path: str
    rev: str | None
    commit: str
    old_commit: str | None  # update: the commit recorded before; import: None
    hash: str
    old_hash: str | None  # update: the data's hash before; import: None
    changed: bool  # update: the pointer moved (False: already up to date)
    checkout: list[checkout_mod.CheckoutResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.checkout)


# ---- get -------------------------------------------------------------------------------


def get(
    url: str,
    path: str,
    rev: str | None,
    out: str | None,
    force: bool = False,
    jobs: int | None = None,
    repo: Repo | None = None,
) -> GetResult:
    """Copy PATH of the repository at url (revision rev) to out (default: its name)."""
    src_path = source_path(path)
    out = out or posixpath.basename(src_path)
    dest = os.path.abspath(out)
    if repo is not None:  # inside the repository, a committed link could lead outside
        inside = os.path.relpath(dest, repo.root)
        if inside != os.curdir and not inside.startswith(os.pardir):
            safepaths.check_parents(repo.root, inside.replace(os.sep, "/"))
    if os.path.lexists(dest) and not force:
        raise UsageError(f"{out}: already exists", "use --force to replace it, or -o OUT")
    if repo is None:
        return _get(url, src_path, rev, out, dest, force, jobs, None)
    with repo.lock():
        try:
            return _get(url, src_path, rev, out, dest, force, jobs, repo.cache)
        finally:
            repo.state.flush()


def _get(
    url: str,
    src_path: str,
    rev: str | None,
    out: str,
    dest: str,
    force: bool,
    jobs: int | None,
    cache: Cache | None,
) -> GetResult:
    with open_source(url, rev, cache, jobs) as src:
        node = _info(src, src_path)
        _fetch(src, node.path)  # every object, before anything is written
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        tmp = localfs.tmp_name(dest)
        try:
            files, nbytes = _materialize(src, node, tmp)
            _install(tmp, dest, out, force)
        except BaseException:
            _remove(tmp)
            raise
    return GetResult(out, node.kind, files, nbytes, src.url, src_path, src.commit)


def _materialize(src: Source, node: Node, tmp: str) -> tuple[int, int]:
    """Write node (a file or a folder) at tmp; returns (files, bytes) written."""
    view = src.view
    if not node.is_dir:
        if node.tracked == GIT:
            data = _git_blobs(view, [node.path])[node.path]
            localfs.write_bytes_atomic(tmp, data)
            return 1, len(data)
        assert node.hash is not None and node.size is not None
        _copy_cache(view.objects.cache).materialize(node.hash, tmp, node.size)
        return 1, node.size
    copier = _copy_cache(view.objects.cache)
    os.mkdir(tmp)
    prefix = node.path + "/"
    plain: list[str] = []
    files = nbytes = 0
    for child in view.walk(node.path):
        dst = os.path.join(tmp, *child.path[len(prefix) :].split("/"))
        if child.is_dir:
            os.makedirs(dst, exist_ok=True)
        elif child.tracked == GIT:
            plain.append(child.path)
        else:
            assert child.hash is not None and child.size is not None
            copier.materialize(child.hash, dst, child.size)
            files += 1
            nbytes += child.size
    for name, data in _git_blobs(view, plain).items():
        localfs.write_bytes_atomic(os.path.join(tmp, *name[len(prefix) :].split("/")), data)
        files += 1
        nbytes += len(data)
    return files, nbytes


def _info(src: Source, path: str) -> Node:
    try:
        return src.view.info(path)
    except UsageError as e:
        if e.message.endswith(f"not tracked at {src.commit[:10]}"):
            raise UsageError(
                f"{path}: not in {src.url} at {src.commit[:10]}",
                "name a path that mlv or git tracks there",
            ) from None
        raise UsageError(f"{src.url}: {e.message}", e.hint) from None


def _fetch(src: Source, path: str) -> None:
    """Every object below path into the cache, with a word on the source when one lacks."""
    try:
        src.view.fetch(path)
    except ObjectMissingError as e:
        raise ObjectMissingError(
            f"{src.url}: {e.message}",
            "push the data to the source repository's remote (`mlv push` there)",
        ) from None


def _git_blobs(view: View, paths: list[str]) -> dict[str, bytes]:
    if not paths:
        return {}
    assert view.commit is not None
    specs = {f"{view.commit}:{p}": p for p in paths}
    blobs = git.read_blobs(view.root, list(specs))
    return {specs[s]: data for s, data in blobs.items()}


def _copy_cache(cache: Cache) -> Cache:
    """The same objects, copied out (never linked): the output is the user's to edit."""
    return Cache(cache.root, cache.algo, ("reflink", "copy"), cache.trust)


def _install(tmp: str, dest: str, out: str, force: bool) -> None:
    """Rename tmp to dest; with force, what was at dest goes only once tmp is in place."""
    if not os.path.lexists(dest):
        os.rename(tmp, dest)
        return
    if not force:
        raise UsageError(f"{out}: already exists", "use --force to replace it, or -o OUT")
    old = localfs.tmp_name(dest)
    os.rename(dest, old)
    try:
        os.rename(tmp, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    _remove(old)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def source_path(path: str) -> str:
    """A path in the source repository as a clean posix path (never its root)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        raise UsageError(f"{path!r}: name a path in the source repository", "e.g. data/images")
    if ".." in parts:
        raise UsageError(f"{path}: '..' is not allowed here", "name a path inside the source")
    return "/".join(parts)


# ---- import ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Content:
    kind: str
    hash: str
    size: int
    files: int | None


def import_(
    repo: Repo,
    url: str,
    path: str,
    rev: str | None,
    out: str | None,
    force: bool = False,
    jobs: int | None = None,
) -> ImportResult:
    """Bring PATH of the repository at url into this one as OUT, tracked with its source."""
    if has_credentials(url):
        raise UsageError(
            f"refusing to record a URL with credentials in a pointer ({redact(url)})",
            "let git find them (credential helper, ssh key) and give the URL without them",
        )
    src_path = source_path(path)
    recorded = _recorded_url(repo, url)
    rel = repo.rel(out or posixpath.basename(src_path))
    with repo.lock():
        try:
            previous = _check_destination(repo, rel, recorded, src_path, force)
            with open_source(_open_url(repo, recorded), rev, repo.cache, jobs) as src:
                content = _content(repo, src, src_path)
                origin = PointerSource(recorded, src_path, src.commit, rev)
            name = rel.rpartition("/")[2]
            ptr = Pointer(name, content.kind, content.hash, content.size, content.files)
            if previous is not None:
                ptr = replace(ptr, desc=previous.desc, meta=previous.meta)
            ptr = replace(ptr, source=origin)
            _write_pointer(repo, rel, ptr)
        finally:
            repo.state.flush()
    results = checkout_mod.checkout(repo, [repo.abs(rel + SUFFIX)], force)
    return ImportResult(
        rel,
        rel + SUFFIX,
        recorded,
        src_path,
        rev,
        origin.commit,
        None,
        content.hash,
        None,
        True,
        results,
    )


def _recorded_url(repo: Repo, url: str) -> str:
    """What a pointer records: a local path given relative to the current folder becomes
    relative to the repository root (like a folder remote); anything else as given."""
    if is_relative_path(url):
        return os.path.relpath(os.path.abspath(url), repo.root).replace(os.sep, "/")
    return url


def _open_url(repo: Repo, recorded: str) -> str:
    if is_relative_path(recorded):
        return os.path.normpath(os.path.join(repo.root, recorded))
    return recorded


def _check_destination(
    repo: Repo, rel: str, url: str, src_path: str, force: bool
) -> Pointer | None:
    """Refuse a destination that import must not touch; returns the pointer there when it
    is an earlier import of the same source path (its desc and meta are kept)."""
    if rel == "":
        raise UsageError("cannot import into the repository root", "give -o PATH")
    targets.refuse_unwritable(rel, rel)
    known, broken = targets.readable_targets(repo)
    for t in known:
        if rel.startswith(t.data_rel + "/"):
            raise UsageError(
                f"{rpath(rel)}: inside {rpath(t.data_rel)}, which {rpath(t.pointer_rel)} "
                "already tracks",
                "import to a path outside it (-o PATH)",
            )
        if t.data_rel.startswith(rel + "/") or t.pointer_rel.startswith(rel + "/"):
            raise UsageError(
                f"{rpath(rel)}: contains {rpath(t.data_rel)}, which {rpath(t.pointer_rel)} "
                "already tracks",
                "import to another path (-o PATH)",
            )
    if repo.scm and git.tracked(repo.root, [rel]):
        raise UsageError(
            f"{rpath(rel)}: is tracked by git",
            f"import to another path (-o PATH), or `git rm -r --cached '{rpath(rel)}'` first",
        )
    pointer_rel = rel + SUFFIX
    if any(p == pointer_rel for p, _ in broken) and not force:
        raise PointerError(
            f"{rpath(pointer_rel)}: exists and cannot be read", "use --force to replace it"
        )
    existing = next((t for t in known if t.data_rel == rel), None)
    if existing is not None:
        src = existing.pointer.source
        same = src is not None and src.url == url and src.path == src_path
        if not same and not force:
            raise UsageError(
                f"{rpath(rel)}: already tracked by {rpath(existing.pointer_rel)}, not as an "
                f"import of {src_path} from {redact(url)}",
                "use --force to replace it, or -o to import elsewhere",
            )
        if same and not force:
            _refuse_modified(repo, existing)
        return existing.pointer if same else None
    if (os.path.lexists(repo.abs(rel)) or os.path.lexists(repo.abs(pointer_rel))) and not force:
        raise UsageError(f"{rpath(rel)}: already exists", "use --force to replace it, or -o OUT")
    return None


def _refuse_modified(repo: Repo, target: Target) -> None:
    result = status_of(repo, target)
    if result.status == MODIFIED:
        raise WorkspaceError(
            f"{target.data_rel}: has changes not recorded in {target.pointer_rel}",
            "move them away first, or use --force to discard them",
        )
    if result.error:
        raise WorkspaceError(f"{target.data_rel}: {result.error}")


def _content(repo: Repo, src: Source, src_path: str) -> _Content:
    """What src_path is in the source, with every object it needs in the cache."""
    view = src.view
    node = _info(src, src_path)
    if node.tracked == FOLDER:
        raise UsageError(
            f"{src_path}: a folder of {src.url} that is not one tracked directory",
            "import the tracked paths in it one by one, or copy it with `mlv get`",
        )
    if node.tracked == GIT:
        data = _git_blobs(view, [node.path])[node.path]
        hash_id = repo.cache.put_bytes(data)
        return _Content("file", hash_id, len(data), None)
    _fetch(src, node.path)
    assert node.hash is not None and node.size is not None
    return _Content(node.kind, node.hash, node.size, node.files if node.is_dir else None)


def _write_pointer(repo: Repo, rel: str, ptr: Pointer, pointer_rel: str | None = None) -> None:
    pointer_rel = pointer_rel or rel + SUFFIX
    safepaths.check_parents(repo.root, rel)  # pointer and .gitignore go beside rel
    safepaths.check_parents(repo.root, pointer_rel)
    os.makedirs(os.path.dirname(repo.abs(pointer_rel)), exist_ok=True)
    pointer_mod.write(repo.abs(pointer_rel), ptr)
    gitignore.add_entry(repo.root, rel)
    _stage(repo, rel, pointer_rel)


def _stage(repo: Repo, rel: str, pointer_rel: str) -> None:
    """Stage the pointer and its folder's .gitignore, changed or not, in one `git add`: a
    run killed between writing them and staging them left them unstaged, and the next run
    of the same import or update fixes that at no extra cost."""
    repo.stage([pointer_rel, gitignore.file_of(rel)])


# ---- update ----------------------------------------------------------------------------


def update(
    repo: Repo, path: str, rev: str | None, force: bool = False, jobs: int | None = None
) -> ImportResult:
    """Resolve an import's revision again (or rev, recorded from now on) and move it."""
    with repo.lock():
        try:
            chosen = targets.resolve(repo, [path])
            if len(chosen) != 1 or chosen[0].sub:
                raise UsageError(
                    f"{path}: name one imported path (its data path or pointer file)",
                    "see `mlv status` for the tracked paths",
                )
            target = chosen[0]
            origin = target.pointer.source
            if origin is None:
                raise UsageError(
                    f"{target.data_rel}: not an import ({target.pointer_rel} records no source)",
                    "only paths brought in with `mlv import` can be updated",
                )
            if not force:
                _refuse_modified(repo, target)
            wanted = rev if rev is not None else origin.rev
            with open_source(_open_url(repo, origin.url), wanted, repo.cache, jobs) as src:
                moved = replace(origin, commit=src.commit, rev=wanted)
                if moved == origin:  # nothing moves; what an earlier run wrote is staged
                    _stage(repo, target.data_rel, target.pointer_rel)
                    return _result(target, origin, origin.commit, False, [])
                content = _content(repo, src, origin.path)
            ptr = replace(
                target.pointer,
                kind=content.kind,
                hash=content.hash,
                size=content.size,
                files=content.files,
                source=moved,
            )
            _write_pointer(repo, target.data_rel, ptr, target.pointer_rel)
        finally:
            repo.state.flush()
    results = checkout_mod.checkout(repo, [repo.abs(target.pointer_rel)], force)
    return _result(target, moved, origin.commit, True, results, content.hash)


def _result(
    target: Target,
    origin: PointerSource,
    old_commit: str,
    changed: bool,
    results: list[checkout_mod.CheckoutResult],
    hash_id: str | None = None,
) -> ImportResult:
    return ImportResult(
        target.data_rel,
        target.pointer_rel,
        origin.url,
        origin.path,
        origin.rev,
        origin.commit,
        old_commit,
        hash_id or target.pointer.hash,
        target.pointer.hash,
        changed,
        results,
    )
