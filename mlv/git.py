"""Everything mlv asks of git, by running the git command (no gitpython: docs/decisions.md,
"gitpython: not a dependency").

A question costs one git process of a few milliseconds; reading many files of history costs
one `git cat-file --batch` for all of them (read_blobs), not a process each.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence

from mlv import log
from mlv.errors import GitError

# Questions asked ahead (see _start): (cwd, args) -> the git process answering it.
_STARTED: dict[tuple[str, tuple[str, ...]], subprocess.Popen[bytes]] = {}


def _start(args: Sequence[str], cwd: str) -> None:
    """Run git with args in cwd now, in the background: the _run of the same args and cwd
    takes its answer instead of running git then. For a command that knows early which
    questions it will ask (status): each costs a few milliseconds of a process that can run
    on another core meanwhile. Its failures are reported by that _run, as if run then."""
    key = (cwd, tuple(args))
    if key in _STARTED:
        return
    try:
        _STARTED[key] = subprocess.Popen(
            ["git", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError:
        pass  # no git, no such folder: the _run that needs it says so


def forget_started() -> None:
    """End the git processes started ahead whose answer no call took (the command stopped
    before it asked), reaping them."""
    while _STARTED:
        _key, proc = _STARTED.popitem()
        proc.kill()
        proc.communicate()


def _run(
    args: Sequence[str], cwd: str, check: bool = True, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    started = _STARTED.pop((cwd, tuple(args)), None) if stdin is None else None
    try:
        if started is not None:
            stdout, stderr = started.communicate()
            proc = subprocess.CompletedProcess(started.args, started.returncode, stdout, stderr)
        else:
            proc = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, check=False, input=stdin
            )
    except FileNotFoundError:
        raise GitError("git is not installed", "install git, or use `mlv init --no-scm`") from None
    if check and proc.returncode != 0:
        text = proc.stderr.decode("utf-8", "replace")
        log.debug(__name__, f"git {' '.join(args)} exited {proc.returncode}: {text.strip()}")
        locked = _LOCK_EXISTS.search(text)
        if locked:
            path = os.path.normpath(os.path.join(cwd, locked.group(1)))
            raise GitError(
                f"git {args[0]} failed: another git process seems to be running "
                f"({_short(path, cwd)} exists)",
                f"if none is, remove {path}",
            )
        err = text.strip().splitlines()
        detail = err[-1] if err else f"exit {proc.returncode}"
        raise GitError(f"git {args[0]} failed: {detail}")
    return proc


# "fatal: Unable to create '/repo/.git/index.lock': File exists." (git's own wording)
_LOCK_EXISTS = re.compile(r"Unable to create '([^'\n]+\.lock)': File exists")


def _short(path: str, cwd: str) -> str:
    """path relative to cwd when it lies below it (".git/index.lock"), else as it is."""
    rel = os.path.relpath(path, cwd)
    return path if rel.startswith("..") else rel


def dot_git(path: str) -> str | None:
    """The `.git` (a folder, or the file of a linked worktree or submodule) of the git work
    tree that path lies in: path's own or its nearest parent's; None outside git. Only
    lstat calls, no process: the security checks ask it on every command."""
    cur = path
    while True:
        candidate = os.path.join(cur, ".git")
        if os.path.lexists(candidate):
            return candidate
        parent = os.path.dirname(cur)
        if parent == cur:
            return None
        cur = parent


def toplevel(start: str) -> str | None:
    """The root of the git work tree containing start, or None outside git."""
    proc = _run(["rev-parse", "--show-toplevel"], start, check=False)
    if proc.returncode != 0:
        return None
    return os.path.realpath(proc.stdout.decode("utf-8", "surrogateescape").strip())


def work_tree_and_git_dirs(start: str) -> tuple[str | None, list[str]]:
    """The root of the git work tree containing start and the git folders in effect there
    (`git rev-parse --git-dir --git-common-dir`: .git, the folder a `.git` file names, a
    linked worktree's and the common one), real paths; (None, []) outside git. One
    process."""
    args = ["rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir"]
    proc = _run([*args, "--show-toplevel"], start, check=False)
    lines = proc.stdout.decode("utf-8", "surrogateescape").splitlines()
    if proc.returncode != 0 or len(lines) < 3:
        return None, []
    return os.path.realpath(lines[2]), sorted({os.path.realpath(p) for p in lines[:2]})


def tracked(root: str, paths: Sequence[str]) -> list[str]:
    """Those of paths (relative to root) that git tracks, or that have tracked files inside."""
    if not paths:
        return []
    proc = _run(["ls-files", "-z", "--cached", "--", *[":(literal)" + p for p in paths]], root)
    found = [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]
    hits = []
    for p in paths:
        prefix = p.rstrip("/") + "/"
        if any(f == p or f.startswith(prefix) for f in found):
            hits.append(p)
    return hits


def ignored(root: str, paths: Sequence[str]) -> list[str]:
    """Those of paths (relative to root) that git ignores and does not track: a commit
    leaves them out (tracked files are never ignored)."""
    if not paths:
        return []
    proc = _run(["check-ignore", "-z", "--stdin"], root, check=False, stdin=_z(paths))
    if proc.returncode not in (0, 1):  # 1: none is ignored
        return []
    found = set(proc.stdout.decode("utf-8", "surrogateescape").split("\0"))
    return [p for p in paths if p in found]


def _z(paths: Sequence[str]) -> bytes:
    return "".join(p + "\0" for p in paths).encode("utf-8", "surrogateescape")


def tracked_files(root: str, paths: Sequence[str]) -> list[str]:
    """The files git tracks at or below paths (relative to root)."""
    proc = _run(_tracked_files_args(paths), root)
    return [p for p in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if p]


def start_tracked_files(root: str, paths: Sequence[str]) -> None:
    """Ask tracked_files(root, paths) ahead (see _start)."""
    _start(_tracked_files_args(paths), root)


def index_states(root: str, paths: Sequence[str]) -> dict[str, str]:
    """For each of paths (files relative to root) that git tracks, how its work-tree copy
    stands with git: "clean" (what the index holds: git would commit it as it is),
    "unstaged" (edits not staged), "skip-worktree" or "assume-unchanged" (git is told never
    to look at it: the usual way to keep local credentials in a tracked template). Paths
    git does not track are left out. Two processes: `git ls-files -v`
    (its tags: H, S, lower case for assume-unchanged) and a `git diff --name-only`, which
    compares contents where only the stat data differ (a touched file stays clean) and
    writes nothing (--no-optional-locks)."""
    if not paths:
        return {}
    specs = [":(literal)" + p for p in paths]
    proc = _run(["ls-files", "-z", "-v", "--cached", "--", *specs], root)
    states: dict[str, str] = {}
    for record in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        tag, _, name = record.partition(" ")
        if not name:
            continue
        if tag.islower():
            states[name] = "assume-unchanged"
        elif tag == "S":
            states[name] = "skip-worktree"
        else:  # H; an unmerged path's stages, git diff names it below
            states[name] = "clean"
    clean = [":(literal)" + p for p, state in states.items() if state == "clean"]
    if clean:
        args = ["--no-optional-locks", "diff", "--name-only", "-z", "--relative"]
        args += ["--no-ext-diff", "--no-textconv", "--ignore-submodules", "--", *clean]
        proc = _run(args, root)
        for name in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
            if name in states:
                states[name] = "unstaged"
    return states


def _tracked_files_args(paths: Sequence[str]) -> list[str]:
    return ["ls-files", "-z", "--cached", "--", *[":(literal)" + p for p in paths]]


def tracked_links(root: str) -> set[str]:
    """The paths (relative to root) of every symbolic link in the index: what a commit or a
    clone puts there (`git ls-files -s`, mode 120000). One process for the whole index."""
    proc = _run(["ls-files", "-s", "-z"], root)
    out = set()
    for record in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if record.startswith("120000 "):
            out.add(record.partition("\t")[2])
    return out


def add(root: str, paths: Sequence[str]) -> None:
    """Stage files mlv wrote (pointers, .gitignore). Forced: a broad pattern in the user's
    .gitignore (say `data*`) must not keep a pointer out of git."""
    existing = [p for p in paths if os.path.lexists(os.path.join(root, p))]
    if existing:
        _run(["add", "-f", "--", *[":(literal)" + p for p in existing]], root)


def remove_cached(root: str, paths: Sequence[str]) -> None:
    """Unstage and stop tracking (keeps the working file), quietly skipping untracked paths."""
    if paths:
        _run(
            ["rm", "-q", "--cached", "--ignore-unmatch", "--", *[":(literal)" + p for p in paths]],
            root,
        )


def list_files(root: str, pattern: str) -> list[str]:
    """Tracked and untracked-but-not-ignored files matching a pathspec glob."""
    proc = _run(_list_files_args(pattern), root)
    names = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted({n for n in names if n})


def start_list_files(root: str, pattern: str) -> None:
    """Ask list_files(root, pattern) ahead (see _start)."""
    _start(_list_files_args(pattern), root)


def _list_files_args(pattern: str) -> list[str]:
    return ["ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", pattern]


def init(path: str) -> None:
    _run(["init", "-q"], path)


def _revs(*revs: str) -> None:
    """Refuse a revision that git would read as an option (`--output=FILE` makes `git log`
    write a file): revisions come from the command line and from committed pointers."""
    for rev in revs:
        if rev.startswith("-"):
            raise GitError(f"unknown revision '{rev}'", "name a commit, branch or tag that exists")


def rev_parse(root: str, rev: str) -> str:
    """The full commit id of rev; a clear error when git does not know it."""
    _revs(rev)
    proc = _run(["rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], root, check=False)
    if proc.returncode != 0:
        if re.match(r"HEAD($|[~^@])", rev) and not _has_head(root):
            # a new repository: "unknown revision 'HEAD'" read as if HEAD were mistyped
            raise GitError(
                f"'{rev}' names no commit: this repository has no commits yet",
                "record the first with `git commit`",
            )
        raise GitError(f"unknown revision '{rev}'", "name a commit, branch or tag that exists")
    return proc.stdout.decode().strip()


def _has_head(root: str) -> bool:
    return _run(["rev-parse", "--verify", "-q", "HEAD"], root, check=False).returncode == 0


def ref_names(root: str) -> dict[str, list[str]]:
    """Commit id -> the local branches, then the tags, at it (short names, sorted)."""
    proc = _run(
        [
            "for-each-ref",
            "--format=%(objectname) %(*objectname) %(refname)",
            "refs/heads",
            "refs/tags",
        ],
        root,
    )
    found: dict[str, list[str]] = {}
    for line in sorted(proc.stdout.decode("utf-8", "surrogateescape").splitlines()):
        obj, peeled, ref = line.split(" ", 2)
        kind, _, name = ref[len("refs/") :].partition("/")
        found.setdefault(peeled or obj, []).append(("0" if kind == "heads" else "1") + name)
    return {c: [n[1:] for n in sorted(names)] for c, names in found.items()}


def refs(root: str, kind: str) -> list[str]:
    """Commit ids at the tips of every branch (kind "heads") or tag ("tags")."""
    proc = _run(["for-each-ref", "--format=%(objectname) %(objecttype)", f"refs/{kind}"], root)
    ids = []
    for line in proc.stdout.decode().splitlines():
        oid, _, objtype = line.partition(" ")
        ids.append(oid if objtype == "commit" else rev_parse(root, oid))
    return sorted(set(ids))


def stash_commits(root: str) -> list[str]:
    """The commits that hold the work of every stash entry (stash@{0}, stash@{1}...): each
    entry's workspace commit and its index and untracked-files parents, not the commit the
    stash was made on. Older entries live only in refs/stash's reflog: `--all` misses them."""
    proc = _run(["log", "-g", "--format=%H %P", "refs/stash", "--"], root, check=False)
    if proc.returncode != 0:  # no stash
        return []
    found: set[str] = set()
    for line in proc.stdout.decode().splitlines():
        commit, *parents = line.split()
        found.add(commit)
        found.update(parents[1:])
    return sorted(found)


def all_commits(root: str) -> list[str]:
    proc = _run(["rev-list", "--all"], root, check=False)
    return sorted(set(proc.stdout.decode().split()))


def files_at(root: str, rev: str, suffix: str) -> list[str]:
    """Paths of files ending in suffix in the tree of commit rev."""
    _revs(rev)
    proc = _run(["ls-tree", "-r", "-z", "--name-only", rev], root)
    names = proc.stdout.decode("utf-8", "surrogateescape").split("\0")
    return [n for n in names if n.endswith(suffix) and len(n) > len(suffix)]


BLOB_LIMIT = 64 << 20  # the most read_blobs holds of one file (as localfs.SMALL_FILE_LIMIT)


def read_blobs(root: str, specs: Sequence[str], limit: int | None = BLOB_LIMIT) -> dict[str, bytes]:
    """Contents of "REV:PATH" specs through one `git cat-file --batch` process.

    History is untrusted: a commit may hold a file of any size under a name mlv parses (a
    pointer, mlv.yaml, params.yaml), and its compressed blob may be tiny. So the output is
    read as it comes and a blob larger than limit is refused before it is held (GitError
    naming it); limit=None is for a file the user asked for by name.
    """
    if not specs:
        return {}
    import threading

    payload = "".join(s + "\n" for s in specs).encode("utf-8", "surrogateescape")
    try:
        proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GitError("git is not installed") from None
    assert proc.stdin is not None and proc.stdout is not None
    stdin, out = proc.stdin, proc.stdout

    def feed() -> None:  # in a thread: git answers while it reads, and pipes are bounded
        try:
            stdin.write(payload)
            stdin.close()
        except OSError:  # git exited (killed below, or failed): the reader sees it
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    blobs: dict[str, bytes] = {}
    try:
        for spec in specs:
            header = out.readline().split()
            if not header:
                raise GitError(f"git cat-file stopped before {spec}")
            if len(header) < 3 or header[-1] == b"missing":
                continue
            size = int(header[2]) if header[2].isdigit() else -1
            if size < 0 or (limit is not None and size > limit):
                rev = spec.partition(":")[0]
                look = f"git show --stat {rev}" if rev else "git status"
                raise GitError(
                    f"{spec}: {size} bytes, more than the {(limit or 0) >> 20} MiB mlv reads "
                    "of a file it parses",
                    f"see what that commit holds: `{look}`",
                )
            data = out.read(size + 1)  # the blob and its newline
            if len(data) != size + 1:
                raise GitError(f"git cat-file stopped inside {spec}")
            blobs[spec] = data[:size]
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        out.close()
        writer.join()
    return blobs


def tree_sizes(root: str, rev: str) -> dict[str, int]:
    """Every file in the tree of commit rev, with its size (`git ls-tree -r -l`)."""
    _revs(rev)
    proc = _run(["ls-tree", "-r", "-l", "-z", rev], root)
    sizes: dict[str, int] = {}
    for record in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not record:
            continue
        meta, _, name = record.partition("\t")
        fields = meta.split()
        if len(fields) == 4 and fields[1] == "blob":
            sizes[name] = int(fields[3]) if fields[3].isdigit() else 0
    return sizes


def changed_files(root: str, old: str, new: str, pattern: str) -> list[str]:
    """Paths matching a pathspec glob whose content differs between two commits."""
    _revs(old, new)
    proc = _run(["diff", "--name-only", "--no-renames", "-z", old, new, "--", pattern], root)
    return [n for n in proc.stdout.decode("utf-8", "surrogateescape").split("\0") if n]


def log_path(
    root: str, paths: Sequence[str], rev: str = "HEAD", limit: int | None = None
) -> list[tuple[str, int, str, str]]:
    """Commits (newest first) that changed any of paths: (id, commit time, author, subject)."""
    _revs(rev)
    args = ["log", "--format=%H%x00%ct%x00%an%x00%s", "--no-renames"]
    if limit is not None:
        args.append(f"-n{limit}")
    proc = _run([*args, rev, "--", *paths], root)
    out = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split("\0")
        if len(parts) == 4:
            out.append((parts[0], int(parts[1]), parts[2], parts[3]))
    return out


def staged_blobs(root: str, suffix: str) -> list[tuple[str, str]]:
    """(blob id, path) of every regular file in the index (any merge stage) whose path
    ends in suffix: what is staged, committed or not (`git ls-files -s`)."""
    proc = _run(["ls-files", "-s", "-z"], root)
    out = []
    for record in proc.stdout.decode("utf-8", "surrogateescape").split("\0"):
        meta, _, name = record.partition("\t")
        fields = meta.split()
        regular = len(fields) == 3 and fields[0].startswith("100")
        if regular and name.endswith(suffix) and len(name) > len(suffix):
            out.append((fields[1], name))
    return out


def hooks_dir(root: str) -> str:
    """The folder git runs hooks from (`git rev-parse --git-path hooks`): .git/hooks, the
    common one in a linked worktree, or core.hooksPath when set. Absolute."""
    proc = _run(["rev-parse", "--git-path", "hooks"], root)
    found = proc.stdout.decode("utf-8", "surrogateescape").rstrip("\n")
    return os.path.normpath(os.path.join(root, found))


_COMMAND_TRANSPORT = re.compile(r"(?i)(ext|fd)::")


def clone(url: str, dest: str, cwd: str) -> None:
    """`git clone --quiet --no-checkout url dest`, never prompting for credentials. A
    failure raises GitError with git's last message line (which may hold the URL: callers
    scrub secrets from it).

    The URL may come from a committed pointer (`mlv update`): one that git would read as an
    option is refused, and so are the transports that run a command (`ext::CMD`, `fd::`),
    whatever the user's git config allows (git refuses ext by default, a config may not)."""
    if url.startswith("-"):
        raise GitError(f"'{url}' is not a repository URL or path")
    if _COMMAND_TRANSPORT.match(url):
        raise GitError(
            f"'{url.partition('::')[0]}::' URLs run a command: mlv never clones through them"
        )
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0")
    never = ["-c", "protocol.ext.allow=never", "-c", "protocol.fd.allow=never"]
    try:
        proc = subprocess.run(
            ["git", *never, "clone", "--quiet", "--no-checkout", "--", url, dest],
            cwd=cwd,
            capture_output=True,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise GitError("git is not installed", "install git") from None
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        fatal = [line for line in lines if line.startswith(("fatal: ", "error: "))]
        detail = (fatal or lines or [f"exit {proc.returncode}"])[0]
        for prefix in ("fatal: ", "error: "):
            detail = detail.removeprefix(prefix)
        raise GitError(detail)


def log_commits(
    root: str,
    revs: Sequence[str] = ("HEAD",),
    limit: int | None = None,
    first_parent: bool = False,
    all_refs: bool = False,
    walk: bool = True,
    branches_and_tags: bool = False,
) -> list[tuple[str, int, str, str]]:
    """Commits as `git log` lists them: (id, commit time, author, subject), newest first.

    all_refs: every commit of every ref (`--all`, revs ignored); branches_and_tags: every
    commit of every branch, remote-tracking branch and tag, and of revs (`--branches
    --tags --remotes REVS`: no stash, notes or other refs); walk=False: just the commits
    revs name, in the order given (`--no-walk=unsorted`)."""
    _revs(*revs)
    args = ["log", "--format=%H%x00%ct%x00%an%x00%s"]
    if limit is not None:
        args.append(f"-n{limit}")
    if first_parent:
        args.append("--first-parent")
    if not walk:
        args.append("--no-walk=unsorted")
    if all_refs:
        args.append("--all")
    else:
        if branches_and_tags:
            args += ["--branches", "--tags", "--remotes"]
        args += list(revs)
    proc = _run([*args, "--"], root)
    out = []
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        parts = line.split("\0")
        if len(parts) == 4:
            out.append((parts[0], int(parts[1]), parts[2], parts[3]))
    return out
