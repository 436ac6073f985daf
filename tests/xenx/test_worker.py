"""XenX's gunicorn worker (xenx/worker.py, chosen by gunicorn.conf.py) over real sockets:
a client that sends part of a request no longer holds a thread. A 1 x 2 worker with
XENX_CLIENT_TIMEOUT=1: two half-sent requests would hold both threads of stock gthread
forever (README "Deployment"); here they are dropped after a second, a stalled JSON body
is a 400 (never a 500) and a page's stalled form never a 500 either. A client that
trickles a byte at a time makes progress on every read: XENX_CLIENT_REQUEST_TIMEOUT=3
drops it three seconds into its request (issue 24)."""

import contextlib
import json
import socket
import time

import pytest

from tests.xenx.servers import http_get, xenx_gunicorn

pytestmark = pytest.mark.slow
TIMEOUT = 1.0
REQUEST_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("worker")
    with xenx_gunicorn(
        tmp,
        XENX_CLIENT_TIMEOUT=str(TIMEOUT),
        XENX_CLIENT_REQUEST_TIMEOUT=str(REQUEST_TIMEOUT),
    ) as served:
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


def _trickle(port, head: bytes, drip: bytes, *, every=0.4, give_up=REQUEST_TIMEOUT * 3):
    """Send ``head``, then one byte of ``drip`` every ``every`` seconds (each read of
    the server makes progress) until the server answers or closes: (seconds it took,
    what it sent). Gives up after ``give_up`` seconds with the connection still open."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        received = b""
        for byte in drip:
            if time.monotonic() - started > give_up:
                break
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # closed by the server
                break
            sock.settimeout(every)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            received += chunk
            if not chunk or received:
                break
        else:
            pytest.fail("the whole request went through")
        if received:
            sock.settimeout(5)
            with contextlib.suppress(OSError):
                while chunk := sock.recv(65536):
                    received += chunk
        return time.monotonic() - started, received


def test_a_trickling_head_is_dropped_at_the_request_deadline(server):
    port, log = server
    took, received = _trickle(
        port, b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"X-Slow: 1" * 50
    )
    assert received == b""  # no answer to half a head: the connection was closed
    assert REQUEST_TIMEOUT - 0.5 <= took < REQUEST_TIMEOUT + 2, took
    time.sleep(0.2)
    assert "request not received in 3 s (127.0.0.1)" in log.read_text()
    assert http_get(f"http://127.0.0.1:{port}/health/live", timeout=10)[0] == 200


def test_a_trickling_body_is_a_400_at_the_request_deadline(server):
    port, log = server
    body = b'{"email": "a@b.test", "password": "' + b"x" * 200 + b'"}'
    head = (
        b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    took, received = _trickle(port, head, body)
    answer_head, _, answer_body = received.partition(b"\r\n\r\n")
    assert answer_head.startswith(b"HTTP/1.1 400"), received[:200]
    assert json.loads(answer_body)["error"]["code"] == "malformed_request"
    assert REQUEST_TIMEOUT - 0.5 <= took < REQUEST_TIMEOUT + 2, took


def test_the_deadline_is_per_request_not_per_connection(server):
    """A kept-alive connection idle for longer than the deadline between two requests
    still serves the second one."""
    port, log = server
    request = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for second in (False, True):
            if second:
                time.sleep(REQUEST_TIMEOUT + 0.5)
            sock.sendall(request)
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                answer += sock.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
