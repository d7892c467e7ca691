"""Helpers for the end-to-end tests: run the installed `mlv` (and git), inspect the results.

Imported by tests as `from helpers import ...` (pytest puts tests/ on sys.path for the
rootdir conftest).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
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


def run(
    *args: str | os.PathLike[str],
    cwd: PathLike,
    check: bool = True,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run `mlv ...` or `git ...` (args[0] names the program) in cwd; text output.

    check=True fails the test (showing both streams) unless the exit code is 0.
    """
    prog, *rest = (os.fspath(a) for a in args)
    exe = {"mlv": MLV, "git": GIT}.get(prog, prog)
    proc = subprocess.run(
        [exe, *rest],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        check=False,
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
    return run("mlv", *args, cwd=cwd, **kw)


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
