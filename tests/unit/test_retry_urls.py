"""storage/retry.py, urls.py and registry.py: what is retried, what is printed, what fsspec gets."""

from __future__ import annotations

import pytest

from mlv.storage import registry, retry
from mlv.storage.backend import Missing, PermanentError
from mlv.storage.urls import has_credentials, redact, scrub, secrets_in

FAST = retry.Policy(attempts=3, first_delay=0.001)


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionResetError(104, "reset"),
        TimeoutError("timed out"),
        OSError("An error occurred (SlowDown) when calling PutObject"),
        OSError("Server returned 503 Service Unavailable"),
        BrokenPipeError(32, "broken pipe"),
    ],
)
def test_transient(exc: BaseException) -> None:
    assert retry.is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [
        PermissionError("AccessDenied"),
        OSError("An error occurred (AccessDenied) when calling PutObject"),
        FileNotFoundError("no such key"),
        Missing("k"),
        PermanentError("bad"),
        ConnectionRefusedError(111, "refused"),
        ValueError("a bug"),
    ],
)
def test_not_transient(exc: BaseException) -> None:
    assert not retry.is_transient(exc)


def test_call_retries_transient_failures_then_succeeds() -> None:
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError(104, "reset")
        return "ok"

    assert retry.call(flaky, FAST) == "ok" and len(calls) == 3


def test_call_gives_up_after_the_attempts_and_never_retries_permanent() -> None:
    calls = []

    def down() -> None:
        calls.append(1)
        raise TimeoutError("still down")

    with pytest.raises(TimeoutError):
        retry.call(down, FAST)
    assert len(calls) == 3
    calls.clear()

    def denied() -> None:
        calls.append(1)
        raise PermissionError("AccessDenied")

    with pytest.raises(PermissionError):
        retry.call(denied, FAST)
    assert len(calls) == 1


def test_backoff_grows_and_is_capped() -> None:
    policy = retry.Policy(first_delay=0.2, max_delay=1.0)
    assert 0.1 <= policy.delay(1) <= 0.2
    assert 0.2 <= policy.delay(2) <= 0.4
    assert 0.5 <= policy.delay(10) <= 1.0


def test_redaction() -> None:
    assert redact("sftp://me:hunter2@host:22/data") == "sftp://me:***@host:22/data"
    assert redact("ssh://me@host/data") == "ssh://me@host/data"
    assert redact("https://h/x?sig=abc&v=1") == "https://h/x?sig=***&v=1"
    assert redact("/plain/path") == "/plain/path"
    assert has_credentials("s3://k:s@bucket/p") and not has_credentials("s3://bucket/p")
    assert secrets_in("sftp://me:hunter2@h/x?token=t0k") == ["hunter2", "t0k"]
    assert scrub("bucket 'me:hunter2@h' bad", ["hunter2"]) == "bucket 'me:***@h' bad"


def test_storage_options() -> None:
    s3 = registry.storage_options(
        "s3", {"url": "s3://b", "jobs": 4, "retries": 2, "region": "eu-west-1", "anon": True}
    )
    assert s3 == {"client_kwargs": {"region_name": "eu-west-1"}, "anon": True}
    ssh = registry.storage_options("ssh", {"port": "2222", "keyfile": "~/.ssh/k"})
    assert ssh["port"] == 2222 and ssh["client_keys"][0].endswith("/.ssh/k")
    assert ssh["known_hosts"] == ()  # host keys are checked unless the user says otherwise
    assert registry.storage_options("ssh", {"known_hosts": "/k"})["known_hosts"] == "/k"


def test_open_backend_errors(tmp_path: object) -> None:
    with pytest.raises(PermanentError, match="nosuch"):
        registry.open_backend("nosuch://x/y")
    with pytest.raises(PermanentError, match="retries"):
        registry.open_backend("/tmp/x", {"retries": "many"})
    assert registry.open_backend("/tmp/x", {"retries": "0"}).url == "/tmp/x"
    assert registry.scheme_of("C:/data") == "" and registry.is_folder("file:///srv/x")
