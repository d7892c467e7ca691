"""The test servers themselves (tests/servers.py): the remote-storage tests trust them, so
they are checked here: the proxy forwards byte for byte, logs, and injects its faults; s3fs
and sshfs reach the servers the way mlv (a subprocess) will."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import FaultProxy, S3Server, SFTPServer

DATA = bytes(range(256)) * 4096 + b"\r\n0\r\n\r\n tail"  # 1 MiB and a chunk-like ending


@pytest.fixture
def s3(s3_server: S3Server, fault_proxy: FaultProxy) -> Iterator[Any]:
    """A boto3 client that goes through the proxy."""
    client = s3_server.client(fault_proxy.endpoint_url)
    yield client
    client.close()


def raw(proxy: FaultProxy, method: str, path: str, body: bytes | None = None) -> Any:
    """One plain http.client request through the proxy, for checks boto3 would retry away
    (unsigned: moto answers 403 to a GET of an object that is not public-read)."""
    conn = http.client.HTTPConnection(proxy.endpoint_url.removeprefix("http://"), timeout=30)
    conn.request(method, path, body=body)
    return conn


def run_python(code: str, *args: str) -> str:
    """Run code in a fresh interpreter (as mlv will run) with this test's environment."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ------------------------------------------------------------------------------------ S3


def test_bucket_is_new_and_empty(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    try:
        assert client.list_objects_v2(Bucket=s3_bucket)["KeyCount"] == 0
    finally:
        client.close()


def test_proxy_forwards_put_and_get_byte_exact(
    s3: Any, s3_bucket: str, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    s3.put_object(Bucket=s3_bucket, Key="a b/obj", Body=DATA)
    (tmp_path / "f").write_bytes(DATA[::-1])
    with open(tmp_path / "f", "rb") as f:  # a file body: botocore sends Expect: 100-continue
        s3.put_object(Bucket=s3_bucket, Key="file", Body=f)
    assert s3.get_object(Bucket=s3_bucket, Key="a b/obj")["Body"].read() == DATA
    assert s3.get_object(Bucket=s3_bucket, Key="file")["Body"].read() == DATA[::-1]
    assert fault_proxy.requests == [
        ("PUT", f"/{s3_bucket}/a b/obj", ""),
        ("PUT", f"/{s3_bucket}/file", ""),
        ("GET", f"/{s3_bucket}/a b/obj", ""),
        ("GET", f"/{s3_bucket}/file", ""),
    ]
    assert fault_proxy.errors == []


def test_proxy_forwards_chunked_request_body(
    s3: Any, s3_bucket: str, fault_proxy: FaultProxy
) -> None:
    conn = http.client.HTTPConnection(fault_proxy.endpoint_url.removeprefix("http://"))
    parts = [DATA[:1000], DATA[1000:]]
    conn.request("PUT", f"/{s3_bucket}/chunked", body=iter(parts), encode_chunked=True)
    assert conn.getresponse().read() is not None
    conn.close()
    assert s3.get_object(Bucket=s3_bucket, Key="chunked")["Body"].read() == DATA


def test_proxy_counts_requests(s3: Any, s3_bucket: str, fault_proxy: FaultProxy) -> None:
    for key in ("xxh128/ab/1", "xxh128/ab/2", "other"):
        s3.put_object(Bucket=s3_bucket, Key=key, Body=b"x")
    s3.list_objects_v2(Bucket=s3_bucket, Prefix="xxh128/")
    assert fault_proxy.count("PUT", "/xxh128/") == 2
    assert fault_proxy.count("PUT") == 3
    assert fault_proxy.count("HEAD") == 0
    [listing] = fault_proxy.matching("GET", "list-type=2")
    assert listing.path == f"/{s3_bucket}"
    assert listing.params["prefix"] == "xxh128/"
    assert fault_proxy.count("GET", re.compile(r"prefix=xxh128/(&|$)")) == 1
    fault_proxy.clear()
    assert fault_proxy.requests == []


def test_injected_503_then_recovery(s3: Any, s3_bucket: str, fault_proxy: FaultProxy) -> None:
    s3.put_object(Bucket=s3_bucket, Key="k", Body=b"hello", ACL="public-read")
    rule = fault_proxy.fail("GET", f"/{s3_bucket}/k", status=503, times=1)
    conn = raw(fault_proxy, "GET", f"/{s3_bucket}/k")
    response = conn.getresponse()
    assert response.status == 503
    assert b"<Code>SlowDown</Code>" in response.read()
    conn.request("GET", f"/{s3_bucket}/k")  # same keep-alive connection, fault used up
    response = conn.getresponse()
    assert (response.status, response.read()) == (200, b"hello")
    conn.close()
    assert rule.fired == 1


def test_injected_500_every_second_request(fault_proxy: FaultProxy, s3_bucket: str) -> None:
    fault_proxy.fail("HEAD", s3_bucket, status=500, times=None, every=2)
    statuses = []
    for _ in range(4):
        conn = raw(fault_proxy, "HEAD", f"/{s3_bucket}")
        statuses.append(conn.getresponse().status)
        conn.close()
    assert statuses == [200, 500, 200, 500]


def test_boto3_retries_injected_faults(s3: Any, s3_bucket: str, fault_proxy: FaultProxy) -> None:
    fault_proxy.fail("PUT", "/k", status=500, times=2)
    s3.put_object(Bucket=s3_bucket, Key="k", Body=b"x")
    assert fault_proxy.count("PUT", "/k") == 3


def test_cut_download(s3: Any, s3_bucket: str, fault_proxy: FaultProxy) -> None:
    s3.put_object(Bucket=s3_bucket, Key="big", Body=DATA, ACL="public-read")
    fault_proxy.cut("GET", "/big", keep=1000)
    conn = raw(fault_proxy, "GET", f"/{s3_bucket}/big")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Length") == str(len(DATA))
    with pytest.raises(http.client.IncompleteRead) as cut:
        response.read()
    assert cut.value.partial == DATA[:1000]
    conn.close()


@pytest.mark.parametrize("forward", [False, True])
def test_dropped_request(s3: Any, s3_bucket: str, fault_proxy: FaultProxy, forward: bool) -> None:
    fault_proxy.drop("PUT", "/k", forward=forward)
    conn = raw(fault_proxy, "PUT", f"/{s3_bucket}/k", body=b"data")
    with pytest.raises(http.client.RemoteDisconnected):
        conn.getresponse()
    conn.close()
    listed = s3.list_objects_v2(Bucket=s3_bucket)["KeyCount"]
    assert listed == (1 if forward else 0)


def test_s3fs_honours_aws_endpoint_url(
    s3_env: dict[str, str], s3: Any, s3_bucket: str, fault_proxy: FaultProxy, monkeypatch: Any
) -> None:
    s3.put_object(Bucket=s3_bucket, Key="dir/obj", Body=b"x")
    monkeypatch.setenv("AWS_ENDPOINT_URL", fault_proxy.endpoint_url)
    fault_proxy.clear()
    out = run_python(
        """
        import sys, s3fs
        print(s3fs.S3FileSystem().ls(sys.argv[1] + "/dir"))
        """,
        s3_bucket,
    )
    assert f"{s3_bucket}/dir/obj" in out
    assert fault_proxy.count("GET", "list-type=2") >= 1


# ---------------------------------------------------------------------------------- SFTP


def test_sftp_connect_put_get(sftp_server: SFTPServer, tmp_path: Path) -> None:
    (tmp_path / "up").write_bytes(DATA)
    out = run_python(
        """
        import json, sys
        from sshfs import SSHFileSystem
        kwargs, src, dst, down = json.loads(sys.argv[1]), *sys.argv[2:]
        fs = SSHFileSystem(**kwargs)
        fs.makedirs(dst.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(src, dst)
        fs.get_file(dst, down)
        print(fs.info(dst)["size"])
        """,
        json.dumps(sftp_server.sshfs_kwargs),
        str(tmp_path / "up"),
        f"{sftp_server.root}/remote/obj",
        str(tmp_path / "down"),
    )
    assert out.split() == [str(len(DATA))]
    assert (sftp_server.root / "remote" / "obj").read_bytes() == DATA
    assert (tmp_path / "down").read_bytes() == DATA


def test_sftp_rejects_unknown_host_key(sftp_server: SFTPServer, tmp_path: Path) -> None:
    (tmp_path / "known_hosts").write_text(
        f"[127.0.0.1]:{sftp_server.port} ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIHnpq0yWlLSx2a+7N44vpWVc0C5ILKcSP/xtdoZ7W9Vq\n"
    )
    kwargs = {**sftp_server.sshfs_kwargs, "known_hosts": str(tmp_path / "known_hosts")}
    with pytest.raises(AssertionError, match="HostKeyNotVerifiable"):
        run_python(
            """
            import json, sys
            from sshfs import SSHFileSystem
            SSHFileSystem(**json.loads(sys.argv[1]))
            """,
            json.dumps(kwargs),
        )


def test_ssh_config_alias(ssh_home_config: Path, sftp_server: SFTPServer) -> None:
    assert ssh_home_config == Path(os.environ["HOME"], ".ssh", "config")
    (sftp_server.root / "via-alias").write_text("hi")
    out = run_python(
        """
        import sys, fsspec
        # known_hosts=(): let asyncssh read UserKnownHostsFile from ~/.ssh/config (sshfs's
        # own default, None, turns host key checking off).
        fs, path = fsspec.url_to_fs("ssh://mlvtest" + sys.argv[1], known_hosts=())
        print(fs.cat_file(path).decode())
        """,
        f"{sftp_server.root}/via-alias",
    )
    assert out.strip() == "hi"
