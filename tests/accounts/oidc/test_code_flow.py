"""Authorization code + PKCE through the portal session, with the test client
(README "Sign in with XenX"); the real-client run is test_real_clients.py."""

import time
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
from django.core.cache import cache
from django.test import Client

from accounts import keys, revocation
from auditlog.models import AuditEvent
from core.roles import Role
from tests.conftest import assert_error

from .conftest import REDIRECT, Flow

pytestmark = pytest.mark.django_db


def _id_claims(raw, app):
    key = jwt.PyJWKSet.from_dict(keys.keyring.jwks())[
        jwt.get_unverified_header(raw)["kid"]
    ]
    return jwt.decode(raw, key.key, algorithms=["RS256"], audience=app.client_id)


def test_discovery_names_every_endpoint(client):
    body = client.get("/.well-known/openid-configuration").json()
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "end_session_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
    ):
        assert body[name].startswith(body["issuer"] + "/"), name
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert "RS256" in body["id_token_signing_alg_values_supported"]
    assert {"authorization_code", "refresh_token", "client_credentials"} <= set(
        body["grant_types_supported"]
    )
    assert {"client_secret_basic", "client_secret_post", "none"} <= set(
        body["token_endpoint_auth_methods_supported"]
    )


def test_code_flow_issues_tokens_and_id_token(rs256, register, make_user):
    app, secret = register()
    user = make_user(Role.CPA, first_name="Ada", last_name="Lovelace")
    flow = Flow(user, app)
    response = flow.exchange(flow.code(), secret=secret)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert {"access_token", "refresh_token", "id_token", "expires_in", "scope"} <= set(
        body
    )
    claims = _id_claims(body["id_token"], app)
    assert claims["sub"] == str(user.pk)
    assert claims["nonce"] == flow.nonce
    assert claims["email"] == user.email
    assert claims["name"] == "Ada Lovelace"
    assert claims["role"] == "cpa" and claims["org"] == user.organization_id
    assert claims["amr"] == ["pwd"]
    assert abs(claims["auth_time"] - time.time()) < 60
    # userinfo answers the same claims for the access token
    info = Client().get(
        "/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}"
    )
    assert info.status_code == 200, info.content
    assert info.json()["email"] == user.email and info.json()["role"] == "cpa"


def test_amr_says_otp_after_the_second_factor(rs256, register, make_user, enrol_totp):
    app, secret = register()
    user = make_user(Role.CPA)
    enrol_totp(user)
    flow = Flow(user, app)
    session = flow.client.session
    session["otp_device_id"] = user.totpdevice_set.first().persistent_id
    session.save()
    body = flow.exchange(flow.code(), secret=secret).json()
    assert _id_claims(body["id_token"], app)["amr"] == ["pwd", "otp"]


def test_anonymous_visitor_is_sent_to_the_portal_login(register):
    app, _ = register()
    flow = Flow.__new__(Flow)
    flow.app, flow.redirect_uri, flow.scope = app, REDIRECT, "openid"
    flow.state = flow.nonce = "x"
    flow.verifier, flow.challenge = "v", "c" * 43
    response = Client().get("/portal/authorize?" + urlencode(flow.authorize_params()))
    assert response.status_code == 302
    assert response["Location"].startswith("/portal/login?next=/portal/authorize")


@pytest.mark.parametrize(
    "uri",
    [
        "https://evil.example.com/callback",
        "https://app.example.com/callback/",
        "https://app.example.com/callbackx",
        "http://app.example.com/callback",
        "https://app.example.com.evil.com/callback",
    ],
)
def test_unregistered_or_near_miss_redirect_uri_is_an_error_page(
    register, make_user, uri
):
    app, _ = register()
    flow = Flow(make_user(Role.CLIENT), app, redirect_uri=uri)
    response = flow.authorize()
    assert response.status_code == 400
    assert "Location" not in response
    assert b"You were not sent back" in response.content


def test_loopback_redirect_any_port(rs256, register, make_user):
    app, secret = register(client_type="public", redirect_uris=["http://127.0.0.1/cb"])
    flow = Flow(make_user(Role.CLIENT), app, redirect_uri="http://127.0.0.1:53117/cb")
    assert flow.exchange(flow.code()).status_code == 200


def test_public_client_must_use_pkce_s256(register, make_user):
    app, _ = register(client_type="public")
    flow = Flow(make_user(Role.CLIENT), app)
    no_pkce = flow.authorize(code_challenge=None, code_challenge_method=None)
    assert no_pkce.status_code == 302
    assert parse_qs(urlsplit(no_pkce["Location"]).query)["error"] == ["invalid_request"]
    plain = flow.authorize(code_challenge="a" * 43, code_challenge_method="plain")
    assert "code=" not in plain.get("Location", "")


@pytest.mark.parametrize("verifier", [None, "wrong-" + "v" * 43])
def test_missing_or_wrong_verifier_is_invalid_grant(register, make_user, verifier):
    app, secret = register()
    flow = Flow(make_user(Role.CLIENT), app)
    response = flow.exchange(flow.code(), secret=secret, verifier=verifier)
    assert response.status_code in (400, 401)
    assert response.json()["error"] in ("invalid_grant", "invalid_request")


def test_a_code_works_once(rs256, register, make_user):
    app, secret = register()
    flow = Flow(make_user(Role.CLIENT), app)
    code = flow.code()
    assert flow.exchange(code, secret=secret).status_code == 200
    replay = flow.exchange(code, secret=secret)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"


def test_another_organizations_user_is_not_signed_in(
    register, make_user, org, other_org
):
    app, _ = register(organization=org)
    outsider = make_user(Role.CPA, organization=other_org)
    flow = Flow(outsider, app)
    response = flow.authorize()
    assert response.status_code == 403
    assert "Location" not in response
    # a forged consent POST gets no code either
    forged = flow.client.post(
        "/portal/authorize", {**flow.authorize_params(), "allow": "Allow"}
    )
    assert "code=" not in forged.get("Location", "")


def test_consent_is_remembered(rs256, register, make_user):
    app, secret = register()
    flow = Flow(make_user(Role.CLIENT), app)
    assert flow.exchange(flow.code(), secret=secret).status_code == 200
    again = flow.authorize()
    assert again.status_code == 302 and "code=" in again["Location"]


def test_skip_consent(register, make_user):
    app, _ = register(skip_consent=True)
    response = Flow(make_user(Role.CLIENT), app).authorize()
    assert response.status_code == 302 and "code=" in response["Location"]


def test_mfa_required_member_without_totp_is_sent_to_enrolment(
    register, make_user, org
):
    org.mfa_required = True
    org.save()
    app, _ = register()
    response = Flow(make_user(Role.CPA), app).authorize()
    assert response.status_code == 302
    assert response["Location"] == "/portal/account"


def test_refresh_rotates_and_reuse_ends_the_session(rs256, register, make_user):
    app, secret = register()
    flow = Flow(make_user(Role.CLIENT), app)
    first = flow.exchange(flow.code(), secret=secret).json()

    def refresh(token):
        return Client().post(
            "/oauth/token",
            {
                "grant_type": "refresh_token",
                "refresh_token": token,
                "client_id": app.client_id,
                "client_secret": secret,
            },
        )

    second = refresh(first["refresh_token"])
    assert second.status_code == 200, second.content
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = refresh(first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert refresh(second.json()["refresh_token"]).status_code == 400
    info = Client().get(
        "/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {second.json()['access_token']}"
    )
    assert info.status_code in (401, 403)
    assert AuditEvent.objects.filter(action="token.reuse_detected").exists()


def test_revocation_and_introspection(rs256, register, make_user):
    app, secret = register()
    flow = Flow(make_user(Role.CLIENT), app)
    tokens = flow.exchange(flow.code(), secret=secret).json()
    creds = {"client_id": app.client_id, "client_secret": secret}
    active = Client().post(
        "/oauth/introspect", {"token": tokens["access_token"], **creds}
    )
    assert active.status_code == 200 and active.json()["active"] is True
    assert active.json()["client_id"] == app.client_id
    revoked = Client().post(
        "/oauth/revoke", {"token": tokens["refresh_token"], **creds}
    )
    assert revoked.status_code == 200
    after = Client().post(
        "/oauth/introspect", {"token": tokens["access_token"], **creds}
    )
    assert after.json() == {"active": False}


def test_provider_token_is_refused_by_the_platform_api(rs256, register, make_user, api):
    app, secret = register()
    flow = Flow(make_user(Role.CLIENT), app)
    tokens = flow.exchange(flow.code(), secret=secret).json()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access_token']}")
    response = api.get("/api/auth/me")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_user_token_as_client_secret_is_refused(
    rs256, register, make_user, auth_client
):
    app, _ = register()
    flow = Flow(make_user(Role.CLIENT), app)
    code = flow.code()
    user_token = auth_client(make_user(Role.CLIENT)).tokens["access"]
    response = flow.exchange(code, secret=user_token)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_register_app_command_prints_id_and_secret_once():
    from io import StringIO

    from django.core.management import call_command

    from accounts.models import Application

    out = StringIO()
    call_command("register_app", "Planner", "--redirect-uri", REDIRECT, stdout=out)
    lines = dict(
        line.split(": ", 1) for line in out.getvalue().splitlines() if ": " in line
    )
    app = Application.objects.get(client_id=lines["client_id"])
    assert app.client_secret != lines["client_secret"]  # stored hashed
    from django.contrib.auth.hashers import check_password

    assert check_password(lines["client_secret"], app.client_secret)


def test_register_app_command_refuses_bad_input():
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="redirect"):
        call_command("register_app", "Planner")
    with pytest.raises(CommandError, match="organization"):
        call_command(
            "register_app", "Planner", "--redirect-uri", REDIRECT, "--org", "nope"
        )


def test_check_warns_while_applications_have_no_id_token_key(register, settings):
    from accounts.checks import check_id_token_key

    settings.XENX_SIGNING_KEYS_DIR = None
    assert check_id_token_key(None, databases=["default"]) == []
    register()
    assert check_id_token_key(None) == []  # without --database: not run
    (warning,) = check_id_token_key(None, databases=["default"])
    assert warning.id == "xenx.W011" and "--algorithm RS256" in warning.hint


def test_no_id_token_key_is_a_server_error_not_a_500(register, make_user, settings):
    settings.XENX_SIGNING_KEYS_DIR = None
    app, secret = register()
    flow = Flow(make_user(Role.CLIENT), app)
    response = flow.exchange(flow.code(), secret=secret)
    assert response.status_code in (400, 500)
    assert response.json()["error"] == "server_error"


def test_a_disabled_application_cannot_start_a_sign_in(register, make_user):
    app, _ = register()
    app.enabled = False
    app.save()
    response = Flow(make_user(Role.CLIENT), app).authorize()
    assert response.status_code in (400, 401)
    assert "Location" not in response


def test_end_session_ends_the_portal_session_and_that_applications_tokens(
    rs256, register, make_user
):
    user = make_user(Role.CLIENT)
    app, secret = register(post_logout_redirect_uris=["https://app.example.com/bye"])
    other, other_secret = register(name="Other app")
    flow = Flow(user, app)
    tokens = flow.exchange(flow.code(), secret=secret).json()
    other_flow = Flow(user, other)
    other_tokens = other_flow.exchange(other_flow.code(), secret=other_secret).json()
    query = urlencode(
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://app.example.com/bye",
            "state": "s",
        }
    )
    response = flow.client.get(f"/portal/end-session?{query}")
    assert response.status_code == 302
    assert response["Location"] == "https://app.example.com/bye?state=s"
    assert flow.client.get("/portal/").status_code == 302  # signed out
    assert AuditEvent.objects.filter(action="application.signed_out").exists()

    def userinfo(token):
        return Client().get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {token}")

    assert userinfo(tokens["access_token"]).status_code in (401, 403)
    assert userinfo(other_tokens["access_token"]).status_code == 200


def test_end_session_refuses_an_unregistered_post_logout_uri(
    rs256, register, make_user
):
    app, secret = register(post_logout_redirect_uris=["https://app.example.com/bye"])
    flow = Flow(make_user(Role.CLIENT), app)
    tokens = flow.exchange(flow.code(), secret=secret).json()
    query = urlencode(
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": "https://evil.example.com/bye",
        }
    )
    response = flow.client.get(f"/portal/end-session?{query}")
    assert response.status_code == 400
    assert "Location" not in response
    assert flow.client.get("/portal/").status_code == 200  # still signed in


@pytest.mark.parametrize("fail_open", [False, True], ids=["fail closed", "fail open"])
def test_userinfo_and_introspection_with_the_cache_down(
    rs256, register, make_user, settings, monkeypatch, fail_open
):
    """A cache outage is 503 service_unavailable, as on every token-authenticated call,
    not a verdict on the token (it answered 401 invalid_token and active: false);
    with XENX_FAIL_OPEN_WITHOUT_CACHE the database decides and the token is good."""
    app, secret = register()
    user = make_user(Role.CPA)
    flow = Flow(user, app)
    access = flow.exchange(flow.code(), secret=secret).json()["access_token"]
    settings.XENX_FAIL_OPEN_WITHOUT_CACHE = fail_open
    revocation.clear_memo()

    def down(keys):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get_many", down)  # the records' one read
    info = Client().get("/oauth/userinfo", HTTP_AUTHORIZATION=f"Bearer {access}")
    introspected = Client().post(
        "/oauth/introspect",
        {"token": access, "client_id": app.client_id, "client_secret": secret},
    )
    if fail_open:
        assert info.status_code == 200 and info.json()["email"] == user.email
        assert introspected.status_code == 200 and introspected.json()["active"]
        return
    assert_error(info, 503, "service_unavailable")
    assert_error(introspected, 503, "service_unavailable")
