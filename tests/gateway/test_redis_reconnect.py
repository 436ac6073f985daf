"""The hot path's raw pipeline (``gateway.state.pipeline``) against a fake Redis on a
real socket: a connection Redis closed while idle (a restart) is replaced before the
next command, so no call fails on it (bench/faults saw each thread's first call after a
Redis restart answer 503 on its dead socket); a refused connection starts the
fail-fast window."""

import pytest
import redis

from core import cache as core_cache
from core.cache import CACHE_ERRORS
from gateway import state
from tests.support.ports import free_port
from tests.support.redis import FakeRedis


@pytest.fixture
def raw_to():
    def point(port):
        client = redis.Redis(
            host="127.0.0.1",
            port=port,
            socket_timeout=1,
            lib_name=None,
            lib_version=None,
        )
        state.use_client(client)
        return client

    core_cache.reset()
    yield point
    state.forget()
    core_cache.reset()


def test_connection_closed_while_idle_is_replaced_before_sending(raw_to, test_servers):
    # Every connection answers one pipeline, then is closed (as a restarted Redis
    # leaves the old connections closed).
    fake = test_servers(FakeRedis, *[[(b":1\r\n", True)]] * 3)
    raw_to(fake.port)
    for _ in range(3):
        assert state.pipeline((("INCR", "k"),)) == [1]
        assert fake.closed.acquire(timeout=5)  # closed while idle
    assert fake.connections == 3


def test_refused_connection_fails_fast_afterwards(raw_to, settings):
    settings.XENX_CACHE_FAIL_FAST_SECONDS = 30
    raw_to(free_port())  # nothing listens there
    with pytest.raises(CACHE_ERRORS):
        state.pipeline((("INCR", "k"),))
    assert core_cache.failing_fast()
    with pytest.raises(ConnectionError, match="failing fast"):
        state.pipeline((("INCR", "k"),))
