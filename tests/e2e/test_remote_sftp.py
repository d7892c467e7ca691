"""push / pull over SFTP to Debian's OpenSSH server, reached through ~/.ssh/config as a user
would reach a real host (the sftp_server fixture skips, saying why, without sshd)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from helpers import MLV, assert_error, commit_all, git, mlv, snapshot, write_files, xxh
from servers import SFTPServer


def objects_in(folder: Path) -> dict[str, Path]:
    found = {}
    for path in folder.rglob("*"):
        if path.is_file() and ".mlvtmp-" not in path.name:
            algo, shard, rest = path.relative_to(folder).parts
            found[f"{algo}:{shard}{rest}"] = path
    return found


def setup(repo: Path, sftp_server: SFTPServer, name: str, files: dict[str, bytes]) -> Path:
    store = sftp_server.root / name
    write_files(repo, files)
    mlv("add", *sorted({p.split("/")[0] for p in files}), cwd=repo)
    mlv("remote", "add", "-d", "box", f"ssh://mlvtest{store}", cwd=repo)
    commit_all(repo, "data")
    return store


def test_push_and_pull_over_sftp(
    mlv_repo: Path, tmp_path: Path, sftp_server: SFTPServer, ssh_home_config: Path
) -> None:
    files = {f"data/d{i}/f{j}.txt": f"{i}-{j}".encode() for i in range(3) for j in range(4)}
    files["data/big.bin"] = os.urandom(2 << 20)
    store = setup(mlv_repo, sftp_server, "store1", files)
    doc = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert doc["ok"] and doc["transferred"]["objects"] == 13 + 4
    sent = objects_in(store)
    assert len(sent) == 17
    assert all(xxh(p.read_bytes()) == h for h, p in sent.items())
    again = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert again["transferred"]["objects"] == 0

    other = tmp_path / "clone"
    git("clone", "-q", str(mlv_repo), str(other), cwd=tmp_path)
    mlv("pull", cwd=other)
    assert snapshot(other / "data") == snapshot(mlv_repo / "data")


def test_interrupted_sftp_push_resumes(
    mlv_repo: Path, sftp_server: SFTPServer, ssh_home_config: Path
) -> None:
    files = {f"many/f{i:04}.bin": os.urandom(512) for i in range(800)}
    store = setup(mlv_repo, sftp_server, "store2", files)
    proc = subprocess.Popen([MLV, "push"], cwd=mlv_repo, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not store.exists() or len(objects_in(store)) < 100):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sent = objects_in(store)
    assert 0 < len(sent) < 801
    assert all(xxh(p.read_bytes()) == h for h, p in sent.items())
    doc = json.loads(mlv("push", "--json", cwd=mlv_repo).stdout)
    assert doc["ok"] and doc["transferred"]["objects"] == 801 - len(sent)
    final = objects_in(store)
    assert len(final) == 801
    assert all(xxh(p.read_bytes()) == h for h, p in final.items())


def test_wrong_host_key_is_refused(
    mlv_repo: Path, sftp_server: SFTPServer, ssh_home_config: Path
) -> None:
    known = Path(os.environ["HOME"]) / ".ssh" / "known_hosts"
    other_key = sftp_server.client_key.with_suffix(".pub").read_text().split()[:2]
    host = sftp_server.known_hosts_line.split()[0]
    known.write_text(f"{host} {' '.join(other_key)}\n")  # some other key for this host
    store = setup(mlv_repo, sftp_server, "store3", {"f.txt": b"x"})
    line = assert_error(mlv("push", cwd=mlv_repo, check=False), 1, "remote 'box'")
    assert "ssh://mlvtest" in line
    assert not store.exists()
