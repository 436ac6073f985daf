"""HTTP/1.1 edge cases between the gateway and an upstream, both ways: a scripted raw
upstream answers each connection's requests with exact bytes, and records what it got."""

import contextlib
import socket
import struct
import time

import pytest

from core.roles import Role
from gateway import upstream
from tests.conftest import assert_error
from tests.support.ports import RawServer
from tests.support.upstream import FakeUpstream


@pytest.fixture
def raw_upstream(make_service):
    started = []

    def make(*script, **fields):
        up = FakeUpstream(script=script, close_after_script=True)
        started.append(up)
        fields.setdefault("retries", 0)
        fields.setdefault("timeout_seconds", 3)
        make_service("raw", [up.url], **fields)
        return up

    yield make
    for up in started:
        up.close()


@pytest.fixture
def caller(auth_client, make_user):
    return auth_client(make_user(Role.CLIENT))


def body_of(resp):
    if resp.streaming:
        return b"".join(resp.streaming_content)
    return resp.content


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


# --- response framing ---------------------------------------------------------------


def test_content_length_and_transfer_encoding_together_is_bad_gateway(
    raw_upstream, caller
):
    raw_upstream(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n5\r\nhello\r\n0\r\n\r\n"
        ]
    )
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")


def test_transfer_encoding_not_ending_in_chunked_is_close_delimited(
    raw_upstream, caller
):
    up = raw_upstream(
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello"],
        [OK],
    )
    resp = caller.get("/api/raw/x")
    assert resp.status_code == 200
    assert body_of(resp) == b"5\r\nhello"  # relayed as is, up to the close
    assert caller.get("/api/raw/y").status_code == 200
    assert len(up.messages) == 2


@pytest.mark.parametrize("size", [b"0x5", b"+5", b"-5", b"5_0", b" ", b"g"])
def test_invalid_chunk_size_is_not_accepted(raw_upstream, caller, size):
    raw_upstream(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + size
            + b"\r\nhello\r\n0\r\n\r\n"
        ]
    )
    resp = caller.get("/api/raw/x")
    if resp.status_code == 502:  # the bad chunk arrived with the head
        assert_error(resp, 502, "bad_gateway")
        return
    assert resp.status_code == 200  # streamed: the head was already good
    with pytest.raises(Exception):  # noqa: B017, PT011 - any error ends the stream
        body_of(resp)


def test_chunk_extensions_and_trailers_are_handled(raw_upstream, caller):
    up = raw_upstream(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;name=value\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n",
            OK,
        ]
    )
    resp = caller.get("/api/raw/x")
    assert body_of(resp) == b"hello"
    assert not resp.has_header("X-Checksum")
    assert body_of(caller.get("/api/raw/x")) == b"ok"  # the same connection, reused
    assert len(up.messages) == 2


@pytest.mark.parametrize(
    "lengths",
    [
        [b"2", b"3"],
        [b"2", b"2"],
        [b"2, 2"],
        [b"\xb2"],  # a latin-1 digit Python's isdigit() accepts
        [b"1" * 5000],
    ],
)
def test_bad_or_repeated_content_length_is_bad_gateway(raw_upstream, caller, lengths):
    head = b"".join(b"Content-Length: " + v + b"\r\n" for v in lengths)
    raw_upstream([b"HTTP/1.1 200 OK\r\n" + head + b"\r\nok"])
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")


def test_interim_responses_before_the_final_one(raw_upstream, caller):
    raw_upstream(
        [
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Final: yes\r\n\r\nok"
        ]
    )
    resp = caller.get("/api/raw/x")
    assert resp.status_code == 201
    assert resp["X-Final"] == "yes"
    assert not resp.has_header("Link")
    assert body_of(resp) == b"ok"


def test_switching_protocols_is_bad_gateway_and_not_pooled(raw_upstream, caller):
    up = raw_upstream(
        [b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", OK], [OK]
    )
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")
    assert body_of(caller.get("/api/raw/y")) == b"ok"
    assert len(up.messages) == 2


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_ignore_content_length(raw_upstream, caller, status):
    up = raw_upstream(
        [b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status, OK],
    )
    resp = caller.get("/api/raw/x")
    assert resp.status_code == status
    assert body_of(resp) == b""
    assert body_of(caller.get("/api/raw/y")) == b"ok"  # connection reused, in sync
    assert len(up.messages) == 2


def test_head_response_has_no_body(raw_upstream, caller):
    raw_upstream([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", OK])
    resp = caller.head("/api/raw/x")
    assert resp.status_code == 200
    assert resp["Content-Length"] == "10"
    assert body_of(caller.get("/api/raw/y")) == b"ok"


def test_close_delimited_body(raw_upstream, caller):
    up = raw_upstream([b"HTTP/1.1 200 OK\r\n\r\nall of it"], [OK])
    assert body_of(caller.get("/api/raw/x")) == b"all of it"
    assert body_of(caller.get("/api/raw/y")) == b"ok"  # a new connection
    assert len(up.messages) == 2


@pytest.mark.parametrize(
    "line",
    [
        b"HTTP/1.1 200 OK\nSet-Cookie: admin=1",  # bare LF: response splitting
        b"HTTP/1.1 200 OK\rSet-Cookie: admin=1",
        b"HTTP/1.1 200 O\x00K",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 +200 OK",
        b"HTTP/2.0 200 OK",
        b"XTTP/1.1 200 OK",
    ],
)
def test_bad_status_line_is_bad_gateway(raw_upstream, caller, line):
    raw_upstream([line + b"\r\nContent-Length: 2\r\n\r\nok"])
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")


@pytest.mark.parametrize(
    "line",
    [b" folded: x", b"X-A : x", b"no colon", b": empty name", b"X\x00A: x"],
)
def test_obs_fold_and_invalid_header_lines_are_bad_gateway(raw_upstream, caller, line):
    raw_upstream(
        [b"HTTP/1.1 200 OK\r\nX-A: a\r\n" + line + b"\r\nContent-Length: 0\r\n\r\n"]
    )
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")


@pytest.mark.parametrize("value", [b"a\x00b", b"a\x01b", b"a\x7fb", b"a\nb", b"a\rb"])
def test_header_values_with_control_characters_are_bad_gateway(
    raw_upstream, caller, value
):
    # llhttp refuses the whole answer (it used to be relayed without the header)
    raw_upstream(
        [
            b"HTTP/1.1 200 OK\r\nX-Bad: "
            + value
            + b"\r\nX-Good: a\tb\xe9\r\nContent-Length: 2\r\n\r\nok"
        ]
    )
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")


def test_header_values_with_tab_and_latin1_are_kept(raw_upstream, caller):
    raw_upstream(
        [
            b"HTTP/1.1 200 OK\r\nSet-Cookie: c=1\r\nX-Good: a\tb\xe9\r\n"
            b"Content-Length: 2\r\n\r\nok"
        ]
    )
    resp = caller.get("/api/raw/x")
    assert resp.status_code == 200
    assert resp["X-Good"] == "a\tb\xe9"
    assert list(resp.cookies) != []


def test_header_section_over_max_head_is_bad_gateway(raw_upstream, caller):
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(1000))
    raw_upstream([b"HTTP/1.1 200 OK\r\n" + many + b"Content-Length: 0\r\n\r\n"])
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")


def test_upstream_dying_mid_body_is_bad_gateway_and_not_pooled(raw_upstream, caller):
    up = raw_upstream(
        [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf", None], [OK]
    )
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")
    assert body_of(caller.get("/api/raw/y")) == b"ok"
    assert len(up.messages) == 2


class _ResetMidBody(RawServer):
    """Answers the head and half the body, then resets the connection (RST)."""

    def serve(self, conn):
        with contextlib.suppress(OSError):
            received = b""
            while b"\r\n\r\n" not in received:
                data = conn.recv(65536)
                if not data:
                    return
                received += data
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
            time.sleep(0.3)  # the gateway has read the head: read() is waiting
            linger = struct.pack("ii", 1, 0)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            conn.close()


@pytest.fixture
def read_failures(monkeypatch):
    """What ``Response.read`` raised, for each call the relay made."""
    seen = []
    original = upstream.Response.read

    def read(self):
        try:
            return original(self)
        except BaseException as exc:
            seen.append(type(exc))
            raise

    monkeypatch.setattr(upstream.Response, "read", read)
    return seen


HALF = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"


@pytest.mark.parametrize("failure", ["closed", "timed_out", "reset"])
def test_a_small_body_cut_short_is_bad_gateway(
    failure, raw_upstream, make_service, caller, read_failures
):
    """Each way relay's upstream.read() fails mid-body is 502 bad_gateway."""
    if failure == "closed":
        raw_upstream([HALF])  # closed once its script is done
        expected = EOFError
    elif failure == "timed_out":  # the rest never comes; the connection stays open
        raw_upstream([HALF, OK], timeout_seconds=0.5)
        expected = TimeoutError
    else:
        server = _ResetMidBody()
        make_service("raw", [f"http://127.0.0.1:{server.port}"], retries=0)
        expected = ConnectionResetError
    try:
        assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")
    finally:
        if failure == "reset":
            server.close()
    assert read_failures == [expected]


def test_a_bug_reading_the_body_is_not_taken_for_the_upstreams_failure(
    raw_upstream, caller, monkeypatch
):
    raw_upstream([OK])

    def broken(self):
        raise AttributeError("a bug, not the upstream")

    monkeypatch.setattr(upstream.Response, "read", broken)
    assert_error(caller.get("/api/raw/x"), 500, "internal_error")


def test_upstream_dying_mid_chunked_stream_raises(raw_upstream, caller):
    raw_upstream(
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"]
    )
    resp = caller.get("/api/raw/x")
    with pytest.raises(EOFError):  # never presented as a complete body
        body_of(resp)


def test_response_not_read_to_the_end_is_not_pooled(raw_upstream, caller):
    big = 300 * 1024  # above SMALL_RESPONSE: streamed
    up = raw_upstream(
        [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % big + b"x" * big, OK],
        [OK],
    )
    resp = caller.get("/api/raw/x")
    assert resp.streaming
    next(iter(resp.streaming_content))
    resp.close()  # the client went away
    assert body_of(caller.get("/api/raw/y")) == b"ok"
    assert len(up.messages) == 2
    assert up.messages[1].startswith(b"GET /y ")


# --- request writing ----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw_uri",
    [
        "/api/raw/x?a\nX-Injected:1",  # gunicorn 23 keeps these in RAW_URI
        "/api/raw/x?a\rX-Injected:1",
        "/api/raw/x?a\x00b",
        "/api/raw/x?a\x01b",
        "/api/raw/x?a\x7fb",
        "/api/raw/x?a b",
    ],
)
def test_control_characters_in_the_query_never_reach_the_upstream(
    raw_upstream, caller, raw_uri
):
    up = raw_upstream([OK])
    resp = caller.get("/api/raw/x", RAW_URI=raw_uri)
    assert_error(resp, 400, "malformed_request")
    assert up.messages == []


@pytest.mark.parametrize("value", ["a\r\nX-User-Role: admin", "a\nb", "a\rb", "a\x00b"])
def test_cr_lf_nul_in_a_header_value_never_reach_the_upstream(
    raw_upstream, caller, value
):
    up = raw_upstream([OK])
    assert_error(
        caller.get("/api/raw/x", HTTP_USER_AGENT=value), 400, "malformed_request"
    )
    assert up.messages == []


def test_underscore_spelt_framing_headers_are_not_forwarded(raw_upstream, caller):
    # gunicorn maps "Content_Length" to HTTP_CONTENT_LENGTH when header_map is
    # "dangerous" (or the header is a forwarder header); other servers may too.
    up = raw_upstream([OK, OK])
    caller.get("/api/raw/x", HTTP_CONTENT_LENGTH="20", HTTP_CONTENT_TYPE="text/evil")
    caller.post(
        "/api/raw/x",
        data=b"{}",
        content_type="application/json",
        HTTP_CONTENT_LENGTH="20",
    )
    get, post = (r.lower() for r in up.messages)
    assert b"content-length" not in get and b"text/evil" not in get
    assert post.count(b"content-length:") == 1 and b"content-length: 2\r\n" in post


def test_identity_headers_cannot_be_smuggled_by_spelling(raw_upstream, caller):
    up = raw_upstream([OK])
    caller.get(
        "/api/raw/x",
        HTTP_X_USER_ID="999999",  # what X-User-Id and X-User_Id both become
        HTTP_X_USER_ROLE="admin",
        HTTP_X_ORGANIZATION_ID="9",
    )
    head = up.messages[0].lower()
    assert head.count(b"x-user-id:") == 1 and b"x-user-id: 999999" not in head
    assert head.count(b"x-user-role:") == 1 and b"x-user-role: client" in head


def test_non_latin1_email_is_sent_as_utf8(raw_upstream, auth_client, make_user):
    user = make_user(Role.CLIENT, email="jo@例え.jp")
    up = raw_upstream([OK])
    assert auth_client(user).get("/api/raw/x").status_code == 200
    assert "X-User-Email: jo@例え.jp\r\n".encode() in up.messages[0]


def test_host_header_is_the_instance(raw_upstream, caller):
    up = raw_upstream([OK])
    caller.get("/api/raw/x", HTTP_EXPECT="100-continue")
    head = up.messages[0]
    host = up.url.removeprefix("http://").encode()
    assert head.count(b"\r\nHost:") == 1 and b"\r\nHost: " + host + b"\r\n" in head
    assert b"expect" not in head.lower()


def test_one_endless_header_line_is_bad_gateway(raw_upstream, caller):
    raw_upstream([b"HTTP/1.1 200 OK\r\nX-Long: " + b"v" * 200_000 + b"\r\n\r\n"])
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")


def test_http2_status_line_and_chunked_twice_are_bad_gateway(raw_upstream, caller):
    raw_upstream(
        [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n"],
        [b"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
    )
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")
    assert_error(caller.get("/api/raw/x"), 502, "bad_gateway")


def test_bytes_after_the_answer_make_the_connection_unusable(make_service, caller):
    extra = OK + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad"
    up = FakeUpstream(OK, script=[[extra, OK]])
    try:
        make_service("wire", [up.url], retries=0)
        assert body_of(caller.get("/api/wire/x")) == b"ok"
        assert body_of(caller.get("/api/wire/y")) == b"ok"
        assert len(up.received) == 2  # the second request on a fresh connection
    finally:
        up.close()
