"""The one fake upstream of the tests: a raw-socket HTTP/1.1 server on 127.0.0.1 (plain
or TLS) that records every request exactly and answers as scripted, with fixed bytes or
with a function of the parsed request (``by_path``: the gateway tests' everyday
upstream; a verifier of the identity assertion; ...)."""

from __future__ import annotations

import contextlib
import json
import ssl
import threading
import time
from http import HTTPStatus
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

from .ports import RawServer

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
DROP = None  # a step: read the request, then close without answering
HANG = "hang"  # a step: no answer, the connection held open until the client closes it


class Request(NamedTuple):
    """A request as the upstream read it: its exact head and its body (de-chunked). The
    rest is read from the head when asked, as ``http.server`` would give it."""

    head: bytes
    body: bytes

    @property
    def method(self) -> str:
        return self.head.split(b" ", 1)[0].decode("latin-1")

    @property
    def path(self) -> str:
        """The request target as sent (path and query)."""
        return self.head.split(b"\r\n", 1)[0].split(b" ")[1].decode("latin-1")

    @property
    def header_list(self) -> list[tuple[str, str]]:
        """(name as sent, value) of each header line, in order."""
        pairs = []
        for line in self.head.split(b"\r\n")[1:]:
            if line:
                name, _, value = line.decode("latin-1").partition(":")
                pairs.append((name, value.strip()))
        return pairs

    @property
    def headers(self) -> dict[str, str]:
        """Name as sent → value (the last one when a name repeats)."""
        return dict(self.header_list)

    @property
    def size(self) -> int:
        return len(self.body)


class FakeUpstream(RawServer):
    """One list of steps per accepted connection, in order; a step answers one request.
    A step is the bytes to answer with, ``DROP``, ``HANG``, ``(answer, delay, close)``
    (``answer`` after ``delay`` seconds, then the connection closed when ``close``), or
    a function of the ``Request`` that returns one of those. When a connection's steps
    run out it is answered with ``answer`` (None: ``DROP``) from then on, or, with
    ``close_after_script``, closed at once; with ``close_after_script`` no connection
    is accepted after the script's last one (a client's connect waits unanswered, as on
    a stalled server). With ``body_timeout``, a body that stops arriving for that many
    seconds is dropped as nginx's client_body_timeout does: the connection closed with
    the client's bytes unread, counted in ``dropped``.

    Records per connection its exact bytes (``received``), request heads (``heads``)
    and when it closed (``closed``), and every request parsed by its own framing
    (Content-Length, chunked, or no body) as a ``Request`` in ``requests``."""

    def __init__(
        self,
        answer=OK,
        *,
        script=(),
        tls=None,
        close_after_script=False,
        body_timeout=None,
    ):
        self.answer = answer
        self.script = [list(steps) for steps in script]
        self.tls = tls
        self.close_after_script = close_after_script
        self.body_timeout = body_timeout
        self.received: list[bytearray] = []
        self.requests: list[Request] = []
        self.heads: list[list[bytes]] = []
        self.closed: list[threading.Event] = []
        self.dropped = 0
        super().__init__()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[bytes]:
        """Every request as its bytes, head and body."""
        return [head + body for head, body in self.requests]

    def accepting(self) -> bool:
        return bool(self.script) or not self.close_after_script

    def accepted(self, conn, peer) -> tuple:
        raw, heads, closed = bytearray(), [], threading.Event()
        self.received.append(raw)
        self.heads.append(heads)
        self.closed.append(closed)
        return self.script.pop(0) if self.script else [], raw, heads, closed

    def serve(self, conn, steps, raw, heads, closed):
        try:
            if self.tls is not None:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.conns.append(conn)
            conn.settimeout(10)
            self._exchange(conn, steps, _Reader(conn, raw), heads)
        except (OSError, ValueError, EOFError, ssl.SSLError):
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()
            closed.set()

    def _exchange(self, conn, steps, reader, heads):
        while True:
            if not steps and self.close_after_script:
                return
            head = reader.until(b"\r\n\r\n")
            if head is None:
                return
            heads.append(head)
            request = Request(head, self._body(conn, reader, head))
            self.requests.append(request)
            step = steps.pop(0) if steps else self.answer
            if callable(step):
                step = step(request)
            if step == HANG:
                while conn.recv(65536):  # until the client gives up
                    pass
                return
            if step is DROP:
                return
            answer, delay, close = (step, 0, False) if isinstance(step, bytes) else step
            time.sleep(delay)
            conn.sendall(answer)
            if close:
                return

    def _body(self, conn, reader, head) -> bytes:
        if self.body_timeout is None:
            return reader.body(head)
        conn.settimeout(self.body_timeout)
        try:
            return reader.body(head)
        except TimeoutError:
            self.dropped += 1
            raise
        finally:
            conn.settimeout(10)

    def wait_idle(self, seconds=0.3):
        """Give the gateway's last bytes time to arrive."""
        time.sleep(seconds)


class _Reader:
    def __init__(self, conn, raw):
        self.conn, self.raw, self.buf = conn, raw, bytearray()

    def _fill(self):
        data = self.conn.recv(65536)
        if not data:
            raise EOFError()
        self.raw += data
        self.buf += data

    def until(self, marker):
        try:
            while marker not in self.buf:
                self._fill()
        except (EOFError, OSError):
            return None
        end = self.buf.index(marker) + len(marker)
        head = bytes(self.buf[:end])
        del self.buf[:end]
        return head

    def exactly(self, size):
        while len(self.buf) < size:
            self._fill()
        data = bytes(self.buf[:size])
        del self.buf[:size]
        return data

    def body(self, head):
        fields = header_fields(head)
        if "chunked" in fields.get("transfer-encoding", ""):
            data = b""
            while True:
                line = self.until(b"\r\n")
                if line is None:  # cut mid-body: not a whole request
                    raise EOFError()
                size = int(line[:-2].split(b";")[0], 16)
                if size == 0:
                    while (line := self.until(b"\r\n")) != b"\r\n":
                        if line is None:
                            raise EOFError()
                    return data
                data += self.exactly(size)
                self.exactly(2)
        length = int(fields.get("content-length", "0"))
        return self.exactly(length)


def header_fields(head: bytes) -> dict:
    """Lower-cased name → value (comma-joined when repeated) of a request head."""
    fields: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        if not line:
            continue
        name, _, value = line.decode("latin-1").partition(":")
        name = name.strip().lower()
        value = value.strip()
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    return fields


def response(status: int, body: bytes = b"", headers=()) -> bytes:
    """An HTTP/1.1 answer: the status line, ``headers`` (pairs), the body's
    Content-Length, the body."""
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_response(status: int, data, *, head_only: bool = False) -> bytes:
    """``data`` as an application/json answer (only its head for a HEAD request)."""
    answer = response(
        status, json.dumps(data).encode(), [("Content-Type", "application/json")]
    )
    return answer.partition(b"\r\n\r\n")[0] + b"\r\n\r\n" if head_only else answer


class PathUpstream(FakeUpstream):
    """The gateway tests' everyday upstream (fixtures ``upstream`` and
    ``upstream_factory``): answers each request by its path (``by_path``), as the
    instance ``name``; ``behavior`` "reset" (read, then close without an answer) or
    "slow" (as ``/slow``) applies to every path."""

    def __init__(self, name: str = "up"):
        self.name = name
        self.behavior: str | None = None
        super().__init__(lambda request: by_path(request, self.name, self.behavior))


def by_path(request: Request, name: str, behavior: str | None = None):
    """The step answering ``request`` by its path: ``/big?n=N`` N bytes,
    ``/redirect`` a 302, ``/cookies`` two Set-Cookie, ``/hop`` hop-by-hop headers
    beside ``X-Kept``, ``/slow?s=S`` (default 2) after S seconds, anything else
    ``{"server": name, "method", "path"}`` with the ``?status=`` asked for (200)."""
    if behavior == "reset":
        return DROP
    parts = urlsplit(request.path)
    query = parse_qs(parts.query)
    slow = parts.path.endswith("/slow") or behavior == "slow"
    delay = float(query.get("s", ["2"])[0]) if slow else 0
    close = "close" in header_fields(request.head).get("connection", "").lower()
    if parts.path.endswith("/big"):
        body = b"x" * int(query["n"][0])
        answer = response(200, body, [("Content-Type", "application/octet-stream")])
    elif parts.path.endswith("/redirect"):
        answer = response(302, headers=[("Location", "/elsewhere")])
    elif parts.path.endswith("/cookies"):
        cookies = ["a=1; Path=/; HttpOnly", "b=2; Path=/x; Max-Age=60"]
        answer = response(200, b"ok", [("Set-Cookie", c) for c in cookies])
    elif parts.path.endswith("/hop"):
        answer = response(200, b"ok", HOP_HEADERS)
    else:
        status = int(query.get("status", ["200"])[0])
        echo = {"server": name, "method": request.method, "path": request.path}
        answer = json_response(status, echo, head_only=request.method == "HEAD")
    return answer, delay, close


# What /hop answers with: every hop-by-hop kind, and one header that is not.
HOP_HEADERS = [
    ("Connection", "keep-alive, X-Private"),
    ("Keep-Alive", "timeout=5"),
    ("X-Private", "secret"),
    ("Proxy-Authenticate", "Basic"),
    ("Trailer", "X-Checksum"),
    ("Upgrade", "h2c"),
    ("X-Kept", "yes"),
]
