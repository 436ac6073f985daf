"""The upstream HTTP/1.1 client: keep-alive socket pools per instance, per process.

Chosen by measurement (README, "Gateway"): on the benchmark machine one keep-alive call
costs ~320 µs of CPU through ``urllib3`` (``requests`` adds more), ~15 µs as a bare
socket round trip. The proxy needs only a small part of a general client: one request
written with one ``sendall``, the answer parsed by llhttp (Node.js's HTTP/1.1 parser,
through ``httptools``: status line, headers, Content-Length, chunked and close-delimited
framing, trailers), the body relayed as llhttp hands it over. Redirects are never
followed, nothing is decoded, no environment or proxy settings are consulted.

Each pool keeps up to ``XENX_GATEWAY_POOL_SIZE`` idle connections (the worker's thread
count) and never blocks: a burst above it opens extra connections that are closed after
use. Pools are per instance, so a slow service cannot starve the others. An idle
connection is checked with a non-blocking peek before reuse; one the upstream closed
meanwhile is replaced, and a request that meets a stale connection before any response
byte is sent again once on a fresh one when that is safe (nothing of a streamed body was
consumed): transparently, not counted as a retry or a failure.
"""

from __future__ import annotations

import collections
import contextlib
import re
import socket
import ssl
import threading

import httptools
from django.conf import settings

from core.net import kernel_timeouts

CHUNK = 64 * 1024
MAX_HEAD = 64 * 1024
_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT
# llhttp accepts any byte but CR/LF in a reason phrase; it is relayed to the client,
# so it may hold no control character but HTAB.
_REASON = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
# Never sent upstream: a control character (HTAB aside) in the target or a header value.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class RequestRejected(ValueError):
    """The request cannot be written safely (CR, LF or NUL in its head)."""


class UpstreamError(Exception):
    """An attempt failed. ``sent``: some of the request may have reached the upstream;
    ``timeout``: it was a timeout."""

    def __init__(self, kind: str, *, sent: bool, timeout: bool = False):
        super().__init__(kind)
        self.kind, self.sent, self.timeout = kind, sent, timeout


class _Stale(Exception):
    """A reused connection turned out closed before any response byte arrived."""


class Connection:
    __slots__ = ("sock", "buf", "kernel", "timeout")

    def __init__(self, sock, *, kernel: bool = False):
        self.sock = sock
        self.buf = b""  # received, not yet given to a parser
        # Plain TCP: blocking, timeouts kept by the kernel (core.net.kernel_timeouts),
        # ``timeout`` the one set; TLS: Python's socket timeout.
        self.kernel = kernel
        self.timeout: float | None = None

    def set_timeout(self, seconds: float) -> None:
        if not self.kernel:
            self.sock.settimeout(seconds)
        elif seconds != self.timeout:
            kernel_timeouts(self.sock, seconds)
            self.timeout = seconds

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def receive(self) -> bytes:
        """The buffered bytes, or the next ones from the socket; EOFError at its end."""
        if self.buf:
            data, self.buf = self.buf, b""
            return data
        try:
            data = self.sock.recv(CHUNK)
        except BlockingIOError:  # the kernel's receive timeout
            raise TimeoutError("upstream read timed out") from None
        if not data:
            raise EOFError()
        return data


class _Parse:
    """llhttp's callbacks (through ``httptools``) for the answer to one request:
    interim 1xx answers are parsed and forgotten, the final one's status line, headers
    and body kept; a byte after its end (a second message, or garbage) makes the
    connection unusable. Trailers are read and dropped."""

    __slots__ = (
        "parser",
        "reason",
        "headers",
        "chunks",
        "head_done",
        "done",
        "extra",
        "keep_alive",
        "head_bytes",
        "fed",
    )

    def __init__(self):
        self.parser = httptools.HttpResponseParser(self)
        self.reason = b""
        self.headers: list = []
        self.chunks: list = []
        self.head_done = self.done = self.extra = self.keep_alive = False
        self.head_bytes = self.fed = 0

    def feed(self, data: bytes) -> None:
        if not self.head_done:  # more than MAX_HEAD given without a whole head
            if self.fed > MAX_HEAD:
                raise ValueError("header section too large")
            self.fed += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if not self.done:
                raise
            self.extra = True  # junk after the answer: never reuse the connection

    # llhttp callbacks
    def on_message_begin(self):
        if self.head_done:
            self.extra = True
        else:  # a new message after an interim one
            self.reason, self.headers = b"", []

    def on_status(self, data: bytes):
        if not self.head_done:
            self.reason += data

    def on_header(self, name: bytes, value: bytes):
        if not self.head_done:
            self.headers.append((name, value))
            self.head_bytes += len(name) + len(value) + 4
            if self.head_bytes > MAX_HEAD:  # stops llhttp (HttpParserCallbackError)
                raise ValueError("header section too large")

    def on_headers_complete(self):
        if self.head_done:
            return
        if self.parser.get_status_code() >= 200:
            self.head_done = True
            self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, data: bytes):
        if not self.extra:
            self.chunks.append(data)

    def on_message_complete(self):
        if self.head_done and not self.extra:
            self.done = True


class Response:
    """Status, reason and headers as the upstream sent them; the body read once, all
    at once (``read``) or in chunks (``stream``). The connection goes back to its pool
    when the body was read to its end, and is closed otherwise."""

    __slots__ = (
        "status",
        "reason",
        "headers",
        "length",
        "_conn",
        "_pool",
        "_parse",
        "_to_close",
        "_keep_alive",
        "_done",
    )

    def __init__(self, pool, conn, parse, status, headers, length, keep_alive, done):
        self.status, self.headers, self.length = status, headers, length
        self.reason = parse.reason.decode("latin-1")
        self._pool, self._conn, self._parse = pool, conn, parse
        self._keep_alive = keep_alive
        self._to_close = keep_alive is None  # the body runs to the connection's close
        self._done = done
        if done:
            self._finish()

    def read(self) -> bytes:
        return b"".join(self.stream())

    def stream(self):
        conn, parse = self._conn, self._parse
        if self._done:  # all of it arrived with the head
            chunks, parse.chunks = parse.chunks, []
            yield from chunks
            return
        try:
            while True:
                if parse.chunks:
                    chunks, parse.chunks = parse.chunks, []
                    yield from chunks
                if parse.done:
                    break
                try:
                    data = conn.receive()
                except EOFError:
                    if self._to_close:
                        break  # the close is the end of the body
                    raise
                parse.feed(data)
            self._done = True
        finally:
            self._finish()

    def close(self) -> None:
        self._finish()

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._keep_alive and not self._parse.extra and not conn.buf:
            self._pool.put(conn)
        else:
            conn.close()


class Pool:
    def __init__(
        self, scheme: str, host: str, port: int, maxsize: int, cafile: str = ""
    ):
        self.scheme, self.host, self.port, self.maxsize = scheme, host, port, maxsize
        default = 443 if scheme == "https" else 80
        self.host_header = host if port == default else f"{host}:{port}"
        if ":" in host and not host.startswith("["):  # IPv6 literal
            self.host_header = f"[{host}]" if port == default else f"[{host}]:{port}"
        # The kept-alive connections waiting for a request, the latest put back last
        # (taken first): at most ``maxsize``.
        self.idle: collections.deque = collections.deque()
        # Certificates and host names verified; ``cafile`` replaces the system's CAs.
        self._ssl = None
        if scheme == "https":
            self._ssl = ssl.create_default_context(cafile=cafile or None)

    def _connect(self, timeout: float) -> Connection:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except TimeoutError as exc:
            raise UpstreamError("connect_timeout", sent=False, timeout=True) from exc
        except OSError as exc:
            raise UpstreamError("connect_error", sent=False) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._ssl is not None:
            try:
                sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise UpstreamError("tls_error", sent=False) from exc
            return Connection(sock)
        return Connection(sock, kernel=True)

    def _idle_connection(self) -> Connection | None:
        while True:
            try:
                conn = self.idle.pop()
            except IndexError:
                return None
            if self._ssl is not None:
                return conn  # TLS records make a byte peek meaningless
            try:
                # Blocking socket, MSG_DONTWAIT: one non-blocking peek, no poll first.
                if conn.sock.recv(1, _PEEK) == b"":
                    conn.close()  # the upstream closed it while idle
                    continue
                conn.close()  # unexpected bytes: never reuse
                continue
            except BlockingIOError:
                return conn
            except OSError:
                conn.close()

    def put(self, conn: Connection) -> None:
        if len(self.idle) < self.maxsize:
            self.idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()

    def request(
        self,
        method: str,
        target: str,
        headers: dict,
        body,
        *,
        connect_timeout: float,
        read_timeout: float,
        chunked: bool = False,
    ) -> Response:
        """Send one request and read the response head. ``body``: None, bytes, or an
        iterable of bytes (sent with the Content-Length in ``headers``, or chunked)."""
        if _CONTROL.search(target) or _CONTROL.search("".join(headers.values())):
            raise RequestRejected("a control character in the request head")
        lines = [f"{method} {target} HTTP/1.1\r\nHost: {self.host_header}\r\n"]
        for name, value in headers.items():
            lines.append(f"{name}: {value}\r\n")
        if chunked:
            lines.append("Transfer-Encoding: chunked\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        # Every line ends in the one CRLF written here: any other CR, LF or NUL came
        # from a forwarded value and would split the head (request smuggling).
        newlines = len(lines) + 1
        if (
            head.count(b"\n") != newlines
            or head.count(b"\r") != newlines
            or b"\0" in head
        ):
            raise RequestRejected("CR, LF or NUL in the request head")
        conn = self._idle_connection()
        if conn is not None:
            conn.set_timeout(read_timeout)
            try:
                return self.exchange(conn, method, head, body, chunked, True)
            except _Stale:
                conn.close()
                if not (body is None or isinstance(body, bytes)) and consumed(body):
                    raise UpstreamError("connection_reset", sent=True) from None
            # A stale keep-alive connection (closed by the upstream before any byte
            # of an answer): once more on a fresh one, transparently.
        conn = self._connect(connect_timeout)
        conn.set_timeout(read_timeout)
        return self.exchange(conn, method, head, body, chunked, False)

    def exchange(self, conn, method, head, body, chunked, reused) -> Response:
        """One request on ``conn``: ``head`` and ``body`` sent, the answer's head read.
        ``reused``: ``conn`` is a kept-alive one taken from ``idle``; closed before any
        byte of an answer, it is stale and ``request`` sends the request again once on
        a new connection."""
        received = False
        try:
            if body is None:
                conn.sock.sendall(head)
            elif isinstance(body, bytes):
                conn.sock.sendall(head + body)
            else:
                conn.sock.sendall(head)
                for chunk in body:
                    if not chunk:
                        continue
                    if chunked:
                        conn.sock.sendall(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                    else:
                        conn.sock.sendall(chunk)
                if chunked:
                    conn.sock.sendall(b"0\r\n\r\n")
            parse = _Parse()
            while not parse.head_done:
                data = conn.receive()
                received = True
                parse.feed(data)
        except (EOFError, ConnectionResetError, BrokenPipeError) as exc:
            conn.close()
            if reused and not received:
                raise _Stale() from exc
            raise UpstreamError("connection_reset", sent=True) from exc
        except (TimeoutError, BlockingIOError) as exc:  # BlockingIOError: send timeout
            conn.close()
            raise UpstreamError("read_timeout", sent=True, timeout=True) from exc
        except (OSError, ValueError, httptools.HttpParserError) as exc:
            conn.close()
            raise UpstreamError("protocol_error", sent=True) from exc
        except BaseException:  # e.g. the client's body went over the limit
            conn.close()
            raise
        return self._response(conn, method, parse)

    def _response(self, conn, method, parse) -> Response:
        """The final answer's framing, as llhttp read it: llhttp refuses a repeated or
        malformed Content-Length, Content-Length with Transfer-Encoding and a bad
        chunk; refused here is what it lets through and a relay must not."""
        status = parse.parser.get_status_code()
        version = parse.parser.get_http_version()
        http10 = version == "1.0"
        headers = []
        length = None
        codings = []
        for raw_name, raw_value in parse.headers:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            headers.append((name, value))
            lower = name.lower()
            if lower == "content-length":
                length = int(value)
            elif lower == "transfer-encoding":
                codings += [c.strip().lower() for c in value.split(",") if c.strip()]
        if (
            version not in ("1.0", "1.1")  # llhttp takes HTTP/2.0 in a status line
            or status == 101  # never asked for (Upgrade is not forwarded)
            or not _REASON.fullmatch(parse.reason)
            or (codings and http10)  # RFC 9112 6.1: faulty framing
            or codings.count("chunked") > 1
        ):
            conn.close()
            raise UpstreamError("protocol_error", sent=True)
        keep_alive = parse.keep_alive
        if method == "HEAD" or status in (204, 304):
            done, length = True, None
            keep_alive = keep_alive and not parse.chunks
            parse.chunks = []
        else:
            done = parse.done
            if codings or length is None:
                length = None
                if not codings or codings[-1] != "chunked":
                    keep_alive = None  # delimited by the close (RFC 9112 6.3)
        return Response(self, conn, parse, status, headers, length, keep_alive, done)


def consumed(body) -> bool:
    """Whether a streamed body has yielded anything (it cannot be sent again)."""
    return getattr(body, "read_bytes", 1) > 0


_pools: dict[tuple, Pool] = {}
_lock = threading.Lock()


def pool_for(instance) -> Pool:
    cafile = getattr(instance, "ca_bundle", "")
    key = (instance.scheme, instance.host, instance.port, cafile)
    pool = _pools.get(key)
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = Pool(
                    instance.scheme,
                    instance.host,
                    instance.port,
                    settings.XENX_GATEWAY_POOL_SIZE,
                    cafile,
                )
                _pools[key] = pool
    return pool


def close_pools() -> None:
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
