"""The upstream HTTP/1.1 client: keep-alive socket pools per instance, per process.

Chosen by measurement (README, "Gateway"): on the benchmark machine one keep-alive call
costs ~320 µs of CPU through ``urllib3`` (``requests`` adds more), ~15 µs as a bare
socket round trip. The proxy needs only a small part of a general client: one request
written with one ``sendall``, the status line and headers parsed once, the body relayed
by Content-Length, chunked or close-delimited framing. Redirects are never followed,
nothing is decoded, no environment or proxy settings are consulted.

Each pool keeps up to ``XENX_GATEWAY_POOL_SIZE`` idle connections (the worker's thread
count) and never blocks: a burst above it opens extra connections that are closed after
use. Pools are per instance, so a slow service cannot starve the others. An idle
connection is checked with a non-blocking peek before reuse; one the upstream closed
meanwhile is replaced, and a request that meets a stale connection before any response
byte is sent again on a fresh one only when that is safe (nothing of a streamed body was
consumed).
"""

from __future__ import annotations

import collections
import contextlib
import re
import socket
import ssl
import threading

from django.conf import settings

CHUNK = 64 * 1024
MAX_HEAD = 64 * 1024
_PEEK = socket.MSG_PEEK | socket.MSG_DONTWAIT
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 field names
# RFC 9112 status line; the reason phrase may hold no control character but HTAB (a
# bare CR or LF in it would split the response relayed to the client).
_STATUS_LINE = re.compile(
    rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: ([\t\x20-\x7e\x80-\xff]*))?"
)
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


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
    __slots__ = ("sock", "buf")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()

    def fill(self) -> None:
        data = self.sock.recv(CHUNK)
        if not data:
            raise EOFError()
        self.buf += data

    def read_line(self) -> bytes:
        while True:
            index = self.buf.find(b"\r\n")
            if index >= 0:
                line, self.buf = self.buf[:index], self.buf[index + 2 :]
                return line
            if len(self.buf) > MAX_HEAD:
                raise ValueError("line too long")
            self.fill()

    def read_some(self, limit: int) -> bytes:
        """Up to ``limit`` bytes (at least one); EOFError at the end of the stream."""
        if self.buf:
            data, self.buf = self.buf[:limit], self.buf[limit:]
            return data
        data = self.sock.recv(min(limit, CHUNK))
        if not data:
            raise EOFError()
        return data


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
        "_chunked",
        "_remaining",
        "_keep_alive",
        "_done",
    )

    def __init__(self, pool, conn, status, reason, headers, framing, keep_alive):
        self.status, self.reason, self.headers = status, reason, headers
        self._pool, self._conn = pool, conn
        self._keep_alive = keep_alive
        self._chunked = framing == "chunked"
        self._remaining = framing if isinstance(framing, int) else None
        self.length = self._remaining
        self._done = framing == 0
        if self._done:
            self._finish()

    def read(self) -> bytes:
        return b"".join(self.stream())

    def stream(self):
        conn = self._conn
        if self._done:
            return
        try:
            if self._chunked:
                while True:
                    size_line = conn.read_line().split(b";", 1)[0].strip(b" \t")
                    if not _CHUNK_SIZE.fullmatch(size_line):
                        raise ValueError("bad chunk size")
                    size = int(size_line, 16)
                    if size == 0:
                        while conn.read_line():  # trailers, then the empty line
                            pass
                        break
                    while size:
                        data = conn.read_some(size)
                        size -= len(data)
                        yield data
                    if conn.read_line():
                        raise ValueError("bad chunk terminator")
            elif self._remaining is not None:
                while self._remaining > 0:
                    data = conn.read_some(self._remaining)
                    self._remaining -= len(data)
                    yield data
            else:  # delimited by the upstream closing the connection
                while True:
                    try:
                        yield conn.read_some(CHUNK)
                    except EOFError:
                        break
            self._done = True
        finally:
            self._finish()

    def close(self) -> None:
        self._finish()

    def _finish(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and self._keep_alive and not conn.buf:
            self._pool.put(conn)
        else:
            conn.close()


class Pool:
    def __init__(self, scheme: str, host: str, port: int, maxsize: int):
        self.scheme, self.host, self.port, self.maxsize = scheme, host, port, maxsize
        default = 443 if scheme == "https" else 80
        self.host_header = host if port == default else f"{host}:{port}"
        if ":" in host and not host.startswith("["):  # IPv6 literal
            self.host_header = f"[{host}]" if port == default else f"[{host}]:{port}"
        self._idle: collections.deque = collections.deque()
        self._ssl = ssl.create_default_context() if scheme == "https" else None

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

    def _idle_connection(self) -> Connection | None:
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return None
            if self._ssl is not None:
                return conn  # TLS records make a byte peek meaningless
            try:
                conn.sock.settimeout(0)
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
        if len(self._idle) < self.maxsize:
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

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
            conn.sock.settimeout(read_timeout)
            try:
                return self._exchange(conn, method, head, body, chunked, True)
            except _Stale:
                conn.close()
                if not (body is None or isinstance(body, bytes)) and consumed(body):
                    raise UpstreamError("connection_reset", sent=True) from None
            # A stale keep-alive connection (closed by the upstream before any byte
            # of an answer): once more on a fresh one, transparently.
        conn = self._connect(connect_timeout)
        conn.sock.settimeout(read_timeout)
        return self._exchange(conn, method, head, body, chunked, False)

    def _exchange(self, conn, method, head, body, chunked, reused) -> Response:
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
            while True:
                if not conn.buf:
                    conn.fill()
                received = True
                match = _STATUS_LINE.fullmatch(conn.read_line())
                if match is None:
                    raise ValueError("bad status line")
                minor, code, reason = match.groups()
                version = b"HTTP/1.1" if minor == b"1" else b"HTTP/1.0"
                status = int(code)
                reason = reason or b""
                headers = []
                head_size = 0
                while True:
                    line = conn.read_line()
                    if not line:
                        break
                    head_size += len(line) + 2
                    if head_size > MAX_HEAD:
                        raise ValueError("header section too large")
                    name, sep, value = line.partition(b":")
                    if not sep or not _TOKEN.fullmatch(name):
                        raise ValueError("bad header line")
                    headers.append(
                        (name.decode("latin-1"), value.strip().decode("latin-1"))
                    )
                if status == 101:  # never asked for (Upgrade is not forwarded)
                    raise ValueError("unexpected 101 Switching Protocols")
                if status < 200:
                    continue  # 100 Continue and friends: the real answer follows
                break
        except (EOFError, ConnectionResetError, BrokenPipeError) as exc:
            conn.close()
            if reused and not received:
                raise _Stale() from exc
            raise UpstreamError("connection_reset", sent=True) from exc
        except TimeoutError as exc:
            conn.close()
            raise UpstreamError("read_timeout", sent=True, timeout=True) from exc
        except (OSError, ValueError) as exc:
            conn.close()
            raise UpstreamError("protocol_error", sent=True) from exc
        except BaseException:  # e.g. the client's body went over the limit
            conn.close()
            raise
        return self._response(conn, method, version, status, reason, headers)

    def _response(self, conn, method, version, status, reason, headers) -> Response:
        length = None
        codings = None
        connection = ""
        for name, value in headers:
            lower = name.lower()
            if lower == "content-length":
                if length is not None:  # repeated, even with the same value
                    conn.close()
                    raise UpstreamError("protocol_error", sent=True)
                length = value
            elif lower == "transfer-encoding":
                codings = (codings + "," if codings else "") + value.lower()
            elif lower == "connection":
                connection = value.lower()
        keep_alive = version == b"HTTP/1.1" and "close" not in connection
        if codings is not None and (length is not None or version != b"HTTP/1.1"):
            # RFC 9112 6.1/6.3: ambiguous framing (a smuggling attempt, or a broken
            # upstream). Relaying it would also pass its Content-Length on.
            conn.close()
            raise UpstreamError("protocol_error", sent=True)
        if method == "HEAD" or status in (204, 304):
            framing = 0
        elif codings is not None:
            codings = [c.strip() for c in codings.split(",") if c.strip()]
            if codings and codings[-1] == "chunked" and codings.count("chunked") == 1:
                framing = "chunked"
            else:  # not chunked last: the body runs to the close (RFC 9112 6.3)
                framing, keep_alive = None, False
        elif length is not None:
            if not (length.isascii() and length.isdigit() and len(length) <= 18):
                conn.close()
                raise UpstreamError("protocol_error", sent=True)
            framing = int(length)
        else:
            framing, keep_alive = None, False
        return Response(
            self,
            conn,
            status,
            reason.decode("latin-1"),
            headers,
            framing,
            keep_alive,
        )


def consumed(body) -> bool:
    """Whether a streamed body has yielded anything (it cannot be sent again)."""
    return getattr(body, "read_bytes", 1) > 0


_pools: dict[tuple, Pool] = {}
_lock = threading.Lock()


def pool_for(instance) -> Pool:
    key = (instance.scheme, instance.host, instance.port)
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
                )
                _pools[key] = pool
    return pool


def close_pools() -> None:
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
