"""README "Conventions": one error body for every error under /api/ and /health."""

import pytest

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_json_404(api):
    assert_error(api.get("/api/auth/does-not-exist"), 404, "not_found")


def test_unknown_health_path_is_json_404(api):
    assert_error(api.get("/health/nope"), 404, "not_found")


def test_non_api_404_is_not_forced_to_json(client):
    response = client.get("/definitely-not-here")
    assert response.status_code == 404
    assert "application/json" not in response["Content-Type"]


def test_method_not_allowed_on_drf_view(auth_client, make_user):
    client = auth_client(make_user())
    error = assert_error(client.delete("/api/auth/me"), 405, "method_not_allowed")
    assert "DELETE" in error["message"]


def test_method_not_allowed_on_plain_view_keeps_allow_header(api):
    response = api.post("/health/live")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response["Allow"]


def test_malformed_json_is_400_malformed_request(auth_client, make_user):
    client = auth_client(make_user())
    response = client.patch(
        "/api/auth/me", data="{not json", content_type="application/json"
    )
    assert_error(response, 400, "malformed_request")


def test_wrong_content_type_is_415(auth_client, make_user):
    client = auth_client(make_user())
    response = client.patch(
        "/api/auth/me", data="first_name=x", content_type="text/csv"
    )
    assert_error(response, 415, "unsupported_media_type")


def test_wrong_field_type_is_400_validation_error_with_details(auth_client, make_user):
    client = auth_client(make_user())
    response = client.patch(
        "/api/auth/me", {"first_name": {"nested": 1}}, format="json"
    )
    error = assert_error(response, 400, "validation_error")
    assert "first_name" in error["details"]
    assert isinstance(error["details"]["first_name"], list)


def test_missing_credentials_is_401(api):
    assert_error(api.get("/api/auth/me"), 401, "not_authenticated")


def test_garbage_bearer_token_is_401_invalid_token(api):
    api.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert_error(api.get("/api/auth/me"), 401, "invalid_token")


def test_unhandled_exception_is_500_without_traceback(
    auth_client, make_user, monkeypatch
):
    from accounts.views import auth as auth_views

    def boom(self, request):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(auth_views.MeView, "get", boom)
    client = auth_client(make_user())
    client.raise_request_exception = False
    response = client.get("/api/auth/me", HTTP_X_REQUEST_ID="trace-500")
    error = assert_error(response, 500, "internal_error")
    assert error["request_id"] == "trace-500"
    assert b"secret internal detail" not in response.content
    assert b"Traceback" not in response.content


def test_exception_in_plain_api_view_is_500_json(client, monkeypatch):
    from core import health

    def boom():
        raise RuntimeError("db exploded")

    monkeypatch.setattr(health, "check_database", boom)
    client.raise_request_exception = False
    response = client.get("/health/ready")
    assert_error(response, 500, "internal_error")
    assert b"db exploded" not in response.content


def _database_down():
    from django.db import OperationalError

    return OperationalError("connection to server failed: Connection refused")


def _database_gone():
    from django.db import InterfaceError

    return InterfaceError("connection already closed")


def _cache_down():
    from django_redis.exceptions import ConnectionInterrupted
    from redis.exceptions import ConnectionError as RedisConnectionError

    error = ConnectionInterrupted(connection=None)
    error.__cause__ = RedisConnectionError("Connection refused")
    return error


def _cache_timeout():
    from redis.exceptions import TimeoutError as RedisTimeoutError

    return RedisTimeoutError("Timeout reading from socket")


def _cache_garbled():  # not RESP: django-redis lets it through unwrapped
    from redis.exceptions import InvalidResponse

    return InvalidResponse("Protocol Error: '!'")


def _cache_refused_ttl():  # an error reply to ttl/expire/touch: unwrapped too
    from redis.exceptions import ReadOnlyError

    return ReadOnlyError("You can't write against a read only replica.")


@pytest.mark.parametrize(
    "outage",
    [
        _database_down,
        _database_gone,
        _cache_down,
        _cache_timeout,
        _cache_garbled,
        _cache_refused_ttl,
    ],
)
def test_outage_of_database_or_cache_is_503_never_500(api, monkeypatch, outage):
    """README "Gateway" (health): PostgreSQL or Redis unreachable under any API view is 503
    service_unavailable with the error body (here a login), never a 500."""
    from accounts.views import auth as auth_views

    def fail(**kwargs):
        raise outage()

    monkeypatch.setattr(auth_views.login, "login_password_step", fail)
    response = api.post(
        "/api/auth/login", {"email": "a@example.com", "password": "x"}, format="json"
    )
    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "5"


def test_a_body_that_could_not_be_read_is_a_400_never_a_500(api, monkeypatch):
    """A client that stalled past XENX_CLIENT_TIMEOUT (xenx/worker.py) or broke off:
    Django raises UnreadablePostError while a view reads the body."""
    from django.http import UnreadablePostError

    from accounts.views import auth as auth_views

    def fail(**kwargs):
        raise UnreadablePostError("[Errno 11] Resource temporarily unavailable")

    monkeypatch.setattr(auth_views.login, "login_password_step", fail)
    response = api.post(
        "/api/auth/login", {"email": "a@example.com", "password": "x"}, format="json"
    )
    assert_error(response, 400, "malformed_request")


def test_a_page_body_that_could_not_be_read_is_a_400_page(rf):
    """Outside the API (portal, admin) the same failure is Django's 400 page."""
    from django.http import UnreadablePostError

    from core.middleware import ApiErrorMiddleware

    middleware = ApiErrorMiddleware(lambda request: None)
    response = middleware.process_exception(
        rf.post("/portal/documents"), UnreadablePostError("timed out")
    )
    assert response.status_code == 400
