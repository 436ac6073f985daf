"""Raw-socket client helpers for hostile-input tests: send exact bytes to a server, read
a request head's first line (the upstream that records every byte is
tests/support/upstream.py)."""

import contextlib
import re
import socket


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
