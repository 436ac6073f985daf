"""The scriptable fake upstream of the gateway tests: a raw-socket HTTP/1.1 server on
127.0.0.1 (plain or TLS) that answers with exact bytes and records exact bytes."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time

from .ports import RawServer

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
DROP = None  # a step: read the request, then close without answering
HANG = "hang"  # a step: no answer, the connection held open until the client closes it


class FakeUpstream(RawServer):
    """One list of steps per accepted connection, in order; a step answers one request.
    A step is the bytes to answer with, ``DROP``, ``HANG``, or ``(answer, delay,
    close)``: ``answer`` after ``delay`` seconds, then the connection closed when
    ``close`` (closed while idle). When a connection's steps run out it is answered
    with ``answer`` (None: ``DROP``) from then on, or, with ``close_after_script``,
    closed at once; with ``close_after_script`` no connection is accepted after the
    script's last one (a client's connect waits unanswered, as on a stalled server).

    Records per connection its exact bytes (``received``), request heads (``heads``)
    and when it closed (``closed``), and every request parsed by its own framing
    (Content-Length, chunked, or no body) as (head, body) in ``requests``."""

    def __init__(self, answer=OK, *, script=(), tls=None, close_after_script=False):
        self.answer = answer
        self.script = [list(steps) for steps in script]
        self.tls = tls
        self.close_after_script = close_after_script
        self.received: list[bytearray] = []
        self.requests: list[tuple[bytes, bytes]] = []
        self.heads: list[list[bytes]] = []
        self.closed: list[threading.Event] = []
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
            self.requests.append((head, reader.body(head)))
            step = steps.pop(0) if steps else self.answer
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

    def wait_idle(self, seconds=0.3):
        """Give the gateway's last bytes time to arrive."""
        time.sleep(seconds)


class _Reader:
    def __init__(self, conn, raw):
        self.conn, self.raw, self.buf = conn, raw, b""

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
        head, _, self.buf = self.buf.partition(marker)
        return head + marker

    def exactly(self, size):
        while len(self.buf) < size:
            self._fill()
        data, self.buf = self.buf[:size], self.buf[size:]
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
