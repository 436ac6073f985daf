"""Provider tokens at the gateway (README "Sign in with XenX", "Machine clients"):
a user's token is a login's there; a machine's reaches only its allowed services,
counted per application, with X-Client-Id upstream; neither reaches XenX's own API.
Revocation reaches them within a second, and a proxied call costs no query."""

import base64

import jwt
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts import revocation
from accounts.oidc import services as app_services
from core.roles import Role
from gateway import services
from gateway.registry import registry
from gateway.upstream import close_pools
from tests.support.upstream import PathUpstream

from .conftest import Flow

pytestmark = pytest.mark.django_db


@pytest.fixture
def upstream(rs256):
    registry.reset()
    up = PathUpstream("oidc")
    services.service_create(name="ledger", instances=[up.url], sign_identity=True)
    services.service_create(name="payroll", instances=[up.url])
    yield up
    up.close()
    registry.reset()
    close_pools()


def _basic(app, secret):
    raw = f"{app.client_id}:{secret}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def machine_token(app, secret):
    response = Client().post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=_basic(app, secret),
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def call(token, path="/api/ledger/books"):
    return Client().get(path, HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def machine(register):
    return register(
        name="Nightly job",
        grant_types=["client_credentials"],
        allowed_services=["ledger"],
    )


def test_machine_reaches_its_service_with_client_headers(upstream, machine):
    app, secret = machine
    token = machine_token(app, secret)
    response = call(token)
    assert response.status_code == 200, response.content
    seen = upstream.requests[-1].headers
    assert seen["X-Client-Id"] == app.client_id
    assert "X-User-Id" not in seen and "X-User-Email" not in seen
    assertion = jwt.decode(seen["X-XenX-Identity"], options={"verify_signature": False})
    assert assertion["sub"] == f"app:{app.client_id}"
    assert assertion["aud"] == "ledger"
    assert response["X-RateLimit-Limit"] == "600"  # the "app" rate


def test_machine_client_id_header_from_the_caller_is_dropped(upstream, register):
    app, secret = register(
        grant_types=["client_credentials"], allowed_services=["payroll"]
    )
    user_app, _ = register()
    token = machine_token(app, secret)
    response = Client().get(
        "/api/payroll/x",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_X_CLIENT_ID=user_app.client_id,
    )
    assert response.status_code == 200
    assert upstream.requests[-1].headers["X-Client-Id"] == app.client_id


def test_machine_refused_at_other_services_and_the_platform_api(upstream, machine):
    token = machine_token(*machine)
    other = call(token, "/api/payroll/x")
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "permission_denied"
    platform = call(token, "/api/auth/me")
    assert platform.status_code == 403
    assert platform.json()["error"]["code"] == "permission_denied"
    assert call(token, "/api/users").status_code == 403


def test_machine_token_costs_no_query_per_call(upstream, machine):
    token = machine_token(*machine)
    assert call(token).status_code == 200
    revocation.clear_memo()
    with CaptureQueriesContext(connection) as queries:
        assert call(token).status_code == 200
    assert len(queries) == 0, [q["sql"] for q in queries]


def test_disabling_the_application_refuses_its_tokens(upstream, machine, make_user):
    app, secret = machine
    token = machine_token(app, secret)
    assert call(token).status_code == 200
    app_services.application_update(actor=make_user(Role.ADMIN), app=app, enabled=False)
    revocation.clear_memo()  # another process: its memo is at most 0.5 s old
    refused = call(token)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "token_revoked"
    again = Client().post(
        "/oauth/token",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=_basic(app, secret),
    )
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"


def test_narrowing_the_services_refuses_tokens_that_named_them(
    upstream, machine, make_user
):
    app, secret = machine
    token = machine_token(app, secret)
    app_services.application_update(
        actor=make_user(Role.ADMIN), app=app, allowed_services=["payroll"]
    )
    revocation.clear_memo()
    assert call(token).status_code == 401
    fresh = machine_token(app, secret)
    assert call(fresh).status_code == 403
    assert call(fresh, "/api/payroll/x").status_code == 200


def test_user_provider_token_is_a_login_at_the_gateway(upstream, register, make_user):
    app, secret = register()
    user = make_user(Role.CPA)
    flow = Flow(user, app)
    tokens = flow.exchange(flow.code(), secret=secret).json()
    response = call(tokens["access_token"])
    assert response.status_code == 200, response.content
    seen = upstream.requests[-1].headers
    assert seen["X-User-Id"] == str(user.pk)
    assert seen["X-User-Role"] == "cpa"
    assert seen["X-User-Email"] == user.email
    revocation.clear_memo()
    with CaptureQueriesContext(connection) as queries:
        assert call(tokens["access_token"]).status_code == 200
    assert len(queries) == 0, [q["sql"] for q in queries]


def test_user_provider_token_refused_after_revocation_and_disable(
    upstream, register, make_user
):
    app, secret = register()
    admin = make_user(Role.ADMIN)
    flow = Flow(make_user(Role.CLIENT), app)
    first = flow.exchange(flow.code(), secret=secret).json()
    Client().post(
        "/oauth/revoke",
        {
            "token": first["refresh_token"],
            "client_id": app.client_id,
            "client_secret": secret,
        },
    )
    revocation.clear_memo()
    assert call(first["access_token"]).status_code == 401
    flow2 = Flow(make_user(Role.CLIENT), app)
    second = flow2.exchange(flow2.code(), secret=secret).json()
    assert call(second["access_token"]).status_code == 200
    app_services.application_update(actor=admin, app=app, enabled=False)
    revocation.clear_memo()
    refused = call(second["access_token"])
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "token_revoked"


def test_deactivated_user_provider_token_is_refused(upstream, register, make_user):
    app, secret = register()
    user = make_user(Role.CLIENT)
    flow = Flow(user, app)
    token = flow.exchange(flow.code(), secret=secret).json()["access_token"]
    user.is_active = False
    user.save()
    revocation.clear_memo()
    assert call(token).status_code == 401


def test_machine_is_rate_limited_per_application(upstream, register, settings):
    settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMITS, "app": "2/m"}
    registry.reset()
    first, first_secret = register(
        grant_types=["client_credentials"], allowed_services=["ledger"]
    )
    second, second_secret = register(
        grant_types=["client_credentials"], allowed_services=["ledger"]
    )
    token = machine_token(first, first_secret)
    assert [call(token).status_code for _ in range(3)] == [200, 200, 429]
    limited = call(token)
    assert limited.json()["error"]["code"] == "rate_limited"
    assert "Retry-After" in limited
    # another application has its own count
    assert call(machine_token(second, second_secret)).status_code == 200
