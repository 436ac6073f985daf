"""gateway.fastredis against a fake Redis on a real socket: a connection Redis closed
while idle (a restart) is replaced before the next command, so no call fails on it."""

import socket
import threading

import pytest

from gateway import fastredis


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
def fake_redis():
    server = FakeRedis()
    fastredis._local.conn = None
    yield server
    fastredis._local.conn = None
    server.sock.close()


def test_connection_closed_while_idle_is_replaced_before_sending(fake_redis):
    params = {"host": "127.0.0.1", "port": fake_redis.port, "socket_timeout": 1}
    for _ in range(3):
        assert fastredis.execute(params, [("INCR", "k")]) == [1]
        assert fake_redis.closed.acquire(timeout=5)  # closed while idle
    assert fake_redis.connections == 3
