"""mlv.storage.retry (which failures are retried, and how often), mlv.util.urls
(credentials never printed) and mlv.storage.registry (options to fsspec, and errors)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from mlv.storage import retry
from mlv.storage.backend import Missing, PermanentError
from mlv.storage.folder import FolderBackend
from mlv.storage.registry import open_backend, storage_options
from mlv.util.urls import has_credentials, redact

FAST = retry.Policy(first_delay=0.001)


class ClientError(Exception):
    """Stands for botocore's ClientError: only its message says what went wrong."""


# ---- classification ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError("reset by peer"),
        TimeoutError("read timed out"),
        BrokenPipeError(),
        OSError(errno.ECONNRESET, "Connection reset by peer"),
        ClientError("An error occurred (SlowDown) when calling the PutObject operation"),
        ClientError("server answered 503 Service Unavailable"),
        ClientError("An error occurred (InternalError): We encountered an internal error"),
    ],
    ids=repr,
)
def test_transient(exc: BaseException) -> None:
    assert retry.is_transient(exc)
    assert not retry.is_permanent(exc)


@pytest.mark.parametrize(
    "exc",
    [
        PermissionError(13, "Permission denied"),
        ClientError("An error occurred (AccessDenied) when calling the PutObject operation"),
        FileNotFoundError("xxh128/ab/cd"),
        Missing("xxh128/ab/cd"),
        PermanentError("remote s3://b: the bucket does not exist"),
        ClientError("An error occurred (InvalidAccessKeyId): 503"),  # the permanent word wins
        ValueError("bad option"),
    ],
    ids=repr,
)
def test_not_transient(exc: BaseException) -> None:
    assert not retry.is_transient(exc)


def test_permanent_words_and_types() -> None:
    assert retry.is_permanent(PermissionError())
    assert retry.is_permanent(PermanentError("x"))
    assert retry.is_permanent(ClientError("AccessDenied"))
    assert not retry.is_permanent(FileNotFoundError("gone"))
    assert not retry.is_permanent(TimeoutError())


def test_connection_refused_is_unreachable_not_transient() -> None:
    exc = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    assert retry.is_unreachable(exc)
    assert not retry.is_transient(exc)


# ---- retry.call -------------------------------------------------------------------------


class Flaky:
    """Fails with the given exceptions, one per call, then returns "ok"."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_call_retries_a_transient_failure_then_succeeds() -> None:
    fn = Flaky(ConnectionResetError(), ClientError("SlowDown"))
    assert retry.call(fn, FAST, what="x") == "ok"
    assert fn.calls == 3


def test_call_gives_up_after_the_policys_attempts() -> None:
    fn = Flaky(*[TimeoutError(f"try {i}") for i in range(10)])
    with pytest.raises(TimeoutError, match="try 2"):
        retry.call(fn, retry.Policy(attempts=3, first_delay=0.001))
    assert fn.calls == 3
    fn = Flaky(TimeoutError())
    with pytest.raises(TimeoutError):
        retry.call(fn, retry.Policy(attempts=1, first_delay=0.001))
    assert fn.calls == 1


@pytest.mark.parametrize(
    "exc",
    [PermissionError(), ClientError("AccessDenied"), Missing("k"), PermanentError("no")],
    ids=repr,
)
def test_call_never_retries_a_permanent_failure(exc: BaseException) -> None:
    fn = Flaky(exc)
    with pytest.raises(type(exc)):
        retry.call(fn, FAST)
    assert fn.calls == 1


def test_delay_grows_and_is_capped() -> None:
    policy = retry.Policy(first_delay=0.1, max_delay=0.5)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (10, 0.5)]:
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)


# ---- urls -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ssh://alice:hunter2@host/data", "ssh://alice:***@host/data"),
        ("https://bob:p%40ss@example.com:8443/x", "https://bob:***@example.com:8443/x"),
        ("ssh://alice@host/data", "ssh://alice@host/data"),
        ("s3://bucket/prefix", "s3://bucket/prefix"),
        (
            "https://acct.blob.core.windows.net/c?sv=2020&sig=SECRETSIG&se=2030",
            "https://acct.blob.core.windows.net/c?sv=2020&sig=***&se=2030",
        ),
        ("https://h/p?token=abc&page=2", "https://h/p?token=***&page=2"),
        (
            "https://h/p?AWSAccessKeyId=AKIA&Signature=xyz",
            "https://h/p?AWSAccessKeyId=***&Signature=***",
        ),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize(
    "path", ["/mnt/store", "relative/store", "C:\\store", "~/store", "/a b/c?d"]
)
def test_redact_leaves_plain_paths_alone(path: str) -> None:
    assert redact(path) == path
    assert not has_credentials(path)


def test_has_credentials() -> None:
    assert has_credentials("ssh://alice:hunter2@host/data")
    assert has_credentials("https://h/c?sig=abc")
    assert has_credentials("https://h/c?X-Amz-Credential=abc")
    assert not has_credentials("ssh://alice@host/data")
    assert not has_credentials("s3://bucket/prefix?versionId=3")
    assert not has_credentials("https://h/c?page=2")


# ---- registry -----------------------------------------------------------------------------


def test_storage_options_s3_region_and_numbers() -> None:
    out = storage_options(
        "s3",
        {"region": "eu-west-1", "port": "9000", "timeout": "30", "url": "s3://b", "jobs": 8},
    )
    # timeout is mlv's own: each backend gets it in its own form (timeout_options)
    assert out == {"client_kwargs": {"region_name": "eu-west-1"}, "port": 9000}


def test_storage_options_s3_region_keeps_other_client_kwargs() -> None:
    options = {"region": "eu-west-1", "client_kwargs": {"verify": False}}
    out = storage_options("s3", options)
    assert out == {"client_kwargs": {"verify": False, "region_name": "eu-west-1"}}
    assert options == {"region": "eu-west-1", "client_kwargs": {"verify": False}}  # untouched


def test_storage_options_other_protocols_keep_region_and_odd_ports() -> None:
    assert storage_options("gs", {"region": "x"}) == {"region": "x"}
    assert storage_options("s3", {"port": "http"}) == {"port": "http"}


def test_storage_options_ssh(home: Path) -> None:
    out = storage_options("ssh", {"keyfile": "~/.ssh/id_mlv", "port": "2222", "retries": "3"})
    assert out == {
        "client_keys": [os.path.join(str(home), ".ssh", "id_mlv")],
        "port": 2222,
        "known_hosts": (),
    }
    assert storage_options("sftp", {})["known_hosts"] == ()
    assert storage_options("ssh", {"known_hosts": "/k"})["known_hosts"] == "/k"


def test_mlv_options_never_reach_fsspec() -> None:
    for protocol in ("s3", "ssh", "gs", "memory"):
        options = {"url": "x", "jobs": 4, "retries": 2, "timeout": 5, "connect_timeout": 3}
        out = storage_options(protocol, {**options, "anon": True})
        assert not set(options) & set(out)
        assert out["anon"] is True


def test_open_backend_unknown_scheme_is_permanent() -> None:
    with pytest.raises(PermanentError, match="nosuchscheme"):
        open_backend("nosuchscheme://host/store", {})


def test_open_backend_unknown_scheme_redacts_credentials() -> None:
    with pytest.raises(PermanentError) as info:
        open_backend("nosuchscheme://u:hunter2@host/store")
    assert "hunter2" not in info.value.message
    assert "u:***@host" in info.value.message


@pytest.mark.parametrize("retries", ["many", -1])
def test_open_backend_bad_retries_is_permanent(tmp_path: Path, retries: object) -> None:
    with pytest.raises(PermanentError, match="retries"):
        open_backend(str(tmp_path), {"retries": retries})


def test_open_backend_folders(tmp_path: Path) -> None:
    plain = open_backend(str(tmp_path / "a"))
    assert isinstance(plain, FolderBackend) and plain.root == str(tmp_path / "a")
    from_url = open_backend(f"file://{tmp_path}/b", {"retries": "2"})
    assert isinstance(from_url, FolderBackend) and from_url.root == str(tmp_path / "b")
    assert from_url.policy.attempts == 3


# ---- timeouts (issue 13, item 6) ------------------------------------------------------------


def test_default_timeouts_reach_the_s3_backend() -> None:
    """With nothing configured, each request gets 60 s to connect and to answer, botocore and
    s3fs retry nothing themselves (mlv does), and the watchdog waits 60 s."""
    from mlv.storage.fsspec_backend import FsspecBackend
    from mlv.storage.registry import DEFAULT_TIMEOUT

    backend = open_backend("s3://bucket/prefix", {"endpoint_url": "http://127.0.0.1:9"})
    assert isinstance(backend, FsspecBackend)
    assert backend.timeout == DEFAULT_TIMEOUT == 60
    config = backend.fs.config_kwargs
    assert config["connect_timeout"] == 60 and config["read_timeout"] == 60
    assert config["retries"] == {"total_max_attempts": 1}
    assert backend.fs.retries == 1


def test_configured_timeouts_reach_the_s3_backend() -> None:
    from mlv.storage.fsspec_backend import FsspecBackend

    options = {"endpoint_url": "http://127.0.0.1:9", "timeout": "2.5", "connect_timeout": 1}
    backend = open_backend("s3://bucket/other", options)
    assert isinstance(backend, FsspecBackend) and backend.timeout == 2.5
    config = backend.fs.config_kwargs
    assert config["connect_timeout"] == 1 and config["read_timeout"] == 2.5


def test_timeout_options_per_protocol() -> None:
    from mlv.storage.registry import Timeouts, timeout_options

    t = Timeouts(read=30, connect=10)
    ssh = timeout_options("ssh", {"known_hosts": ()}, t)
    assert ssh["connect_timeout"] == 10 and ssh["keepalive_interval"] == 10
    assert ssh["keepalive_count_max"] == 3
    az = timeout_options("az", {"account_name": "a"}, t)
    assert az == {"account_name": "a", "connection_timeout": 10, "read_timeout": 30}
    http = timeout_options("https", {}, t)["client_kwargs"]["timeout"]
    assert (http.total, http.sock_connect, http.sock_read) == (None, 10, 30)
    # what the user set explicitly wins
    mine = timeout_options("s3", {"config_kwargs": {"read_timeout": 5}}, t)["config_kwargs"]
    assert mine["read_timeout"] == 5 and mine["connect_timeout"] == 10
    assert timeout_options("gs", {"project": "p"}, t) == {"project": "p"}


@pytest.mark.parametrize("value", ["soon", 0, -1, "inf", "nan", True])
def test_open_backend_bad_timeout_is_permanent(tmp_path: Path, value: object) -> None:
    with pytest.raises(PermanentError, match="timeout must be a number of seconds > 0"):
        open_backend(str(tmp_path), {"timeout": value})
    with pytest.raises(PermanentError, match="connect_timeout must be"):
        open_backend(str(tmp_path), {"connect_timeout": value})


def test_timeouts_are_transient_and_recognised() -> None:
    import asyncio

    from mlv.storage.fsspec_backend import Stalled

    for exc in (Stalled("no answer for 2 s"), asyncio.TimeoutError(), TimeoutError()):
        assert retry.is_timeout(exc) and retry.is_transient(exc)
    assert not retry.is_timeout(ConnectionResetError("reset"))
