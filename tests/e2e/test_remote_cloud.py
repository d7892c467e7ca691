"""push / pull / verify --remote / gc -r against Google Cloud Storage and Azure Blob Storage,
configured as a user configures them, through their emulators (gcp-storage-emulator for
gcsfs, Azurite for adlfs), with real git clones."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_cache_sound, assert_error, commit_all, git, mlv, snapshot, write_files
from servers import AZURITE_KEY, AzuriteServer, GCSServer

PREFIX = "store"
BIG = 2 << 20  # 2 MiB: above aiohttp's 1 MiB "large body", several reads on the way down


@dataclass
class Cloud:
    """One cloud remote as a test sees it: its URL, how a user configures a repository (or a
    fresh clone) for it, and a raw view of its keys (bypassing mlv)."""

    name: str
    url: str
    configure: Callable[[Path], None]
    configure_clone: Callable[[Path], None]  # the same, another way users do it
    fs: Any  # the library's own file system on the emulator
    root: str  # BUCKET/PREFIX

    def keys(self) -> set[str]:
        """Every key below the remote's prefix."""
        self.fs.invalidate_cache()
        return {p[len(self.root) + 1 :] for p in self.fs.find(self.root)}


def _gcs(server: GCSServer, bucket: str) -> Cloud:
    def configure(repo: Path) -> None:
        # the endpoint is no secret: committed; the token option stays on this machine
        mlv("remote", "modify", "gcs", "endpoint_url", server.endpoint_url, cwd=repo)
        mlv("remote", "modify", "--local", "gcs", "token", "anon", cwd=repo)

    def configure_clone(repo: Path) -> None:
        # the committed endpoint came with the clone; the token did not
        mlv("remote", "modify", "--local", "gcs", "token", "anon", cwd=repo)

    root = f"{bucket}/{PREFIX}"
    return Cloud("gcs", f"gs://{root}", configure, configure_clone, server.filesystem(), root)


def _azure(server: AzuriteServer, container: str, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    def configure(repo: Path) -> None:
        # the account's key is a secret: in config.local.yaml, never committed
        conn = server.connection_string
        mlv("remote", "modify", "--local", "azure", "connection_string", conn, cwd=repo)

    def configure_clone(repo: Path) -> None:
        # the connection string from the environment, which adlfs reads
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", server.connection_string)

    for name in list(os.environ):
        if name.startswith("AZURE_STORAGE_"):
            monkeypatch.delenv(name)
    root = f"{container}/{PREFIX}"
    return Cloud("azure", f"az://{root}", configure, configure_clone, server.filesystem(), root)


@pytest.fixture(params=["gcs", "azure"])
def cloud(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    if request.param == "gcs":
        return _gcs(request.getfixturevalue("gcs_server"), request.getfixturevalue("gcs_bucket"))
    server = request.getfixturevalue("azurite_server")
    return _azure(server, request.getfixturevalue("azure_container"), monkeypatch)


def loose_key(hash_id: str) -> str:
    algo, hex_ = hash_id.split(":")
    return f"{algo}/{hex_[:2]}/{hex_[2:]}"


def test_push_pull_verify_and_gc_in_a_fresh_clone(
    cloud: Cloud, mlv_repo: Path, tmp_path: Path
) -> None:
    files = {f"data/f{i}.txt": f"file {i}\n".encode() for i in range(4)}
    files["data/sub/nested.csv"] = b"a,b\n1,2\n"
    # fixed bytes not ending in CR: gcp-storage-emulator drops a trailing CR of an upload
    files["data/big.bin"] = random.Random(2).randbytes(BIG)
    write_files(mlv_repo, files)
    mlv("add", "data", cwd=mlv_repo)
    mlv("remote", "add", "-d", cloud.name, cloud.url, cwd=mlv_repo)
    cloud.configure(mlv_repo)
    commit_all(mlv_repo, "data on the cloud")
    committed = git("show", "HEAD:.mlv/config.yaml", cwd=mlv_repo).stdout
    assert AZURITE_KEY not in committed and "anon" not in committed

    doc = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    cached = assert_cache_sound(mlv_repo)
    assert doc["ok"] and doc["transferred"]["objects"] == len(cached) == 6 + 2  # files, trees
    assert doc["transferred"]["bytes"] >= sum(len(b) for b in files.values())
    on_remote = cloud.keys()
    assert on_remote and not [k for k in on_remote if ".mlvtmp-" in k]
    again = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert again["ok"] and again["transferred"] == {"objects": 0, "bytes": 0}
    assert cloud.keys() == on_remote

    other = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(other), cwd=tmp_path)
    # config.local.yaml is not cloned: without credentials, one line and no traceback
    if cloud.name == "azure":
        needles = ("remote 'azure'", "no Azure account or credentials", "--local")
        assert_error(mlv("pull", cwd=other, check=False), 1, *needles)
    cloud.configure_clone(other)
    pulled = json.loads(mlv("pull", "--json", cwd=other).stdout)
    assert pulled["ok"] and pulled["transferred"]["objects"] == len(cached)
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")
    assert (other / "data" / "big.bin").read_bytes() == files["data/big.bin"]
    assert set(assert_cache_sound(other)) == set(cached)
    _verify_remote(other, 0, "--full")  # every object downloaded and re-hashed

    # a new version of one file: its old object, and the old tree of data, are referenced
    # by no pointer of the workspace, only by the previous commit
    write_files(other, {"data/f0.txt": "file 0, version 2\n"})
    mlv("commit", cwd=other)
    commit_all(other, "f0, version 2")
    assert json.loads(mlv("push", "--json", cwd=other).stdout)["ok"]
    _verify_remote(other, 0, "--rev", "HEAD~1")
    pushed = cloud.keys()
    refused = mlv("gc", "-w", "-r", cloud.name, cwd=other, check=False)  # no terminal, no -f
    assert refused.returncode == 2 and cloud.keys() == pushed
    gone = mlv("gc", "-w", "-r", cloud.name, "-f", cwd=other)
    assert "2 unreferenced objects" in gone.stdout + gone.stderr, gone.stdout + gone.stderr
    assert cloud.keys() != pushed
    _verify_remote(other, 0, "--full")  # the workspace's data is all there, intact
    old = _verify_remote(other, 1, "--rev", "HEAD~1")  # the previous version's is not
    assert "data/f0.txt" in old.stdout + old.stderr
    assert mlv("status", "--remote", cloud.name, "--check", cwd=other).returncode == 0


def _verify_remote(repo: Path, code: int, *args: str) -> subprocess.CompletedProcess[str]:
    proc = mlv("verify", "--remote", *args, cwd=repo, check=False)
    assert proc.returncode == code, proc.stdout + proc.stderr
    return proc


def _quick_error(repo: Path, *args: str, needles: tuple[str, ...]) -> str:
    start = time.monotonic()
    line = assert_error(mlv(*args, cwd=repo, check=False), 1, *needles)
    assert time.monotonic() - start < 15, f"{args} took {time.monotonic() - start:.1f} s"
    return line


def test_absent_bucket_or_container_is_one_line(cloud: Cloud, mlv_repo: Path) -> None:
    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    url = cloud.url.replace(cloud.root.split("/")[0], "no-such-bucket-here")
    mlv("remote", "add", "-d", cloud.name, url, cwd=mlv_repo)
    cloud.configure(mlv_repo)
    what = "container" if cloud.name == "azure" else "bucket"
    needles = (f"remote '{cloud.name}' ({url})", f"the {what} does not exist")
    _quick_error(mlv_repo, "push", needles=needles)
    _quick_error(mlv_repo, "status", "--remote", cloud.name, "--check", needles=needles)


def test_wrong_azure_key_is_one_line(
    azurite_server: AzuriteServer, azure_container: str, mlv_repo: Path
) -> None:
    write_files(mlv_repo, {"f.txt": "x"})
    mlv("add", "f.txt", cwd=mlv_repo)
    mlv("remote", "add", "-d", "azure", f"az://{azure_container}/{PREFIX}", cwd=mlv_repo)
    wrong = "A" * 8 + AZURITE_KEY[8:]
    conn = azurite_server.connection_string_with(wrong)
    mlv("remote", "modify", "--local", "azure", "connection_string", conn, cwd=mlv_repo)
    line = _quick_error(mlv_repo, "push", needles=("remote 'azure'", "access denied"))
    assert wrong not in line and AZURITE_KEY not in line
