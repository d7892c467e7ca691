"""Helpers for the end-to-end tests: run `mlv` (and git), inspect the results.

Imported by tests as `from helpers import ...` (pytest puts tests/ on sys.path for the
rootdir conftest).

`mlv(...)` runs the CLI in the test's own process by default (`mlv.cli.main` with file
descriptors 0, 1 and 2, sys.std*, sys.argv, the working directory and the environment
swapped for the call), which saves the ~0.15 s of a process start per command. It returns
what the process would have given: the same exit code and the same bytes on stdout and stderr,
those of git and of pipeline commands included. What only a process shows (signals and
kills, locks held by another process, a terminal, start-up time, environment variables read
at import) runs the installed console script: `mlv_process(...)` or `mlv(..., process=True)`.
MLV_TESTS_IN_PROCESS=0 in the environment of pytest runs every command as a process.
"""

from __future__ import annotations

import contextlib
import locale
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import xxhash
import yaml


def _find_mlv() -> str:
    # Prefer the console script installed for the interpreter running the tests (the same
    # one pip installed mlv into), then whatever `mlv` is on PATH.
    here = os.path.dirname(sys.executable)
    found = shutil.which("mlv", path=here + os.pathsep + os.environ.get("PATH", ""))
    if found is None:
        raise RuntimeError("the `mlv` command is not installed: pip install -e '.[test]'")
    return found


MLV = _find_mlv()
GIT = shutil.which("git") or "git"

PathLike = str | os.PathLike[str]


IN_PROCESS = os.environ.get("MLV_TESTS_IN_PROCESS", "1") != "0"


def run(
    *args: str | os.PathLike[str],
    cwd: PathLike,
    check: bool = True,
    input: str | None = None,
    timeout: float = 120,
    env: Mapping[str, str | None] | None = None,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run `mlv ...` or `git ...` (args[0] names the program) in cwd; text output.

    check=True fails the test (showing both streams) unless the exit code is 0. env: variables
    to set (None: to remove) on top of the test's environment, for this command only. `mlv`
    runs in-process (see the module's docstring) unless process=True.
    """
    prog, *rest = (os.fspath(a) for a in args)
    if prog == "mlv" and IN_PROCESS and not process:
        proc = run_in_process(rest, cwd=cwd, input=input, timeout=timeout, env=env)
    else:
        exe = {"mlv": MLV, "git": GIT}.get(prog, prog)
        proc = subprocess.run(
            [exe, *rest],
            cwd=cwd,
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            check=False,
            env=None if env is None else _environ(env),
        )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{prog} {' '.join(rest)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
        )
    return proc


def mlv(
    *args: str | os.PathLike[str], cwd: PathLike, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """`mlv ARGS` in cwd, in-process unless process=True; see run()."""
    return run("mlv", *args, cwd=cwd, **kw)


def mlv_process(
    *args: str | os.PathLike[str], cwd: PathLike, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """`mlv ARGS` in cwd as its own process (the installed console script): for what only a
    process shows (signals, locks between processes, start-up, stdin and terminals)."""
    return run("mlv", *args, cwd=cwd, process=True, **kw)


def _environ(env: Mapping[str, str | None]) -> dict[str, str]:
    out = dict(os.environ)
    for name, value in env.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return out


# Python's warning filters in a fresh process (no -W, no PYTHONWARNINGS): the command sees
# these, not pytest's filterwarnings=error, and prints what a process would print.
_PROCESS_FILTERS: list[tuple[str, type[Warning], str]] = [
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, ""),
    ("ignore", PendingDeprecationWarning, ""),
    ("ignore", ImportWarning, ""),
    ("ignore", ResourceWarning, ""),
]


@contextlib.contextmanager
def _process_like_warnings() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category, module in _PROCESS_FILTERS:
            warnings.filterwarnings(action, category=category, module=module)  # type: ignore[arg-type]
        yield


@contextlib.contextmanager
def _environment(env: Mapping[str, str | None] | None) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env or {}}
    try:
        for name, value in (env or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _std_streams(stdin: bytes) -> Iterator[tuple[Any, Any]]:
    """File descriptors 0, 1 and 2 and sys.stdin/stdout/stderr on temporary files for the
    block (git and stage commands inherit them, as from a process); yields (out, err)."""
    with tempfile.TemporaryFile() as inp, tempfile.TemporaryFile() as out, \
            tempfile.TemporaryFile() as err:  # fmt: skip
        inp.write(stdin)
        inp.seek(0)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved_fds = [os.dup(fd) for fd in (0, 1, 2)]
        saved_streams = (sys.stdin, sys.stdout, sys.stderr)
        try:
            for fd, f in zip((0, 1, 2), (inp, out, err), strict=True):
                os.dup2(f.fileno(), fd)
            # As Python sets them up for pipes: stdout block-buffered, stderr line-buffered.
            sys.stdin = open(0, encoding="utf-8", errors="surrogateescape", closefd=False)  # noqa: SIM115
            sys.stdout = open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)  # noqa: SIM115
            sys.stderr = open(  # noqa: SIM115
                2, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
            )
            yield out, err
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            for stream in (sys.stdin, sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.close()
            sys.stdin, sys.stdout, sys.stderr = saved_streams
            for fd, saved in zip((0, 1, 2), saved_fds, strict=True):
                os.dup2(saved, fd)
                os.close(saved)


def _forget_filesystems() -> None:
    """fsspec keeps one filesystem per class and options for the process's life; a process
    would start with none (and a test's endpoint, in AWS_ENDPOINT_URL, is not in the key)."""
    fsspec = sys.modules.get("fsspec")
    if fsspec is None:
        return
    todo = [fsspec.AbstractFileSystem]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        cls.clear_instance_cache()


def _text(data: bytes) -> str:
    """Bytes as subprocess.run(text=True) decodes them (universal newlines)."""
    text = data.decode(locale.getpreferredencoding(False))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def run_in_process(
    args: list[str],
    cwd: PathLike,
    input: str | None = None,
    timeout: float | None = None,
    env: Mapping[str, str | None] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`mlv ARGS` through mlv.cli.main in this process, as a process would run it: stdin
    holds `input` (else nothing), stdout and stderr are captured, sys.argv is the command's,
    the cwd and the environment are restored after. Past `timeout` the command gets a
    KeyboardInterrupt (as from Ctrl-C) and subprocess.TimeoutExpired is raised."""
    from mlv.cli import main

    fired = threading.Event()
    done = threading.Lock()

    def interrupt() -> None:
        with done:
            fired.set()
            # A real signal (not _thread.interrupt_main): it ends a wait for a child too.
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    saved_argv, saved_cwd = sys.argv, os.getcwd()
    with _environment(env), _std_streams((input or "").encode()) as (out, err):
        code: Any = 0
        timer = threading.Timer(timeout, interrupt) if timeout else None
        try:
            sys.argv = ["mlv", *args]
            os.chdir(cwd)
            with _process_like_warnings():
                if timer is not None:
                    timer.start()
                try:
                    main(list(args))
                except SystemExit as e:
                    code = e.code
                finally:
                    if timer is not None:
                        timer.cancel()
                        done.acquire()  # no interrupt from now on; one sent is delivered
                        done.release()
        except KeyboardInterrupt:
            if not fired.is_set():
                raise
        finally:
            sys.argv = saved_argv
            os.chdir(saved_cwd)
            _forget_filesystems()
        if code is None:
            code = 0
        elif not isinstance(code, int):  # sys.exit("message"), as Python shows it
            sys.stderr.write(f"{code}\n")
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(
            ["mlv", *args], code, _text(out.read()), _text(err.read())
        )
    if fired.is_set():
        raise subprocess.TimeoutExpired(proc.args, timeout or 0, proc.stdout, proc.stderr)
    return proc


def git(
    *args: str | os.PathLike[str], cwd: PathLike, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return run("git", *args, cwd=cwd, **kw)


def unprivileged_prefix() -> list[str]:
    """A command prefix under which file modes apply. Tests run as root here, and root ignores
    them: as root the command runs (still uid 0, so it can reach root's Python and the
    tests' folders) without the capabilities that bypass file modes (dac_override,
    dac_read_search), so a file with mode 0 is unreadable and a 0o555 folder unwritable to
    it. Skips the test when running as root without util-linux's setpriv."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        import pytest

        pytest.skip("running as root without setpriv: file modes cannot be tested")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search"]


def run_unprivileged(
    *args: str | os.PathLike[str], cwd: PathLike, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Like run(), but file permissions apply to the command even when the tests run as root
    (see unprivileged_prefix): `run_unprivileged("mlv", "checkout", cwd=repo, check=False)`.
    chmod what should be unreadable or unwritable before, and restore modes in a finally."""
    prog, *rest = (os.fspath(a) for a in args)
    exe = {"mlv": MLV, "git": GIT}.get(prog, prog)
    return run(*unprivileged_prefix(), exe, *rest, cwd=cwd, **kw)


_REPORTS_CLICK = (
    "import sys\n"
    "from mlv.cli import main\n"
    "try:\n"
    "    main()\n"
    "finally:\n"
    "    sys.stderr.write(f\"click loaded: {'click' in sys.modules}\\n\")\n"
)


def mlv_reporting_click(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`mlv ARGS` in a process of its own (only a fresh interpreter shows which modules a
    command imports) whose stderr ends with `click loaded: True|False`."""
    return subprocess.run(
        [sys.executable, "-c", _REPORTS_CLICK, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def push_commit_clone(author: Path, tmp_path: Path) -> Path:
    """Push author's data, commit everything, and clone it to tmp_path/victim: the
    repository a victim of a hostile author gets."""
    mlv("push", cwd=author)
    git("add", "-A", cwd=author)
    git("commit", "-q", "-m", "hostile", cwd=author)
    victim = tmp_path / "victim"
    git("clone", "-q", str(author), str(victim), cwd=tmp_path)
    return victim


def assert_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The command failed with `code` and printed exactly one line on stderr, starting with
    "error:", no traceback, containing every needle. Returns that line."""
    assert proc.returncode == code, (
        f"exit {proc.returncode}, expected {code}\n--- stdout\n{proc.stdout}"
        f"--- stderr\n{proc.stderr}"
    )
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    line = lines[0]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def xxh(data: bytes) -> str:
    return "xxh128:" + xxhash.xxh3_128_hexdigest(data)


def object_path(repo: Path, hash_id: str, cache: Path | None = None) -> Path:
    algo, _, hexpart = hash_id.partition(":")
    return (cache or repo / ".mlv" / "cache") / algo / hexpart[:2] / hexpart[2:]


def is_tmp_name(name: str) -> bool:
    return name.startswith(".mlvtmp-")


def cache_objects(repo: Path, cache: Path | None = None) -> dict[str, Path]:
    """Every object in the cache's xxh128 store: hash id -> file (temporaries skipped)."""
    root = (cache or repo / ".mlv" / "cache") / "xxh128"
    found: dict[str, Path] = {}
    if not root.is_dir():
        return found
    for prefix in sorted(root.iterdir()):
        assert prefix.is_dir() and len(prefix.name) == 2, f"stray entry in the cache: {prefix}"
        for obj in sorted(prefix.iterdir()):
            if is_tmp_name(obj.name):
                continue
            found[f"xxh128:{prefix.name}{obj.name}"] = obj
    return found


def assert_cache_sound(repo: Path, cache: Path | None = None) -> dict[str, Path]:
    """Every object in the cache hashes to its own name (none is half-written)."""
    objects = cache_objects(repo, cache)
    for hash_id, path in objects.items():
        assert xxh(path.read_bytes()) == hash_id, f"object {path} does not match its name"
    return objects


def read_pointer(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(doc, dict), path
    return doc


def write_files(root: Path, files: Mapping[str, bytes | str | None]) -> None:
    """Create files (bytes or text) and, for a None value, empty folders."""
    for rel, content in files.items():
        path = root / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode("utf-8")
        path.write_bytes(content)


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path below root: file -> bytes, folder -> "<dir>", symlink -> "<link:target>"."""
    out: dict[str, bytes | str] = {}
    if not root.exists():
        return out
    if root.is_file():
        return {".": root.read_bytes()}
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        for d in dirs:
            p = base / d
            rel = p.relative_to(root).as_posix()
            out[rel] = f"<link:{os.readlink(p)}>" if p.is_symlink() else "<dir>"
        for f in files:
            p = base / f
            rel = p.relative_to(root).as_posix()
            out[rel] = f"<link:{os.readlink(p)}>" if p.is_symlink() else p.read_bytes()
    return out


def staged(repo: Path) -> list[str]:
    """Paths staged in git's index relative to HEAD (exact names, no quoting)."""
    out = git("diff", "--cached", "--name-only", "-z", cwd=repo).stdout
    return sorted(p for p in out.split("\0") if p)


def index_files(repo: Path) -> list[str]:
    out = git("ls-files", "-z", cwd=repo).stdout
    return sorted(p for p in out.split("\0") if p)


def status_json(repo: Path, *paths: str, cwd: Path | None = None) -> dict[str, Any]:
    import json

    proc = mlv("status", "--json", *paths, cwd=cwd or repo, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert isinstance(doc, dict)
    return doc


def target_status(repo: Path, path: str) -> dict[str, Any]:
    """The --json status entry for one tracked path."""
    doc = status_json(repo)
    for t in doc["targets"]:
        if t["path"] == path:
            assert isinstance(t, dict)
            return t
    raise AssertionError(f"{path} not in status: {doc}")


def commit_all(repo: Path, message: str = "snapshot") -> None:
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)


def commit_images(repo: Path) -> None:
    """A committed repository with two targets: the folder data/images (a.jpg, b.jpg) and the
    file model.pt."""
    write_files(repo, {"data/images/a.jpg": "a", "data/images/b.jpg": "b", "model.pt": "m"})
    mlv("add", "data/images", "model.pt", cwd=repo)
    commit_all(repo, "v1")


def plant_temporary(path: Path, age_s: float) -> Path:
    """A temporary as a killed writer leaves it, last written age_s ago."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"half an object")
    when = time.time() - age_s
    os.utime(path, (when, when))
    return path


# ---- folder remotes: loose objects and packs (docs/formats.md, remote format version 1) ----


def loose_objects(remote: Path) -> dict[str, Path]:
    """hash id -> file, for every loose object (ALGO/XX/REST) on a folder remote."""
    found: dict[str, Path] = {}
    for algo in ("xxh128", "sha256"):
        for path in (remote / algo).glob("*/*"):
            if path.is_file() and not is_tmp_name(path.name):
                found[f"{algo}:{path.parent.name}{path.name}"] = path
    return found


def packed_objects(remote: Path) -> dict[str, tuple[Path, int, int]]:
    """hash id -> (pack file, offset, stored length), for every object that an index of a
    folder remote names (read with mlv's own index parser, which checks each index)."""
    from mlv.objects.packs.index import PackIndex

    found: dict[str, tuple[Path, int, int]] = {}
    for idx in sorted((remote / "index").glob("*.idx")):
        index = PackIndex.parse(idx.stem, idx.read_bytes())
        for h, loc in index.items():
            pack = remote / "packs" / loc.pack.name[:2] / f"{loc.pack.name}.pack"
            if h not in found or not found[h][0].exists():  # a copy in a pack still there
                found[h] = (pack, loc.offset, loc.stored)
    return found


def entry_codecs(remote: Path) -> dict[str, tuple[int, int]]:
    """hash id -> (codec, length) of the copy packed_objects names."""
    from mlv.objects.packs.index import PackIndex

    found: dict[str, tuple[Path, int, int]] = {}
    for idx in sorted((remote / "index").glob("*.idx")):
        for h, loc in PackIndex.parse(idx.stem, idx.read_bytes()).items():
            pack = remote / "packs" / loc.pack.name[:2] / f"{loc.pack.name}.pack"
            if h not in found or not found[h][0].exists():
                found[h] = (pack, loc.codec, loc.length)
    return {h: (codec, length) for h, (_, codec, length) in found.items()}


def decoded(stored: bytes, codec: int, length: int) -> bytes:
    """An entry's object from its stored bytes: a zstd frame decompressed (as mlv reads
    it); bytes that do not decode are returned as stored (damaged)."""
    from mlv.objects.packs.codec import CodecError, decode

    if codec != 1:
        return stored
    try:
        return decode(codec, stored, length)
    except CodecError:
        return stored


def chunked_objects(remote: Path) -> dict[str, int]:
    """hash id -> length, for every object that an index of a folder remote names as a
    chunk list (kind 2: a large object stored as content-defined chunks)."""
    from mlv.objects.packs.index import PackIndex

    found: dict[str, int] = {}
    for idx in sorted((remote / "index").glob("*.idx")):
        for h, loc in PackIndex.parse(idx.stem, idx.read_bytes()).items():
            if loc.kind == 2:
                found[h] = loc.length
    return found


def remote_objects(remote: Path) -> dict[str, bytes]:
    """hash id -> bytes, for every object on a folder remote, loose or packed (bytes as
    stored: a damaged object is returned damaged; one whose pack is gone is left out); a
    chunked object is its chunks put together (left out when one of them is missing)."""
    from mlv.objects.packs.chunks import ChunkList

    found = {h: p.read_bytes() for h, p in loose_objects(remote).items()}
    stored: dict[str, bytes] = {}  # chunks and chunk lists included
    codecs = entry_codecs(remote)
    for h, (pack, offset, length) in packed_objects(remote).items():
        if h in found or not pack.exists():
            continue
        with pack.open("rb") as fh:
            fh.seek(offset)
            stored[h] = decoded(fh.read(length), *codecs[h])
    chunked = chunked_objects(remote)
    for h, data in stored.items():
        if h not in chunked:
            found[h] = data
    chunks: set[str] = set()
    for h, length in chunked.items():
        if h not in stored or h in found:
            continue
        chunk_list = ChunkList.parse(stored[h], length, h.split(":")[0])
        chunks |= {ref.hash for ref in chunk_list.chunks}
        if all(ref.hash in stored for ref in chunk_list.chunks):
            found[h] = b"".join(stored[ref.hash] for ref in chunk_list.chunks)
    return {h: data for h, data in found.items() if h not in chunks}  # objects, not chunks


def remove_remote_object(remote: Path, hash_id: str) -> set[str]:
    """Delete an object from a folder remote behind mlv's back: its loose file, and the
    pack holding it (with every other object of that pack). The hashes lost."""
    lost = set()
    loose = loose_objects(remote).get(hash_id)
    if loose is not None:
        loose.unlink()
        lost.add(hash_id)
    packed = packed_objects(remote)
    if hash_id in packed:
        pack = packed[hash_id][0]
        lost |= {h for h, (p, _, _) in packed.items() if p == pack}
        pack.unlink(missing_ok=True)
    return lost


def damage_remote_object(remote: Path, hash_id: str) -> None:
    """Flip the first byte of an object on a folder remote, loose or packed (bit rot)."""
    loose = loose_objects(remote).get(hash_id)
    if loose is not None:
        loose.chmod(0o644)
        data = bytearray(loose.read_bytes())
        data[0] ^= 0xFF
        loose.write_bytes(bytes(data))
        return
    pack, offset, _ = packed_objects(remote)[hash_id]
    pack.chmod(0o644)
    with pack.open("r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0xFF]))
