"""XenX's gunicorn worker (xenx/worker.py, chosen by gunicorn.conf.py) over real sockets:
a client that sends part of a request no longer holds a thread. A 1 x 2 worker with
XENX_CLIENT_TIMEOUT=1: two half-sent requests would hold both threads of stock gthread
forever (README "Deployment"); here they are dropped after a second, a stalled JSON body
is a 400 (never a 500) and a page's stalled form never a 500 either."""

import json
import socket
import time

import pytest

from tests.xenx.servers import http_get, xenx_gunicorn

pytestmark = pytest.mark.slow
TIMEOUT = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("worker")
    with xenx_gunicorn(tmp, XENX_CLIENT_TIMEOUT=str(TIMEOUT)) as served:
        yield served


def _half_sent(port, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(data)
    return sock


def _answer(sock) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


HEAD_ONLY = b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty"
JSON_LOGIN = (
    b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 40\r\n\r\n"
    b'{"email"'
)


def test_half_sent_heads_are_dropped_and_the_threads_serve_again(server):
    port, log = server
    held = [_half_sent(port, HEAD_ONLY) for _ in range(2)]  # both threads
    started = time.monotonic()
    assert http_get(f"http://127.0.0.1:{port}/health/live", timeout=10)[0] == 200
    assert time.monotonic() - started < TIMEOUT + 3
    for sock in held:
        with sock:
            assert _answer(sock) == b""  # closed, no answer to half a head
    time.sleep(0.2)
    lines = [
        json.loads(line) for line in log.read_text().splitlines() if line[:1] == "{"
    ]
    dropped = [r for r in lines if r["message"].startswith("client connection dropped")]
    assert len(dropped) >= 2
    assert all(r["level"] == "WARNING" and "exception" not in r for r in dropped)
    assert all(r["message"].endswith("(127.0.0.1)") for r in dropped)
    assert "Traceback" not in log.read_text()


def test_a_stalled_json_body_is_a_400_and_frees_the_thread(server):
    port, log = server
    held = [_half_sent(port, JSON_LOGIN) for _ in range(2)]
    started = time.monotonic()
    answers = []
    for sock in held:
        with sock:
            answers.append(_answer(sock))
    assert TIMEOUT - 0.1 <= time.monotonic() - started < TIMEOUT + 4
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), answer[:200]
        assert json.loads(body)["error"]["code"] == "malformed_request"
    assert http_get(f"http://127.0.0.1:{port}/health/live", timeout=10)[0] == 200


def test_a_stalled_page_form_is_never_a_500(server):
    port, log = server
    form = (
        b"POST /admin/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\n"
        b"username="
    )
    with _half_sent(port, form) as sock:
        answer = _answer(sock)
    assert answer.split(b" ", 2)[1] in (b"400", b"403"), answer[:200]


def test_dropping_slow_clients_does_not_stall_accepting(server):
    """The dropped connections are closed on their worker threads: stock gthread closes
    them on the main thread, lingering up to 2 s each for the silent client, and accepts
    nothing meanwhile."""
    port, log = server
    held = [_half_sent(port, HEAD_ONLY) for _ in range(2)]
    try:
        time.sleep(TIMEOUT + 0.3)  # both dropped by now
        started = time.monotonic()
        assert http_get(f"http://127.0.0.1:{port}/health/live", timeout=10)[0] == 200
        assert time.monotonic() - started < 1.0
    finally:
        for sock in held:
            sock.close()
