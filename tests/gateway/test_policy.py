"""The policy chain of README "Gateway", each step's error, and their ORDER."""

import io

import pytest

from core.roles import Role
from tests.conftest import assert_error

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
EXE = b"MZ" + b"\x90" * 200


@pytest.fixture
def client_user(make_user):
    return make_user(Role.CLIENT)


def test_unknown_service(db, api):
    assert_error(api.get("/api/nope/x"), 404, "service_not_found")


def test_reserved_route_that_does_not_exist_is_plain_not_found(db, api):
    assert_error(api.get("/api/documents/../x"), 404, "not_found")


def test_disabled_service_is_503_even_without_token(make_service, upstream, api):
    make_service("off", [upstream.url], enabled=False)
    assert_error(api.get("/api/off/x"), 503, "service_unavailable")
    assert upstream.requests == []


def test_private_service_needs_a_token(make_service, upstream, api):
    make_service("private", [upstream.url])
    resp = api.get("/api/private/x")
    assert_error(resp, 401, "not_authenticated")
    assert resp["WWW-Authenticate"].startswith("Bearer")
    assert_error(
        api.get("/api/private/x", HTTP_AUTHORIZATION="Bearer nope"),
        401,
        "invalid_token",
    )
    assert_error(
        api.get("/api/private/x", HTTP_AUTHORIZATION="Basic dTpw"), 401, "invalid_token"
    )
    assert upstream.requests == []


def test_revoked_token_refused(make_service, upstream, auth_client, client_user):
    from accounts import revocation

    make_service("private", [upstream.url])
    caller = auth_client(client_user)
    assert caller.get("/api/private/x").status_code == 200
    revocation.revoke_user_tokens(client_user)
    assert_error(caller.get("/api/private/x"), 401, "token_revoked")


def test_refresh_token_is_not_an_access_token(
    make_service, upstream, auth_client, client_user, api
):
    make_service("private", [upstream.url])
    refresh = auth_client(client_user).tokens["refresh"]
    resp = api.get("/api/private/x", HTTP_AUTHORIZATION=f"Bearer {refresh}")
    assert_error(resp, 401, "invalid_token")


def test_mfa_policy(make_service, upstream, auth_client, make_user, org):
    org.mfa_required = True
    org.save()
    make_service("private", [upstream.url])
    user = make_user(Role.CPA)
    assert_error(auth_client(user).get("/api/private/x"), 403, "mfa_required")
    assert auth_client(user, mfa=True).get("/api/private/x").status_code == 200


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        (Role.ADMIN, False),  # exact: an admin is not implied
        (Role.STAFF, True),
        (Role.CPA, True),
        (Role.CLIENT, False),
    ],
)
def test_allowed_roles_exact(
    make_service, upstream, auth_client, make_user, role, allowed
):
    make_service("staffonly", [upstream.url], allowed_roles=["staff", "cpa"])
    resp = auth_client(make_user(role)).get("/api/staffonly/x")
    if allowed:
        assert resp.status_code == 200
    else:
        assert_error(resp, 403, "permission_denied")


def test_rate_limit_per_user_with_headers(
    make_service, upstream, auth_client, client_user, make_user
):
    make_service("limited", [upstream.url], rate_limits={"client": "3/m"})
    caller = auth_client(client_user)
    for used in range(1, 4):
        resp = caller.get("/api/limited/x")
        assert resp.status_code == 200
        assert resp["X-RateLimit-Limit"] == "3"
        assert resp["X-RateLimit-Remaining"] == str(3 - used)
        assert 0 <= int(resp["X-RateLimit-Reset"]) <= 60
    resp = assert_error_with(caller.get("/api/limited/x"), 429, "rate_limited")
    assert int(resp["Retry-After"]) >= 1
    assert resp["X-RateLimit-Remaining"] == "0"
    assert len(upstream.requests) == 3
    # another user of the same role has its own count
    assert auth_client(make_user(Role.CLIENT)).get("/api/limited/x").status_code == 200


def assert_error_with(resp, status, code):
    assert_error(resp, status, code)
    return resp


def test_rate_limit_default_by_role(
    make_service, upstream, auth_client, make_user, settings
):
    settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMITS, "cpa": "2/m"}
    make_service("svc", [upstream.url])
    caller = auth_client(make_user(Role.CPA))
    assert caller.get("/api/svc/x")["X-RateLimit-Limit"] == "2"
    caller.get("/api/svc/x")
    assert_error(caller.get("/api/svc/x"), 429, "rate_limited")


def test_anonymous_rate_limit_per_ip(make_service, upstream, api):
    make_service("open", [upstream.url], public=True, rate_limits={"anonymous": "2/m"})
    assert api.get("/api/open/x", REMOTE_ADDR="10.0.0.1").status_code == 200
    assert api.get("/api/open/x", REMOTE_ADDR="10.0.0.1").status_code == 200
    assert_error(api.get("/api/open/x", REMOTE_ADDR="10.0.0.1"), 429, "rate_limited")
    assert api.get("/api/open/x", REMOTE_ADDR="10.0.0.2").status_code == 200


def test_body_size_by_content_length(make_service, upstream, auth_client, client_user):
    make_service("small", [upstream.url], max_body_bytes=10)
    caller = auth_client(client_user)
    assert (
        caller.post(
            "/api/small/x", data=b"0123456789", content_type="text/plain"
        ).status_code
        == 200
    )
    resp = caller.post("/api/small/x", data=b"0123456789A", content_type="text/plain")
    assert_error(resp, 413, "payload_too_large")
    assert len(upstream.requests) == 1


def test_default_body_limit_setting(
    make_service, upstream, auth_client, client_user, settings
):
    settings.XENX_GATEWAY_MAX_BODY_BYTES = 5
    make_service("svc", [upstream.url])
    resp = auth_client(client_user).post(
        "/api/svc/x", data=b"123456", content_type="text/plain"
    )
    assert_error(resp, 413, "payload_too_large")


def test_content_type_allowed_list(make_service, upstream, auth_client, client_user):
    make_service(
        "json", [upstream.url], allowed_content_types=["application/json", "image/*"]
    )
    caller = auth_client(client_user)
    assert (
        caller.post(
            "/api/json/x", data=b"{}", content_type="application/json; charset=utf-8"
        ).status_code
        == 200
    )
    assert (
        caller.post("/api/json/x", data=PNG, content_type="image/png").status_code
        == 200
    )
    assert_error(
        caller.post(
            "/api/json/x", data=b"a=1", content_type="application/x-www-form-urlencoded"
        ),
        415,
        "unsupported_media_type",
    )
    assert caller.get("/api/json/x").status_code == 200  # no body, nothing to judge


def _multipart(caller, path, name, data, declared):
    upload = io.BytesIO(data)
    upload.name = name
    from django.core.files.uploadedfile import SimpleUploadedFile

    return caller.post(
        path,
        {"note": "hi", "file": SimpleUploadedFile(name, data, content_type=declared)},
        format="multipart",
    )


def test_multipart_file_parts_judged_by_bytes(
    make_service, upstream, auth_client, client_user
):
    make_service(
        "images",
        [upstream.url],
        allowed_content_types=["multipart/form-data", "image/png"],
    )
    caller = auth_client(client_user)
    resp = _multipart(caller, "/api/images/up", "pic.png", PNG, "image/png")
    assert resp.status_code == 200, resp.content
    assert upstream.requests[-1].body.count(PNG) == 1  # forwarded intact
    count = len(upstream.requests)
    resp = _multipart(caller, "/api/images/up", "pic.png", EXE, "image/png")  # a lie
    assert_error(resp, 415, "unsupported_media_type")
    assert len(upstream.requests) == count


# --- the ORDER of the checks -------------------------------------------------------


def test_order_disabled_before_authentication(make_service, upstream, api):
    make_service("off", [upstream.url], enabled=False)
    assert_error(
        api.get("/api/off/x", HTTP_AUTHORIZATION="Bearer junk"),
        503,
        "service_unavailable",
    )


def test_order_authentication_before_roles_and_limits(make_service, upstream, api):
    make_service(
        "svc", [upstream.url], allowed_roles=["staff"], rate_limits={"anonymous": "1/m"}
    )
    for _ in range(3):
        assert_error(api.get("/api/svc/x"), 401, "not_authenticated")


def test_order_mfa_before_roles(make_service, upstream, auth_client, make_user, org):
    org.mfa_required = True
    org.save()
    make_service("svc", [upstream.url], allowed_roles=["staff"])
    assert_error(
        auth_client(make_user(Role.CPA)).get("/api/svc/x"), 403, "mfa_required"
    )


def test_order_roles_before_rate_limit(
    make_service, upstream, auth_client, client_user
):
    make_service(
        "svc", [upstream.url], allowed_roles=["cpa"], rate_limits={"client": "1/m"}
    )
    caller = auth_client(client_user)
    for _ in range(3):
        assert_error(caller.get("/api/svc/x"), 403, "permission_denied")


def test_order_rate_limit_before_body_size(
    make_service, upstream, auth_client, client_user
):
    make_service("svc", [upstream.url], rate_limits={"client": "1/m"}, max_body_bytes=1)
    caller = auth_client(client_user)
    assert_error(
        caller.post("/api/svc/x", data=b"big", content_type="text/plain"),
        413,
        "payload_too_large",
    )
    assert_error(
        caller.post("/api/svc/x", data=b"big", content_type="text/plain"),
        429,
        "rate_limited",
    )


def test_order_body_size_before_content_type(
    make_service, upstream, auth_client, client_user
):
    make_service(
        "svc",
        [upstream.url],
        max_body_bytes=2,
        allowed_content_types=["application/json"],
    )
    resp = auth_client(client_user).post(
        "/api/svc/x", data=b"hello", content_type="text/plain"
    )
    assert_error(resp, 413, "payload_too_large")


def test_public_service_with_a_bad_token_is_refused(make_service, upstream, api):
    make_service("open", [upstream.url], public=True)
    assert_error(
        api.get("/api/open/x", HTTP_AUTHORIZATION="Bearer junk"), 401, "invalid_token"
    )
