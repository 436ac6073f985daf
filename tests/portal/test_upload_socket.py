"""An oversized portal upload over a real socket, served by XenX's gunicorn worker as
in production: the server reads (and drops) the refused body before it answers, so a
client that sends the whole body reads the answer. A server that answers first and
closes the connection with the body unread makes the kernel reset it, and Chromium
shows ERR_CONNECTION_RESET instead of the page (README "Lifecycle")."""

import socket

import pytest

from tests.xenx.servers import xenx_gunicorn

pytestmark = pytest.mark.slow
MB = 1_000_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with xenx_gunicorn(tmp_path_factory.mktemp("upload")) as (port, _log):
        yield port


def _multipart(size: int) -> tuple[bytes, bytes]:
    boundary = b"xenxboundary"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n"
        + b"%PDF-1.4\n"
        + b"x" * size
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )
    return boundary, body


def _post_all_then_read(port: int, size: int) -> bytes:
    """Send the whole request (as a browser does) before reading; the answer."""
    boundary, body = _multipart(size)
    head = (
        b"POST /portal/documents/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)  # a reset connection raises here
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_12_mb_upload_is_read_before_the_answer(server):
    answer = _post_all_then_read(server, 12 * MB)
    status_line = answer.split(b"\r\n", 1)[0]
    # Not signed in: the answer after the drained body is the sign-in redirect (a
    # signed-in browser gets the form with the error beside the file field: the
    # browser test and tests/portal/test_invite_upload.py).
    assert status_line == b"HTTP/1.1 302 Found", answer[:300]
    assert b"/portal/login?next=" in answer


def test_a_body_within_the_limit_is_not_refused_for_its_size(server):
    answer = _post_all_then_read(server, 1 * MB)
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    assert b" 413 " not in answer.split(b"\r\n", 1)[0]
