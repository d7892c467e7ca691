"""Which remote failures are worth another try, and the backoff between tries.

Transient: timeouts, dropped or reset connections, truncated bodies, HTTP 5xx and throttling
(SlowDown, 503). Permanent: authentication, permissions, a missing bucket or host. Backends
are many and their exception types differ (botocore, aiohttp, asyncssh, OSError); we
classify by type name and message so that none of those libraries is imported here.
"""

from __future__ import annotations

import errno
import random
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from mlv import log
from mlv.storage.backend import Missing, PermanentError

T = TypeVar("T")

_TRANSIENT_TYPES = {
    "TimeoutError",
    "ConnectionError",
    "ConnectionResetError",
    "ConnectionAbortedError",
    "BrokenPipeError",
    "IncompleteRead",
    "IncompleteReadError",
    "ClientPayloadError",
    "ServerDisconnectedError",
    "ClientConnectionError",
    "ClientOSError",
    "ServerTimeoutError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ResponseStreamingError",
    "ConnectionClosedError",
    "ConnectionLost",
    "FSTimeoutError",
    "ProtocolError",
}
_TRANSIENT_WORDS = (
    "internalerror",
    "internal error",
    "slowdown",
    "slow down",
    "reduce your request rate",  # s3fs's OSError(EBUSY) for SlowDown
    "serviceunavailable",
    "service unavailable",
    "throttl",
    "requesttimeout",
    "too many requests",
    "bad gateway",
    "gateway timeout",
    " 500",
    " 502",
    " 503",
    " 504",
    "connection reset",
    "connection lost",
    "connection closed",
    "server disconnected",
    "payload",
    "incomplete",
    "timed out",
)
_PERMANENT_WORDS = (
    "accessdenied",
    "access denied",
    "forbidden",
    "invalidaccesskeyid",
    "signaturedoesnotmatch",
    "nosuchbucket",
    "the specified bucket does not exist",
    "permission denied",
    "authentication failed",
    "invalidtoken",
    "expiredtoken",
)
_TRANSIENT_ERRNOS = {
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ETIMEDOUT,
    errno.EPIPE,
    errno.EAGAIN,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
}


# Nobody listening: the client libraries (botocore, s3fs) have already retried the
# connection; more tries here would only make a down server take minutes to report.
_UNREACHABLE_TYPES = {"EndpointConnectionError", "ConnectionRefusedError"}


def is_unreachable(exc: BaseException) -> bool:
    return bool({t.__name__ for t in type(exc).__mro__} & _UNREACHABLE_TYPES)


_TIMEOUT_TYPES = {
    "TimeoutError",
    "ReadTimeoutError",
    "ConnectTimeoutError",
    "FSTimeoutError",
    "ServerTimeoutError",
    "ConnectionTimeoutError",
    "SocketTimeoutError",
}


def is_timeout(exc: BaseException) -> bool:
    """A request that got no answer (or no progress) in time: connect or read timeouts of
    any client library, and the backend's own watchdog (Stalled)."""
    names = {t.__name__ for t in type(exc).__mro__}
    aio = sys.modules.get("asyncio")
    return bool(names & _TIMEOUT_TYPES) or (aio is not None and isinstance(exc, aio.TimeoutError))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (PermanentError, Missing, PermissionError)):
        return False
    if is_unreachable(exc):
        return False
    text = f" {exc}".lower()
    if any(word in text for word in _PERMANENT_WORDS):
        return False
    names = {t.__name__ for t in type(exc).__mro__}
    aio = sys.modules.get("asyncio")  # imported only by async backends
    if names & _TRANSIENT_TYPES or (aio is not None and isinstance(exc, aio.TimeoutError)):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    if isinstance(exc, FileNotFoundError):
        return False
    return any(word in text for word in _TRANSIENT_WORDS)


def is_permanent(exc: BaseException) -> bool:
    """Failures that will fail every other item too: stop the transfer."""
    if isinstance(exc, PermanentError | PermissionError):
        return True
    text = f" {exc}".lower()
    return any(word in text for word in _PERMANENT_WORDS)


@dataclass(frozen=True)
class Policy:
    attempts: int = 5
    first_delay: float = 0.2
    max_delay: float = 5.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter (attempt counts from 1)."""
        ceiling = min(self.max_delay, self.first_delay * (2 ** (attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)


DEFAULT = Policy()


def call(fn: Callable[[], T], policy: Policy = DEFAULT, what: str = "") -> T:
    attempt = 1
    while True:
        try:
            return fn()
        except Exception as e:
            if attempt >= policy.attempts or not is_transient(e):
                raise
            log.debug(__name__, f"retrying {what} after {type(e).__name__}: {e}")
            time.sleep(policy.delay(attempt))
            attempt += 1


async def acall(fn: Callable[[], Awaitable[T]], policy: Policy = DEFAULT, what: str = "") -> T:
    import asyncio

    attempt = 1
    while True:
        try:
            return await fn()
        except Exception as e:
            if attempt >= policy.attempts or not is_transient(e):
                raise
            log.debug(__name__, f"retrying {what} after {type(e).__name__}: {e}")
            await asyncio.sleep(policy.delay(attempt))
            attempt += 1
