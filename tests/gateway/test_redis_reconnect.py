"""The hot path's raw pipeline (``gateway.state.pipeline``) against a fake Redis on a
real socket: a connection Redis closed while idle (a restart) is replaced before the
next command, so no call fails on it (bench/faults saw each thread's first call after a
Redis restart answer 503 on its dead socket); a refused connection starts the
fail-fast window."""

import socket
import threading

import pytest
import redis

from core import cache as core_cache
from core.cache import CACHE_ERRORS
from gateway import state


class FakeRedis:
    """Answers every command with ``:1`` and closes each connection after one
    pipeline, as a restarted Redis leaves the old connections closed."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.closed = threading.Semaphore(0)  # released after each close
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            data = conn.recv(65536)
            conn.sendall(b":1\r\n" * data.count(b"*"))
            conn.close()
            self.closed.release()


@pytest.fixture
def raw_to(monkeypatch):
    def point(port):
        client = redis.Redis(
            host="127.0.0.1",
            port=port,
            socket_timeout=1,
            lib_name=None,
            lib_version=None,
        )
        monkeypatch.setattr(state, "_raw", client)
        return client

    core_cache.reset()
    yield point
    core_cache.reset()


def test_connection_closed_while_idle_is_replaced_before_sending(raw_to):
    fake = FakeRedis()
    try:
        raw_to(fake.port)
        for _ in range(3):
            assert state.pipeline((("INCR", "k"),)) == [1]
            assert fake.closed.acquire(timeout=5)  # closed while idle
        assert fake.connections == 3
    finally:
        fake.sock.close()


def test_refused_connection_fails_fast_afterwards(raw_to, settings):
    settings.XENX_CACHE_FAIL_FAST_SECONDS = 30
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    raw_to(port)
    with pytest.raises(CACHE_ERRORS):
        state.pipeline((("INCR", "k"),))
    assert core_cache.failing_fast()
    with pytest.raises(ConnectionError, match="failing fast"):
        state.pipeline((("INCR", "k"),))
