"""The django-redis client of XenX: fails fast while Redis is known to be down.

Without it, every cache operation of every request waits out its own socket timeout
while Redis is unreachable: a proxied call touches the cache up to three times (registry
version, revocation state, rate-limit round trip), one of them under the registry's
lock, so calls took 3 to 7 s to answer 503 under load (measured by ``bench/faults``).
After a connection failure or timeout, or an error reply that says Redis as a whole
cannot serve (``is_outage``), this process skips Redis for
``XENX_CACHE_FAIL_FAST_SECONDS`` (default 1 s): operations raise ``ConnectionInterrupted``
at once, which every caller already answers with 503 (fail closed). The first operation
after that window tries Redis again, so a recovered Redis is used within about a second.
An error reply about one command or key (``WRONGTYPE``, ``ERR …``) fails that operation
only (503 all the same): it says nothing about the next call's keys.
"""

from __future__ import annotations

import functools
import socket
import time

from django.conf import settings
from django_redis.client import DefaultClient
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import (
    ClusterDownError,
    InvalidResponse,
    NoPermissionError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.errors import CACHE_OUTAGES, ServiceUnavailable

# What a call to the cache raises when it failed: the errors that mean Redis failed
# wherever they surface (``core.errors.CACHE_OUTAGES``, answered 503 under any view) and,
# around a cache call, a socket's own error. Every ``except`` around a cache call names
# this, never ``Exception``: a bug stays a bug (500), not an outage.
CACHE_ERRORS: tuple[type[BaseException], ...] = (*CACHE_OUTAGES, OSError)

# LOADING (BusyLoadingError), NOAUTH and WRONGPASS (AuthenticationError) and "max number
# of clients reached" are ConnectionErrors in redis-py.
_NETWORK_ERRORS = (RedisConnectionError, RedisTimeoutError, socket.timeout, OSError)
# Error replies about the server's state (redis-py's classes, and the codes it leaves
# as a plain ResponseError), and replies that are not RESP at all; any other error reply
# (WRONGTYPE, ERR …) is about one command or key. NOPERM counts as the server's: XenX's
# keys share one prefix, so an ACL that refuses one refuses them all; TRYAGAIN and
# CLUSTERDOWN come from a Redis Cluster, which XenX does not address key by key.
_SERVER_ERRORS = (
    OutOfMemoryError, ReadOnlyError, NoPermissionError, ClusterDownError, TryAgainError,
    InvalidResponse,
)  # fmt: skip
_SERVER_ERROR_CODES = ("MISCONF", "BUSY", "NOREPLICAS", "MASTERDOWN", "CLUSTERDOWN")
_down_until = 0.0  # monotonic time until which this process does not try Redis


def reset() -> None:
    """Forget a recorded outage (tests)."""
    global _down_until
    _down_until = 0.0


def failing_fast() -> bool:
    """True while this process skips Redis after a recorded outage."""
    return bool(_down_until) and time.monotonic() < _down_until


def is_outage(exc: BaseException | None) -> bool:
    """Whether ``exc`` (raised by redis-py) means Redis cannot serve this process now:
    the network failed, or the server answered with an error about its own state."""
    if isinstance(exc, _NETWORK_ERRORS + _SERVER_ERRORS):
        return True
    if isinstance(exc, ResponseError):
        return str(exc).split(" ", 1)[0] in _SERVER_ERROR_CODES
    return False


def fail_open(exc: BaseException, message: str) -> None:
    """The one fail-open/fail-closed rule for a cache outage (README "Failure policy"),
    called from the ``except CACHE_ERRORS`` around a cache call: fail closed, i.e.
    raise 503 ``service_unavailable`` (``Retry-After: 5``), unless
    ``XENX_FAIL_OPEN_WITHOUT_CACHE`` is on; then it returns and the caller goes on
    without the cache (token signatures and the database, no limits)."""
    if not settings.XENX_FAIL_OPEN_WITHOUT_CACHE:
        raise ServiceUnavailable(message, headers={"Retry-After": "5"}) from exc


def record_outage() -> None:
    """Skip Redis in this process for ``XENX_CACHE_FAIL_FAST_SECONDS`` (also called by
    the gateway's raw pipeline, which does not go through django-redis's client)."""
    global _down_until
    _down_until = time.monotonic() + settings.XENX_CACHE_FAIL_FAST_SECONDS


def _guarded(method):
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        if failing_fast():
            raise ConnectionInterrupted(connection=None) from RedisConnectionError(
                "Redis was unreachable moments ago (failing fast)"
            )
        try:
            return method(self, *args, **kwargs)
        except ConnectionInterrupted as exc:
            if is_outage(exc.__cause__):
                record_outage()
            raise
        except CACHE_ERRORS as exc:  # what django-redis lets through unwrapped
            if is_outage(exc):
                record_outage()
            raise

    return wrapper


class FailFastClient(DefaultClient):
    """``DefaultClient`` whose cache operations fail at once during a known outage."""


for _name in (
    "get", "set", "add", "get_many", "set_many", "delete", "delete_many", "incr",
    "decr", "has_key", "touch", "ttl", "expire", "persist", "clear", "keys",
):  # fmt: skip
    setattr(FailFastClient, _name, _guarded(getattr(DefaultClient, _name)))
