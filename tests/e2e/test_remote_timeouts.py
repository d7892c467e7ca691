"""No remote can make mlv wait forever (issue 13, item 6).

A server that accepts connections and never answers, one that freezes halfway through an
answer, one that trickles a byte a second, and an SSH server that never sends its banner:
push, pull, status --remote and verify --remote give up within a bounded time, exit 1, and
print one line that names the remote and what to do. Real git, real servers on loopback.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import assert_error, commit_all, git, mlv, write_files
from servers import BlackHole, FaultProxy, S3Server

TIMEOUT = 2  # seconds, set with `mlv remote modify NAME timeout 2`
BOUND = 30  # seconds: every command below must be done well within this
PREFIX = "store"
OBJECTS = re.compile(r"/(xxh128|packs)/")  # object reads: loose keys, or ranges of packs


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    with BlackHole() as hole:
        yield hole


def project(repo: Path, url: str, name: str = "store", layout: str = "packed") -> None:
    """A small tracked folder and a tracked file, committed, with remote `name` at url,
    packed (the default) or loose (`pack_threshold 0`: one request per object)."""
    write_files(repo, {f"data/f{i}.txt": f"file {i}\n" for i in range(5)})
    write_files(repo, {"model.bin": os.urandom(300_000)})
    mlv("add", "data", "model.bin", cwd=repo)
    mlv("remote", "add", "-d", name, url, cwd=repo)
    if layout == "loose":
        mlv("remote", "modify", name, "pack_threshold", "0", cwd=repo)
    commit_all(repo, "data")


def clone(repo: Path, tmp_path: Path) -> Path:
    target = tmp_path / "clone"
    git("clone", "-q", str(repo), str(target), cwd=tmp_path)
    return target


def pushed_clone(repo: Path, tmp_path: Path, url: str, layout: str) -> Path:
    """project() pushed to url, then a clone (its cache empty) with the remote's timeout at
    TIMEOUT."""
    project(repo, url, layout=layout)
    mlv("push", cwd=repo)
    mlv("remote", "modify", "store", "timeout", str(TIMEOUT), cwd=repo)
    commit_all(repo, "timeout")
    return clone(repo, tmp_path)


def assert_gives_up(cwd: Path, args: list[str], *needles: str) -> str:
    """`mlv ARGS` exits 1 within BOUND seconds with one line that contains every needle."""
    start = time.monotonic()
    proc = mlv(*args, cwd=cwd, check=False, timeout=BOUND + 30)
    took = time.monotonic() - start
    line = assert_error(proc, 1, *needles)
    assert took < BOUND, f"mlv {' '.join(args)} took {took:.1f} s"
    return line


COMMANDS = [
    ["push"],
    ["pull"],
    ["status", "--remote", "store"],
    ["verify", "--remote", "store"],
]


# ---- an S3 endpoint that accepts connections and never answers ----------------------------


def test_silent_s3_endpoint(
    mlv_repo: Path,
    tmp_path: Path,
    black_hole: BlackHole,
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", black_hole.url())
    project(mlv_repo, "s3://bucket/store")
    mlv("remote", "modify", "store", "timeout", str(TIMEOUT), cwd=mlv_repo)
    commit_all(mlv_repo, "timeout")
    other = clone(mlv_repo, tmp_path)  # pull needs a cache without the objects
    for args in COMMANDS:
        where = other if args[0] == "pull" else mlv_repo
        line = assert_gives_up(
            where, args, "remote 'store' (s3://bucket/store)", f"no answer for {TIMEOUT} s"
        )
        assert "mlv remote modify store timeout SECONDS" in line, line
    assert black_hole.accepted > 0  # it was this server that did not answer
    assert not (other / "data").exists() and not (other / "model.bin").exists()


def test_connect_timeout_set_through_mlv_config(
    mlv_repo: Path, black_hole: BlackHole, s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlv config remote.NAME.timeout` works like `remote modify`; the local config too."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", black_hole.url())
    project(mlv_repo, "s3://bucket/store")
    mlv("config", "--local", "remote.store.timeout", "1.5", cwd=mlv_repo)
    assert_gives_up(mlv_repo, ["push"], "remote 'store'", "no answer for 1.5 s")


@pytest.mark.parametrize("value", ["soon", "0", "inf"])
def test_a_bad_timeout_is_refused(mlv_repo: Path, value: str) -> None:
    project(mlv_repo, str(mlv_repo.parent / "store"))
    proc = mlv("remote", "modify", "store", "timeout", value, cwd=mlv_repo, check=False)
    assert_error(proc, 2, "timeout must be a number of seconds > 0")
    assert "timeout:" not in (mlv_repo / ".mlv" / "config.yaml").read_text()


# ---- an S3 server that freezes in the middle of a transfer ----------------------------------


@pytest.mark.parametrize("layout", ["packed", "loose"])
def test_push_to_a_server_that_freezes_after_some_uploads(
    mlv_repo: Path, s3_server: S3Server, s3_bucket: str, via_proxy: FaultProxy, layout: str
) -> None:
    project(mlv_repo, f"s3://{s3_bucket}/{PREFIX}", layout=layout)
    mlv("remote", "modify", "store", "timeout", str(TIMEOUT), cwd=mlv_repo)
    mlv("push", "data", cwd=mlv_repo)
    via_proxy.clear()
    if layout == "loose":  # push asks first (HEAD, listings), then freezes on uploads
        via_proxy.hang("PUT", times=None)
    else:  # the marker, index listing and lock go through; the server freezes on the pack
        via_proxy.hang("PUT", re.compile(r"/packs/"), times=None)
    assert_gives_up(
        mlv_repo,
        ["push"],
        f"remote 'store' (s3://{s3_bucket}/{PREFIX})",
        f"no answer for {TIMEOUT} s",
    )
    if layout == "loose":
        assert via_proxy.count("HEAD") > 0 and via_proxy.count("PUT") > 0
    else:
        assert via_proxy.count("GET", re.compile(r"/mlv-remote\.json$")) > 0
        assert via_proxy.count("PUT", re.compile(r"/packs/")) > 0
    # Nothing half-written: what arrived is whole, and the next push sends the rest.
    via_proxy.clear()
    mlv("push", cwd=mlv_repo)
    assert mlv("status", "--remote", "store", "--check", cwd=mlv_repo).returncode == 0
    assert mlv("verify", "--remote", "store", "--full", cwd=mlv_repo).returncode == 0


@pytest.mark.parametrize("layout", ["packed", "loose"])
def test_pull_from_a_server_that_freezes_mid_download(
    mlv_repo: Path, tmp_path: Path, s3_bucket: str, via_proxy: FaultProxy, layout: str
) -> None:
    other = pushed_clone(mlv_repo, tmp_path, f"s3://{s3_bucket}/{PREFIX}", layout)
    # Every object download (a loose key, or a range of a pack) sends its headers and 10
    # bytes, then nothing more.
    via_proxy.hang("GET", OBJECTS, keep=10, times=None)
    assert_gives_up(other, ["pull"], "remote 'store'", f"no answer for {TIMEOUT} s")
    assert via_proxy.count("GET", OBJECTS) > 0
    assert not (other / "model.bin").exists()
    via_proxy.clear()
    mlv("pull", cwd=other)
    assert (other / "model.bin").read_bytes() == (mlv_repo / "model.bin").read_bytes()


@pytest.mark.parametrize("layout", ["packed", "loose"])
def test_pull_from_a_server_that_trickles(
    mlv_repo: Path, tmp_path: Path, s3_bucket: str, via_proxy: FaultProxy, layout: str
) -> None:
    """A byte every half second keeps every read timeout happy; the watchdog is not."""
    other = pushed_clone(mlv_repo, tmp_path, f"s3://{s3_bucket}/{PREFIX}", layout)
    via_proxy.trickle("GET", OBJECTS, interval=0.5, times=None)
    assert_gives_up(other, ["pull"], "remote 'store'", f"no answer for {TIMEOUT} s")
    assert via_proxy.count("GET", OBJECTS) > 0


# ---- an SSH server that accepts TCP and never sends its banner -----------------------------


def test_ssh_server_without_a_banner(mlv_repo: Path, tmp_path: Path, black_hole: BlackHole) -> None:
    url = f"{black_hole.url('ssh')}/srv/store"
    project(mlv_repo, url)
    mlv("remote", "modify", "store", "timeout", str(TIMEOUT), cwd=mlv_repo)
    commit_all(mlv_repo, "timeout")
    other = clone(mlv_repo, tmp_path)
    for args in COMMANDS:
        where = other if args[0] == "pull" else mlv_repo
        line = assert_gives_up(
            where, args, f"remote 'store' ({url})", f"cannot connect within {TIMEOUT} s"
        )
        assert "mlv remote modify store connect_timeout SECONDS" in line, line
    assert black_hole.accepted > 0
