"""Link types: hardlink and symlink workspaces are read-only links into the cache; `unprotect`
swaps in writable copies; `checkout --relink` applies a new cache.type."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest
from helpers import (
    assert_cache_sound,
    assert_error,
    commit_all,
    git,
    mlv,
    object_path,
    read_pointer,
    snapshot,
    target_status,
    write_files,
    xxh,
)

from mlv.objects import linker

FILES = {"data/a.txt": "alpha", "data/sub/big.bin": os.urandom((1 << 20) + 100), "m.bin": "m"}


def _writable(path: Path) -> bool:
    return bool(os.stat(path).st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _data(rel: str) -> bytes:
    content = FILES[rel]
    return content.encode() if isinstance(content, str) else content


def test_hardlink_add_links_read_only_and_unprotect(mlv_repo: Path) -> None:
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    write_files(mlv_repo, FILES)
    before = snapshot(mlv_repo / "data")
    mlv("add", "data", "m.bin", cwd=mlv_repo)
    for rel in FILES:
        work = mlv_repo / rel
        obj = object_path(mlv_repo, xxh(_data(rel)))
        assert not work.is_symlink()
        assert work.stat().st_ino == obj.stat().st_ino, rel
        assert not _writable(work), rel
    assert snapshot(mlv_repo / "data") == before
    assert_cache_sound(mlv_repo)
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0

    proc = mlv("unprotect", "data", cwd=mlv_repo)
    assert proc.stdout.strip() == "Unprotected 2 file(s)."
    for rel in ("data/a.txt", "data/sub/big.bin"):
        work = mlv_repo / rel
        obj = object_path(mlv_repo, xxh(_data(rel)))
        assert work.stat().st_ino != obj.stat().st_ino
        assert work.stat().st_nlink == 1
        assert _writable(work)
        assert work.read_bytes() == _data(rel)
    # m.bin was not named: still linked
    assert (mlv_repo / "m.bin").stat().st_ino == object_path(mlv_repo, xxh(b"m")).stat().st_ino
    # editing the unprotected copy leaves the cache intact
    (mlv_repo / "data" / "a.txt").write_text("edited")
    assert object_path(mlv_repo, xxh(b"alpha")).read_bytes() == b"alpha"
    assert target_status(mlv_repo, "data")["modified"] == ["data/a.txt"]
    mlv("commit", "data", cwd=mlv_repo)
    assert (mlv_repo / "data" / "a.txt").stat().st_ino == (
        object_path(mlv_repo, xxh(b"edited")).stat().st_ino
    )
    assert_cache_sound(mlv_repo)


def test_hardlink_checkout_links_out(mlv_repo: Path) -> None:
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    write_files(mlv_repo, FILES)
    mlv("add", "data", cwd=mlv_repo)
    before = snapshot(mlv_repo / "data")
    shutil.rmtree(mlv_repo / "data")
    mlv("checkout", cwd=mlv_repo)
    assert snapshot(mlv_repo / "data") == before
    a = mlv_repo / "data" / "a.txt"
    assert a.stat().st_ino == object_path(mlv_repo, xxh(b"alpha")).stat().st_ino
    assert not _writable(a)


def _count_helpers(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Count the link helpers checkout starts (objects/linker.py)."""
    started: list[object] = []
    real = linker.start

    def start() -> linker.LinkHelper | None:
        helper = real()
        started.append(helper)
        return helper

    monkeypatch.setattr(linker, "start", start)
    return started


@pytest.mark.parametrize("batch", [1000, 4], ids=["in-process", "helper"])
def test_hardlink_checkout_links_the_rest_around_a_missing_and_a_corrupt_object(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    """Hard links go a batch at a time, in this process or (large checkouts; made small
    here) by the link helper: a missing object and a damaged one (its trust record no
    longer matching) cost their own files only, each named; the others are linked, and
    the next status finds them unchanged."""
    monkeypatch.setattr("mlv.core.checkout.LINK_BATCH", batch)
    started = _count_helpers(monkeypatch)
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    files = {f"data/f{i:03d}.txt": f"file {i}" for i in range(30)}
    write_files(mlv_repo, files)
    mlv("add", "data", cwd=mlv_repo)
    shutil.rmtree(mlv_repo / "data")
    gone = object_path(mlv_repo, xxh(b"file 3"))
    gone.chmod(0o644)
    gone.unlink()
    bad = object_path(mlv_repo, xxh(b"file 7"))
    bad.chmod(0o644)
    bad.write_bytes(b"file X")  # same size, other bytes, new mtime: no trust
    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "data/f003.txt" in proc.stderr and "data/f007.txt" in proc.stderr
    assert str(bad) in proc.stderr
    present = sorted(p.name for p in (mlv_repo / "data").iterdir())
    assert present == sorted(f"f{i:03d}.txt" for i in range(30) if i not in (3, 7))
    for i in (0, 29):
        linked = mlv_repo / "data" / f"f{i:03d}.txt"
        assert (
            linked.stat().st_ino == object_path(mlv_repo, xxh(f"file {i}".encode())).stat().st_ino
        )
    assert [h is not None for h in started] == ([True] if batch < 30 else [])
    doc = target_status(mlv_repo, "data")
    assert doc["deleted"] == ["data/f003.txt", "data/f007.txt"] and not doc["modified"]


def test_link_helper_gets_a_small_first_batch_then_full_ones(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The link helper's first batch is smaller (FIRST_BATCH), so that it starts linking
    while the next full batch is read; every file is linked all the same, in folders of
    several sizes, and the next status finds them unchanged."""
    monkeypatch.setattr("mlv.core.checkout.LINK_BATCH", 5)
    monkeypatch.setattr("mlv.core.checkout.FIRST_BATCH", 2)
    sizes: list[int] = []
    real_send = linker.LinkHelper.send

    def send(self: linker.LinkHelper, jobs: list[linker.LinkJob]) -> None:
        sizes.append(len(jobs))
        real_send(self, jobs)

    monkeypatch.setattr(linker.LinkHelper, "send", send)
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    files = {f"data/d{i % 4}/f{i:02d}": f"file {i}" for i in range(23)}
    write_files(mlv_repo, files)
    mlv("add", "data", cwd=mlv_repo)
    for _ in range(2):  # the second: every object has its trust record, the helper links
        shutil.rmtree(mlv_repo / "data")
        sizes.clear()
        mlv("checkout", cwd=mlv_repo)
        for rel, content in files.items():
            obj = object_path(mlv_repo, xxh(content.encode()))
            assert (mlv_repo / rel).stat().st_ino == obj.stat().st_ino, rel
    assert sizes[0] == 2 and sum(sizes) == 23 and max(sizes) == 5, sizes
    doc = target_status(mlv_repo, "data")
    assert doc["status"] == "clean", doc


def test_helper_replaces_changed_files_and_leaves_unsaved_ones(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the link helper, a checkout of the previous commit replaces files whose
    workspace version the cache holds (the helper finds them there and leaves them to
    this process), restores the deleted ones, and keeps an edit that was never added."""
    monkeypatch.setattr("mlv.core.checkout.LINK_BATCH", 5)
    started = _count_helpers(monkeypatch)
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    old = {f"data/d{i % 3}/f{i:02d}": f"v1 {i}" for i in range(40)}
    write_files(mlv_repo, old)
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v1")
    mlv("unprotect", "data", cwd=mlv_repo)
    write_files(mlv_repo, {f"data/d{i % 3}/f{i:02d}": f"v2 {i}" for i in range(0, 40, 2)})
    mlv("add", "data", cwd=mlv_repo)
    commit_all(mlv_repo, "v2")
    for i in range(1, 40, 4):
        os.unlink(mlv_repo / "data" / f"d{i % 3}" / f"f{i:02d}")
    mlv("unprotect", "data/d1/f10", cwd=mlv_repo)
    (mlv_repo / "data" / "d1" / "f10").write_text("never added")
    git("checkout", "-q", "HEAD~1", cwd=mlv_repo)
    proc = mlv("checkout", cwd=mlv_repo, check=False)
    assert proc.returncode == 1 and "data/d1/f10" in proc.stderr
    assert "Traceback" not in proc.stderr
    want = {k[5:]: v.encode() for k, v in old.items()} | {"d1/f10": b"never added"}
    assert {k: v for k, v in snapshot(mlv_repo / "data").items() if v != "<dir>"} == want
    for rel, content in old.items():
        if rel != "data/d1/f10":
            obj = object_path(mlv_repo, xxh(content.encode()))
            assert (mlv_repo / rel).stat().st_ino == obj.stat().st_ino, rel
    assert len(started) == 1 and started[0] is not None
    assert target_status(mlv_repo, "data")["modified"] == ["data/d1/f10"]


def test_checkout_finishes_when_the_link_helper_dies(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A helper that stops (killed, say) after its first batch: what it was given and
    everything after is linked by mlv itself, and status is clean."""
    monkeypatch.setattr("mlv.core.checkout.LINK_BATCH", 3)
    # links the first batch as the real helper does, then exits without answering
    dying = linker._HELPER.replace("    out.flush()\n", "    out.flush()\n    break\n")
    assert dying != linker._HELPER
    monkeypatch.setattr(linker, "_HELPER", dying.replace("out.write(", "0 and out.write("))
    started = _count_helpers(monkeypatch)
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    files = {f"data/f{i:02d}": f"file {i}" for i in range(20)}
    write_files(mlv_repo, files)
    mlv("add", "data", cwd=mlv_repo)
    shutil.rmtree(mlv_repo / "data")
    mlv("checkout", cwd=mlv_repo)
    assert len(started) == 1 and started[0] is not None
    assert {k: v for k, v in snapshot(mlv_repo / "data").items()} == {
        k[5:]: v.encode() for k, v in files.items()
    }
    for rel, content in files.items():
        obj = object_path(mlv_repo, xxh(content.encode()))
        assert (mlv_repo / rel).stat().st_ino == obj.stat().st_ino, rel
    assert "clean" in mlv("status", cwd=mlv_repo).stdout


def test_symlink_add_and_unprotect(mlv_repo: Path) -> None:
    mlv("config", "cache.type", "symlink", cwd=mlv_repo)
    write_files(mlv_repo, FILES)
    before = snapshot(mlv_repo / "data")
    mlv("add", "data", "m.bin", cwd=mlv_repo)
    for rel in FILES:
        work = mlv_repo / rel
        obj = object_path(mlv_repo, xxh(_data(rel)))
        assert work.is_symlink(), rel
        assert os.path.samefile(work, obj)
        assert not _writable(obj)
        assert work.read_bytes() == _data(rel)
    assert_cache_sound(mlv_repo)
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0
    # and from a fresh checkout
    shutil.rmtree(mlv_repo / "data")
    mlv("checkout", cwd=mlv_repo)
    assert (mlv_repo / "data" / "a.txt").is_symlink()
    assert {k: v for k, v in snapshot(mlv_repo / "data").items() if v == "<dir>"} == {
        "sub": "<dir>"
    }

    mlv("unprotect", "m.bin", "data/a.txt", cwd=mlv_repo)
    for rel in ("m.bin", "data/a.txt"):
        work = mlv_repo / rel
        assert not work.is_symlink()
        assert _writable(work)
        assert work.read_bytes() == _data(rel)
    assert (mlv_repo / "data" / "sub" / "big.bin").is_symlink()
    assert snapshot(mlv_repo / "data")["sub/big.bin"] != before["sub/big.bin"]  # still a link
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0


def test_copy_is_independent_of_cache(mlv_repo: Path) -> None:
    mlv("config", "cache.type", "copy", cwd=mlv_repo)
    write_files(mlv_repo, FILES)
    mlv("add", "data", cwd=mlv_repo)
    a = mlv_repo / "data" / "a.txt"
    obj = object_path(mlv_repo, xxh(b"alpha"))
    assert a.stat().st_ino != obj.stat().st_ino and _writable(a)
    assert not _writable(obj)  # objects are read-only whatever the link type
    assert mlv("unprotect", "data", cwd=mlv_repo).stdout.strip() == "Unprotected 0 file(s)."


@pytest.mark.parametrize("kind", ["hardlink", "symlink"])
def test_relink_after_changing_cache_type(mlv_repo: Path, kind: str) -> None:
    write_files(mlv_repo, FILES)
    mlv("add", "data", cwd=mlv_repo)  # default: copies
    a = mlv_repo / "data" / "a.txt"
    obj = object_path(mlv_repo, xxh(b"alpha"))
    before = snapshot(mlv_repo / "data")
    assert not os.path.samefile(a, obj)

    mlv("config", "cache.type", kind, cwd=mlv_repo)
    mlv("checkout", cwd=mlv_repo)  # without --relink nothing changes
    assert not os.path.samefile(a, obj)
    mlv("checkout", "--relink", cwd=mlv_repo)
    assert os.path.samefile(a, obj)
    assert a.is_symlink() == (kind == "symlink")
    big = mlv_repo / "data" / "sub" / "big.bin"
    assert os.path.samefile(big, object_path(mlv_repo, xxh(_data("data/sub/big.bin"))))
    assert mlv("status", "--check", cwd=mlv_repo).returncode == 0

    # and back to copies
    mlv("config", "cache.type", "copy", cwd=mlv_repo)
    mlv("checkout", "--relink", cwd=mlv_repo)
    assert not a.is_symlink() and not os.path.samefile(a, obj)
    assert _writable(a)
    assert snapshot(mlv_repo / "data") == before
    assert_cache_sound(mlv_repo)


def test_relink_does_not_overwrite_unsaved_edit(mlv_repo: Path) -> None:
    write_files(mlv_repo, FILES)
    mlv("add", "data", cwd=mlv_repo)
    (mlv_repo / "data" / "a.txt").write_text("unsaved")
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    proc = mlv("checkout", "--relink", cwd=mlv_repo, check=False)
    assert proc.returncode == 1
    assert "data/a.txt" in proc.stderr
    assert (mlv_repo / "data" / "a.txt").read_text() == "unsaved"


def test_link_type_list_is_tried_in_order(mlv_repo: Path) -> None:
    mlv("config", "cache.type", "hardlink,copy", cwd=mlv_repo)
    assert mlv("config", "cache.type", cwd=mlv_repo).stdout.strip() == "hardlink,copy"
    write_files(mlv_repo, {"m.bin": "m"})
    mlv("add", "m.bin", cwd=mlv_repo)
    assert os.path.samefile(mlv_repo / "m.bin", object_path(mlv_repo, xxh(b"m")))
    assert read_pointer(mlv_repo / "m.bin.mlv")["hash"] == xxh(b"m")


def test_unprotect_untracked_is_usage_error(mlv_repo: Path) -> None:
    assert_error(mlv("unprotect", "nope", cwd=mlv_repo, check=False), 2, "nope", "not tracked")


def test_edit_through_a_hardlink_is_reported_not_hidden(mlv_repo: Path) -> None:
    """Writing into a hardlinked file (root ignores the read-only bit; here chmod stands
    in) changes the cache object too. status and commit say so, and commit drops the
    damaged object: the old version is reported missing, never served with other bytes."""
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    write_files(mlv_repo, {"data/a.txt": "v1\n", "data/b.txt": "b\n"})
    mlv("add", "data", cwd=mlv_repo)
    old = xxh(b"v1\n")
    target = mlv_repo / "data" / "a.txt"
    assert os.stat(target).st_ino == os.stat(object_path(mlv_repo, old)).st_ino
    os.chmod(target, 0o644)
    with open(target, "a") as fh:
        fh.write("edited\n")
    for _ in range(2):  # the second status must not have settled the matter silently
        proc = mlv("status", cwd=mlv_repo)
        assert "data/a.txt was edited in place through a hard link" in proc.stderr
        assert old in proc.stderr
    proc = mlv("commit", cwd=mlv_repo)
    assert "its object was deleted from the cache" in proc.stderr
    assert not object_path(mlv_repo, old).exists()
    assert object_path(mlv_repo, xxh(b"v1\nedited\n")).read_bytes() == b"v1\nedited\n"
    assert_cache_sound(mlv_repo)
    assert mlv("status", cwd=mlv_repo).stderr == ""


def _versions(v: str) -> dict[str, str]:
    files = {
        f"data/a{i // 10}/f{i:03d}.txt": f"{v} file {i}" if i % 3 else f"same {i}"
        for i in range(60)
    }
    if v == "A":
        files["data/m/x"] = "x file"
        files |= {f"data/n/y{i}": f"y {i}" for i in range(5)}
    else:
        files |= {f"data/m/x/in{i}": f"in {i}" for i in range(5)}
        files["data/n"] = "n is a file"
    files["data/zz"] = f"zz {v}"
    return files


def test_hardlink_checkouts_across_batches_and_kind_swaps_match_each_commit(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many batches of links and of trust records read ahead (made small here), a file
    that becomes a folder and a folder that becomes a file: each checkout leaves exactly
    the commit's files, and status is clean (from an adversarial review of the batches)."""
    monkeypatch.setattr("mlv.core.checkout.LINK_BATCH", 4)
    monkeypatch.setattr("mlv.core.checkout.PREFETCH", 7)
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    for v in "AB":
        if (mlv_repo / "data").exists():
            mlv("unprotect", "data", cwd=mlv_repo)
            shutil.rmtree(mlv_repo / "data")
        write_files(mlv_repo, _versions(v))
        mlv("add", "data", cwd=mlv_repo)
        commit_all(mlv_repo, v)
    for rev, v in (("HEAD~1", "A"), ("HEAD@{1}", "B"), ("HEAD~1", "A")):
        git("checkout", "-q", rev, cwd=mlv_repo)
        mlv("checkout", cwd=mlv_repo)
        got = {k: x for k, x in snapshot(mlv_repo / "data").items() if x != "<dir>"}
        assert got == {k[5:]: x.encode() for k, x in _versions(v).items()}
        assert "clean" in mlv("status", cwd=mlv_repo).stdout


def _tree_trust_rows(repo: Path) -> int:
    db = sqlite3.connect(repo / ".mlv" / "tmp" / "state.db")
    try:
        return int(db.execute("SELECT count(*) FROM tree_trust").fetchone()[0])
    finally:
        db.close()


def test_a_trees_trust_records_never_vouch_for_a_changed_object(
    mlv_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkout keeps each filled folder's trust records in one row, and the next one
    reads that row instead of one record per object; an object changed since is still
    caught (reported corrupt, the rest linked), and its folder's row is dropped."""
    monkeypatch.setattr("mlv.core.checkout.LINK_BATCH", 4)
    mlv("config", "cache.type", "hardlink", cwd=mlv_repo)
    files = {f"data/d{i % 3}/f{i:02d}": f"file {i}" for i in range(30)}
    write_files(mlv_repo, files)
    mlv("add", "data", cwd=mlv_repo)
    for rows in (0, 3, 3):  # add linked the files in: no object was read, none has a record
        shutil.rmtree(mlv_repo / "data")
        mlv("checkout", cwd=mlv_repo)
        assert _tree_trust_rows(mlv_repo) == rows
    bad = object_path(mlv_repo, xxh(b"file 7"))
    bad.chmod(0o644)
    bad.write_bytes(b"file X")  # same size, other bytes, new mtime
    for _ in range(2):  # the folder's row is gone: it vouches for the damaged object no more
        shutil.rmtree(mlv_repo / "data", ignore_errors=True)
        proc = mlv("checkout", cwd=mlv_repo, check=False)
        assert proc.returncode == 1 and "data/d1/f07" in proc.stderr and str(bad) in proc.stderr
        assert _tree_trust_rows(mlv_repo) <= 2
    for rel, content in files.items():
        if rel != "data/d1/f07":
            obj = object_path(mlv_repo, xxh(content.encode()))
            assert (mlv_repo / rel).stat().st_ino == obj.stat().st_ino, rel
    assert not (mlv_repo / "data" / "d1" / "f07").exists()
