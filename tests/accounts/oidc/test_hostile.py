"""Hostile input at the provider's endpoints: never a 500."""

import pytest
from django.test import Client

from core.roles import Role

pytestmark = pytest.mark.django_db

GARBAGE = [
    {},
    {"grant_type": "authorization_code", "code": "x" * 5000, "client_id": "\x00"},
    {
        "grant_type": "refresh_token",
        "refresh_token": "\u00ff" * 50,
        "client_id": "a" * 300,
    },
    {"grant_type": "client_credentials", "client_id": "nope", "client_secret": "x"},
    {"grant_type": "password", "username": "a", "password": "b", "client_id": "c"},
    {"grant_type": "urn:ietf:params:oauth:grant-type:device_code"},
    {"token": "a.b.c", "client_id": "x", "client_secret": "y"},
]


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
@pytest.mark.parametrize("body", GARBAGE)
def test_garbage_bodies_are_client_errors(path, body):
    response = Client().post(path, body)
    assert 400 <= response.status_code < 500, (path, body, response.content[:200])


@pytest.mark.parametrize(
    "query",
    [
        "",
        "client_id=\x00",
        "response_type=token&client_id=x",
        "client_id=" + "a" * 5000,
        "response_type=code&client_id=x&redirect_uri=javascript:alert(1)",
    ],
)
def test_garbage_authorization_requests_are_pages_not_500s(query, make_user):
    client = Client()
    client.force_login(make_user(Role.CLIENT), backend="accounts.backends.EmailBackend")
    response = client.get(f"/portal/authorize?{query}")
    assert response.status_code < 500
    assert not response.get("Location", "").startswith("javascript")


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_bytes_that_are_not_utf8(path):
    body = b"grant_type=refresh_token&refresh_token=%ED%A0%80%FF&client_id=%FE"
    response = Client().post(
        path, body, content_type="application/x-www-form-urlencoded"
    )
    assert 400 <= response.status_code < 500, response.content[:200]


def test_userinfo_with_garbage_tokens():
    for header in ("Bearer x", "Bearer " + "a" * 10000, "Basic abc", "Bearer a.b.c"):
        response = Client().get("/oauth/userinfo", HTTP_AUTHORIZATION=header)
        assert 400 <= response.status_code < 500, header


def test_metrics_refuses_provider_tokens(rs256, register, make_user, settings):
    from .conftest import Flow

    settings.XENX_METRICS_TOKEN = None
    app, secret = register()
    flow = Flow(make_user(Role.ADMIN), app)
    token = flow.exchange(flow.code(), secret=secret).json()["access_token"]
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 403
