"""Raw-socket helpers for hostile-input tests: an upstream that records every byte it
receives, per connection, and a client that sends exact bytes to a server."""

import contextlib
import re
import socket
import threading
import time

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class WireUpstream:
    """Answers each request with ``answer`` (None: close without answering) and keeps
    the exact bytes of every connection in ``received`` and every parsed request (head,
    body) in ``requests``. A request is parsed by its own framing: Content-Length,
    chunked, or no body."""

    def __init__(self, answer=OK, *, script=()):
        self.answer = answer
        # one list of answers per accepted connection, in order; then ``answer``
        self.script = [list(answers) for answers in script]
        self.received: list[bytearray] = []
        self.requests: list[tuple[bytes, bytes]] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.listener.getsockname()[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        raw = bytearray()
        self.received.append(raw)
        answers = self.script.pop(0) if self.script else None
        reader = _Reader(conn, raw)
        with conn, contextlib.suppress(OSError, ValueError, EOFError):
            conn.settimeout(10)
            while True:
                head = reader.until(b"\r\n\r\n")
                if head is None:
                    return
                body = reader.body(head)
                self.requests.append((head, body))
                answer = answers.pop(0) if answers else self.answer
                if answer is None:
                    return
                conn.sendall(answer)

    def wait_idle(self, seconds=0.3):
        """Give the gateway's last bytes time to arrive."""
        time.sleep(seconds)

    def close(self):
        with contextlib.suppress(OSError):
            self.listener.close()


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


def request_line(head: bytes) -> bytes:
    return head.split(b"\r\n", 1)[0]


def send_raw(port: int, data: bytes, timeout: float = 15) -> tuple[int, bytes]:
    """Send exact bytes to 127.0.0.1:port and read until the server closes: (status
    of the first response or 0, everything read)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)  # the caller says Connection: close
        received = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                received += chunk
    match = re.match(rb"HTTP/1\.[01] (\d{3})", received)
    return (int(match.group(1)) if match else 0), received
