"""core.cache.FailFastClient: during a Redis outage each process waits out one socket
timeout, not one per cache operation (bench/faults measured 3-7 s per call without).
django-redis re-raises the cause of its ConnectionInterrupted: callers see redis-py's
ConnectionError, as for any other outage. Which error replies count as an outage is
decided once (``core.cache.is_outage``), for this door and the gateway's pipeline."""

import socket

import pytest
from django_redis.cache import RedisCache
from django_redis.exceptions import ConnectionInterrupted
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse

from core import cache as core_cache


@pytest.fixture
def dead_redis():
    """A RedisCache on a port where nothing listens (connections refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    core_cache.reset()
    yield RedisCache(
        f"redis://127.0.0.1:{port}/0",
        {"OPTIONS": {"CLIENT_CLASS": "core.cache.FailFastClient",
                     "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}},
    )  # fmt: skip
    core_cache.reset()


def test_after_a_failure_operations_fail_at_once_without_connecting(
    dead_redis, monkeypatch, settings
):
    settings.XENX_CACHE_FAIL_FAST_SECONDS = 60
    with pytest.raises(RedisConnectionError):
        dead_redis.get("k")
    connects = []
    monkeypatch.setattr(
        socket, "create_connection", lambda *a, **k: connects.append(a) or 1 / 0
    )
    for op in (
        lambda: dead_redis.get("k"),
        lambda: dead_redis.get_many(["a", "b"]),
        lambda: dead_redis.set("k", 1),
        lambda: dead_redis.add("k", 1),
        lambda: dead_redis.delete("k"),
        lambda: dead_redis.incr("k"),
    ):
        with pytest.raises(RedisConnectionError) as info:
            op()
        assert "failing fast" in str(info.value)
    assert connects == []


def test_redis_is_tried_again_once_the_window_is_over(dead_redis, settings):
    settings.XENX_CACHE_FAIL_FAST_SECONDS = 0
    for _ in range(2):
        with pytest.raises(RedisConnectionError) as info:
            dead_redis.get("k")
        assert "failing fast" not in str(info.value)  # a real attempt each time


SERVER_ERRORS = [
    "OOM command not allowed when used memory > 'maxmemory'.",
    "READONLY You can't write against a read only replica.",
    "LOADING Redis is loading the dataset in memory",
    "MISCONF Redis is configured to save RDB snapshots",
    "MASTERDOWN Link with MASTER is down",
    "NOPERM this user has no permissions to run the 'incr' command",
    "NOAUTH Authentication required.",
    "BUSY Redis is busy running a script.",
    "CLUSTERDOWN The cluster is down",
    "TRYAGAIN Multiple keys request during rehashing of slot",
    "ERR max number of clients reached",
]
COMMAND_ERRORS = [
    "WRONGTYPE Operation against a key holding the wrong kind of value",
    "ERR value is not an integer or out of range",
    "ERR increment or decrement would overflow",
    "ERR syntax error",
    "EXECABORT Transaction discarded because of previous errors.",
    "NOSCRIPT No matching script.",
]


@pytest.mark.parametrize("reply", SERVER_ERRORS + COMMAND_ERRORS)
def test_an_error_reply_is_an_outage_only_when_it_is_about_the_server(reply):
    # the exception redis-py raises for that reply (both parsers use parse_error)
    error = BaseParser.parse_error(reply)
    assert core_cache.is_outage(error) is (reply in SERVER_ERRORS)


def _wrapped(error):  # as django-redis raises what it wraps
    wrapper = ConnectionInterrupted(connection=None)
    wrapper.__cause__ = error
    return wrapper


@pytest.mark.parametrize(
    "wrap", [_wrapped, lambda error: error], ids=["wrapped", "raw"]
)
@pytest.mark.parametrize(
    "error, outage",
    [
        (BaseParser.parse_error(SERVER_ERRORS[0]), True),
        (BaseParser.parse_error(COMMAND_ERRORS[0]), False),
        (InvalidResponse("Protocol Error: '!'"), True),
    ],
    ids=["OOM", "WRONGTYPE", "not-RESP"],
)
def test_the_django_redis_door_classifies_alike(wrap, error, outage, settings):
    """django-redis wraps some errors in ConnectionInterrupted and lets others through
    (a reply that is not RESP; any error of ttl, expire, touch, persist)."""
    settings.XENX_CACHE_FAIL_FAST_SECONDS = 60
    raised = wrap(error)

    class Failing:  # the redis-py client of one operation
        def persist(self, key):
            raise raised

    # django-redis lets persist's errors through as raised: the door sees each shape
    door = RedisCache(
        "redis://127.0.0.1:1/0",
        {"OPTIONS": {"CLIENT_CLASS": "core.cache.FailFastClient"}},
    ).client
    core_cache.reset()
    try:
        with pytest.raises(type(raised)):
            door.persist("k", client=Failing())
        assert core_cache.failing_fast() is outage
    finally:
        core_cache.reset()
