"""JSON bodies over a real socket, through gunicorn with XenX's worker: a chunked JSON
body (no Content-Length) is read with a bounded read, and one over
DATA_UPLOAD_MAX_MEMORY_SIZE is 413 before the rest of it is even sent; a declared
length over the limit is 413 before a byte of the body is read (issue 24)."""

import json
import socket

import pytest

from tests.xenx.servers import xenx_gunicorn

pytestmark = pytest.mark.slow
LIMIT = 4096


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jsonwire")
    with xenx_gunicorn(tmp, DATA_UPLOAD_MAX_MEMORY_SIZE=str(LIMIT)) as (port, _log):
        yield port


def _head(headers: str) -> bytes:
    return (
        "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nConnection: close\r\n{headers}\r\n"
    ).encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _answer(sock: socket.socket) -> tuple[int, dict]:
    """Status and error body of the answer (read to the close; chunked or not)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(
        body[body.index(b"{") : body.rindex(b"}") + 1]
    )


def test_a_chunked_json_body_is_read_and_parsed(port):
    body = json.dumps({"email": "someone@example.com"}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(_head("Transfer-Encoding: chunked\r\n"))
        sock.sendall(_chunk(body[:10]) + _chunk(body[10:]) + b"0\r\n\r\n")
        status, answer = _answer(sock)
    # Parsed: only the missing password is named (read as empty, both would be).
    assert status == 400, answer
    assert answer["error"]["code"] == "validation_error"
    assert list(answer["error"]["details"]) == ["password"]


def test_a_chunked_json_body_over_the_limit_is_413_before_it_ends(port):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(_head("Transfer-Encoding: chunked\r\n"))
        sock.sendall(_chunk(b"[" + b" " * (2 * LIMIT)))  # the body goes on, unsent
        status, answer = _answer(sock)
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"


def test_a_declared_length_over_the_limit_is_413_before_any_body(port):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(_head("Content-Length: 62914560\r\n"))  # 60 MiB, none sent
        status, answer = _answer(sock)
    assert status == 413
    assert answer["error"]["code"] == "payload_too_large"
