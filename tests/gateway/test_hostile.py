"""Hostile framing sent over real sockets to a gunicorn worker, asserting the status and
the exact bytes that reached the upstream (issue 10)."""

import functools

import pytest

from core.roles import Role
from gateway import breaker
from gateway.services import service_create
from tests.conftest import assert_error
from tests.gateway.test_gunicorn import gunicorn, real_db  # noqa: F401 - fixtures
from tests.gateway.wire import request_line, send_raw
from tests.support.upstream import OK, FakeUpstream, header_fields

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
}


@pytest.fixture
def wire(test_servers):
    return functools.partial(test_servers, FakeUpstream)


@pytest.fixture
def server(gunicorn):  # noqa: F811 - the fixture imported above
    return gunicorn(workers=1)


def get(path, extra=b""):
    return (
        b"GET "
        + path
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + extra
        + (b"Connection: close\r\n\r\n")
    )


# --- 3. /api/{service} with no path --------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("base", "target", "expected"),
    [
        ("", b"/api/svc", b"GET / HTTP/1.1"),
        ("", b"/api/svc?x=1", b"GET /?x=1 HTTP/1.1"),
        ("", b"/api/svc?", b"GET /? HTTP/1.1"),
        ("/v1", b"/api/svc", b"GET /v1 HTTP/1.1"),
        ("/v1/", b"/api/svc?x=1", b"GET /v1?x=1 HTTP/1.1"),
        ("/v1", b"/api/svc/a?b=c", b"GET /v1/a?b=c HTTP/1.1"),
    ],
)
def test_service_root_is_the_instance_base_path(server, wire, base, target, expected):
    up = wire()
    service_create(name="svc", instances=[up.url + base], public=True)
    status, _ = send_raw(server.port, get(target))
    assert status == 200
    assert [request_line(head) for head, _ in up.requests] == [expected]


def test_service_root_through_the_test_client(make_service, api):
    up = FakeUpstream()
    try:
        make_service("svc", [up.url], public=True)
        assert api.get("/api/svc").status_code == 200
        assert api.get("/api/svc?x=1").status_code == 200
        assert [request_line(h) for h, _ in up.requests] == [
            b"GET / HTTP/1.1",
            b"GET /?x=1 HTTP/1.1",
        ]
    finally:
        up.close()


@pytest.mark.slow
def test_service_root_never_opens_the_circuit(server, wire):
    up = wire()
    service_create(name="svc", instances=[up.url], public=True, retries=0)
    for _ in range(8):
        assert send_raw(server.port, get(b"/api/svc"))[0] == 200
    assert len(up.requests) == 8


# --- 4. no Content-Length, no Transfer-Encoding: no body, replayable -----------------


@pytest.mark.slow
@pytest.mark.parametrize("method", [b"GET", b"DELETE", b"POST", b"OPTIONS"])
def test_request_without_framing_headers_is_forwarded_without_a_body(
    server, wire, method
):
    up = wire()
    service_create(name="svc", instances=[up.url], public=True)
    raw = (
        method + b" /api/svc/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    assert send_raw(server.port, raw)[0] == 200
    up.wait_idle()
    ((head, body),) = up.requests
    fields = header_fields(head)
    assert "transfer-encoding" not in fields and "content-length" not in fields
    assert body == b""
    assert bytes(up.received[0]) == head  # nothing after the head (no "0\r\n\r\n")


@pytest.mark.slow
def test_get_without_body_goes_to_the_next_instance_after_a_reset(server, wire):
    first, second = wire(None), wire()
    service_create(
        name="svc", instances=[first.url, second.url], public=True, retries=1
    )
    statuses = [send_raw(server.port, get(b"/api/svc/x"))[0] for _ in range(4)]
    assert statuses == [200] * 4
    assert len(first.requests) >= 1 and len(second.requests) == 4


def test_stale_keep_alive_connection_is_retried_once_transparently(
    make_service, auth_client, make_user
):
    # The first connection answers once, then takes the next request and closes
    # without a byte (a keep-alive timeout racing the request); retries=0, yet the
    # request is sent again on a fresh connection and nothing counts as a failure.
    up = FakeUpstream(OK, script=[[OK, None]])
    try:
        service = make_service("svc", [up.url], retries=0)
        instance_id = service.instances.get().id
        caller = auth_client(make_user(Role.CLIENT))
        assert caller.get("/api/svc/x").status_code == 200
        resp = caller.post(
            "/api/svc/x", data=b"payload", content_type="application/octet-stream"
        )
        assert resp.status_code == 200
        assert [b for _, b in up.requests] == [b"", b"payload", b"payload"]
        assert len(up.received) == 2
        assert breaker.get_health([instance_id])[instance_id] == (None, None)
    finally:
        up.close()


def test_stale_connection_then_a_failing_fresh_one_is_502(
    make_service, auth_client, make_user
):
    up = FakeUpstream(None, script=[[OK, None]])
    try:
        make_service("svc", [up.url], retries=0)
        caller = auth_client(make_user(Role.CLIENT))
        assert caller.get("/api/svc/x").status_code == 200
        assert_error(caller.get("/api/svc/x"), 502, "bad_gateway")
        assert len(up.received) == 2  # one retry on a fresh connection, no more
    finally:
        up.close()


# --- 5. the body read ahead before the upstream is contacted -------------------------


def chunked(body: bytes, piece=100) -> bytes:
    out = b""
    for i in range(0, len(body), piece):
        part = body[i : i + piece]
        out += b"%x\r\n%b\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


def post_chunked(path, body, content_type=b"application/octet-stream"):
    return (
        b"POST "
        + path
        + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: " + content_type + b"\r\nConnection: close\r\n\r\n"
    ) + chunked(body)


@pytest.mark.slow
def test_chunked_body_over_the_limit_never_reaches_the_upstream(server, wire):
    up = wire()
    service_create(name="svc", instances=[up.url], public=True, max_body_bytes=1000)
    status, data = send_raw(server.port, post_chunked(b"/api/svc/x", b"b" * 2000))
    assert status == 413 and b"payload_too_large" in data
    up.wait_idle()
    assert up.received == []  # not even a connection


@pytest.mark.slow
def test_small_chunked_body_is_sent_with_its_length(server, wire):
    up = wire()
    service_create(name="svc", instances=[up.url], public=True, max_body_bytes=1000)
    assert send_raw(server.port, post_chunked(b"/api/svc/x", b"b" * 1000))[0] == 200
    ((head, body),) = up.requests
    fields = header_fields(head)
    assert fields["content-length"] == "1000" and "transfer-encoding" not in fields
    assert body == b"b" * 1000


@pytest.mark.slow
def test_large_chunked_body_streams_and_stops_at_the_limit(server, wire):
    up = wire()
    limit = 200_000
    service_create(name="svc", instances=[up.url], public=True, max_body_bytes=limit)
    assert (
        send_raw(
            server.port,
            post_chunked(
                b"/api/svc/x",
                b"s" * 150_000,
            ),
        )[0]
        == 200
    )
    ((head, body),) = up.requests
    assert header_fields(head)["transfer-encoding"] == "chunked"
    assert body == b"s" * 150_000
    status, _ = send_raw(server.port, post_chunked(b"/api/svc/x", b"s" * 300_000))
    assert status in (413, 0)  # 413 mid-stream, or the connection cut
    up.wait_idle()
    assert len(up.requests) == 1  # the second never became a complete request


@pytest.mark.parametrize("value", ["-1", "+5", "1e3", " 5", "５"])
def test_invalid_content_length_is_400(make_service, api, value):
    make_service("svc", ["http://127.0.0.1:9"], public=True)
    resp = api.generic(
        "POST", "/api/svc/x", b"abcde", content_type="text/plain", CONTENT_LENGTH=value
    )
    assert_error(resp, 400, "malformed_request")


# --- 6. no 500 from a single bad byte ------------------------------------------------


@pytest.mark.slow
def test_bad_bytes_through_gunicorn_are_never_500(server, wire, settings):
    up = wire()
    service_create(name="svc", instances=[up.url], public=True)
    for target in (
        b"/api/svc/%ff",
        b"/api/svc/a%c3?x=%ff",
        b"/portal/%ff",
        b"/admin/%ff",
    ):
        status, data = send_raw(server.port, get(target))
        assert 400 <= status < 500 or status in (301, 302), (target, data[:300])
    assert send_raw(server.port, get(b"/api/svc/%ff"))[0] == 400
    status, data = send_raw(
        server.port, get(b"/api/svc/x", b"Authorization: Bearer caf\xc3\xa9\r\n")
    )
    assert status == 401 and b"invalid_token" in data
    assert (
        send_raw(
            server.port,
            b"POST /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n",
        )[0]
        == 405
    )
    up.wait_idle()
    assert up.requests == []


# --- 9. forwarded scheme, platform cookies, control characters -----------------------


@pytest.mark.parametrize(
    ("trusted", "sent", "seen"),
    [
        ([], "https", "http"),
        (["10.0.0.0/8"], "https", "http"),
        (["127.0.0.1"], "https", "https"),
        (["127.0.0.0/8"], "https, http", "https"),
        (["127.0.0.1"], "gopher", "http"),
        (["127.0.0.1"], None, "http"),
    ],
)
def test_forwarded_proto_believed_only_from_trusted_proxies(
    make_service, api, settings, trusted, sent, seen
):
    settings.XENX_TRUSTED_PROXIES = trusted
    up = FakeUpstream()
    try:
        make_service("svc", [up.url], public=True)
        extra = {"HTTP_X_FORWARDED_PROTO": sent} if sent else {}
        assert api.get("/api/svc/x", **extra).status_code == 200
        assert header_fields(up.requests[-1][0])["x-forwarded-proto"] == seen
    finally:
        up.close()


def test_upstream_cannot_set_the_platform_cookies(make_service, api, settings):
    answer = (
        b"HTTP/1.1 200 OK\r\n"
        b"Set-Cookie: " + settings.SESSION_COOKIE_NAME.encode() + b"=evil; Path=/\r\n"
        b"Set-Cookie: " + settings.CSRF_COOKIE_NAME.encode() + b"=evil; Path=/\r\n"
        b"Set-Cookie: theirs=1; Path=/api/svc\r\n"
        b"Content-Length: 2\r\n\r\nok"
    )
    up = FakeUpstream(answer)
    try:
        make_service("svc", [up.url], public=True)
        resp = api.get("/api/svc/x")
        assert resp.status_code == 200
        names = [m.key for m in resp.cookies.values()]
        assert names == ["theirs"]
    finally:
        up.close()


@pytest.mark.parametrize("char", ["\x01", "\x08", "\x0b", "\x1b", "\x7f"])
def test_control_characters_in_header_values_are_400(make_service, api, char):
    up = FakeUpstream()
    try:
        make_service("svc", [up.url], public=True)
        resp = api.get("/api/svc/x", HTTP_USER_AGENT=f"a{char}b")
        assert_error(resp, 400, "malformed_request")
        up.wait_idle(0.1)
        assert up.received == []
        assert api.get("/api/svc/x", HTTP_USER_AGENT="a\tb\xe9").status_code == 200
    finally:
        up.close()


@pytest.mark.slow
def test_control_characters_through_gunicorn_never_reach_the_upstream(server, wire):
    up = wire()
    service_create(name="svc", instances=[up.url], public=True)
    for char in (b"\x01", b"\x0b", b"\x1b", b"\x7f", b"\x00"):
        status, _ = send_raw(
            server.port, get(b"/api/svc/x", b"X-C: a" + char + b"b\r\n")
        )
        assert status == 400, char
    up.wait_idle()
    assert up.received == []
