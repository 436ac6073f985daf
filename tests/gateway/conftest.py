"""Throwaway upstream servers on 127.0.0.1 and service factories for gateway tests."""

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway import services
from gateway.upstream import close_pools
from tests.support import ports


class UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.server.conns.add(self.connection)

    def log_message(self, *args):
        pass

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self):
        server = self.server
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path.endswith("/upload-count"):
            total = self._count_body()
            body = b""
            record = {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "header_list": self.headers.items(),
                "body": b"",
                "size": total,
            }
        else:
            body = self._body()
            record = {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "header_list": self.headers.items(),
                "body": body,
                "size": len(body),
            }
        server.requests.append(record)
        behavior = server.behavior
        if behavior == "reset":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if parts.path.endswith("/slow") or behavior == "slow":
            time.sleep(float(query.get("s", ["2"])[0]))
        if parts.path.endswith("/big"):
            size = int(query["n"][0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"x" * 65536
            sent = 0
            while sent < size:
                piece = chunk[: min(65536, size - sent)]
                self.wfile.write(piece)
                sent += len(piece)
            return
        if parts.path.endswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts.path.endswith("/cookies"):
            self.send_response(200)
            self.send_header("Set-Cookie", "a=1; Path=/; HttpOnly")
            self.send_header("Set-Cookie", "b=2; Path=/x; Max-Age=60")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        if parts.path.endswith("/hop"):
            self.send_response(200)
            self.send_header("Connection", "keep-alive, X-Private")
            self.send_header("Keep-Alive", "timeout=5")
            self.send_header("X-Private", "secret")
            self.send_header("Proxy-Authenticate", "Basic")
            self.send_header("Trailer", "X-Checksum")
            self.send_header("Upgrade", "h2c")
            self.send_header("X-Kept", "yes")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            return
        status = int(query.get("status", ["200"])[0])
        payload = json.dumps(
            {"server": server.name, "method": self.command, "path": self.path}
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _count_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        total = 0
        while total < length:
            chunk = self.rfile.read(min(65536, length - total))
            if not chunk:
                break
            total += len(chunk)
        return total

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class Upstream:
    def __init__(self, name):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), UpstreamHandler)
        self.server.daemon_threads = True
        self.server.requests = []
        self.server.conns = set()
        self.server.behavior = None
        self.server.name = name
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def requests(self):
        return self.server.requests

    def set_behavior(self, behavior):
        self.server.behavior = behavior

    def stop(self):
        """Stop accepting and cut every open connection (a killed instance)."""
        self.server.shutdown()
        self.server.server_close()
        for conn in list(self.server.conns):
            with contextlib.suppress(OSError):
                conn.shutdown(2)
                conn.close()


@pytest.fixture
def upstream_factory():
    started = []

    def make(name="up"):
        up = Upstream(name)
        started.append(up)
        return up

    yield make
    for up in started:
        with contextlib.suppress(OSError):
            up.stop()


@pytest.fixture
def test_servers():
    """test_servers(cls, *args, **kwargs): a raw-socket test server (an upstream, a
    fake Redis) started for this test and closed at its end."""
    started = []

    def make(cls, *args, **kwargs):
        server = cls(*args, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
def upstream(upstream_factory):
    return upstream_factory("up1")


@pytest.fixture(autouse=True)
def _closed_pools():
    """The upstream pools of a test closed after it (the registry and the other memos
    are reset by tests/conftest.py's hook)."""
    yield
    close_pools()


@pytest.fixture
def make_service(db):
    """make_service(name, urls, **fields) → Service (through service_create)."""

    def make(name="echo", urls=(), **fields):
        return services.service_create(name=name, instances=list(urls), **fields)

    return make


def closed_port_url():
    """A URL on which nothing listens (connection refused)."""
    return ports.closed_port_url()
