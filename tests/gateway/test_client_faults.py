"""A client's fault never hurts an upstream or the node, through the door it was found
at: a real gunicorn running XenX's worker (gunicorn.conf.py), one server for the
module, with its own SQLite database and services registered before it starts
(issue 24).

- A client that stalls its body past the upstream's body timeout makes the upstream
  close; the send fails. That is the client's failure: 400, and the instance's circuit
  stays closed (before: five such calls opened it and everyone got 503).
- A malformed chunked body is a 400 in the one error format, never a 500, and no
  whole request reaches the upstream.
- Client headers off the allowlist never reach the upstream.
"""

import contextlib
import json
import socket
import time

import pytest

from tests.gateway.wire import send_raw
from tests.support.upstream import FakeUpstream, header_fields
from tests.xenx.servers import migrate_and_run, xenx_gunicorn

pytestmark = pytest.mark.slow
BODY_TIMEOUT = 0.3  # the upstream's: a body that stops arriving this long is dropped


REGISTER = """
from gateway.services import service_create
service_create(name="stall", instances=[{stall!r}], public=True, retries=0)
service_create(name="chunky", instances=[{chunky!r}], public=True)
service_create(name="heads", instances=[{heads!r}], public=True,
               forward_headers=["X-Api-Version"])
"""


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """(port, upstreams by service name) of a 1 x 4 XenX under gunicorn.conf.py. The
    "stall" upstream reads a body with a timeout, as nginx (client_body_timeout) and
    WSGI servers do, and closes without an answer when the body stops arriving."""
    upstreams = {
        "stall": FakeUpstream(body_timeout=BODY_TIMEOUT),
        "chunky": FakeUpstream(),
        "heads": FakeUpstream(),
    }
    script = REGISTER.format(**{name: up.url for name, up in upstreams.items()})
    try:
        with xenx_gunicorn(
            tmp_path_factory.mktemp("client-faults"),
            threads=4,
            setup=migrate_and_run(script),
            XENX_CLIENT_TIMEOUT="5",
        ) as (port, _log):
            yield port, upstreams
    finally:
        for up in upstreams.values():
            up.close()


def _stalled_upload(port: int) -> bytes:
    """A body of 200,000 bytes: the first 70,000 (past the gateway's 64 KiB read-ahead,
    so the upstream has been contacted), a pause longer than the upstream's body
    timeout, then the rest. Returns the gateway's answer."""
    total, first = 200_000, 70_000
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(
            b"POST /api/stall/upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/octet-stream\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % total + b"a" * first
        )
        time.sleep(BODY_TIMEOUT * 4)
        with contextlib.suppress(OSError):  # the gateway may answer and close first
            sock.sendall(b"a" * (total - first))
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                answer += chunk
    return answer


def _error_code(answer: bytes) -> tuple[int, str | None]:
    """(status, error code) of a raw answer (chunked or not)."""
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    if b"transfer-encoding: chunked" in head.lower():
        data = b""
        while body:
            size_line, _, body = body.partition(b"\r\n")
            size = int(size_line.split(b";")[0] or b"0", 16)
            data, body = data + body[:size], body[size + 2 :]
            if not size:
                break
        body = data
    try:
        return status, json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return status, None


def test_stalled_bodies_never_open_the_upstreams_circuit(node):
    port, upstreams = node
    up = upstreams["stall"]
    answers = [_error_code(_stalled_upload(port)) for _ in range(6)]
    # Each stall made the upstream drop the request: the client's fault, a 400
    # (before: 502 bad_gateway five times, then 503: the circuit was open).
    assert answers == [(400, "malformed_request")] * 6
    assert up.dropped == 6
    # The circuit is closed: a legitimate call still reaches the instance.
    status, _ = send_raw(
        port,
        b"POST /api/stall/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\nok",
    )
    assert status == 200
    assert len(up.requests) == 1  # answered


@pytest.mark.parametrize(
    "chunks",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # not a hex size
        b"3\r\nabcXY0\r\n\r\n",  # no CRLF after the data
        b"3;\x01=1\r\nabc\r\n0\r\n\r\n",  # a control character in an extension
        b"5\r\nabc\r\n0\r\n\r\n",  # a size larger than the data before the next line
        b"-1\r\nabc\r\n0\r\n\r\n",  # a negative size
    ],
    ids=["bad-size", "missing-crlf", "bad-extension", "short-chunk", "negative-size"],
)
def test_a_malformed_chunked_body_is_a_400_and_never_forwarded(node, chunks):
    port, upstreams = node
    up = upstreams["chunky"]
    before = len(up.requests)
    status, answer = send_raw(
        port,
        b"POST /api/chunky/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + chunks,
    )
    assert _error_code(answer) == (400, "malformed_request"), answer[:300]
    up.wait_idle(0.1)
    assert len(up.requests) == before


def test_a_malformed_chunk_past_the_read_ahead_is_a_400(node):
    """The first 64 KiB are sent upstream before the bad chunk is met: the upstream
    gets no whole request (no last chunk), the client a 400."""
    port, upstreams = node
    up = upstreams["chunky"]
    before = len(up.requests)
    good = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    status, answer = send_raw(
        port,
        b"POST /api/chunky/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + good + good + b"zz\r\nabc\r\n0\r\n\r\n",
    )
    assert _error_code(answer) == (400, "malformed_request"), answer[:300]
    up.wait_idle(0.2)
    assert len(up.requests) == before


def test_headers_off_the_allowlist_never_reach_the_upstream(node):
    port, upstreams = node
    up = upstreams["heads"]
    status, _ = send_raw(
        port,
        b"GET /api/heads/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nRemote-User: admin\r\n"
        b"X-Forwarded-User: admin\r\nTrue-Client-IP: 10.0.0.1\r\n"
        b"X-Api-Version: 3\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
    )
    assert status == 200
    head, _ = up.requests[-1]
    fields = header_fields(head)
    for name in (
        "x-original-url",
        "x-rewrite-url",
        "remote-user",
        "x-forwarded-user",
        "true-client-ip",
    ):
        assert name not in fields
    assert fields["x-api-version"] == "3"
    assert fields["accept"] == "application/json"
