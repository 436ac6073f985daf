"""Upstream timeouts on real sockets on 127.0.0.1: plain TCP connections are blocking
with the timeout kept by the kernel (``Connection.set_timeout`` through
``core.net.kernel_timeouts``), a silent upstream is 504 ``gateway_timeout`` within about
the service's timeout, a reused keep-alive connection gets the service's current
timeout, and a connection the upstream closed while idle is still replaced
transparently. TLS connections keep Python's socket timeout."""

import socket
import ssl
import time

import pytest

from gateway import breaker, services, upstream
from gateway.upstream import Pool, UpstreamError
from tests.conftest import assert_error
from tests.gateway.test_tls import pki  # noqa: F401 - the fixture
from tests.support.upstream import HANG, OK, FakeUpstream


@pytest.fixture
def scripted(test_servers):
    """scripted(*steps per connection, tls=None): a FakeUpstream for this test."""

    def make(*script, tls=None):
        return test_servers(FakeUpstream, script=script, tls=tls)

    return make


@pytest.fixture
def kernel_spy(monkeypatch):
    """The (socket type, seconds) of every ``kernel_timeouts`` call of the upstream
    client."""
    calls = []
    real = upstream.kernel_timeouts

    def spy(sock, seconds):
        calls.append((type(sock), seconds))
        real(sock, seconds)

    monkeypatch.setattr(upstream, "kernel_timeouts", spy)
    return calls


@pytest.fixture
def exchanges(monkeypatch):
    """``reused`` of every request/response exchange, in order: False on a new
    connection, True on a keep-alive one taken from the pool."""
    seen = []
    real = Pool.exchange

    def spy(self, conn, method, head, body, chunked, reused):
        seen.append(reused)
        return real(self, conn, method, head, body, chunked, reused)

    monkeypatch.setattr(Pool, "exchange", spy)
    return seen


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# --- a silent upstream -----------------------------------------------------------------


def test_silent_upstream_is_504_after_about_the_timeout(
    make_service, api, scripted, kernel_spy
):
    up = scripted([HANG])
    make_service("svc", [up.url], public=True, timeout_seconds=0.3, retries=2)
    api.get("/api/unknown")  # warm up the test client outside the timing
    resp, elapsed = timed(lambda: api.get("/api/svc/x"))
    assert_error(resp, 504, "gateway_timeout")
    assert 0.15 <= elapsed <= 0.9 + 0.3, elapsed  # 3x, plus the call's own work
    assert [len(heads) for heads in up.heads] == [1]  # a read timeout: not retried
    assert kernel_spy == [(socket.socket, 0.3)]  # the plain TCP kernel timeout path


def test_silent_upstream_read_timeout_comes_from_the_kernel(scripted):
    up = scripted([HANG])
    pool = Pool("http", "127.0.0.1", up.port, 4)
    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        pool.request("GET", "/", {}, None, connect_timeout=1, read_timeout=0.2)
    elapsed = time.monotonic() - started
    assert 0.1 <= elapsed <= 0.6, elapsed
    error = caught.value
    assert (error.kind, error.timeout, error.sent) == ("read_timeout", True, True)
    # the kernel's EAGAIN (BlockingIOError), turned into a TimeoutError
    assert isinstance(error.__cause__, TimeoutError)
    assert isinstance(error.__cause__.__context__, BlockingIOError)


def test_fresh_connection_is_blocking_with_kernel_timeouts(scripted):
    up = scripted()
    pool = Pool("http", "127.0.0.1", up.port, 4)
    resp = pool.request("GET", "/", {}, None, connect_timeout=1, read_timeout=0.7)
    assert resp.read() == b"ok"
    (conn,) = pool.idle
    assert conn.kernel and conn.timeout == 0.7
    assert conn.sock.gettimeout() is None  # blocking: Python polls nothing
    received = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
    sent = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, 16)
    assert received == sent and received != bytes(16)
    pool.close()


def test_timeout_with_a_fraction_just_below_a_whole_second(make_service, api, scripted):
    # 0.9999999 s was 0 s + 1,000,000 µs, which the kernel refuses (EDOM): a 500
    up = scripted()
    make_service("svc", [up.url], public=True, timeout_seconds=0.9999999)
    assert api.get("/api/svc/x").status_code == 200


# --- a reused keep-alive connection gets the service's current timeout ----------------


def test_shorter_timeout_applies_on_a_reused_connection(
    make_service, api, scripted, exchanges, kernel_spy
):
    up = scripted([(OK, 0, False), HANG])
    service = make_service("svc", [up.url], public=True, timeout_seconds=5, retries=0)
    assert api.get("/api/svc/x").status_code == 200
    services.service_update(service=service, timeout_seconds=0.3)
    resp, elapsed = timed(lambda: api.get("/api/svc/x"))
    assert_error(resp, 504, "gateway_timeout")
    assert elapsed <= 0.9 + 0.3, elapsed  # not the 5 s the connection was made with
    assert exchanges == [False, True]  # the second call on the kept connection
    assert [len(heads) for heads in up.heads] == [2]
    assert [seconds for _, seconds in kernel_spy] == [5, 0.3]


def test_longer_timeout_applies_on_a_reused_connection(
    make_service, api, scripted, exchanges
):
    up = scripted([(OK, 0, False), (OK, 0.6, False)])
    service = make_service("svc", [up.url], public=True, timeout_seconds=0.2, retries=0)
    assert api.get("/api/svc/x").status_code == 200
    services.service_update(service=service, timeout_seconds=1.5)
    resp = api.get("/api/svc/x")  # answered after 0.6 s: over the old 0.2 s
    assert resp.status_code == 200, resp.content
    assert exchanges == [False, True]
    assert [len(heads) for heads in up.heads] == [2]


def test_same_timeout_is_not_set_again_on_a_reused_connection(
    make_service, api, scripted, exchanges, kernel_spy
):
    up = scripted()
    make_service("svc", [up.url], public=True, timeout_seconds=2)
    for _ in range(3):
        assert api.get("/api/svc/x").status_code == 200
    assert exchanges == [False, True, True]
    assert kernel_spy == [(socket.socket, 2)]  # set once, when connected
    assert len(up.heads) == 1


# --- a keep-alive connection the upstream closed -------------------------------------


def test_connection_closed_while_idle_is_replaced_before_sending(
    make_service, api, scripted, exchanges
):
    up = scripted([(OK, 0, True)])  # answers, then closes while idle
    service = make_service("svc", [up.url], public=True, retries=0)
    instance_id = service.instances.get().id
    assert api.get("/api/svc/x").status_code == 200
    assert up.closed[0].wait(5)
    time.sleep(0.05)  # the FIN reaches the gateway's socket
    assert api.get("/api/svc/x").status_code == 200
    # the peek found it closed: nothing sent on it, one new connection
    assert exchanges == [False, False]
    assert [len(heads) for heads in up.heads] == [1, 1]
    assert breaker.get_health([instance_id])[instance_id] == (None, None)


def test_connection_closed_on_the_next_request_is_sent_again_once(
    make_service, api, exchanges
):
    # The race the peek cannot see: open when taken, closed by the upstream as the
    # request arrives, before any byte of an answer (tests/gateway/test_hostile.py).
    up = FakeUpstream(OK, script=[[OK, None]])
    try:
        make_service("svc", [up.url], public=True, retries=0)
        assert api.get("/api/svc/x").status_code == 200
        assert api.get("/api/svc/x").status_code == 200
        assert exchanges == [False, True, False]  # stale, then once on a new one
        assert len(up.received) == 2
    finally:
        up.close()


# --- TLS keeps Python's socket timeout ---------------------------------------------------


@pytest.fixture
def tls_context(pki):  # noqa: F811 - the fixture imported above
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*pki["good"])
    return context


def test_tls_upstream_keeps_python_timeouts(scripted, tls_context, pki, kernel_spy):  # noqa: F811
    up = scripted([(OK, 0, False), HANG], tls=tls_context)
    pool = Pool("https", "127.0.0.1", up.port, 4, cafile=str(pki["ca"]))
    resp = pool.request("GET", "/", {}, None, connect_timeout=2, read_timeout=2)
    assert resp.read() == b"ok"
    (conn,) = pool.idle
    assert not conn.kernel and conn.sock.gettimeout() == 2
    started = time.monotonic()
    with pytest.raises(UpstreamError) as caught:  # reused, with a shorter timeout
        pool.request("GET", "/", {}, None, connect_timeout=2, read_timeout=0.3)
    elapsed = time.monotonic() - started
    assert caught.value.kind == "read_timeout" and caught.value.timeout
    assert 0.15 <= elapsed <= 0.9, elapsed
    assert kernel_spy == []
    assert [len(heads) for heads in up.heads] == [2]
