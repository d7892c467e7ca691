"""Hostile names and paths in committed files (issue 13, items 1, 3 and 9 and their kin).

Each test builds, with real git, a repository whose pointers, trees, mlv.yaml or config name
a place mlv must never write (git's folder in any spelling git refuses, mlv's own folder, a
name that splits a .gitignore line, a git URL that runs a command, a cache outside the
repository), clones it as a user would, runs the commands a user runs, and checks what the
user would notice: the exit code, the one-line error naming the file, and that nothing
under .git/ or outside the clone changed or appeared. Objects are written with their true
hash names, so the only thing wrong is the hostile content.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import xxhash
from helpers import assert_error, git, mlv, snapshot, write_files, xxh

# Spellings of `.git` that git refuses in its index (core.protectNTFS, core.protectHFS):
# on a case-insensitive or NTFS volume each one is the repository's .git folder.
GIT_SPELLINGS = [".git", ".GIT", ".Git", ".git.", ".git ", ".git...", "git~1", "GIT~1",
                 ".g\u200cit", "\ufeff.git", ".git::$INDEX_ALLOCATION"]  # fmt: skip


def _ids(names: list[str]) -> list[str]:
    return [n.encode("unicode_escape").decode() for n in names]


def _object(remote: Path, data: bytes) -> str:
    """Store data on the folder remote under its hash; returns the hash id."""
    hash_id = xxh(data)
    hexpart = hash_id.partition(":")[2]
    path = remote / "xxh128" / hexpart[:2] / hexpart[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hash_id


def _tree(remote: Path, entries: list[list[object]]) -> tuple[str, int, int]:
    """A tree object (canonical bytes, entries sorted by name) on the remote: (hash, size,
    files)."""
    rows = sorted(entries, key=lambda e: str(e[1]))
    doc = {"mlv-tree": 1, "entries": rows}
    data = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    size = sum(int(str(e[3])) for e in rows)
    files = sum(1 if e[0] == "file" else int(str(e[4])) for e in rows)
    return _object(remote, data), size, files


def _file_entry(remote: Path, name: str, data: bytes) -> list[object]:
    return ["file", name, _object(remote, data), len(data)]


def _dir_entry(remote: Path, name: str, entries: list[list[object]]) -> list[object]:
    hash_id, size, files = _tree(remote, entries)
    return ["dir", name, hash_id, size, files]


def _pointer(path: str, hash_id: str, size: int, files: int | None = None) -> str:
    kind = "file" if files is None else "dir"
    text = f"version: 1\npath: {json.dumps(path)}\nkind: {kind}\nhash: {hash_id}\nsize: {size}\n"
    return text + (f"files: {files}\n" if files is not None else "")


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Path]:
    """An author's repository with a folder remote, a sibling "outside" folder that must
    stay untouched, and where the victim's clone will go."""
    author = tmp_path / "author"
    author.mkdir()
    git("init", "-q", "-b", "main", cwd=author)
    mlv("init", "-q", cwd=author)
    remote = tmp_path / "remote"
    mlv("remote", "add", "-d", "store", str(remote), cwd=author)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine\n")
    return {"author": author, "remote": remote, "outside": outside, "victim": tmp_path / "v"}


def _publish(world: dict[str, Path], files: dict[str, str | bytes]) -> Path:
    """Commit files in the author's repository, clone it; returns the clone."""
    write_files(world["author"], files)
    git("add", "-A", cwd=world["author"])
    git("commit", "-q", "-m", "hostile", cwd=world["author"])
    git("clone", "-q", str(world["author"]), str(world["victim"]), cwd=world["author"].parent)
    return world["victim"]


def _fsmonitor_config(outside: Path) -> bytes:
    return (
        "[core]\n\trepositoryformatversion = 0\n\tbare = false\n"
        f"\tfsmonitor = touch {outside}/pwned\n"
    ).encode()


# ---- 1. pointers that name .git (or .mlv) -----------------------------------------------


@pytest.mark.parametrize("spelling", GIT_SPELLINGS, ids=_ids(GIT_SPELLINGS))
def test_pointer_into_git_is_refused_by_every_command(
    world: dict[str, Path], spelling: str
) -> None:
    payload = _fsmonitor_config(world["outside"])
    hash_id = _object(world["remote"], payload)
    hook = _object(world["remote"], f"#!/bin/sh\ntouch {world['outside']}/hooked\n".encode())
    victim = _publish(
        world,
        {
            "settings.mlv": _pointer(f"{spelling}/config", hash_id, len(payload)),
            "sub/hook.mlv": _pointer(f"../{spelling}/hooks/post-checkout", hook, 10),
            "deep/er.mlv": _pointer(f"x/{spelling}/config", hash_id, len(payload)),
        },
    )
    git_before = snapshot(victim / ".git")
    outside_before = snapshot(world["outside"])
    for args in (["pull"], ["pull", "--force"], ["checkout"], ["checkout", "--force"]):
        line = assert_error(mlv(*args, cwd=victim, check=False), 1, ".mlv: path ")
        assert "git's folder" in line or "leaves the pointer's folder" in line, line
    line = assert_error(mlv("pull", "settings.mlv", cwd=victim, check=False), 1)
    assert f"settings.mlv: path {f'{spelling}/config'!r} is inside .git" in line, line
    assert "git rm -f settings.mlv" in line
    line = assert_error(mlv("checkout", "--force", "deep/er.mlv", cwd=victim, check=False), 1)
    assert "deep/er.mlv: path" in line and "is inside .git" in line, line
    status = mlv("status", cwd=victim, check=False)
    assert status.returncode == 1 and "Traceback" not in status.stderr
    assert "settings.mlv" in status.stdout + status.stderr
    assert snapshot(victim / ".git") == git_before
    assert sorted(p.name for p in victim.iterdir()) == sorted(
        [".git", ".mlv", "deep", "settings.mlv", "sub"]
    )
    assert sorted(os.listdir(victim / "deep")) == ["er.mlv"]
    git("status", cwd=victim)  # would run the fsmonitor command of a replaced config
    assert snapshot(world["outside"]) == outside_before


@pytest.mark.parametrize("path", [".mlv/config.local.yaml", ".MLV/cache/x", "mlv~1/tmp/y"])
def test_pointer_into_mlv_folder_is_refused(world: dict[str, Path], path: str) -> None:
    payload = b"cache:\n  dir: /tmp\n"
    victim = _publish(
        world, {"evil.mlv": _pointer(path, _object(world["remote"], payload), len(payload))}
    )
    for args in (["pull", "--force"], ["checkout", "--force"]):
        assert_error(mlv(*args, cwd=victim, check=False), 1, "evil.mlv: path", "mlv's own folder")
    assert not (victim / ".mlv" / "config.local.yaml").exists()
    assert (victim / ".mlv" / "config.yaml").read_bytes() == (
        world["author"] / ".mlv" / "config.yaml"
    ).read_bytes()
    assert sorted(p.name for p in victim.iterdir()) == [".git", ".mlv", "evil.mlv"]


# ---- 3. tree entries named .git ---------------------------------------------------------


@pytest.mark.parametrize("spelling", GIT_SPELLINGS, ids=_ids(GIT_SPELLINGS))
def test_tree_entry_named_git_is_refused(world: dict[str, Path], spelling: str) -> None:
    remote, outside = world["remote"], world["outside"]
    nested = [
        _file_entry(remote, "HEAD", b"ref: refs/heads/main\n"),
        _file_entry(remote, "config", _fsmonitor_config(outside)),
        _dir_entry(remote, "objects", []),
        _dir_entry(remote, "refs", [_dir_entry(remote, "heads", [])]),
    ]
    hash_id, size, files = _tree(
        remote,
        [_file_entry(remote, "a.txt", b"a\n"), _dir_entry(remote, spelling, nested)],
    )
    victim = _publish(world, {"data.mlv": _pointer("data", hash_id, size, files)})
    outside_before = snapshot(outside)
    for args in (["pull"], ["pull", "--force"], ["checkout", "--force"]):
        proc = mlv(*args, cwd=victim, check=False)
        line = assert_error(proc, 1, "unsafe entry name")
        assert repr(spelling) in line, line
    assert not (victim / "data" / spelling).exists()
    # git status inside the folder finds the clone's own repository, never a planted one
    (victim / "data").mkdir(exist_ok=True)
    top = git("rev-parse", "--show-toplevel", cwd=victim / "data").stdout.strip()
    assert Path(top) == victim
    git("status", cwd=victim / "data")
    assert snapshot(outside) == outside_before


# Spellings of `.mlv` that a case-insensitive, NTFS or HFS+ volume takes for it.
MLV_SPELLINGS = [".mlv", ".MLV", ".mlv.", ".mlv ", "mlv~1", ".m\u200clv", ".mlv::$DATA"]


def _planted_config(outside: Path) -> bytes:
    """A config.local.yaml that, taken for this machine's, writes objects outside and runs
    a command at the next push."""
    return (
        f"core:\n  remote: evil\ncache:\n  dir: {outside}/cache\nremote:\n  evil:\n"
        f"    url: ssh://127.0.0.1:1/srv\n    proxy_command: touch {outside}/pwned\n"
    ).encode()


@pytest.mark.parametrize("spelling", MLV_SPELLINGS, ids=_ids(MLV_SPELLINGS))
def test_tree_entry_named_mlv_is_refused(world: dict[str, Path], spelling: str) -> None:
    """A tracked folder's tree held `.mlv/config.local.yaml`: `mlv pull` wrote it (mlv data,
    which git ignores), and `cd data && mlv push` took it for this machine's config: its
    cache.dir put objects outside, its proxy_command ran. Refused on load, as `.git` is."""
    remote, outside = world["remote"], world["outside"]
    planted = [
        _file_entry(remote, "config.local.yaml", _planted_config(outside)),
        _file_entry(remote, "config.yaml", b""),
    ]
    hash_id, size, files = _tree(
        remote, [_file_entry(remote, "f", b"hi\n"), _dir_entry(remote, spelling, planted)]
    )
    victim = _publish(world, {"data.mlv": _pointer("data", hash_id, size, files)})
    outside_before = snapshot(outside)
    for args in (["pull"], ["pull", "--force"], ["checkout", "--force"], ["ls", "-R", "data"]):
        line = assert_error(mlv(*args, cwd=victim, check=False), 1, "unsafe entry name")
        assert repr(spelling) in line, line
    assert not (victim / "data" / spelling).exists()
    (victim / "data").mkdir(exist_ok=True)
    (victim / "data" / "new.txt").write_text("new\n")
    mlv("push", cwd=victim / "data", check=False)
    assert snapshot(outside) == outside_before


def test_a_pointer_naming_a_mlv_below_the_root_is_refused(world: dict[str, Path]) -> None:
    """`sub/x.mlv` with `path: .mlv/config.local.yaml`, or `sub/.mlv.mlv` tracking the
    folder itself: the pull wrote sub/.mlv/, which `cd sub && mlv add` took for its
    repository. The hint (`git rm -f POINTER`) lets the rest be pulled."""
    remote, outside = world["remote"], world["outside"]
    payload = _planted_config(outside)
    folder = _tree(remote, [_file_entry(remote, "config.local.yaml", payload)])
    good = _object(remote, b"good\n")
    victim = _publish(
        world,
        {
            "sub/x.mlv": _pointer(".mlv/config.local.yaml", _object(remote, payload), len(payload)),
            "sub/.mlv.mlv": _pointer(".mlv", *folder),
            "sub/.MLV.mlv": _pointer(".MLV", *folder),
            "good.mlv": _pointer("good", good, 5),
        },
    )
    outside_before = snapshot(outside)
    for pointer in ("sub/x.mlv", "sub/.mlv.mlv", "sub/.MLV.mlv"):
        line = assert_error(
            mlv("pull", pointer, cwd=victim, check=False), 1, f"{pointer}: path", "mlv's own folder"
        )
        hint = re.search(r"`(git rm -f [^`]+)`", line)
        assert hint is not None, line
        git(*hint.group(1).split()[1:], cwd=victim)
    mlv("pull", cwd=victim)
    assert (victim / "good").read_text() == "good\n"
    assert not (victim / "sub").exists()
    mlv("add", "good", cwd=victim)
    assert snapshot(outside) == outside_before


@pytest.mark.parametrize("name", [".mlv", ".MLV", "mlv~1"])
def test_add_refuses_a_mlv_inside_a_tracked_folder(mlv_repo: Path, name: str) -> None:
    """mlv never writes a tree it would refuse to read back: a `.mlv` in the data stops add
    and status with a hint, and the hint's .mlvignore line lets the rest be added."""
    write_files(mlv_repo, {"data/f": "f", "data/.mlv2": "ok"})
    mlv("add", "data", cwd=mlv_repo)
    write_files(mlv_repo, {f"data/sub/{name}/config.yaml": ""})
    status = mlv("status", cwd=mlv_repo / "data", check=False)
    assert f"sub/{name}: a .mlv folder inside tracked data" in status.stdout + status.stderr
    assert "Traceback" not in status.stderr, status.stderr
    proc = mlv("add", ".", cwd=mlv_repo / "data", check=False)  # the hint's path is from data/
    line = assert_error(proc, 1, f"sub/{name}: a .mlv folder inside tracked data")
    assert f"/{name}" in line and " >> sub/.mlvignore`" in line, line
    hint = re.search(r"`(echo [^`]+)`", line)
    assert hint is not None, line
    subprocess.run(hint.group(1), shell=True, cwd=mlv_repo / "data", check=True)
    mlv("add", "data", cwd=mlv_repo)
    listing = mlv("ls", "-R", "data", cwd=mlv_repo).stdout
    assert listing.split() == [".mlv2", "f", "sub/", "sub/.mlvignore"], listing
    write_files(mlv_repo, {"data/.mlv": "a file of that name"})
    line = assert_error(mlv("add", "data", cwd=mlv_repo, check=False), 1, "a .mlv file")
    assert "`echo /.mlv >> data/.mlvignore`" in line, line


def test_a_mlv_planted_by_an_earlier_pull_is_not_a_repository(world: dict[str, Path]) -> None:
    """An mlv before the check above pulled data/.mlv/config.local.yaml; commands run in
    data/ find the clone's repository, never the planted one: its cache.dir and its remote's
    proxy_command are not used."""
    write_files(world["author"], {"data/f": "f"})
    mlv("add", "data", cwd=world["author"])
    mlv("push", cwd=world["author"])
    victim = _publish(world, {})
    mlv("pull", cwd=victim)
    outside = world["outside"]
    outside_before = snapshot(outside)
    planted = {"data/.mlv/config.yaml": "", "data/.mlv/config.local.yaml": _planted_config(outside)}
    write_files(victim, planted)
    (victim / "data" / "new.txt").write_text("new\n")
    here = victim / "data"
    assert mlv("config", "cache.dir", cwd=here, check=False).stdout.strip() in ("", "None")
    mlv("push", cwd=here)
    proc = mlv("add", "new.txt", cwd=here, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert snapshot(outside) == outside_before
    assert not (outside / "pwned").exists() and not (outside / "cache").exists()


def test_add_skips_what_git_takes_for_git(mlv_repo: Path) -> None:
    """The scanner skips every spelling of .git, so mlv never builds a tree it would
    refuse to read back."""
    write_files(mlv_repo, {"d/a.txt": "a", "d/.GIT/config": "x", "d/git~1/x": "y"})
    mlv("add", "d", cwd=mlv_repo)
    mlv("checkout", "--force", "d", cwd=mlv_repo)
    listing = mlv("ls", "d", cwd=mlv_repo).stdout
    assert "a.txt" in listing and ".GIT" not in listing and "git~1" not in listing


@pytest.mark.parametrize("arg", [".GIT", "git~1/x", "d/.Git", ".MLV"])
def test_add_refuses_git_and_mlv_spellings(mlv_repo: Path, arg: str) -> None:
    write_files(mlv_repo, {f"{arg}/f": "f"})
    assert_error(mlv("add", arg, cwd=mlv_repo, check=False), 2, "never tracks")
    assert not (mlv_repo / f"{arg}.mlv").exists()


def test_mv_refuses_a_destination_in_git(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a"})
    mlv("add", "data", cwd=mlv_repo)
    for dst in (".GIT/data", ".git./hooks", "git~1"):
        assert_error(mlv("mv", "data", dst, cwd=mlv_repo, check=False), 2, "is inside .git")
    assert (mlv_repo / "data" / "a.txt").is_file() and (mlv_repo / "data.mlv").is_file()


# ---- outs of mlv.yaml and mlv.lock ------------------------------------------------------


@pytest.mark.parametrize("out", [".GIT/hooks/pre-commit", "git~1/config", "x/.git/config"])
def test_stage_out_in_git_is_refused(world: dict[str, Path], out: str) -> None:
    marker = world["outside"] / "ran"
    spec = f"stages:\n  s:\n    cmd: touch {marker}\n    outs:\n      - {json.dumps(out)}\n"
    victim = _publish(world, {"mlv.yaml": spec})
    for args in (["repro", "--dry"], ["repro"]):
        line = assert_error(mlv(*args, cwd=victim, check=False), 1, "mlv.yaml", "is inside .git")
        assert "git's folder" in line
    assert not marker.exists()
    assert not (victim / out.split("/")[0]).exists() or out.startswith("x/")
    assert not (victim / "x").exists()


def test_lock_out_in_git_is_refused(world: dict[str, Path]) -> None:
    payload = b"x"
    hash_id = _object(world["remote"], payload)
    lock = (
        "version: 1\nstages:\n  s:\n    cmd: 'true'\n"
        f"    outs:\n      - path: .GIT/config\n        hash: {hash_id}\n        size: 1\n"
    )
    victim = _publish(world, {"mlv.lock": lock})
    proc = mlv("pull", "--force", cwd=victim, check=False)
    assert_error(proc, 1, "mlv.lock", ".GIT/config", "is inside .git")
    assert not (victim / ".GIT").exists()


# ---- 9. names that split a .gitignore line ----------------------------------------------


def test_add_refuses_a_newline_in_a_name(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"a\nline": "data", "src/line": "code"})
    proc = mlv("add", "a\nline", cwd=mlv_repo, check=False)
    line = assert_error(proc, 2, "'a\\nline'", "a .gitignore line cannot hold")
    assert "rename it" in line
    assert not (mlv_repo / ".gitignore").exists()
    assert not (mlv_repo / "a\nline.mlv").exists()
    assert git("check-ignore", "-q", "src/line", cwd=mlv_repo, check=False).returncode == 1


def test_pointer_with_a_newline_is_refused(world: dict[str, Path]) -> None:
    payload = b"data"
    hash_id = _object(world["remote"], payload)
    victim = _publish(world, {"p.mlv": _pointer("a\nline", hash_id, len(payload))})
    for args in (["pull", "--force"], ["checkout", "--force"]):
        assert_error(mlv(*args, cwd=victim, check=False), 1, "p.mlv: path 'a\\nline'", "newline")
    assert not (victim / ".gitignore").exists()
    assert not (victim / "a\nline").exists()


def test_stage_out_with_a_newline_is_refused(world: dict[str, Path]) -> None:
    marker = world["outside"] / "ran"
    spec = f'stages:\n  s:\n    cmd: touch {marker}\n    outs:\n      - "a\\nline"\n'
    victim = _publish(world, {"mlv.yaml": spec})
    assert_error(mlv("repro", cwd=victim, check=False), 1, "mlv.yaml", "newline")
    assert not marker.exists() and not (victim / ".gitignore").exists()


def test_newline_inside_a_tracked_folder_is_kept(mlv_repo: Path) -> None:
    """Names inside a tracked directory never reach a .gitignore: kept, and shown escaped
    in JSON (see docs/decisions.md)."""
    write_files(mlv_repo, {"d/a\nb": "x"})
    mlv("add", "d", cwd=mlv_repo)
    assert (mlv_repo / ".gitignore").read_text() == "/d\n"
    (mlv_repo / "d" / "a\nb").unlink()
    mlv("checkout", "d", cwd=mlv_repo)
    assert (mlv_repo / "d" / "a\nb").read_text() == "x"


# ---- options and command transports in git URLs and revisions ---------------------------


def _import_pointer(url: str, rev: str | None = None) -> str:
    data = b"x"
    text = _pointer("imported", xxh(data), 1)
    text += f"source:\n  url: {json.dumps(url)}\n  path: data\n"
    if rev is not None:
        text += f"  rev: {json.dumps(rev)}\n"
    return text + f"  commit: {'a' * 40}\n"


@pytest.mark.parametrize(
    ("url", "rev"),
    [
        ("--upload-pack=touch {outside}/pwned", None),
        ("-u touch {outside}/pwned", None),
        ("ext::sh -c touch% {outside}/pwned", None),
        ("fd::17", None),
        ("{source}", "--output={outside}/pwned"),
    ],
    ids=["upload-pack", "short-option", "ext", "fd", "rev-option"],
)
def test_update_never_runs_a_command_from_a_pointer(
    world: dict[str, Path], url: str, rev: str | None
) -> None:
    outside = world["outside"]
    # the user's git allows every transport: mlv must refuse ext:: itself
    Path(os.environ["HOME"], ".gitconfig").write_text("[protocol]\n\tallow = always\n")
    source = world["author"]
    url = url.format(outside=outside, source=source)
    victim = _publish(world, {"imported.mlv": _import_pointer(url, rev)})
    before = snapshot(outside)
    proc = mlv("update", "imported.mlv", cwd=victim, check=False)
    assert proc.returncode in (1, 2), proc.stderr
    assert_error(proc, proc.returncode)
    assert snapshot(outside) == before


def test_ext_url_on_the_command_line_is_refused(world: dict[str, Path]) -> None:
    Path(os.environ["HOME"], ".gitconfig").write_text("[protocol]\n\tallow = always\n")
    outside = world["outside"]
    proc = mlv("get", f"ext::sh -c touch% {outside}/pwned", "data", cwd=outside, check=False)
    assert_error(proc, 1, "'ext::' URLs run a command")
    assert not (outside / "pwned").exists()


def test_get_refuses_an_output_in_git(world: dict[str, Path]) -> None:
    write_files(world["author"], {"data/a.txt": "a"})
    mlv("add", "data", cwd=world["author"])
    mlv("push", cwd=world["author"])
    git("add", "-A", cwd=world["author"])
    git("commit", "-q", "-m", "data", cwd=world["author"])
    victim = world["victim"]
    git("clone", "-q", str(world["author"]), str(victim), cwd=world["author"].parent)
    git_before = snapshot(victim / ".git")
    for out in (".GIT/hooks", "git~1"):
        proc = mlv("import", str(world["author"]), "data", "-o", out, cwd=victim, check=False)
        assert_error(proc, 2, "is inside .git")
    assert snapshot(victim / ".git") == git_before


# ---- 4. a committed cache.dir outside the repository ------------------------------------


def _other_project(world: dict[str, Path]) -> Path:
    cache = world["outside"] / "proj" / ".mlv" / "cache"
    data = b"someone else's object"
    hexpart = xxhash.xxh3_128_hexdigest(data)
    (cache / "xxh128" / hexpart[:2]).mkdir(parents=True)
    (cache / "xxh128" / hexpart[:2] / hexpart[2:]).write_bytes(data)
    return cache


@pytest.mark.parametrize("how", ["relative", "absolute", "home", "symlink", "git"])
def test_committed_cache_dir_outside_the_repository_is_refused(
    world: dict[str, Path], how: str
) -> None:
    other = _other_project(world)
    write_files(world["author"], {"data/a.txt": "a"})
    mlv("add", "data", cwd=world["author"])
    mlv("push", cwd=world["author"])
    files: dict[str, str | bytes] = {}
    value = {
        "relative": "../outside/proj/.mlv/cache",
        "absolute": str(other),
        "home": "~/../outside/proj/.mlv/cache",
        "symlink": "cachelink",
        "git": ".git/mlv-cache",
    }[how]
    if how == "symlink":
        os.symlink(other, world["author"] / "cachelink")
    cfg = world["author"] / ".mlv" / "config.yaml"
    files[".mlv/config.yaml"] = cfg.read_text() + f"cache:\n  dir: {json.dumps(value)}\n"
    victim = _publish(world, files)
    before = snapshot(world["outside"])
    git_before = snapshot(victim / ".git")
    for args in (["pull"], ["gc", "-w"], ["status"]):
        proc = mlv(*args, cwd=victim, check=False)
        line = assert_error(proc, 1, ".mlv/config.yaml: cache.dir", "mlv cache dir --local")
        assert "a committed config cannot choose where mlv writes" in line
    assert snapshot(world["outside"]) == before
    assert snapshot(victim / ".git") == git_before
    # the user may choose that folder for this machine; then it works
    if how in ("relative", "absolute"):
        mlv("cache", "dir", "--local", str(other), cwd=victim)
        mlv("pull", cwd=victim)
        assert (victim / "data" / "a.txt").read_text() == "a"


def test_cache_dir_setting_outside_goes_to_the_local_config(mlv_repo: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    proc = mlv("cache", "dir", str(shared), cwd=mlv_repo)
    assert "config.local.yaml" in proc.stdout
    assert "cache" not in (mlv_repo / ".mlv" / "config.yaml").read_text()
    assert "../shared" in (mlv_repo / ".mlv" / "config.local.yaml").read_text()
    proc = mlv("config", "cache.dir", "../shared", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "outside the repository", "--local")
    mlv("cache", "dir", "my-cache", cwd=mlv_repo)  # inside: committed, as before
    assert "my-cache" in (mlv_repo / ".mlv" / "config.yaml").read_text()


def test_names_no_file_system_holds_are_refused(world: dict[str, Path]) -> None:
    """A tree entry or a pointer path with a 300-byte name stopped pull and checkout on a
    raw `[Errno 36] File name too long` line: now one line naming the file, with a hint."""
    remote = world["remote"]
    long = "n" * 300
    hash_id, size, files = _tree(
        remote, [_file_entry(remote, "a.txt", b"a\n"), _file_entry(remote, long, b"b\n")]
    )
    data = b"payload\n"
    victim = _publish(
        world,
        {
            "data.mlv": _pointer("data", hash_id, size, files),
            "long.mlv": _pointer(f"sub/{long}", _object(remote, data), len(data)),
        },
    )
    for args in (["pull", "data.mlv"], ["pull", "--force", "data.mlv"]):
        assert_error(
            mlv(*args, cwd=victim, check=False),
            1,
            "an entry name of more than 255 bytes",
            "delete it and re-add the data",
        )
    for args in (["pull", "long.mlv"], ["checkout", "--force", "long.mlv"]):
        line = assert_error(mlv(*args, cwd=victim, check=False), 1, "long.mlv: path")
        assert "no file system here can hold" in line and "`git rm -f long.mlv`" in line, line
    git("rm", "-q", "-f", "long.mlv", cwd=victim)  # the hint
    assert "long.mlv" not in mlv("status", cwd=victim, check=False).stdout


def _chain(remote: Path, depth: int) -> tuple[str, int, int]:
    """A tree `depth` folders deep, one `d` in each, a file at the bottom."""
    entries = [_file_entry(remote, "f", b"bottom\n")]
    for _ in range(depth - 1):
        entries = [_dir_entry(remote, "d", entries)]
    return _tree(remote, entries)


def test_a_tree_chained_too_deep_is_refused_in_one_line(world: dict[str, Path]) -> None:
    """A chain of 3,000 trees ran every recursive walk out of Python's stack: checkout said
    "may be corrupt", diff and verify stopped on an internal RecursionError, and a checkout
    left 977 folders behind. Now every command says how deep, on one line; 256 levels (the
    limit, tree.MAX_DEPTH) still work."""
    remote = world["remote"]
    deep = _chain(remote, 3000)
    fine = _chain(remote, 256)
    victim = _publish(
        world, {"deep.mlv": _pointer("deep", *deep), "fine.mlv": _pointer("fine", *fine)}
    )
    mlv("fetch", cwd=victim)
    for args in (["checkout", "deep.mlv"], ["pull", "deep.mlv"], ["ls", "-R", "deep"]):
        assert_error(mlv(*args, cwd=victim, check=False), 1, "folders nested more than 256 deep")
    assert (
        not (victim / "deep").exists()
        or max(len(Path(r).relative_to(victim).parts) for r, _, _ in os.walk(victim / "deep"))
        <= 256
    )
    mlv("checkout", "fine.mlv", cwd=victim)
    bottom = victim.joinpath("fine", *(["d"] * 255), "f")
    assert bottom.read_bytes() == b"bottom\n"
    assert len(mlv("ls", "-R", "fine", cwd=victim).stdout.splitlines()) == 256
    status = mlv("status", cwd=victim, check=False)
    assert "clean        fine" in status.stdout
    assert "folders nested more than 256 deep" in status.stdout + status.stderr
    for args in (["diff"], ["verify"]):
        proc = mlv(*args, cwd=victim, check=False)
        assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr, proc


def test_a_work_tree_folder_too_deep_is_refused_with_a_hint(world: dict[str, Path]) -> None:
    """A folder of the user's 300 levels down: add says so on one line, and the hint's
    .mlvignore lets the rest be added."""
    repo = world["author"]
    deep = repo.joinpath("data", *(["d"] * 300))
    deep.mkdir(parents=True)
    (deep / "f").write_text("x")
    (repo / "data/top.txt").write_text("top")
    line = assert_error(mlv("add", "data", cwd=repo, check=False), 1, "nested more than 256")
    assert "exclude the deep part in .mlvignore" in line
    (repo / ".mlvignore").write_text("data/" + "d/" * 200 + "\n")
    mlv("add", "data", cwd=repo)
    assert "top.txt" in mlv("ls", "-R", "data", cwd=repo).stdout
