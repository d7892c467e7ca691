"""One conformance suite for every backend: a folder, fsspec's memory filesystem, an S3 API
server (moto) and an SFTP server (OpenSSH), all through registry.open_backend as mlv opens
a remote."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import S3Server, SFTPServer

from mlv.storage import registry
from mlv.storage.backend import Backend, Missing, PermanentError

KINDS = ["folder", "memory", "s3", "sftp"]


@pytest.fixture(params=KINDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind = request.param
    if kind == "folder":
        opened = registry.open_backend(str(tmp_path / "remote"))
    elif kind == "memory":
        opened = registry.open_backend(f"memory://mlv-{uuid.uuid4().hex}/store")
    elif kind == "s3":
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = server.create_bucket()
        opened = registry.open_backend(
            f"s3://{bucket}/store",
            {"endpoint_url": server.endpoint_url, "key": "testing", "secret": "testing"},
        )
    else:
        ssh: SFTPServer = request.getfixturevalue("sftp_server")
        root = ssh.root / uuid.uuid4().hex
        opened = registry.open_backend(
            f"ssh://{ssh.host}:{ssh.port}{root}",
            {
                "username": ssh.username,
                "client_keys": [str(ssh.client_key)],
                "known_hosts": str(ssh.known_hosts),
            },
        )
    yield opened
    opened.close()


def local_files(tmp_path: Path, contents: dict[str, bytes]) -> dict[str, str]:
    out = {}
    for name, data in contents.items():
        path = tmp_path / f"src-{name}"
        path.write_bytes(data)
        out[name] = str(path)
    return out


def test_round_trip(backend: Backend, tmp_path: Path) -> None:
    big = os.urandom(3 << 20)
    src = local_files(tmp_path, {"a": b"alpha", "b": b"", "big": big})
    keys = {"a": "xxh128/aa/0001", "b": "xxh128/bb/0002", "big": "xxh128/cc/0003"}
    results = backend.upload([(src[n], keys[n]) for n in keys], 4)
    assert all(r.ok for r in results) and sorted(r.nbytes for r in results) == [0, 5, len(big)]
    # the same content again (two pushes meeting): no error
    assert all(r.ok for r in backend.upload([(src["a"], keys["a"])], 1))
    assert backend.exists([*keys.values(), "xxh128/dd/0404"], 4) == set(keys.values())
    assert sorted(backend.list_keys("xxh128/")) == sorted(keys.values())
    assert backend.list_keys("xxh128/aa/") == [keys["a"]]
    assert backend.list_keys("xxh128/ee/") == []
    assert not any(".mlvtmp-" in k for k in backend.list_keys("xxh128/"))

    target = tmp_path / "dl"
    target.mkdir()
    got = backend.download(
        [(keys["big"], str(target / "big")), ("xxh128/dd/0404", str(target / "none"))], 2
    )
    assert got[0].ok and (target / "big").read_bytes() == big
    assert isinstance(got[1].error, Missing)
    read = backend.read([keys["a"], keys["b"], "xxh128/dd/0404"], 2)
    assert read[0].data == b"alpha" and read[1].data == b""
    assert isinstance(read[2].error, Missing)

    assert all(r.ok for r in backend.delete([keys["a"], "xxh128/dd/0404"], 2))
    assert backend.exists(list(keys.values()), 2) == {keys["b"], keys["big"]}


def test_missing_bucket_is_permanent(s3_server: S3Server, tmp_path: Path) -> None:
    opened = registry.open_backend(
        "s3://no-such-bucket-x/store",
        {"endpoint_url": s3_server.endpoint_url, "key": "testing", "secret": "testing"},
    )
    src = local_files(tmp_path, {f"f{i}": b"x" for i in range(5)})
    results = opened.upload([(p, f"xxh128/00/{n}") for n, p in src.items()], 2)
    assert all(isinstance(r.error, PermanentError) for r in results)
    assert "bucket does not exist" in str(results[0].error)
