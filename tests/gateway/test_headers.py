"""Request headers forwarded upstream are an allowlist (plus a service's own
``forward_headers``), and answers a browser would run are sandboxed unless the
service ``serves_pages`` (README "Gateway", issue 24)."""

import functools
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from core.roles import Role
from gateway.headers import DEFAULT_FORWARDED
from gateway.models import Service
from tests.conftest import assert_error
from tests.support.upstream import FakeUpstream, header_fields

# Headers a client may send that back ends, or the frameworks and proxies in front of
# them, read as a path override or as an identity (the finding).
SPOOFS = [
    "X-Original-URL",
    "X-Rewrite-URL",
    "Remote-User",
    "X-Forwarded-User",
    "True-Client-IP",
    "X-Real-IP",
    "X-Client-IP",
    "Forwarded",
    "X-Forwarded-Port",
    "X-Forwarded-Prefix",
    "X-Forwarded-Email",
    "X-Auth-Request-User",
    "CF-Connecting-IP",
    "X-XenX-Identity",
    "X-Client-Id",
    "X-Custom",
]


def meta(name):
    return "HTTP_" + name.upper().replace("-", "_")


@pytest.fixture
def wire(test_servers):
    return functools.partial(test_servers, FakeUpstream)


def sent_headers(up):
    ((head, _),) = up.requests
    return header_fields(head)


@pytest.mark.parametrize("name", SPOOFS)
def test_a_client_header_off_the_allowlist_never_reaches_the_upstream(
    make_service, wire, api, name
):
    up = wire()
    make_service("svc", [up.url], public=True)
    assert api.get("/api/svc/x", **{meta(name): "/admin"}).status_code == 200
    assert name.lower() not in sent_headers(up)


def test_every_default_header_is_forwarded_as_sent(make_service, wire, api):
    up = wire()
    make_service("svc", [up.url], public=True)
    sent = {meta(name): f"v-{i}" for i, name in enumerate(DEFAULT_FORWARDED)}
    sent["HTTP_COOKIE"] = "theme=dark"
    assert api.get("/api/svc/x", **sent).status_code == 200
    fields = sent_headers(up)
    for key, value in sent.items():
        name = key[5:].replace("_", "-").lower()
        assert fields.get(name) == value, name


def test_allowed_headers_go_upstream_in_the_clients_order(make_service, wire, api):
    up = wire()
    make_service("svc", [up.url], public=True, forward_headers=["X-Api-Version"])
    order = ["User-Agent", "X-Api-Version", "Accept", "X-Other", "Traceparent", "Range"]
    api.get("/api/svc/x", **{meta(name): "1" for name in order})
    ((head, _),) = up.requests
    names = [line.split(b":")[0].decode() for line in head.split(b"\r\n")[1:] if line]
    assert [n for n in names if n in order] == [n for n in order if n != "X-Other"]


def test_a_service_adds_its_own_names(make_service, wire, api):
    up = wire()
    make_service("svc", [up.url], public=True, forward_headers=["X-Api-Version"])
    api.get("/api/svc/x", HTTP_X_API_VERSION="3", HTTP_X_OTHER="no")
    fields = sent_headers(up)
    assert fields["x-api-version"] == "3"
    assert "x-other" not in fields
    ((head, _),) = up.requests
    assert b"\r\nX-Api-Version: 3\r\n" in head  # spelt as the service lists it


def test_a_header_named_in_connection_is_dropped_even_when_allowed(
    make_service, wire, api
):
    up = wire()
    make_service("svc", [up.url], public=True)
    api.get("/api/svc/x", HTTP_ACCEPT="text/plain", HTTP_CONNECTION="close, Accept")
    assert "accept" not in sent_headers(up)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["X-Original-URL"], "never taken from the client"),
        (["Remote-User"], "never taken from the client"),
        (["x-user-id"], "never taken from the client"),
        (["Connection"], "never taken from the client"),
        (["Authorization"], "never taken from the client"),
        (["X_Under"], "is not a header name"),
        (["X Space"], "is not a header name"),
        (["X-A", "x-a"], "listed twice"),
        ("X-A", "list of header names"),
        ([f"X-{i}" for i in range(33)], "At most 32"),
    ],
)
def test_forward_headers_refused_through_the_api(
    auth_client, make_user, value, message
):
    admin = auth_client(make_user(Role.ADMIN))
    resp = admin.post(
        "/api/services",
        {
            "name": "svc",
            "instances": [{"url": "http://127.0.0.1:9"}],
            "forward_headers": value,
        },
        format="json",
    )
    assert_error(resp, 400, "validation_error")
    assert message in str(resp.json()["error"]["details"]["forward_headers"])


def test_forward_headers_and_serves_pages_through_the_api(auth_client, make_user):
    admin = auth_client(make_user(Role.ADMIN))
    resp = admin.post(
        "/api/services",
        {
            "name": "svc",
            "instances": [{"url": "http://127.0.0.1:9"}],
            "forward_headers": ["Idempotency-Key"],
            "serves_pages": True,
        },
        format="json",
    )
    assert resp.status_code == 201, resp.content
    assert resp.json()["forward_headers"] == ["Idempotency-Key"]
    assert resp.json()["serves_pages"] is True
    resp = admin.patch("/api/services/svc", {"serves_pages": False}, format="json")
    assert resp.json()["serves_pages"] is False


@pytest.mark.django_db
def test_register_service_options():
    call_command(
        "register_service",
        "svc",
        "http://127.0.0.1:9",
        "--forward-headers",
        "X-Api-Version, Idempotency-Key",
        "--serves-pages",
        stdout=io.StringIO(),
    )
    svc = Service.objects.get(name="svc")
    assert svc.forward_headers == ["X-Api-Version", "Idempotency-Key"]
    assert svc.serves_pages is True
    call_command(
        "register_service",
        "svc",
        "http://127.0.0.1:9",
        "--forward-headers",
        "",
        "--no-serves-pages",
        stdout=io.StringIO(),
    )
    svc.refresh_from_db()
    assert svc.forward_headers == [] and svc.serves_pages is False
    with pytest.raises(CommandError, match="never taken from the client"):
        call_command(
            "register_service",
            "svc",
            "http://127.0.0.1:9",
            "--forward-headers",
            "True-Client-IP",
            stdout=io.StringIO(),
        )


# --- answers a browser would run ----------------------------------------------------


def _answer(content_type, extra=b""):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + extra
    if content_type is not None:
        head += b"Content-Type: " + content_type + b"\r\n"
    return head + b"\r\nok"


@pytest.mark.parametrize(
    ("content_type", "sandboxed"),
    [
        (b"text/html; charset=utf-8", True),
        (b"TEXT/HTML", True),
        (b"application/xhtml+xml", True),
        (b"image/svg+xml", True),
        (b"text/xml", True),
        (b"application/xml", True),
        (b"application/atom+xml", True),
        (b"multipart/x-mixed-replace; boundary=x", True),
        (None, True),  # no type: browsers sniff it
        (b"nonsense", True),
        (b"application/json", False),
        (b"text/plain", False),
        (b"image/png", False),
        (b"application/pdf", False),
    ],
)
def test_runnable_answers_are_sandboxed(
    make_service, wire, api, content_type, sandboxed
):
    up = wire(_answer(content_type))
    make_service("svc", [up.url], public=True)
    resp = api.get("/api/svc/page")
    assert resp.status_code == 200
    assert (resp.get("Content-Security-Policy") == "sandbox") is sandboxed
    assert (resp.get("X-Content-Type-Options") == "nosniff") is sandboxed


def test_an_upstream_policy_is_kept_and_sandbox_added(make_service, wire, api):
    up = wire(_answer(b"text/html", b"Content-Security-Policy: default-src 'self'\r\n"))
    make_service("svc", [up.url], public=True)
    resp = api.get("/api/svc/page")
    assert resp["Content-Security-Policy"] == "default-src 'self', sandbox"


def test_a_service_that_serves_pages_is_not_sandboxed(make_service, wire, api):
    up = wire(_answer(b"text/html"))
    make_service("svc", [up.url], public=True, serves_pages=True)
    resp = api.get("/api/svc/page")
    assert resp.status_code == 200
    assert "Content-Security-Policy" not in resp
    assert "X-Content-Type-Options" not in resp


# --- anonymous callers counted per IPv6 /64 ------------------------------------------


def test_anonymous_ipv6_callers_are_counted_per_64(make_service, upstream, api):
    make_service("svc", [upstream.url], public=True, rate_limits={"anonymous": "2/m"})

    def call(address):
        return api.get("/api/svc/x", REMOTE_ADDR=address).status_code

    assert call("2001:db8:1:2::1") == 200
    assert call("2001:db8:1:2:aaaa::7") == 200
    # A third address of the same /64 shares its count: refused.
    assert call("2001:db8:1:2:ffff:ffff:ffff:ffff") == 429
    assert call("2001:db8:1:3::1") == 200  # another /64
    assert call("192.0.2.1") == 200  # IPv4: per address
    assert call("192.0.2.2") == 200
