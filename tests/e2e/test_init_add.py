"""`mlv init` and `mlv add`: what lands in the cache, the pointer, .gitignore and git's index."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import (
    MLV,
    assert_cache_sound,
    assert_error,
    cache_objects,
    git,
    index_files,
    mlv,
    object_path,
    plant_temporary,
    read_pointer,
    run_unprivileged,
    snapshot,
    staged,
    write_files,
    xxh,
)

# ---- init ---------------------------------------------------------------------------------


def test_init_creates_and_stages_mlv_dir(git_repo: Path) -> None:
    proc = mlv("init", cwd=git_repo)
    assert proc.stderr == ""
    assert (git_repo / ".mlv" / "config.yaml").is_file()
    lines = (git_repo / ".mlv" / ".gitignore").read_text().splitlines()
    assert {"/cache/", "/tmp/", "/config.local.yaml"} <= set(lines)
    assert staged(git_repo) == [".mlv/.gitignore", ".mlv/config.yaml"]


def test_init_from_subfolder_uses_git_root(git_repo: Path) -> None:
    sub = git_repo / "a" / "b"
    sub.mkdir(parents=True)
    mlv("init", cwd=sub)
    assert (git_repo / ".mlv" / "config.yaml").is_file()
    assert not (sub / ".mlv").exists()


def test_init_twice_fails_and_force_reinitialises(mlv_repo: Path) -> None:
    cfg = mlv_repo / ".mlv" / "config.yaml"
    cfg.write_text("core:\n  hash: sha256\n")
    proc = mlv("init", cwd=mlv_repo, check=False)
    assert_error(proc, 1, ".mlv", "--force")
    mlv("init", "--force", cwd=mlv_repo)
    assert cfg.read_text() == "core:\n  hash: sha256\n"  # --force keeps the config


def test_init_outside_git_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = mlv("init", cwd=plain, check=False)
    assert_error(proc, 2, "git init", "--no-scm")
    assert not (plain / ".mlv").exists()


def test_init_no_scm_then_add_works_without_git(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    write_files(plain, {"data/a.txt": "alpha\n"})
    mlv("init", "--no-scm", cwd=plain)
    mlv("add", "data", cwd=plain)
    assert read_pointer(plain / "data.mlv")["files"] == 1
    assert (plain / ".gitignore").read_text() == "/data\n"
    assert not (plain / ".git").exists()
    assert "clean" in mlv("status", cwd=plain).stdout


def test_commands_outside_a_repository_say_run_init(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert_error(mlv("status", cwd=plain, check=False), 1, "mlv init")
    assert_error(mlv("add", "x", cwd=plain, check=False), 1, "mlv init")


# ---- add: files ---------------------------------------------------------------------------


def test_add_file_pointer_cache_gitignore_and_index(mlv_repo: Path) -> None:
    payload = os.urandom(5000) + b"tail"
    write_files(mlv_repo, {"model.bin": payload})
    proc = mlv("add", "model.bin", cwd=mlv_repo)
    assert "model.bin" in proc.stdout
    assert proc.stderr == ""

    ptr = read_pointer(mlv_repo / "model.bin.mlv")
    assert ptr == {
        "version": 1,
        "path": "model.bin",
        "kind": "file",
        "hash": xxh(payload),
        "size": len(payload),
    }
    assert object_path(mlv_repo, xxh(payload)).read_bytes() == payload
    assert (mlv_repo / "model.bin").read_bytes() == payload  # the data stays
    assert (mlv_repo / ".gitignore").read_text() == "/model.bin\n"
    assert git("check-ignore", "-q", "model.bin", cwd=mlv_repo, check=False).returncode == 0
    assert staged(mlv_repo) == [
        ".gitignore",
        ".mlv/.gitignore",
        ".mlv/config.yaml",
        "model.bin.mlv",
    ]
    assert "model.bin" not in index_files(mlv_repo)


def test_file_hash_equals_xxh3_128_of_its_bytes(mlv_repo: Path) -> None:
    # Below and above the 1 MiB "small file" threshold and a chunk boundary of 4 MiB.
    sizes = {"a": 1, "b": 1 << 20, "c": (1 << 20) + 1, "d": (4 << 20) + 3}
    contents = {name: os.urandom(size) for name, size in sizes.items()}
    write_files(mlv_repo, contents)
    mlv("add", *contents, cwd=mlv_repo)
    for name, data in contents.items():
        ptr = read_pointer(mlv_repo / f"{name}.mlv")
        assert ptr["hash"] == xxh(data), name
        assert ptr["size"] == len(data)
    assert_cache_sound(mlv_repo)


def test_add_with_sha256(mlv_repo: Path) -> None:
    mlv("config", "core.hash", "sha256", cwd=mlv_repo)
    write_files(mlv_repo, {"f.txt": "hello\n"})
    mlv("add", "f.txt", cwd=mlv_repo)
    digest = hashlib.sha256(b"hello\n").hexdigest()
    assert read_pointer(mlv_repo / "f.txt.mlv")["hash"] == f"sha256:{digest}"
    obj = mlv_repo / ".mlv" / "cache" / "sha256" / digest[:2] / digest[2:]
    assert obj.read_bytes() == b"hello\n"


def test_add_desc_and_json(mlv_repo: Path) -> None:
    import json

    write_files(mlv_repo, {"f.txt": "x"})
    proc = mlv("add", "--json", "--desc", "raw export", "f.txt", cwd=mlv_repo)
    doc = json.loads(proc.stdout)
    assert doc == [
        {
            "path": "f.txt",
            "pointer": "f.txt.mlv",
            "kind": "file",
            "hash": xxh(b"x"),
            "size": 1,
            "files": None,
            "changed": True,
        }
    ]
    assert read_pointer(mlv_repo / "f.txt.mlv")["desc"] == "raw export"


def test_add_again_unchanged_then_changed(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"f.txt": "one"})
    mlv("add", "f.txt", cwd=mlv_repo)
    before = (mlv_repo / "f.txt.mlv").read_bytes()
    proc = mlv("add", "f.txt", cwd=mlv_repo)
    assert "Unchanged" in proc.stdout
    assert (mlv_repo / "f.txt.mlv").read_bytes() == before
    (mlv_repo / "f.txt").write_text("two")
    mlv("add", "f.txt", cwd=mlv_repo)
    assert read_pointer(mlv_repo / "f.txt.mlv")["hash"] == xxh(b"two")
    # both versions stay in the cache
    assert object_path(mlv_repo, xxh(b"one")).read_bytes() == b"one"
    assert object_path(mlv_repo, xxh(b"two")).read_bytes() == b"two"
    assert (mlv_repo / ".gitignore").read_text() == "/f.txt\n"  # one line, not two


def test_add_keeps_existing_gitignore_lines(mlv_repo: Path) -> None:
    write_files(mlv_repo, {".gitignore": "*.log\n", "f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    assert (mlv_repo / ".gitignore").read_text() == "*.log\n/f.txt\n"


# ---- add: directories ---------------------------------------------------------------------


def test_add_directory(mlv_repo: Path) -> None:
    files = {
        "data/a.txt": "alpha\n",
        "data/sub/b.bin": os.urandom(3000),
        "data/sub/deeper/c.txt": "gamma",
    }
    write_files(mlv_repo, files)
    before = snapshot(mlv_repo / "data")
    mlv("add", "data", cwd=mlv_repo)
    ptr = read_pointer(mlv_repo / "data.mlv")
    assert set(ptr) == {"version", "path", "kind", "hash", "size", "files"}
    assert ptr["version"] == 1
    assert ptr["path"] == "data"
    assert ptr["kind"] == "dir"
    assert ptr["files"] == 3
    assert ptr["size"] == 6 + 3000 + 5
    assert ptr["hash"].startswith("xxh128:")
    objects = assert_cache_sound(mlv_repo)
    assert ptr["hash"] in objects  # the tree object
    for rel, content in files.items():
        data = content.encode() if isinstance(content, str) else content
        assert xxh(data) in objects, rel
    assert snapshot(mlv_repo / "data") == before
    assert (mlv_repo / ".gitignore").read_text() == "/data\n"
    assert "data.mlv" in staged(mlv_repo)
    assert ".gitignore" in staged(mlv_repo)


def test_directory_hash_is_independent_of_creation_order_and_mtimes(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"one/x/1": "1", "one/y": "2", "one/z/e": None})
    write_files(mlv_repo, {"two/z/e": None, "two/y": "2", "two/x/1": "1"})
    os.utime(mlv_repo / "two" / "y", (1, 1))
    mlv("add", "one", "two", cwd=mlv_repo)
    assert read_pointer(mlv_repo / "one.mlv")["hash"] == read_pointer(mlv_repo / "two.mlv")["hash"]


def test_add_from_subfolder(mlv_repo: Path) -> None:
    write_files(
        mlv_repo, {"project/raw/images/1.png": b"\x89PNG1", "project/raw/labels.csv": "a,b\n"}
    )
    sub = mlv_repo / "project" / "raw"
    mlv("add", "images", "labels.csv", cwd=sub)
    assert read_pointer(sub / "images.mlv")["path"] == "images"
    assert read_pointer(sub / "labels.csv.mlv")["path"] == "labels.csv"
    assert (sub / ".gitignore").read_text() == "/images\n/labels.csv\n"
    assert not (mlv_repo / ".gitignore").exists()
    assert {
        "project/raw/.gitignore",
        "project/raw/images.mlv",
        "project/raw/labels.csv.mlv",
    } <= set(staged(mlv_repo))
    # a path given relative to the subfolder with ../ works too
    write_files(mlv_repo, {"project/other.txt": "o"})
    mlv("add", "../other.txt", cwd=sub)
    assert (mlv_repo / "project" / "other.txt.mlv").is_file()


def test_names_with_spaces_and_unicode(mlv_repo: Path) -> None:
    files = {
        "données brutes/été 2024/photo ünï.txt": "x",
        "données brutes/日本語 file.csv": "y",
        "données brutes/ trailing space ": "z",
    }
    write_files(mlv_repo, files)
    write_files(mlv_repo, {"a b.txt": "q", "#hash*star[1].txt": "w"})
    mlv("add", "données brutes", "a b.txt", "#hash*star[1].txt", cwd=mlv_repo)
    assert read_pointer(mlv_repo / "données brutes.mlv")["files"] == 3
    assert read_pointer(mlv_repo / "données brutes.mlv")["path"] == "données brutes"
    assert read_pointer(mlv_repo / "a b.txt.mlv")["path"] == "a b.txt"
    # git ignores exactly the data, not the pointers
    for name in ("données brutes", "a b.txt", "#hash*star[1].txt"):
        assert git("check-ignore", "-q", name, cwd=mlv_repo, check=False).returncode == 0, name
        assert name + ".mlv" in staged(mlv_repo)
    assert "clean" in mlv("status", "--check", cwd=mlv_repo).stdout
    # and they come back from the cache
    before = snapshot(mlv_repo / "données brutes")
    import shutil

    shutil.rmtree(mlv_repo / "données brutes")
    mlv("checkout", cwd=mlv_repo)
    assert snapshot(mlv_repo / "données brutes") == before


def test_empty_file_and_empty_directories(mlv_repo: Path) -> None:
    write_files(
        mlv_repo,
        {"empty.txt": b"", "data/nothing": b"", "data/hollow": None, "data/x/y/z": None},
    )
    (mlv_repo / "void").mkdir()
    mlv("add", "empty.txt", "data", "void", cwd=mlv_repo)
    assert read_pointer(mlv_repo / "empty.txt.mlv") == {
        "version": 1,
        "path": "empty.txt",
        "kind": "file",
        "hash": xxh(b""),
        "size": 0,
    }
    data_ptr = read_pointer(mlv_repo / "data.mlv")
    assert (data_ptr["files"], data_ptr["size"]) == (1, 0)
    void_ptr = read_pointer(mlv_repo / "void.mlv")
    assert (void_ptr["kind"], void_ptr["files"], void_ptr["size"]) == ("dir", 0, 0)
    before = snapshot(mlv_repo / "data")
    assert before == {
        "nothing": b"",
        "hollow": "<dir>",
        "x": "<dir>",
        "x/y": "<dir>",
        "x/y/z": "<dir>",
    }

    import shutil

    shutil.rmtree(mlv_repo / "data")
    shutil.rmtree(mlv_repo / "void")
    (mlv_repo / "empty.txt").unlink()
    mlv("checkout", cwd=mlv_repo)
    assert snapshot(mlv_repo / "data") == before
    assert (mlv_repo / "void").is_dir() and not any((mlv_repo / "void").iterdir())
    assert (mlv_repo / "empty.txt").read_bytes() == b""
    assert "clean" in mlv("status", "--check", cwd=mlv_repo).stdout


def test_add_several_paths_and_quiet(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"a": "1", "b/c": "2"})
    proc = mlv("-q", "add", "a", "b", cwd=mlv_repo)
    assert (proc.stdout, proc.stderr) == ("", "")
    assert (mlv_repo / "a.mlv").is_file() and (mlv_repo / "b.mlv").is_file()


# ---- large sparse file --------------------------------------------------------------------

FOUR_GIB = 4 << 30


@pytest.mark.slow
def test_file_over_4_gib_sparse(mlv_repo: Path) -> None:
    big = mlv_repo / "big.bin"
    size = FOUR_GIB + 4097
    marks = {0: b"head", FOUR_GIB - 2: b"across", size - 4: b"tail"}
    with open(big, "wb") as fh:
        for offset, data in marks.items():
            fh.seek(offset)
            fh.write(data)
    os.truncate(big, size)
    hasher = __import__("xxhash").xxh3_128()
    with open(big, "rb") as fh:
        while chunk := fh.read(64 << 20):
            hasher.update(chunk)
    expected = "xxh128:" + hasher.hexdigest()

    mlv("add", "big.bin", cwd=mlv_repo)
    ptr = read_pointer(mlv_repo / "big.bin.mlv")
    assert (ptr["size"], ptr["hash"]) == (size, expected)
    obj = object_path(mlv_repo, expected)
    assert obj.stat().st_size == size
    assert obj.stat().st_blocks * 512 < (64 << 20), "the cache copy is not sparse"
    assert "clean" in mlv("status", "--check", cwd=mlv_repo).stdout

    big.unlink()
    mlv("checkout", cwd=mlv_repo)
    st = big.stat()
    assert st.st_size == size
    assert st.st_blocks * 512 < (64 << 20), "the restored file is not sparse"
    with open(big, "rb") as fh:
        for offset, data in marks.items():
            fh.seek(offset)
            assert fh.read(len(data)) == data
    assert "clean" in mlv("status", "--check", cwd=mlv_repo).stdout


def test_add_spellings_of_the_same_path(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a", "sub/m.bin": "m"})
    mlv("add", "data/", "./sub/../sub/m.bin", cwd=mlv_repo)
    assert read_pointer(mlv_repo / "data.mlv")["path"] == "data"
    assert read_pointer(mlv_repo / "sub" / "m.bin.mlv")["path"] == "m.bin"
    assert not (mlv_repo / "data" / ".mlv").exists()
    assert (mlv_repo / ".gitignore").read_text() == "/data\n"
    assert (mlv_repo / "sub" / ".gitignore").read_text() == "/m.bin\n"


# ---- interrupted runs and what blocks them -------------------------------------------------


def _blocking_git(folder: Path, started: Path) -> dict[str, str]:
    """An environment whose `git` is the real one, except that `git add` announces itself
    (creates `started`) and then waits forever: mlv can be killed exactly between writing
    the .gitignore and staging it."""
    folder.mkdir()
    real = shutil.which("git")
    assert real is not None
    script = folder / "git"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = add ]; then touch "{started}"; exec sleep 600; fi\n'
        f'exec "{real}" "$@"\n'
    )
    script.chmod(0o755)
    return dict(os.environ, PATH=f"{folder}{os.pathsep}{os.environ['PATH']}")


def test_add_killed_before_git_add_stages_gitignore_on_rerun(
    mlv_repo: Path, tmp_path: Path
) -> None:
    git("commit", "-q", "-m", "mlv init", cwd=mlv_repo)
    write_files(mlv_repo, {"sub/data.bin": b"payload"})
    started = tmp_path / "git-add-started"
    env = _blocking_git(tmp_path / "fakebin", started)
    proc = subprocess.Popen(
        [MLV, "add", "sub/data.bin"],
        cwd=mlv_repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists():
            assert proc.poll() is None, "mlv add ended before it ran `git add`"
            assert time.monotonic() < deadline, "mlv add never ran `git add`"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # mlv and the waiting `git add`
        proc.wait()
    # killed between writing the .gitignore (and the pointer) and staging them
    assert (mlv_repo / "sub" / ".gitignore").read_text() == "/data.bin\n"
    assert (mlv_repo / "sub" / "data.bin.mlv").is_file()
    assert staged(mlv_repo) == []
    proc2 = mlv("add", "sub/data.bin", cwd=mlv_repo)
    assert "Unchanged" in proc2.stdout
    assert staged(mlv_repo) == ["sub/.gitignore", "sub/data.bin.mlv"]


def test_checkout_stages_a_gitignore_entry_left_unstaged(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"sub/data.bin": b"payload"})
    mlv("add", "sub/data.bin", cwd=mlv_repo)
    git("commit", "-q", "-m", "data", cwd=mlv_repo)
    # a commit that lost the .gitignore (as one made after a killed add did), then a
    # checkout killed after writing the entry back, before staging it
    git("rm", "-q", "--cached", "sub/.gitignore", cwd=mlv_repo)
    git("commit", "-q", "-m", "without .gitignore", cwd=mlv_repo)
    assert staged(mlv_repo) == []
    mlv("checkout", cwd=mlv_repo)
    assert staged(mlv_repo) == ["sub/.gitignore"]
    assert "sub/data.bin" not in git("status", "--porcelain", cwd=mlv_repo).stdout


def test_stale_index_lock_is_named(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data.bin": b"payload"})
    lock = mlv_repo / ".git" / "index.lock"
    lock.write_bytes(b"")
    line = assert_error(
        mlv("add", "data.bin", cwd=mlv_repo, check=False),
        1,
        "git add failed: another git process seems to be running (.git/index.lock exists)",
    )
    assert line.endswith(f"if none is, remove {lock}")
    verbose = mlv("-v", "add", "data.bin", cwd=mlv_repo, check=False)
    assert verbose.returncode == 1
    assert str(lock) in verbose.stderr.splitlines()[-1]
    lock.unlink()
    mlv("add", "data.bin", cwd=mlv_repo)
    assert "data.bin.mlv" in staged(mlv_repo)


@pytest.mark.parametrize("where", ["cache", "objects", "shard", "tmp"])
def test_unwritable_cache_is_named_not_the_workspace_file(mlv_repo: Path, where: str) -> None:
    cache = mlv_repo / ".mlv" / "cache"
    write_files(mlv_repo, {"seed/a.txt": "seed", "data2/x1.bin": b"x" * 100})
    (mlv_repo / "seed" / "big.bin").write_bytes(os.urandom(2 << 20))
    mlv("add", "seed", cwd=mlv_repo)  # the cache's folders exist, tmp/ too
    (mlv_repo / "data2" / "big.bin").write_bytes(os.urandom(2 << 20))  # via cache/tmp
    shards = sorted((cache / "xxh128").iterdir())
    locked = {
        "cache": [cache / "xxh128", *shards, cache / "tmp", cache],
        "objects": [cache / "xxh128", *shards],
        "shard": [*shards, cache / "xxh128"],
        "tmp": [cache / "tmp"],
    }[where]
    for folder in locked:
        folder.chmod(0o555)
    try:
        proc = run_unprivileged("mlv", "add", "data2", cwd=mlv_repo, check=False)
    finally:
        for folder in locked:
            folder.chmod(0o755)
    line = assert_error(proc, 1, "cannot write to the cache folder .mlv/cache", "permission denied")
    assert "data2" not in line
    assert "chmod u+w" in line and "`mlv cache dir PATH`" in line
    blamed = line.split("cannot write to the cache folder ")[1].split(":")[0]
    assert (mlv_repo / blamed) in locked
    assert not (mlv_repo / "data2.mlv").exists()
    mlv("add", "data2", cwd=mlv_repo)
    assert read_pointer(mlv_repo / "data2.mlv")["files"] == 2


def test_add_and_commit_remove_stale_temporaries(mlv_repo: Path) -> None:
    cache = mlv_repo / ".mlv" / "cache"
    hour = 3600
    stale = [
        plant_temporary(cache / "xxh128" / "ab" / ".mlvtmp-4242-0-cdef", 2 * hour),
        plant_temporary(cache / "tmp" / ".mlvtmp-4242-1-obj", 2 * hour),
    ]
    fresh = [  # a concurrent writer's (another repository sharing the cache, say)
        plant_temporary(cache / "xxh128" / "ab" / ".mlvtmp-4243-0-cdef", 60),
        plant_temporary(cache / "tmp" / ".mlvtmp-4243-1-obj", 0),
    ]
    write_files(mlv_repo, {"a.txt": "one"})
    mlv("add", "a.txt", cwd=mlv_repo)
    assert not any(p.exists() for p in stale)
    assert all(p.read_bytes() == b"half an object" for p in fresh)
    # cache/tmp/ is swept by every write command, the object folders once a day
    in_shard = plant_temporary(cache / "xxh128" / "ab" / ".mlvtmp-4244-0-cdef", 2 * hour)
    in_tmp = plant_temporary(cache / "tmp" / ".mlvtmp-4244-1-obj", 2 * hour)
    write_files(mlv_repo, {"a.txt": "two"})
    mlv("commit", "a.txt", cwd=mlv_repo)
    assert not in_tmp.exists()
    assert in_shard.exists()
    day_ago = time.time() - 25 * hour
    os.utime(mlv_repo / ".mlv" / "tmp" / "cache-swept", (day_ago, day_ago))
    mlv("commit", "a.txt", cwd=mlv_repo)
    assert not in_shard.exists()
    assert all(p.read_bytes() == b"half an object" for p in fresh)
    assert (mlv_repo / ".mlv" / "tmp" / "cache-swept").stat().st_mtime > time.time() - hour


# ---- add: nested git repositories, names that are not UTF-8, counts --------------------------


def test_nested_git_repository_is_not_tracked(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"ext/f.txt": "f", "ext/sub/g.txt": "g"})
    git("init", "-q", cwd=mlv_repo / "ext")
    (mlv_repo / "ext" / "sub" / ".git").write_text("gitdir: ../../.git/modules/sub\n")
    proc = mlv("add", "ext", cwd=mlv_repo)
    assert "(2 files, 2 B)" in proc.stdout
    assert read_pointer(mlv_repo / "ext.mlv")["files"] == 2
    assert len(cache_objects(mlv_repo)) == 2 + 2  # two files, two trees
    # changes in .git are not changes of the data: status and commit agree
    (mlv_repo / "ext" / ".git" / "HEAD").write_text("ref: refs/heads/other\n")
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0
    assert mlv("commit", cwd=mlv_repo).stdout.strip() == "Nothing changed."
    # checkout restores the data and leaves .git alone
    (mlv_repo / "ext" / "f.txt").unlink()
    mlv("checkout", "ext", cwd=mlv_repo)
    assert (mlv_repo / "ext" / "f.txt").read_text() == "f"
    assert (mlv_repo / "ext" / ".git" / "HEAD").read_text() == "ref: refs/heads/other\n"
    assert (mlv_repo / "ext" / "sub" / ".git").is_file()
    # naming something in a .git folder is refused
    write_files(mlv_repo, {"other/.git/x": "x"})
    proc = mlv("add", "other/.git", cwd=mlv_repo, check=False)
    assert_error(proc, 2, "other/.git", ".git")


def test_top_level_name_not_utf8(mlv_repo: Path) -> None:
    bad = os.fsdecode(b"top\xfe")
    (mlv_repo / bad).write_text("x")
    proc = mlv("add", bad, cwd=mlv_repo, check=False)
    line = assert_error(proc, 1, "top\\xfe", "not valid UTF-8", "rename it")
    assert "b'" not in line and "internal error" not in line
    assert not (mlv_repo / os.fsdecode(b"top\xfe.mlv")).exists()
    for command in ("status", "commit", "checkout", "unprotect"):
        proc = mlv(command, bad, cwd=mlv_repo, check=False)
        line = assert_error(proc, 2, "top\\xfe", "not tracked")
        assert "internal error" not in line


def test_name_inside_a_tracked_directory_not_utf8_is_shown_readably(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a"})
    (mlv_repo / "data" / os.fsdecode(b"in\xfe")).write_text("x")
    line = assert_error(mlv("add", "data", cwd=mlv_repo, check=False), 1, "not valid UTF-8")
    assert "data/in\\xfe:" in line and "b'" not in line and str(mlv_repo) not in line


def test_backslash_in_a_name_inside_a_tracked_directory_is_refused(mlv_repo: Path) -> None:
    """A tree cannot hold a name with a backslash (checkout refuses it as unsafe): add used
    to record one, and the folder could not be checked out again."""
    write_files(mlv_repo, {"data/ok.txt": "a", "data/sub/a\\b.txt": "b"})
    line = assert_error(mlv("add", "data", cwd=mlv_repo, check=False), 1)
    assert line == (
        "error: data/sub/a\\b.txt: name holds a backslash, which Windows reads as a folder "
        "separator: rename it, or exclude it in .mlvignore"
    )
    assert not (mlv_repo / "data.mlv").exists()
    write_files(mlv_repo, {"data/.mlvignore": "a\\\\b.txt\n"})
    mlv("add", "data", cwd=mlv_repo)
    shutil.rmtree(mlv_repo / "data")
    mlv("checkout", cwd=mlv_repo)
    assert sorted(p.name for p in (mlv_repo / "data").rglob("*")) == [".mlvignore", "ok.txt", "sub"]


def test_one_file_is_singular(mlv_repo: Path) -> None:
    write_files(mlv_repo, {"data/a.txt": "a"})
    assert mlv("add", "data", cwd=mlv_repo).stdout.splitlines()[0] == (
        "Added data (1 file, 1 B) -> data.mlv"
    )
    (mlv_repo / "data" / "a.txt").unlink()
    assert mlv("checkout", cwd=mlv_repo).stdout.strip() == "Restored 1 file, removed 0."


@pytest.mark.parametrize("kind", ["copy", "hardlink"])
def test_large_files_of_a_folder_are_stored_two_at_a_time_and_whole(
    mlv_repo: Path, kind: str
) -> None:
    """A folder's large new files are copied into the cache and hashed two at a time;
    each object is whole (also the one copied by a second thread as it is hashed), the
    tree names each file's hash, and status is clean after."""
    mlv("config", "cache.type", kind, cwd=mlv_repo)
    # 9 MiB: copied whole, then hashed; 17 MiB: hashed as a second thread copies it
    files = {f"data/big{i}.bin": os.urandom(((9 + 8 * (i // 2)) << 20) + i) for i in range(3)}
    files["data/small.txt"] = b"small"
    write_files(mlv_repo, files)
    mlv("add", "data", cwd=mlv_repo)
    objects = assert_cache_sound(mlv_repo)
    for content in files.values():
        assert xxh(content) in objects
    for rel, content in files.items():
        path = mlv_repo / rel
        assert path.read_bytes() == content
        if kind == "hardlink":
            assert path.stat().st_ino == object_path(mlv_repo, xxh(content)).stat().st_ino
    assert "clean" in mlv("status", cwd=mlv_repo).stdout


def test_many_small_files_are_stored_whole_with_the_write_helper(mlv_repo: Path) -> None:
    """Past the first 500 new small objects a helper process writes some of them: every
    object is whole under its name, the tree names each file, and a hard-link checkout
    right after links them (their trust records are those of the objects written)."""
    files = {
        f"data/d{i % 7}/f{i}.txt": f"content {i}\n".encode() * (i % 50 + 1) for i in range(900)
    }
    write_files(mlv_repo, files)
    mlv("add", "data", cwd=mlv_repo)
    objects = assert_cache_sound(mlv_repo)
    for content in files.values():
        assert xxh(content) in objects
    assert "clean" in mlv("status", cwd=mlv_repo).stdout
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    shutil.rmtree(mlv_repo / "data")
    mlv("checkout", cwd=mlv_repo)
    for rel, content in files.items():
        path = mlv_repo / rel
        assert path.stat().st_ino == object_path(mlv_repo, xxh(content)).stat().st_ino
