"""The proxied call's one round trip to the shared cache, and the registry version.

``hot_round_trip`` sends what every party of a call contributes (the rate-limit count,
the registry version, the instances' breaker state, the token's revocation records) as
one pipeline on the calling thread's own Redis connection. Counters, the version and
breaker state are plain integers, so that this raw client and Django's cache API read
and write the same keys. With a process-local cache (development, tests without Redis)
the same functions fall back to the cache API.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import ssl
import threading
import time

from django.core.cache import cache, caches
from django.core.signals import setting_changed
from django.dispatch import receiver
from django_redis import get_redis_connection
from django_redis.cache import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core import cache as core_cache
from core.cache import CACHE_ERRORS
from core.memo import Memo
from core.net import kernel_timeouts

VERSION_KEY = "gw:registry:version"

# A connection Redis closed while idle: EOF or a reset on the next call.
_CLOSED_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, OSError)
_TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (RedisTimeoutError, TimeoutError)


class CacheDown(Exception):
    """The shared cache did not answer (a ``core.cache.CACHE_ERRORS`` behind it)."""


_raw = None
_raw_checked = False
_decode = None  # django-redis's decoding of values written through the cache API


def raw_client():
    """The raw redis client behind django-redis, or None for another backend."""
    global _raw, _raw_checked, _decode
    if not _raw_checked:
        if isinstance(caches["default"], RedisCache):
            _raw = get_redis_connection("default")
            _decode = caches["default"].client.decode
        _raw_checked = True
    return _raw


def use_client(client, *, decode=None) -> None:
    """Send the hot path's round trips through ``client`` (a ``redis.Redis``) instead of
    the cache's own, reading cache-API values with ``decode`` (django-redis's when the
    cache is Redis): how tests point it at a fake Redis, or count the decoding.
    ``forget()`` goes back to the cache's client."""
    global _raw, _raw_checked, _decode
    forget()
    if decode is None and isinstance(caches["default"], RedisCache):
        decode = caches["default"].client.decode
    _raw, _decode, _raw_checked = client, decode, True


def forget() -> None:
    """Forget the client (found again on the next call), the memos of full keys and
    decoded values, and this thread's connection: when the cache setting changes, and
    between tests (tests/support/reset.py)."""
    global _raw, _raw_checked, _decode
    drop_connection()
    _full_keys.clear()
    decoded_values.clear()
    _raw = _decode = None
    _raw_checked = False


_packed: dict[tuple, bytes] = {}
_PACKED_MAX = 20_000


_local = threading.local()


def _thread_connection(fresh: bool = False):
    """(this thread's own connection to the pool's Redis, whether it was used before).

    Same class and options as the pool's (TLS, timeouts, credentials), made lazily. A
    pool would cost a lock, a fork check and a poll for stale data on every call; a
    thread here runs one call at a time and reads every reply it asked for, so its
    connection is never left with replies pending. Plain TCP sockets get their timeout
    from the kernel (``core.net.kernel_timeouts``): no poll before each send and read."""
    pool = _raw.connection_pool
    conn = getattr(_local, "conn", None)
    if fresh or conn is None or _local.pool is not pool or _local.pid != os.getpid():
        if conn is not None and _local.pid == os.getpid():
            conn.disconnect()
        conn = pool.connection_class(**pool.connection_kwargs)
        _local.conn, _local.pool, _local.pid = conn, pool, os.getpid()
    if conn._sock is not None:
        return conn, True
    conn.connect()
    if not isinstance(conn._sock, ssl.SSLSocket):
        kernel_timeouts(conn._sock, conn.socket_timeout)
    return conn, False


def connection():
    """This thread's connection to Redis: None before its first round trip, and after
    one failed (it is never reused with replies pending)."""
    return getattr(_local, "conn", None)


def drop_connection() -> None:
    """Close this thread's connection; its next round trip opens a new one."""
    conn = getattr(_local, "conn", None)
    _local.conn = None
    if conn is not None:
        conn.disconnect()


def _timed_out(exc: BaseException) -> bool:
    # redis-py reports the kernel's timeout (EAGAIN) as a ConnectionError from it
    return isinstance(exc, (*_TIMEOUT_ERRORS, BlockingIOError)) or isinstance(
        exc.__context__, BlockingIOError
    )


def pipeline(commands: tuple) -> list:
    """Send ``commands`` in one write on this thread's redis-py connection and read
    their replies (parsed by hiredis). Leaner than redis-py's ``Pipeline`` object (no
    command stack, no response callbacks) and than a pooled connection. A connection
    that failed mid-way is dropped, never reused with replies pending; one that Redis
    closed while idle (a restart, its idle timeout) is replaced and the commands sent
    once more on a new one: the closed socket never delivered them. One that closed
    after any byte of a reply came back (an INCR already counted): never sent again.
    Only an error that says Redis cannot serve (``core.cache.is_outage``) starts the
    process's fail-fast window; an error reply about one key fails this call alone."""
    if core_cache.failing_fast():  # Redis failed moments ago: 503 at once, no wait
        raise ConnectionError("Redis was unreachable moments ago (failing fast)")
    packed = _packed.get(commands)
    for attempt in (1, 2):
        conn, reused, held, sent = None, False, 0, False
        replies: list = []
        try:
            conn, reused = _thread_connection(fresh=attempt == 2)
            if reused:
                held = _bytes_received(conn)
            if packed is None:  # the same commands recur (per service, user, window)
                if len(_packed) >= _PACKED_MAX:
                    _packed.clear()
                packed = _packed[commands] = b"".join(conn.pack_commands(commands))
            conn.send_packed_command((packed,), check_health=False)
            sent = True
            for _ in commands:  # left connected on an error: its parser is read below
                replies.append(conn.read_response(disconnect_on_error=False))
            return replies
        except BaseException as exc:
            try:
                resend = (
                    attempt == 1
                    and reused
                    and not replies
                    and isinstance(exc, _CLOSED_ERRORS)
                    and not _timed_out(exc)
                    # the write failed (a reset it found), or not a byte of a reply
                    # came back
                    and (not sent or (held >= 0 and _bytes_received(conn) == held))
                )
            finally:
                drop_connection()
            if resend:
                continue
            if core_cache.is_outage(exc):
                core_cache.record_outage()
            raise
    raise AssertionError("unreachable")  # pragma: no cover


def _bytes_received(conn) -> int:
    """How much the connection's reply parser holds: hiredis's reader keeps what it was
    fed until it has consumed 1 KiB, and redis-py's Python parser empties its buffer
    after each complete reply, so a partly received reply (an INCR's is at most 22
    bytes) always shows as more. -1 when it cannot be told (then no resend)."""
    parser = conn._parser
    reader = getattr(parser, "_reader", None)
    if reader is not None:  # hiredis
        return reader.len()
    buffer = getattr(parser, "_buffer", None)
    if hasattr(buffer, "unread_bytes"):  # redis-py's own parser: a SocketBuffer
        return buffer.get_pos() + buffer.unread_bytes()
    return -1


def key(name: str) -> str:
    """The cache's full key (prefix and version), as Django's cache API would write it;
    memoised (``cache.make_key`` through the connection proxy is a measurable share of
    a call)."""
    full = _full_keys.get(name)
    if full is None:
        if len(_full_keys) >= _FULL_KEYS_MAX:
            _full_keys.clear()
        full = _full_keys[name] = cache.make_key(name)
    return full


_full_keys: dict[str, str] = {}
_FULL_KEYS_MAX = 100_000


def decoded(raw: bytes):
    """django-redis's decoding of a value read in the round trip, memoised per raw bytes
    when the value is immutable: a user's revocation record (a frozen dataclass) comes
    back as the same bytes on every call of that user, and django-redis first tries
    ``int()`` on it (an exception whose message is the bytes' repr), then unpickles it.
    Other values (none on the hot path) are decoded every time."""
    value = decoded_values.get(raw)
    if value is None:
        value = _decode(raw)
        if _immutable(value):
            decoded_values.set(raw, value)
    return value


_SCALARS = (bool, int, float, str, bytes, type(None))


def _immutable(value) -> bool:
    """A scalar, or a frozen dataclass of scalars (what revocation records are)."""
    if isinstance(value, _SCALARS):
        return value is not None
    if dataclasses.is_dataclass(value) and type(value).__dataclass_params__.frozen:
        fields = dataclasses.fields(value)
        return all(isinstance(getattr(value, f.name), _SCALARS) for f in fields)
    return False


# Public for its size and ``clear`` (tests, a bound a hostile client cannot grow).
decoded_values = Memo(20_000, name="decoded cache values")


@receiver(setting_changed)
def _forget(setting, **kwargs):
    if setting == "CACHES":
        forget()


def as_int(value) -> int | None:
    """A counter, version or breaker value as read (None when absent or not one)."""
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# --- registry version -------------------------------------------------------------


def get_version() -> int | None:
    try:
        return as_int(cache.get(VERSION_KEY))
    except CACHE_ERRORS as exc:
        raise CacheDown() from exc


def bump_version() -> None:
    """Tell every worker and node that the registry changed."""
    # On a cache outage workers keep their snapshot; the change shows when it is back.
    with contextlib.suppress(*CACHE_ERRORS):
        cache.set(VERSION_KEY, time.time_ns(), None)


# --- the hot path's one pipelined round trip ----------------------------------------


def hot_round_trip(
    *,
    rl_key: str | None,
    period: int,
    health_keys: tuple[str, ...],
    cache_keys: tuple[str, ...] = (),
):
    """The call's one round trip, each party's keys in one pipeline: count the call
    against ``rl_key`` (INCR + EXPIRE NX; the rate limit), read the registry version,
    ``health_keys`` (the breaker's, ``gateway.breaker.keys``) and ``cache_keys`` (values
    written through Django's cache API: the token's revocation records). Returns (count
    or None, version, health values, {cache key: value} of the ``cache_keys`` present);
    raises ``CacheDown``."""
    client = raw_client()
    try:
        if client is not None:
            reads = (
                "MGET",
                key(VERSION_KEY),
                *(key(k) for k in health_keys),
                *(key(k) for k in cache_keys),
            )
            if rl_key is not None:
                full = key(rl_key)
                commands = (("INCR", full), ("EXPIRE", full, period + 1, "NX"), reads)
            else:
                commands = (reads,)
            results = pipeline(commands)
            count = results[0] if rl_key is not None else None
            values = results[-1]
            split = 1 + len(health_keys)
            found = {}
            if cache_keys:
                for name, raw in zip(cache_keys, values[split:], strict=True):
                    if raw is not None:
                        found[name] = decoded(raw)
            return count, as_int(values[0]), [as_int(v) for v in values[1:split]], found
        count = None
        if rl_key is not None:
            cache.add(rl_key, 0, period + 1)
            try:
                count = cache.incr(rl_key)
            except ValueError:  # expired between add and incr
                cache.set(rl_key, 1, period + 1)
                count = 1
        found = cache.get_many([VERSION_KEY, *health_keys, *cache_keys])
        return (
            count,
            as_int(found.get(VERSION_KEY)),
            [as_int(found.get(k)) for k in health_keys],
            {k: found[k] for k in cache_keys if k in found},
        )
    except CACHE_ERRORS as exc:
        raise CacheDown() from exc


def uncount(rl_key: str) -> None:
    """Take back a call counted by ``hot_round_trip`` whose token was then refused on
    the records read in that same round trip: refused calls do not use up the limit."""
    with contextlib.suppress(*CACHE_ERRORS, ValueError):  # ValueError: expired
        cache.decr(rl_key)
