"""Forwarding as README "Gateway" says: methods, query, headers both ways, identity, cookies,
redirects, and paths that must never reach an upstream."""

import pytest

from core.roles import Role
from tests.conftest import assert_error
from tests.support.upstream import FakeUpstream


@pytest.fixture
def echo(make_service, upstream):
    return make_service("echo", [upstream.url])


@pytest.fixture
def client_user(make_user):
    return make_user(Role.CLIENT)


@pytest.fixture
def caller(auth_client, client_user):
    return auth_client(client_user)


def received(upstream):
    assert upstream.requests, "the upstream got no request"
    req = upstream.requests[-1]
    return req, {k.lower(): v for k, v in req.headers.items()}


@pytest.mark.parametrize(
    "method", ["get", "post", "put", "patch", "delete", "options", "head"]
)
def test_every_method_is_forwarded(echo, upstream, caller, method):
    resp = getattr(caller, method)("/api/echo/items/7")
    assert resp.status_code == 200
    req, _ = received(upstream)
    assert req.method == method.upper()
    assert req.path == "/items/7"
    assert resp.xenx_passthrough if hasattr(resp, "xenx_passthrough") else True


def test_query_string_kept_byte_for_byte(echo, upstream, caller):
    query = "b=2&a=1&a=%20x&empty=&flag&pct=%2F%3F&plus=a+b"
    resp = caller.get(f"/api/echo/search?{query}")
    assert resp.status_code == 200
    assert received(upstream)[0].path == f"/search?{query}"


def test_instance_path_prefix_and_root(make_service, upstream, caller):
    make_service("prefixed", [upstream.url + "/v1/"])
    assert caller.get("/api/prefixed/x").status_code == 200
    assert received(upstream)[0].path == "/v1/x"
    assert caller.get("/api/prefixed").status_code == 200
    assert received(upstream)[0].path == "/v1"


def test_bodyless_get_under_a_framing_server_is_sent_without_a_body(
    echo, upstream, caller
):
    """gunicorn sets ``wsgi.input_terminated`` on every request. A GET with neither
    Content-Length nor Transfer-Encoding still has no body (README "Gateway"): it goes upstream
    without ``Transfer-Encoding: chunked``, so it stays replayable on another instance
    (bench/faults saw such GETs answered 502 when an instance reset a connection)."""
    resp = caller.get("/api/echo/items", **{"wsgi.input_terminated": True})
    assert resp.status_code == 200
    _, headers = received(upstream)
    assert "transfer-encoding" not in headers
    assert headers.get("content-length", "0") == "0"


def test_request_body_forwarded(echo, upstream, caller):
    body = b'{"hello": "world"}' * 100
    resp = caller.post("/api/echo/data", data=body, content_type="application/json")
    assert resp.status_code == 200
    req, headers = received(upstream)
    assert req.body == body
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))


@pytest.mark.parametrize(
    "header",
    [
        "Connection",
        "Keep-Alive",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Upgrade",
        "X-Named-In-Connection",
    ],
)
def test_hop_by_hop_request_headers_dropped(echo, upstream, caller, header):
    meta = "HTTP_" + header.upper().replace("-", "_")
    extra = {meta: "value"}
    extra.setdefault("HTTP_CONNECTION", "keep-alive, X-Named-In-Connection")
    resp = caller.get("/api/echo/h", **extra)
    assert resp.status_code == 200
    _, headers = received(upstream)
    assert header.lower() not in headers
    assert "connection" not in headers or headers["connection"] != "value"


def test_disallowed_host_refused(echo, upstream, caller):
    assert_error(
        caller.get("/api/echo/h", HTTP_HOST="evil.example"), 400, "malformed_request"
    )
    assert upstream.requests == []


def test_end_to_end_request_headers_kept(echo, upstream, caller):
    caller.get("/api/echo/h", HTTP_ACCEPT="application/json", HTTP_X_CUSTOM="42")
    _, headers = received(upstream)
    assert headers["accept"] == "application/json"
    assert (
        "x-custom" not in headers
    )  # not on the allowlist (tests/gateway/test_headers.py)
    assert headers["host"] == upstream.url.removeprefix("http://")


@pytest.mark.parametrize(
    "header",
    [
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Trailer",
        "Upgrade",
        "X-Private",
    ],
)
def test_hop_by_hop_response_headers_dropped(echo, upstream, caller, header):
    resp = caller.get("/api/echo/hop")
    assert resp.status_code == 200
    assert not resp.has_header(header)
    assert resp["X-Kept"] == "yes"


def test_forwarded_headers_and_request_id(echo, upstream, caller, settings):
    settings.ALLOWED_HOSTS = ["gateway.example"]
    resp = caller.get(
        "/api/echo/h",
        HTTP_X_REQUEST_ID="trace-123",
        HTTP_X_FORWARDED_FOR="6.6.6.6",
        HTTP_HOST="gateway.example:8443",
        SERVER_NAME="gateway.example",
    )
    assert resp.status_code == 200, resp.content
    _, headers = received(upstream)
    assert headers["x-request-id"] == "trace-123"
    assert resp["X-Request-ID"] == "trace-123"
    assert headers["x-forwarded-for"] == "127.0.0.1"  # untrusted peer: chain dropped
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == "gateway.example:8443"


def test_forwarded_for_chain_kept_from_trusted_proxy(echo, upstream, caller, settings):
    settings.XENX_TRUSTED_PROXIES = ["127.0.0.1"]
    caller.get("/api/echo/h", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.2")
    assert (
        received(upstream)[1]["x-forwarded-for"] == "203.0.113.9, 10.0.0.2, 127.0.0.1"
    )


def test_identity_headers_injected_and_spoofs_removed(
    echo, upstream, caller, client_user
):
    caller.get(
        "/api/echo/h",
        HTTP_X_USER_ID="1",
        HTTP_X_USER_EMAIL="admin@evil.test",
        HTTP_X_USER_ROLE="admin",
        HTTP_X_ORGANIZATION_ID="999",
    )
    _, headers = received(upstream)
    assert headers["x-user-id"] == str(client_user.pk)
    assert headers["x-user-email"] == client_user.email
    assert headers["x-user-role"] == "client"
    assert headers["x-organization-id"] == str(client_user.organization_id)
    assert [k for k in received(upstream)[0].headers if k.lower() == "x-user-role"] == [
        "X-User-Role"
    ]


def test_anonymous_call_to_public_service_has_no_identity(make_service, upstream, api):
    make_service("open", [upstream.url], public=True)
    resp = api.get(
        "/api/open/h",
        HTTP_X_USER_ID="1",
        HTTP_X_USER_ROLE="admin",
        HTTP_X_ORGANIZATION_ID="3",
    )
    assert resp.status_code == 200
    _, headers = received(upstream)
    for name in ("x-user-id", "x-user-email", "x-user-role", "x-organization-id"):
        assert name not in headers


def test_authorization_forwarded_only_when_configured(make_service, upstream, caller):
    make_service("plain", [upstream.url])
    make_service("passes", [upstream.url], forward_authorization=True)
    caller.get("/api/plain/h")
    assert "authorization" not in received(upstream)[1]
    caller.get("/api/passes/h")
    assert received(upstream)[1]["authorization"].startswith("Bearer ")


def test_platform_session_cookies_stay_with_the_platform(echo, upstream, caller):
    caller.get("/api/echo/h", HTTP_COOKIE="sessionid=abc; theirs=1; csrftoken=x")
    assert received(upstream)[1]["cookie"] == "theirs=1"


def test_redirects_passed_back_not_followed(echo, upstream, caller):
    resp = caller.get("/api/echo/redirect")
    assert resp.status_code == 302
    assert resp["Location"] == "/elsewhere"
    assert len(upstream.requests) == 1


def test_every_set_cookie_kept(echo, upstream, caller):
    resp = caller.get("/api/echo/cookies")
    assert resp.status_code == 200
    lines = sorted(m.OutputString() for m in resp.cookies.values())
    assert lines == ["a=1; Path=/; HttpOnly", "b=2; Path=/x; Max-Age=60"]


def test_upstream_error_bodies_passed_through(echo, upstream, caller):
    resp = caller.get("/api/echo/x?status=404")
    assert resp.status_code == 404
    assert resp.json()["server"] == "up1"  # the upstream's body, not an error body
    resp = caller.get("/api/echo/x?status=500")
    assert resp.status_code == 500
    assert resp.json()["server"] == "up1"


TRAVERSALS = [
    "/api/echo/../secret",
    "/api/echo/a/../../secret",
    "/api/echo/./secret",
    "/api/echo/%2e%2e/secret",
    "/api/echo/%2E%2E/secret",
    "/api/echo/.%2e/secret",
    "/api/echo/%2e/secret",
    "/api/echo/%252e%252e/secret",
    "/api/echo/%25252e%25252e/secret",
    "/api/echo/..;/secret",
    "/api/echo//etc/passwd",
    "/api/echo/a//b",
    "/api/echo/a/%2F/b",
    "/api/echo/%2F%2Fevil.example/x",
    "/api/echo/a\\b",
    "/api/echo/a%5cb",
    "/api/echo/a%255cb",
    "/api/echo/a%00b",
    "/api/echo/a%0d%0aX-Injected:%201",
    "/api/echo/a%09b",
    "/api/echo/a%7fb",
    "/api/echo/http://evil.example/x",
    "/api/echo/http:%2F%2Fevil.example",
    "/api/echo/https:evil.example",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_unclean_paths_refused_before_any_upstream(echo, upstream, caller, path):
    assert_error(caller.get(path), 400, "malformed_request")
    assert upstream.requests == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/echo/a%20b/c",
        "/api/echo/file.tar.gz",
        "/api/echo/a..b/.hidden",
        "/api/echo/x:y",
    ],
)
def test_harmless_paths_forwarded(echo, upstream, caller, path):
    assert caller.get(path).status_code == 200


def test_https_policy_applies_to_proxied_calls(make_service, upstream, settings):
    from rest_framework.test import APIClient

    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 3600
    make_service("open", [upstream.url], public=True)
    api = APIClient()
    resp = api.get("/api/open/x")
    assert resp.status_code == 301
    assert resp["Location"].startswith("https://")
    assert upstream.requests == []
    resp = api.get("/api/open/x", secure=True)
    assert resp.status_code == 200
    assert resp["Strict-Transport-Security"].startswith("max-age=3600")
    assert received(upstream)[1]["x-forwarded-proto"] == "https"


def test_upstream_header_with_invalid_name_is_bad_gateway(
    make_service, caller, test_servers
):
    bad = b"HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n"
    up = test_servers(FakeUpstream, script=[[bad]], close_after_script=True)
    make_service("weird", [up.url], retries=0)
    assert_error(caller.get("/api/weird/x"), 502, "bad_gateway")
