"""xenx.cache.FailFastClient: during a Redis outage each process waits out one socket
timeout, not one per cache operation (bench/faults measured 3-7 s per call without).
django-redis re-raises the cause of its ConnectionInterrupted: callers see redis-py's
ConnectionError, as for any other outage."""

import socket

import pytest
from django_redis.cache import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError

from xenx import cache as xenx_cache


@pytest.fixture
def dead_redis():
    """A RedisCache on a port where nothing listens (connections refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    xenx_cache.reset()
    yield RedisCache(
        f"redis://127.0.0.1:{port}/0",
        {"OPTIONS": {"CLIENT_CLASS": "xenx.cache.FailFastClient",
                     "SOCKET_CONNECT_TIMEOUT": 0.5, "SOCKET_TIMEOUT": 0.5}},
    )  # fmt: skip
    xenx_cache.reset()


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
