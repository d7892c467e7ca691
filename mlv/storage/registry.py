"""From a remote's URL and options to a Backend, with a clear hint when a package is missing.

A URL without a scheme (or file://) is a folder. Every other scheme goes to fsspec, with the
remote's options as storage options, except the few that are mlv's own (url, jobs, retries)
and these conveniences: `region` for S3 becomes client_kwargs.region_name; `port` and
`timeout` are numbers; `keyfile` for SSH becomes client_keys; SSH host keys are
checked against known_hosts (sshfs alone would not check them).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from mlv.storage import retry
from mlv.storage.backend import Backend, PermanentError
from mlv.storage.urls import redact

MLV_OPTIONS = ("url", "jobs", "retries")
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


def scheme_of(url: str) -> str:
    """ "s3" for s3://b/p, "" for a plain path (also on Windows-style drive letters)."""
    parts = urlsplit(url)
    if len(parts.scheme) <= 1:
        return ""
    return parts.scheme.lower()


def is_folder(url: str) -> bool:
    return scheme_of(url) in ("", "file", "local")


def known_scheme(url: str) -> bool:
    """Is url a folder, or of a scheme fsspec knows (installed or not)?"""
    if is_folder(url):
        return True
    import fsspec

    return scheme_of(url) in fsspec.available_protocols()


def storage_options(protocol: str, options: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in options.items() if k not in MLV_OPTIONS}
    for key in ("port", "timeout"):
        if isinstance(out.get(key), str) and str(out[key]).isdigit():
            out[key] = int(out[key])
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
        fs, root = url_to_fs(url, **storage_options(protocol, options))
    except ImportError as e:
        hint = INSTALL_HINTS.get(protocol)
        if hint is None:  # fsspec's message names the package to install
            hint = f"install the fsspec package for '{protocol}://' ({e.name or e})"
        raise PermanentError(
            f"remote {redact(url)}: support for {protocol}:// is not installed", hint
        ) from None
    except (TypeError, ValueError) as e:  # an option the backend does not take
        raise PermanentError(
            f"remote {redact(url)}: invalid options ({e})",
            "check `mlv remote list` and the backend's documented storage options",
        ) from None
    return FsspecBackend(fs, root, redact(url), protocol, policy)


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
