"""From a remote's URL and options to a Backend, with a clear hint when a package is missing.

A URL without a scheme (or file://) is a folder. Every other scheme goes to fsspec, with the
remote's options as storage options, except the few that are mlv's own (url, jobs, retries,
timeout, connect_timeout) and these conveniences: `region` for S3 becomes
client_kwargs.region_name; `port` is a number; `keyfile` for SSH becomes client_keys; SSH
host keys are checked against known_hosts (sshfs alone would not check them).

Timeouts: every remote gets a connect timeout and a read timeout in the form its library
documents (botocore's config, asyncssh's connect_timeout and keepalives, aiohttp's
ClientTimeout, adlfs's connection_timeout/read_timeout; gcsfs gets none: the watchdog alone),
and FsspecBackend watches every request on top of that (fsspec_backend.py), so that no
remote can make mlv wait forever.

GCS with an endpoint of its own (endpoint_url, or STORAGE_EMULATOR_HOST: an emulator) gets
gcsfs's plain HTTP file system, not the gRPC-probing one gcsfs registers for gs://.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from mlv import log
from mlv.storage import retry
from mlv.storage.backend import Backend, PermanentError
from mlv.util.urls import is_folder, redact, scheme_of

MLV_OPTIONS = ("url", "jobs", "retries", "timeout", "connect_timeout")
DEFAULT_TIMEOUT = 60.0  # seconds without an answer or progress before a request is given up


@dataclass(frozen=True)
class Timeouts:
    """`timeout`: the longest a request may wait for an answer, or a transfer go without
    progress; `connect_timeout`: the longest a connection may take (default: timeout)."""

    read: float = DEFAULT_TIMEOUT
    connect: float = DEFAULT_TIMEOUT


def seconds(name: str, value: Any) -> float:
    """A timeout option's value as seconds; ValueError with the message to show if it is
    not a number > 0."""
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if not math.isfinite(number) or number <= 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number of seconds > 0, got {value!r}") from None
    return number


def timeouts(url: str, options: Mapping[str, Any]) -> Timeouts:
    """The remote's `timeout` and `connect_timeout` options, checked."""
    found: dict[str, float] = {}
    for name in ("timeout", "connect_timeout"):
        if options.get(name) is not None:
            try:
                found[name] = seconds(name, options[name])
            except ValueError as e:
                raise PermanentError(
                    f"remote {redact(url)}: {e}", f"e.g. `mlv remote modify NAME {name} 60`"
                ) from None
    read = found.get("timeout", DEFAULT_TIMEOUT)
    return Timeouts(read, found.get("connect_timeout", read))


def timeout_options(protocol: str, options: Mapping[str, Any], t: Timeouts) -> dict[str, Any]:
    """Storage options that give each request of this protocol its connect and read
    timeouts, merged into options (an option the user set explicitly wins)."""
    out = dict(options)
    if protocol in ("s3", "s3a"):
        # botocore's Config: connect and read timeouts of each HTTP request, and no retries
        # of its own (5 tries of a timed-out request would make 5 timeouts): mlv retries.
        config_kwargs = dict(out.get("config_kwargs") or {})
        config_kwargs.setdefault("connect_timeout", t.connect)
        config_kwargs.setdefault("read_timeout", t.read)
        config_kwargs.setdefault("retries", {"total_max_attempts": 1})
        out["config_kwargs"] = config_kwargs
    elif protocol in ("ssh", "sftp"):
        # asyncssh: connect_timeout covers TCP, the banner, key exchange and login;
        # keepalives drop a connection whose server stopped answering.
        out.setdefault("connect_timeout", t.connect)
        out.setdefault("keepalive_interval", max(1.0, t.read / 3))
        out.setdefault("keepalive_count_max", 3)
    elif protocol in ("http", "https"):
        import aiohttp

        client_kwargs = dict(out.get("client_kwargs") or {})
        client_kwargs.setdefault(
            "timeout", aiohttp.ClientTimeout(total=None, sock_connect=t.connect, sock_read=t.read)
        )
        out["client_kwargs"] = client_kwargs
    elif protocol in ("az", "abfs", "abfss"):
        out.setdefault("connection_timeout", math.ceil(t.connect))
        out.setdefault("read_timeout", math.ceil(t.read))
    return out


INSTALL_HINTS = {
    "s3": "pip install 'mlv[s3]' (s3fs)",
    "s3a": "pip install 'mlv[s3]' (s3fs)",
    "gs": "pip install 'mlv[gs]' (gcsfs)",
    "gcs": "pip install 'mlv[gs]' (gcsfs)",
    "az": "pip install 'mlv[azure]' (adlfs)",
    "abfs": "pip install 'mlv[azure]' (adlfs)",
    "abfss": "pip install 'mlv[azure]' (adlfs)",
    "ssh": "pip install 'mlv[ssh]' (sshfs)",
    "sftp": "pip install 'mlv[ssh]' (sshfs)",
    "http": "pip install 'mlv[http]' (aiohttp)",
    "https": "pip install 'mlv[http]' (aiohttp)",
}


def known_scheme(url: str) -> bool:
    """Is url a folder, or of a scheme fsspec knows (installed or not)?"""
    if is_folder(url):
        return True
    import fsspec

    return scheme_of(url) in fsspec.available_protocols()


def storage_options(protocol: str, options: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in options.items() if k not in MLV_OPTIONS}
    if isinstance(out.get("port"), str) and str(out["port"]).isdigit():
        out["port"] = int(out["port"])
    if protocol in ("s3", "s3a") and "region" in out:
        client_kwargs = dict(out.get("client_kwargs") or {})
        client_kwargs.setdefault("region_name", out.pop("region"))
        out["client_kwargs"] = client_kwargs
    if protocol in ("ssh", "sftp"):
        if "keyfile" in out:
            out["client_keys"] = [os.path.expanduser(str(out.pop("keyfile")))]
        # sshfs turns host-key checking off unless known_hosts is given; () restores
        # asyncssh's default: ~/.ssh/known_hosts or UserKnownHostsFile from ~/.ssh/config.
        out.setdefault("known_hosts", ())
    return out


def open_backend(url: str, options: Mapping[str, Any] | None = None) -> Backend:
    """The backend for url. Folder URLs must already be absolute or relative to the cwd."""
    options = dict(options or {})
    protocol = scheme_of(url)
    policy = _policy(url, options.get("retries"))
    limits = timeouts(url, options)
    if is_folder(url):
        from mlv.storage.folder import FolderBackend

        path = urlsplit(url).path if protocol else url
        return FolderBackend(path, redact(url), policy)
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:  # pragma: no cover - fsspec is a dependency
        raise PermanentError("fsspec is not installed", "pip install fsspec") from None
    from mlv.storage.fsspec_backend import FsspecBackend

    if protocol not in fsspec.available_protocols():
        raise PermanentError(
            f"remote {redact(url)}: unknown storage scheme '{protocol}://'",
            "use a folder path, s3://, gs://, azure (az://), ssh:// or another fsspec scheme",
        )
    try:
        # Libraries warn at import (asyncssh: "DSA is deprecated"): debug lines, not output.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            kwargs = timeout_options(protocol, storage_options(protocol, options), limits)
            if protocol in ("gs", "gcs") and gcs_endpoint(kwargs):
                fs, root = _plain_gcsfs(url, kwargs)
            else:
                fs, root = url_to_fs(url, **kwargs)
        for w in caught:
            log.debug(__name__, f"{w.category.__name__}: {w.message}")
        if protocol in ("s3", "s3a") and isinstance(getattr(fs, "retries", None), int):
            fs.retries = 1  # s3fs's own layer of retries (5 by default), as for botocore
    except ImportError as e:
        hint = INSTALL_HINTS.get(protocol)
        if hint is None:  # fsspec's message names the package to install
            hint = f"install the fsspec package for '{protocol}://' ({e.name or e})"
        raise PermanentError(
            f"remote {redact(url)}: support for {protocol}:// is not installed", hint
        ) from None
    except ValueError as e:
        if protocol in ("az", "abfs", "abfss") and "unable to connect to account" in str(e):
            # adlfs found no account or no credentials in the options and the environment
            raise PermanentError(
                f"remote {redact(url)}: no Azure account or credentials ({e})",
                AZURE_CREDENTIALS_HINT,
            ) from None
        raise PermanentError(
            f"remote {redact(url)}: invalid options ({e})",
            "check `mlv remote list` and the backend's documented storage options",
        ) from None
    except TypeError as e:  # an option the backend does not take
        raise PermanentError(
            f"remote {redact(url)}: invalid options ({e})",
            "check `mlv remote list` and the backend's documented storage options",
        ) from None
    except Exception as e:  # connecting (sshfs connects here): a server that never answers
        if not retry.is_timeout(e):
            raise
        raise PermanentError(
            f"remote {redact(url)}: cannot connect within {limits.connect:g} s "
            f"({type(e).__name__})",
            CONNECT_HINT,
        ) from None
    return FsspecBackend(fs, root, redact(url), protocol, policy, limits.read)


def gcs_endpoint(options: Mapping[str, Any]) -> str | None:
    """The GCS endpoint other than Google's that options (endpoint_url) or the environment
    (STORAGE_EMULATOR_HOST, as Google's own libraries read it) name, if any."""
    endpoint = options.get("endpoint_url") or os.environ.get("STORAGE_EMULATOR_HOST")
    return None if endpoint in (None, "", "default") else str(endpoint)


def _plain_gcsfs(url: str, kwargs: dict[str, Any]) -> tuple[Any, str]:
    """gcsfs's plain HTTP (JSON API) file system for url. gcsfs 2026 registers an extended
    one for gs:// that first asks Google's gRPC control API what kind of bucket it is: an
    emulator or other endpoint does not speak it, and each object operation would wait a
    minute for that answer (never cached) before falling back to the same HTTP calls."""
    import importlib

    fs = importlib.import_module("gcsfs.core").GCSFileSystem(**kwargs)
    return fs, str(fs._strip_protocol(url))


AZURE_CREDENTIALS_HINT = (
    "set the account with `mlv remote modify NAME account_name ACCOUNT` and its key with "
    "`mlv remote modify --local NAME account_key ...` (or sas_token, or connection_string), "
    "or AZURE_STORAGE_CONNECTION_STRING in the environment"
)

CONNECT_HINT = (
    "check the URL and that the server is up and reachable; on a slow link raise "
    "`mlv remote modify NAME connect_timeout SECONDS`"
)


def _policy(url: str, retries: Any) -> retry.Policy:
    """The `retries` option: how many more tries a transient failure gets (default 4)."""
    if retries is None:
        return retry.DEFAULT
    try:
        count = int(retries)
        if count < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise PermanentError(
            f"remote {redact(url)}: retries must be a whole number >= 0, got {retries!r}"
        ) from None
    return retry.Policy(attempts=count + 1)
