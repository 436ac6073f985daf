"""``X-XenX-Identity`` (README "Gateway"): the signed identity assertion of services with
``sign_identity``, verified through the JWKS the way the README shows, against a real
upstream fetching the keys from a live XenX server."""

import re
from io import StringIO
from pathlib import Path

import jwt
import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django.live_server_helper import LiveServer

from accounts import keys
from core.errors import ValidationFailed
from core.roles import Role
from gateway import assertions
from gateway.models import Service
from tests.conftest import DEFAULT_PASSWORD, assert_error
from tests.signing_keys import use_signing_keys
from tests.support.upstream import FakeUpstream, json_response

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_verifier(issuer: str) -> dict:
    """The README's upstream verifier, run as written (only its URL changed)."""
    text = README.read_text()
    block = text.split("<!-- identity-verifier -->", 1)[1]
    code = re.search(r"```python\n(.*?)```", block, re.S).group(1)
    assert len(code.strip().splitlines()) <= 12, "the README promises ten lines"
    code = code.replace('"https://xenx.example.com"', repr(issuer))
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.fixture
def eddsa(settings, tmp_path):
    return use_signing_keys(settings, tmp_path / "keys", "EdDSA")


@pytest.fixture
def signed(make_service, upstream, eddsa):
    return make_service("billing", [upstream.url], sign_identity=True)


def received(upstream):
    req = upstream.requests[-1]
    return req, {k.lower(): v for k, v in req.headers.items()}


def _verify(token, service="billing", **kwargs):
    (jwk,) = keys.keyring.jwks()["keys"]
    return jwt.decode(
        token,
        jwt.PyJWK(jwk),
        algorithms=["EdDSA"],
        audience=service,
        issuer=kwargs.get("issuer", "http://127.0.0.1:8000"),
    )


def test_assertion_carries_the_identity_and_replaces_the_clients(
    signed, upstream, auth_client, make_user, settings
):
    settings.XENX_JWT_ISSUER = "http://127.0.0.1:8000"
    user = make_user(Role.CPA)
    forged = jwt.encode({"sub": "1", "role": "admin"}, "x" * 32, algorithm="HS256")
    response = auth_client(user, mfa=True).get(
        "/api/billing/x", HTTP_X_XENX_IDENTITY=forged, HTTP_X_REQUEST_ID="req-42"
    )
    assert response.status_code == 200
    req, headers = received(upstream)
    assert [k for k, _ in req.header_list if k.lower() == "x-xenx-identity"] == [
        "X-XenX-Identity"
    ]
    token = headers["x-xenx-identity"]
    assert token != forged
    header = jwt.get_unverified_header(token)
    assert (
        header["alg"] == "EdDSA"
        and header["kid"] == keys.keyring.jwks()["keys"][0]["kid"]
    )
    claims = _verify(token)
    assert claims["sub"] == str(user.pk)
    assert claims["email"] == user.email
    assert claims["role"] == "cpa"
    assert claims["org"] == user.organization_id
    assert claims["mfa"] is True
    assert claims["request_id"] == "req-42"
    assert claims["token_type"] == "identity"
    assert 0 < claims["exp"] - claims["iat"] <= 60


def test_no_assertion_without_sign_identity_and_client_copies_dropped(
    make_service, upstream, auth_client, make_user, eddsa
):
    make_service("plain", [upstream.url])
    auth_client(make_user()).get("/api/plain/x", HTTP_X_XENX_IDENTITY="forged")
    _, headers = received(upstream)
    assert "x-xenx-identity" not in headers


def test_anonymous_call_to_a_public_signed_service_has_no_assertion(
    make_service, upstream, api, eddsa
):
    make_service("open", [upstream.url], public=True, sign_identity=True)
    assert api.get("/api/open/x", HTTP_X_XENX_IDENTITY="forged").status_code == 200
    _, headers = received(upstream)
    assert "x-xenx-identity" not in headers


def test_assertion_reused_while_more_than_half_its_life_is_left(
    signed, make_service, upstream, auth_client, make_user, monkeypatch
):
    make_service("ledger", [upstream.url], sign_identity=True)
    alice, bob = make_user(), make_user()
    now = [1_900_000_000.0]

    class Clock:
        @staticmethod
        def time():
            return now[0]

    monkeypatch.setattr(assertions, "time", Clock)

    def assertion(user, service="billing", **extra):
        auth_client(user).get(f"/api/{service}/x", **extra)
        return received(upstream)[1]["x-xenx-identity"]

    first = assertion(alice, HTTP_X_REQUEST_ID="one")
    assert assertion(alice, HTTP_X_REQUEST_ID="two") == first  # reused
    assert assertion(bob) != first  # another identity
    assert (
        jwt.decode(assertion(alice, "ledger"), options={"verify_signature": False})[
            "aud"
        ]
        == "ledger"
    )  # another service
    now[0] += 29
    assert assertion(alice) == first
    now[0] += 2  # less than half of its 60 s left: a fresh one
    renewed = assertion(alice)
    assert renewed != first
    assert jwt.decode(renewed, options={"verify_signature": False})["iat"] == int(
        now[0]
    )


def test_a_role_change_gets_a_new_assertion(signed, upstream, auth_client, make_user):
    user = make_user(Role.CPA)
    auth_client(user).get("/api/billing/x")
    before = jwt.decode(
        received(upstream)[1]["x-xenx-identity"], options={"verify_signature": False}
    )
    user.role = Role.STAFF
    user.save()
    from accounts import revocation

    revocation.invalidate_user(user.pk)
    revocation.clear_memo()
    auth_client(user).get("/api/billing/x")
    after = jwt.decode(
        received(upstream)[1]["x-xenx-identity"], options={"verify_signature": False}
    )
    assert (before["role"], after["role"]) == ("cpa", "staff")


def test_an_assertion_is_not_an_access_token_nor_the_reverse(
    signed, upstream, auth_client, make_user, api, settings
):
    settings.XENX_JWT_ISSUER = "http://127.0.0.1:8000"
    client = auth_client(make_user())
    client.get("/api/billing/x")
    assertion = received(upstream)[1]["x-xenx-identity"]
    response = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {assertion}")
    assert_error(response, 401, "invalid_token")
    access = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    with pytest.raises(jwt.InvalidTokenError):
        _verify(access)  # signed by XenX, but no audience: not an assertion


def test_sign_identity_is_refused_with_hs256(make_service, auth_client, make_user):
    with pytest.raises(ValidationFailed) as refused:
        make_service("billing", ["http://127.0.0.1:9"], sign_identity=True)
    assert "EdDSA or RS256" in refused.value.details["sign_identity"][0]
    admin = auth_client(make_user(Role.ADMIN))
    response = admin.post(
        "/api/services",
        {
            "name": "billing",
            "instances": [{"url": "http://127.0.0.1:9"}],
            "sign_identity": True,
        },
        format="json",
    )
    assert_error(response, 400, "validation_error")
    assert "sign_identity" in response.json()["error"]["details"]
    with pytest.raises(CommandError, match="sign_identity"):
        call_command(
            "register_service", "billing", "http://127.0.0.1:9", "--sign-identity"
        )


def test_a_signed_service_under_hs256_fails_closed(
    make_service, upstream, auth_client, make_user
):
    make_service("billing", [upstream.url])
    Service.objects.filter(name="billing").update(sign_identity=True)  # bypassing
    from gateway.registry import registry

    registry.reset()
    response = auth_client(make_user()).get("/api/billing/x")
    assert_error(response, 503, "service_unavailable")
    assert not upstream.requests


def test_sign_identity_through_the_api_and_the_command(
    eddsa, auth_client, make_user, db
):
    admin = auth_client(make_user(Role.ADMIN))
    body = {
        "name": "billing",
        "instances": [{"url": "http://127.0.0.1:9"}],
        "sign_identity": True,
    }
    response = admin.post("/api/services", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["sign_identity"] is True
    call_command(
        "register_service",
        "billing",
        "http://127.0.0.1:9",
        "--no-sign-identity",
        stdout=StringIO(),
    )
    assert admin.get("/api/services/billing").json()["sign_identity"] is False
    call_command(
        "register_service",
        "ledger",
        "http://127.0.0.1:9",
        "--sign-identity",
        stdout=StringIO(),
    )
    assert Service.objects.get(name="ledger").sign_identity is True


def test_sign_identity_in_django_admin(eddsa, make_service, make_user):
    from django.test import Client

    make_service("billing", ["http://127.0.0.1:9"], sign_identity=True)
    admin = make_user(Role.ADMIN)
    browser = Client()
    browser.force_login(admin, backend="accounts.backends.EmailBackend")
    service = Service.objects.get(name="billing")
    page = browser.get(f"/admin/gateway/service/{service.pk}/change/")
    assert page.status_code == 200
    assert 'name="sign_identity"' in page.content.decode()


# --- a real upstream verifying through the JWKS of a live XenX ----------------------


def verifying(verify):
    """The answer of an upstream that trusts nothing but XenX's published keys: it
    verifies X-XenX-Identity with ``verify`` (the README's code) and answers with the
    verified claims, or 401 with what refused it (a missing header is a KeyError)."""

    def respond(request):
        try:
            claims = verify(request.headers, service="billing")
            kid = jwt.get_unverified_header(request.headers["X-XenX-Identity"])["kid"]
            status, body = 200, {**claims, "verified_with": kid}
        except (KeyError, jwt.PyJWTError) as exc:  # any of them is "who are you?"
            status, body = 401, {"refused": type(exc).__name__}
        return json_response(status, body)

    return respond


@pytest.fixture
def xenx_server(transactional_db):
    server = LiveServer("127.0.0.1:0")
    yield server
    server.stop()


def test_a_real_upstream_verifies_assertions_through_the_jwks(
    xenx_server, test_servers, eddsa, make_service, make_user, settings
):
    settings.XENX_JWT_ISSUER = xenx_server.url
    verifier = readme_verifier(xenx_server.url)
    upstream_url = test_servers(
        FakeUpstream, verifying(verifier["verified_caller"])
    ).url
    make_service("billing", [upstream_url], sign_identity=True)
    make_service("unsigned", [upstream_url])
    user = make_user(Role.CPA)
    login = requests.post(
        f"{xenx_server.url}/api/auth/login",
        json={"email": user.email, "password": DEFAULT_PASSWORD},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    bearer = {"Authorization": f"Bearer {login.json()['access']}"}

    response = requests.get(
        f"{xenx_server.url}/api/billing/me", headers=bearer, timeout=10
    )
    assert response.status_code == 200, response.text
    claims = response.json()
    assert claims["sub"] == str(user.pk)
    assert claims["role"] == "cpa" and claims["aud"] == "billing"
    assert claims["iss"] == xenx_server.url

    # The same upstream refuses what does not come from XenX: no assertion (a service
    # without sign_identity) or a forged one sent straight to it.
    refused = requests.get(
        f"{xenx_server.url}/api/unsigned/me", headers=bearer, timeout=10
    )
    assert refused.status_code == 401  # no X-XenX-Identity at all
    private = keys.generate_private_key("EdDSA")
    forged = jwt.encode(
        {**claims, "role": "admin"},
        private,
        algorithm="EdDSA",
        headers={"kid": jwt.get_unverified_header(login.json()["access"])["kid"]},
    )
    direct = requests.get(
        f"{upstream_url}/me", headers={"X-XenX-Identity": forged}, timeout=10
    )
    assert direct.status_code == 401
    assert direct.json()["refused"] == "InvalidSignatureError"

    # After a rotation the upstream learns the new key from the JWKS by itself.
    old_kid = claims["verified_with"]
    new = keys.write_key(
        Path(settings.XENX_SIGNING_KEYS_DIR), "EdDSA", signs_from=keys.now() - 0.5
    )
    assertions.clear()
    response = requests.get(
        f"{xenx_server.url}/api/billing/me", headers=bearer, timeout=10
    )
    assert response.status_code == 200, response.text
    assert response.json()["verified_with"] == new.kid != old_kid
