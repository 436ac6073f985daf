"""Every identity endpoint is in the OpenAPI schema with its request and response
shapes (README "Conventions" and "Identity")."""

import pytest

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    ("/api/auth/register", "post"): ("201", True),
    ("/api/auth/verify-email", "post"): ("204", True),
    ("/api/auth/login", "post"): ("200", True),
    ("/api/auth/mfa/verify", "post"): ("200", True),
    ("/api/auth/token/refresh", "post"): ("200", True),
    ("/api/auth/logout", "post"): ("204", True),
    ("/api/auth/logout-all", "post"): ("204", False),
    ("/api/auth/me", "get"): ("200", False),
    ("/api/auth/me", "patch"): ("200", True),
    ("/api/auth/password/change", "post"): ("200", True),
    ("/api/auth/password/reset", "post"): ("202", True),
    ("/api/auth/password/reset/confirm", "post"): ("204", True),
    ("/api/auth/mfa/totp", "post"): ("201", False),
    ("/api/auth/mfa/totp", "delete"): ("204", True),
    ("/api/auth/mfa/totp/confirm", "post"): ("200", True),
    ("/api/auth/mfa/backup-codes", "post"): ("200", True),
    ("/api/audit-events", "get"): ("200", False),
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.parametrize(("path", "method"), sorted(ENDPOINTS))
def test_endpoint_is_documented(schema, path, method):
    status, has_body = ENDPOINTS[(path, method)]
    operation = schema["paths"][path][method]
    assert status in operation["responses"]
    if status not in ("202", "204"):
        assert operation["responses"][status].get("content"), operation
    if has_body:
        assert operation.get("requestBody", {}).get("content"), operation
    errors = [s for s in operation["responses"] if s.startswith("4")]
    assert errors, f"{method} {path} documents no error response"


def test_schema_is_served(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/auth/mfa/verify" in response.content


AUTHENTICATED = [
    ("post", "/api/auth/logout"),
    ("post", "/api/auth/logout-all"),
    ("get", "/api/auth/me"),
    ("patch", "/api/auth/me"),
    ("post", "/api/auth/password/change"),
    ("post", "/api/auth/mfa/totp"),
    ("delete", "/api/auth/mfa/totp"),
    ("post", "/api/auth/mfa/totp/confirm"),
    ("post", "/api/auth/mfa/backup-codes"),
    ("get", "/api/audit-events"),
]


@pytest.mark.parametrize(("method", "path"), AUTHENTICATED)
def test_endpoints_that_need_a_token(method, path, api):
    from tests.conftest import assert_error

    response = getattr(api, method)(path, {}, format="json")
    error = assert_error(response, 401, "not_authenticated")
    assert error["details"] == {}
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/auth/login"),
        ("get", "/api/auth/token/refresh"),
        ("put", "/api/auth/me"),
        ("get", "/api/auth/mfa/verify"),
        ("post", "/api/audit-events"),
    ],
)
def test_wrong_methods(method, path, make_user, auth_client):
    from tests.conftest import assert_error

    client = auth_client(make_user("admin"))
    assert_error(getattr(client, method)(path), 405, "method_not_allowed")
