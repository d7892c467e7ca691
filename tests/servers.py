"""Loopback servers for the remote-storage tests, started and stopped by the tests themselves.

- `run_moto()`: moto's S3 in a thread, the stand-in for AWS S3 / MinIO.
- `FaultProxy`: a small HTTP/1.1 reverse proxy in front of it that logs every request and
  injects faults (5xx answers, responses cut short, requests never answered, answers that
  freeze halfway or trickle a byte at a time), so tests can check what mlv sends and how it
  copes with a flaky network.
- `BlackHole`: a TCP server that accepts connections and never sends a byte (a frozen S3
  endpoint, an SSH server that never sends its banner).
- `run_sshd()`: Debian's OpenSSH server with a throwaway config, keys and port.

Everything binds 127.0.0.1 on a free port and closes every socket, thread and process it
opens: the tests run with warnings as errors, so a leaked socket (ResourceWarning) fails them.
Imported by conftest.py and tests as `from servers import ...`, like helpers.py.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import logging
import os
import re
import shutil
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote

LOOPBACK = "127.0.0.1"
FAKE_CREDENTIAL = "testing"
REGION = "us-east-1"
SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    """A port that was free a moment ago (for servers that cannot bind port 0 themselves)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def s3_env_vars(endpoint_url: str) -> dict[str, str]:
    """The variables a user sets to reach S3 or MinIO: fake credentials and the endpoint."""
    return {
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIAL,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint_url,
    }


# --------------------------------------------------------------------------------------- S3


@functools.cache
def _boto3_session() -> Any:
    """One boto3 session for all clients: a new one costs ~0.2 s of model loading."""
    import boto3

    return boto3.session.Session()


@dataclass(frozen=True)
class S3Server:
    """A running moto S3 server; `endpoint_url` is what AWS_ENDPOINT_URL points at."""

    endpoint_url: str

    def client(self, endpoint_url: str | None = None) -> Any:
        """A boto3 S3 client with fake credentials (close it: its sockets otherwise leak)."""
        return _boto3_session().client(
            "s3",
            endpoint_url=endpoint_url or self.endpoint_url,
            aws_access_key_id=FAKE_CREDENTIAL,
            aws_secret_access_key=FAKE_CREDENTIAL,
            region_name=REGION,
        )

    def create_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh unique name by default), so tests never share one."""
        name = name or f"mlv-test-{uuid.uuid4().hex[:16]}"
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name

    def objects(self, bucket: str) -> dict[str, bytes]:
        """key -> bytes, for every key of the bucket (read behind mlv's back)."""
        client = self.client()
        try:
            found: dict[str, bytes] = {}
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                for item in page.get("Contents", []):
                    body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                    found[item["Key"]] = body
            return found
        finally:
            client.close()


@contextlib.contextmanager
def run_moto() -> Iterator[S3Server]:
    """moto's standalone S3 server on a free loopback port, for the duration of the block."""
    from moto.server import ThreadedMotoServer

    # werkzeug logs one INFO line per request; the proxy's log says more, and says it quietly.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()
        # stop() shuts the loop down but leaves the listening socket open (ResourceWarning).
        if server._server is not None:
            server._server.server_close()


# ------------------------------------------------------------------------------ fault proxy


class Request(NamedTuple):
    """One request as the proxy received it; compares equal to a (method, path, query) tuple."""

    method: str
    path: str  # percent-decoded: /bucket/xxh128/ab/cdef...
    query: str  # as sent: list-type=2&prefix=xxh128%2F

    @property
    def params(self) -> dict[str, str]:
        """The query string decoded, e.g. {"list-type": "2", "prefix": "xxh128/"}."""
        return dict(parse_qsl(self.query, keep_blank_values=True))


@dataclass
class Rule:
    """A fault: applies to every `every`-th request that matches, `times` times (None: always).

    `path` is a substring of, or a regex searched in, the percent-decoded "path?query".
    """

    action: str  # "fail" | "cut" | "drop" | "hang" | "trickle"
    method: str | None
    path: str | re.Pattern[str] | None
    times: int | None
    every: int
    status: int = 503
    keep: int | None = None  # "cut": body bytes sent before closing (None: half the body)
    forward: bool = False  # "drop": forward the request upstream before hanging up
    interval: float = 1.0  # "trickle": seconds between bytes
    seen: int = 0  # matching requests so far
    fired: int = 0  # faults injected so far

    def matches(self, method: str, target: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        if self.path is None:
            return True
        if isinstance(self.path, re.Pattern):
            return self.path.search(target) is not None
        return self.path in target

    def fire(self) -> bool:
        """Count one matching request; True when this one gets the fault."""
        if self.times is not None and self.fired >= self.times:
            return False
        self.seen += 1
        if self.seen % self.every:
            return False
        self.fired += 1
        return True


_S3_ERRORS = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


def _s3_error(status: int, method: str, resource: str) -> bytes:
    """An S3-style XML error response, as AWS sends for a 5xx."""
    code, message = _S3_ERRORS.get(status, ("InternalError", "Injected fault."))
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>"
        f"<Resource>{resource}</Resource><RequestId>MLVFAULT</RequestId></Error>"
    ).encode()
    reason = {500: "Internal Server Error", 503: "Slow Down"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nx-amz-request-id: MLVFAULT\r\n\r\n"
    ).encode()
    return head if method == "HEAD" else head + body


class _Message(NamedTuple):
    """An HTTP message head: raw bytes (forwarded verbatim), start line, lowercased headers."""

    raw: bytes
    start: str
    headers: dict[str, str]


def _read_head(rfile: Any) -> _Message | None:
    """The start line and headers, or None if the peer closed the connection first."""
    lines: list[bytes] = []
    while True:
        line = rfile.readline(65537)
        if not line:
            return None
        if not lines and line in (b"\r\n", b"\n"):
            continue  # stray CRLF between messages (RFC 9112 2.2)
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            break
    headers: dict[str, str] = {}
    for line in lines[1:-1]:
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return _Message(b"".join(lines), lines[0].decode("latin-1").strip(), headers)


def _read_exact(rfile: Any, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) != size:
        raise ConnectionError("peer closed the connection inside a message body")
    return bytes(data)


def _read_body(rfile: Any, headers: dict[str, str]) -> bytes | None:
    """The body exactly as framed on the wire (chunk sizes and trailers included).

    None: no framing, the body runs to the end of the connection (responses only).
    """
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = bytearray()
        while True:
            line = rfile.readline(65537)
            if not line:
                raise ConnectionError("peer closed the connection inside a chunked body")
            raw += line
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailer fields, up to the empty line
                    line = rfile.readline(65537)
                    if not line:
                        raise ConnectionError("peer closed the connection inside trailers")
                    raw += line
                    if line in (b"\r\n", b"\n"):
                        return bytes(raw)
            raw += _read_exact(rfile, size)
            raw += rfile.readline(3)
    if "content-length" in headers:
        return _read_exact(rfile, int(headers["content-length"]))
    return None


class _Server(socketserver.ThreadingTCPServer):
    """One thread per client connection; remembers open connections to unblock them on stop."""

    daemon_threads = False  # so server_close() joins every handler thread
    block_on_close = True
    allow_reuse_address = True
    proxy: FaultProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.proxy.errors.append(traceback.format_exc())


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        proxy = self.server.proxy
        with proxy._lock:
            proxy._connections.add(self.connection)
        upstream: socket.socket | None = None
        up_rfile: Any = None
        close = False
        try:
            while True:
                head = _read_head(self.rfile)
                if head is None:
                    return
                method, target, *_ = [*head.start.split(" "), "", ""]
                if head.headers.get("expect", "").lower() == "100-continue":
                    self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                body = _read_body(self.rfile, head.headers) or b""
                rule = proxy._record(method, target)
                if rule is not None and rule.action == "fail":
                    resource = unquote(target.partition("?")[0])
                    self.connection.sendall(_s3_error(rule.status, method, resource))
                    continue
                if rule is not None and rule.action == "drop" and not rule.forward:
                    return
                if rule is not None and rule.action == "hang" and rule.keep is None:
                    proxy._stopping.wait()  # never answer, keep the connection open
                    return
                # Forward verbatim; reconnect once if an idle upstream connection went stale.
                response: bytes | None = None
                for _attempt in range(2):
                    if upstream is None:
                        upstream = socket.create_connection(proxy.upstream, timeout=60)
                        up_rfile = upstream.makefile("rb")
                    try:
                        upstream.sendall(head.raw + body)
                        response, close = self._read_response(up_rfile, method)
                        break
                    except OSError:
                        up_rfile.close()
                        upstream.close()
                        upstream = None
                if response is None:
                    return  # upstream gone: hang up, the client sees a connection error
                if close:
                    up_rfile.close()
                    assert upstream is not None
                    upstream.close()
                    upstream = None
                if rule is not None and rule.action == "drop":
                    return
                if rule is not None and rule.action in ("hang", "trickle"):
                    head_len = response.index(b"\r\n\r\n") + 4
                    if rule.action == "hang":  # headers and `keep` body bytes, then nothing
                        self.connection.sendall(response[: head_len + (rule.keep or 0)])
                        proxy._stopping.wait()
                        return
                    self.connection.sendall(response[:head_len])
                    for i in range(head_len, len(response)):
                        if proxy._stopping.wait(rule.interval):
                            return
                        self.connection.sendall(response[i : i + 1])
                    return
                if rule is not None and rule.action == "cut":
                    head_len = response.index(b"\r\n\r\n") + 4
                    body_len = len(response) - head_len
                    keep = body_len // 2 if rule.keep is None else min(rule.keep, body_len)
                    self.connection.sendall(response[: head_len + keep])
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.connection.sendall(response)
                if close or head.headers.get("connection", "").lower() == "close":
                    return
        except OSError:
            return  # the client hung up, or stop() unblocked us
        finally:
            with proxy._lock:
                proxy._connections.discard(self.connection)
            if up_rfile is not None:
                up_rfile.close()
            if upstream is not None:
                upstream.close()

    @staticmethod
    def _read_response(up_rfile: Any, method: str) -> tuple[bytes, bool]:
        """One whole upstream response (interim 1xx skipped), and whether to close after it."""
        while True:
            head = _read_head(up_rfile)
            if head is None:
                raise ConnectionError("upstream closed the connection")
            status = int(head.start.split(" ")[1])
            if not 100 <= status < 200:
                break
        close = head.headers.get("connection", "").lower() == "close"
        if method == "HEAD" or status in (204, 304):
            return head.raw, close
        body = _read_body(up_rfile, head.headers)
        if body is None:
            return head.raw + up_rfile.read(), True
        return head.raw + body, close


class FaultProxy:
    """An HTTP/1.1 reverse proxy that logs requests and injects faults on demand.

    `requests` lists every request received (faulted ones too, in arrival order);
    `fail()`, `cut()` and `drop()` add fault rules, checked in order, first match wins.
    """

    def __init__(self, upstream_url: str) -> None:
        host_port = upstream_url.split("://", 1)[-1].split("/", 1)[0]
        host, _, port = host_port.rpartition(":")
        self.upstream = (host, int(port))
        self.requests: list[Request] = []
        self.rules: list[Rule] = []
        self.errors: list[str] = []  # tracebacks of proxy bugs (tests may assert it is empty)
        self._lock = threading.Lock()
        self._stopping = threading.Event()  # wakes handlers that hang or trickle
        self._connections: set[socket.socket] = set()
        self._server = _Server((LOOPBACK, 0), _Handler)
        self._server.proxy = self
        self.endpoint_url = f"http://{LOOPBACK}:{self._server.server_address[1]}"
        # A short poll interval: stop() waits up to one interval.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop accepting, hang up every open connection, join every thread."""
        self._stopping.set()
        self._server.shutdown()
        self._thread.join()
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()

    def clear(self) -> None:
        """Forget the logged requests and every fault rule."""
        with self._lock:
            self.requests.clear()
            self.rules.clear()

    def fail(
        self,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        *,
        status: int = 503,
        times: int | None = 1,
        every: int = 1,
    ) -> Rule:
        """Answer matching requests with an S3 XML error (503 SlowDown, 500 InternalError)
        instead of forwarding them."""
        return self._add(Rule("fail", method, path, times, every, status=status))

    def cut(
        self,
        method: str | None = "GET",
        path: str | re.Pattern[str] | None = None,
        *,
        keep: int | None = None,
        times: int | None = 1,
        every: int = 1,
    ) -> Rule:
        """Forward, then send the response's headers and `keep` bytes of its body (default:
        half) and close the connection: a download cut short."""
        return self._add(Rule("cut", method, path, times, every, keep=keep))

    def drop(
        self,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        *,
        forward: bool = False,
        times: int | None = 1,
        every: int = 1,
    ) -> Rule:
        """Read the request and close the connection without an answer; with forward=True
        the server did act on it first (a lost acknowledgement)."""
        return self._add(Rule("drop", method, path, times, every, forward=forward))

    def hang(
        self,
        method: str | None = None,
        path: str | re.Pattern[str] | None = None,
        *,
        keep: int | None = None,
        times: int | None = 1,
        every: int = 1,
    ) -> Rule:
        """Never finish the answer, and keep the connection open (a frozen server): with
        keep=None the request gets no answer at all; with keep=N it is forwarded, and the
        response's headers and N bytes of its body are sent (frozen mid-transfer)."""
        return self._add(Rule("hang", method, path, times, every, keep=keep))

    def trickle(
        self,
        method: str | None = "GET",
        path: str | re.Pattern[str] | None = None,
        *,
        interval: float = 1.0,
        times: int | None = 1,
        every: int = 1,
    ) -> Rule:
        """Forward, then send the response's headers at once and its body one byte every
        `interval` seconds: a server that never stops answering, too slowly to matter."""
        return self._add(Rule("trickle", method, path, times, every, interval=interval))

    def matching(
        self, method: str | None = None, path: str | re.Pattern[str] | None = None
    ) -> list[Request]:
        """Logged requests that match, with the same matching as the fault rules."""
        probe = Rule("log", method, path, None, 1)
        with self._lock:
            return [r for r in self.requests if probe.matches(r.method, _target(r))]

    def count(self, method: str | None = None, path: str | re.Pattern[str] | None = None) -> int:
        """How many logged requests match."""
        return len(self.matching(method, path))

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def _record(self, method: str, target: str) -> Rule | None:
        """Log a request; the rule whose fault it gets, if any."""
        raw_path, _, query = target.partition("?")
        request = Request(method, unquote(raw_path), query)
        with self._lock:
            self.requests.append(request)
            decoded = _target(request)
            for rule in self.rules:
                if rule.matches(method, decoded) and rule.fire():
                    return rule
        return None


class BlackHole:
    """A loopback TCP server that accepts every connection and never sends a byte; what the
    clients send is read and dropped. `url(scheme)` is `SCHEME://127.0.0.1:PORT`."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self.port = int(self._sock.getsockname()[1])
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://{LOOPBACK}:{self.port}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
                conn.setblocking(False)
                self._conns.append(conn)
                self.accepted += 1
            except TimeoutError:
                pass
            except OSError:
                return
            for c in self._conns:  # drain, so that senders never block on a full buffer
                with contextlib.suppress(OSError):
                    while c.recv(65536):
                        pass

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        for conn in self._conns:
            conn.close()
        self._sock.close()


def _target(request: Request) -> str:
    """What fault rules match against: the percent-decoded path?query."""
    if not request.query:
        return request.path
    return f"{request.path}?{unquote(request.query)}"


# ------------------------------------------------------------------------------------- SFTP


@dataclass(frozen=True)
class SFTPServer:
    """A running sshd (sftp subsystem) that accepts `client_key` for `username`."""

    host: str
    port: int
    username: str
    client_key: Path  # private key; the public one is beside it (.pub)
    known_hosts: Path  # a known_hosts file holding `known_hosts_line`
    known_hosts_line: str  # "[127.0.0.1]:PORT ssh-ed25519 AAAA..."
    root: Path  # an empty folder the tests may put remotes under

    @property
    def sshfs_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for sshfs.SSHFileSystem (asyncssh.connect) to reach this server."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.username,
            "client_keys": [str(self.client_key)],
            "known_hosts": str(self.known_hosts),
        }


def _keygen(path: Path) -> str:
    """A fresh ed25519 key pair without passphrase; the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mlv-tests", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path.with_suffix(".pub").read_text().strip()


def _sshd_config(base: Path, port: int) -> str:
    return "\n".join(
        [
            f"ListenAddress {LOOPBACK}",
            f"Port {port}",
            f"HostKey {base / 'host_ed25519'}",
            f"PidFile {base / 'sshd.pid'}",
            f"AuthorizedKeysFile {base / 'authorized_keys'}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "PrintMotd no",
            "MaxSessions 100",
            "MaxStartups 100",
            "Subsystem sftp internal-sftp",
            "",
        ]
    )


def _wait_for_ssh(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    """Until the port answers with an SSH banner; fails with sshd's log if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 1) as s:
            if s.recv(4).startswith(b"SSH-"):
                return
        time.sleep(0.05)
    raise RuntimeError(f"sshd did not start (exit code {proc.poll()}):\n{log.read_text()}")


def sshd_installed() -> bool:
    """Whether Debian's openssh-server (sshd) and ssh-keygen are there."""
    return os.access(SSHD, os.X_OK) and shutil.which("ssh-keygen") is not None


@contextlib.contextmanager
def run_sshd(base: Path | None = None) -> Iterator[SFTPServer]:
    """OpenSSH's sshd as the current user, on a free loopback port, with throwaway keys and
    config in `base` (a new temporary folder by default)."""
    with contextlib.ExitStack() as stack:
        if base is None:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlv-sshd-")))
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation dir
        (root := base / "root").mkdir()
        _keygen(base / "host_ed25519")
        host_key = (base / "host_ed25519.pub").read_text().split()[:2]
        (base / "authorized_keys").write_text(_keygen(base / "client_ed25519") + "\n")
        port = free_port()
        known_line = f"[{LOOPBACK}]:{port} {' '.join(host_key)}"
        (base / "known_hosts").write_text(known_line + "\n")
        config = base / "sshd_config"
        config.write_text(_sshd_config(base, port))
        log = base / "sshd.log"
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_ssh(proc, port, log, timeout=20)
            yield SFTPServer(
                host=LOOPBACK,
                port=port,
                username=getpass.getuser(),
                client_key=base / "client_ed25519",
                known_hosts=base / "known_hosts",
                known_hosts_line=known_line,
                root=root,
            )
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def write_ssh_config(home: Path, server: SFTPServer, alias: str = "mlvtest") -> Path:
    """~/.ssh/config with Host `alias` -> the server, and a known_hosts with its key, the way
    a user sets up a remote host; the config file's path."""
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    known = ssh / "known_hosts"
    known.write_text(server.known_hosts_line + "\n")
    config = ssh / "config"
    config.write_text(
        f"Host {alias}\n"
        f"    HostName {server.host}\n"
        f"    Port {server.port}\n"
        f"    User {server.username}\n"
        f"    IdentityFile {server.client_key}\n"
        f"    IdentitiesOnly yes\n"
        f"    UserKnownHostsFile {known}\n"
        "    StrictHostKeyChecking yes\n"
    )
    config.chmod(0o600)
    return config


# -------------------------------------------------------------------------- GCS and Azure

# Azurite's well-known development account (its documentation publishes the key).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
# Where .ci/run installs Azurite with npm (git-ignored), relative to the repository.
AZURITE_PREFIX = Path(__file__).resolve().parent.parent / ".ci" / "azurite"


def _wait_for_port(proc: subprocess.Popen[bytes], port: int, log: Path, name: str) -> None:
    """Until something accepts connections on the port; fails with the log if it never does."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not start (exit code {proc.poll()}):\n{log.read_text()}")


@contextlib.contextmanager
def _serve(argv: list[str], port: int, name: str) -> Iterator[None]:
    """Run argv (a server listening on port) for the block; its output goes to a log file
    that a failed start shows; terminated and waited for at the end."""
    with tempfile.TemporaryDirectory(prefix=f"mlv-{name}-") as base:
        log = Path(base) / "server.log"
        with open(log, "wb") as log_file:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
            )
        try:
            _wait_for_port(proc, port, log, name)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass(frozen=True)
class GCSServer:
    """A running gcp-storage-emulator (in memory); `endpoint_url` is what gcsfs's
    endpoint_url option (or STORAGE_EMULATOR_HOST) points at. It checks no credentials."""

    endpoint_url: str

    def filesystem(self) -> Any:
        """gcsfs's plain HTTP file system on the emulator (not cached by fsspec)."""
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(
            endpoint_url=self.endpoint_url,
            token="anon",
            project="mlv-tests",
            skip_instance_cache=True,
        )

    def create_bucket(self) -> str:
        name = f"mlv-test-{uuid.uuid4().hex[:16]}"
        self.filesystem().mkdir(name)
        return name


def gcs_emulator_installed() -> bool:
    """Whether the gcp-storage-emulator package and gcsfs are importable."""
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("gcp_storage_emulator", "gcsfs"))


@contextlib.contextmanager
def run_gcs_emulator() -> Iterator[GCSServer]:
    """gcp-storage-emulator with in-memory storage on a free loopback port, as a process of
    its own (its HTTP server answers one request at a time: out of pytest's process, it
    shares no thread or warning filter with the tests)."""
    import sys

    port = free_port()
    argv = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", LOOPBACK]
    with _serve([*argv, "--port", str(port), "--in-memory", "--quiet"], port, "gcs"):
        yield GCSServer(endpoint_url=f"http://{LOOPBACK}:{port}")


@dataclass(frozen=True)
class AzuriteServer:
    """A running Azurite blob service (in memory) with the well-known development account."""

    blob_endpoint: str  # http://127.0.0.1:PORT/devstoreaccount1

    @property
    def connection_string(self) -> str:
        """What adlfs's connection_string option (or AZURE_STORAGE_CONNECTION_STRING) takes."""
        return self.connection_string_with(AZURITE_KEY)

    def connection_string_with(self, key: str) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def filesystem(self) -> Any:
        """adlfs's file system on Azurite (not cached by fsspec)."""
        from adlfs import AzureBlobFileSystem

        return AzureBlobFileSystem(
            connection_string=self.connection_string, skip_instance_cache=True
        )

    def create_container(self) -> str:
        name = f"mlv-test-{uuid.uuid4().hex[:16]}"
        self.filesystem().mkdir(name)
        return name


def azurite_command() -> list[str] | None:
    """How to start Azurite's blob service: .ci/run's npm install, else azurite-blob on PATH;
    None when it (or node, or adlfs) is missing."""
    import importlib.util

    if importlib.util.find_spec("adlfs") is None or shutil.which("node") is None:
        return None
    local = AZURITE_PREFIX / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    if local.is_file():
        return ["node", str(local)]
    found = shutil.which("azurite-blob")
    return [found] if found else None


@contextlib.contextmanager
def run_azurite(command: list[str]) -> Iterator[AzuriteServer]:
    """Azurite's blob service, in memory, on a free loopback port, for the block."""
    port = free_port()
    argv = [
        *command,
        "--blobHost",
        LOOPBACK,
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--loose",
        "--silent",
    ]
    with _serve(argv, port, "azurite"):
        yield AzuriteServer(blob_endpoint=f"http://{LOOPBACK}:{port}/{AZURITE_ACCOUNT}")
