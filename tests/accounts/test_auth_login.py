"""POST /api/auth/login and /api/auth/mfa/verify (README "Identity"): tokens and claims, no
enumeration, the two-step login and the mfa_token's single use."""

import time

import pyotp
import pytest
from django.core.cache import cache

from accounts.tokens import decode_access_token, issue_mfa_token
from auditlog.models import AuditEvent
from core.roles import Role
from tests.conftest import DEFAULT_PASSWORD, assert_error

pytestmark = pytest.mark.django_db


def test_login_returns_tokens_with_the_spec_claims(make_user, login, api):
    user = make_user(Role.CPA)
    response = login(user.email)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 15 * 60
    assert body["user"]["id"] == user.pk and body["user"]["email"] == user.email
    assert set(body["user"]) == {
        "id",
        "email",
        "first_name",
        "last_name",
        "role",
        "organization",
        "is_active",
        "email_verified",
        "mfa_enabled",
        "date_joined",
        "last_login",
    }
    assert body["user"]["last_login"] is not None
    payload = decode_access_token(body["access"])
    assert payload["token_type"] == "access"
    assert payload["user_id"] == str(user.pk)
    assert payload["email"] == user.email
    assert payload["role"] == "cpa"
    assert payload["org"] == user.organization_id
    assert payload["permissions"] == sorted(user.get_all_permissions())
    assert payload["permissions"]  # the cpa role group grants some
    assert payload["mfa"] is False
    for claim in ("exp", "iat", "jti", "ist", "sst"):
        assert claim in payload
    assert payload["exp"] - payload["iat"] == 15 * 60
    me = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200 and me.json()["email"] == user.email
    event = AuditEvent.objects.get(action="login.succeeded")
    assert event.actor == user and event.data == {"mfa": False}


def test_login_email_is_case_insensitive(make_user, login):
    user = make_user(email="Mixed.Case@Example.com")
    assert login("  MIXED.case@example.COM ").status_code == 200
    assert login(user.email.upper()).status_code == 200


@pytest.mark.parametrize("case", ["unknown", "wrong_password", "inactive", "org_off"])
def test_login_failures_look_the_same(case, make_user, login, org):
    user = make_user()
    email, password = user.email, DEFAULT_PASSWORD
    if case == "unknown":
        email = "nobody@example.com"
    elif case == "wrong_password":
        password = "not-the-password"
    elif case == "inactive":
        user.is_active = False
        user.save()
    else:
        org.is_active = False
        org.save()
    response = login(email, password)
    error = assert_error(response, 401, "invalid_credentials")
    assert error["message"] == "Invalid email or password."
    assert error["details"] == {}
    assert "access" not in response.content.decode()
    event = AuditEvent.objects.get(action="login.failed")
    assert event.data["email"] == email.lower()


def test_unknown_email_still_runs_the_password_hasher(db, login, monkeypatch):
    """Timing: an unknown email costs a hash like a known one."""
    from django.contrib.auth.hashers import MD5PasswordHasher

    calls = []
    original = MD5PasswordHasher.encode
    monkeypatch.setattr(
        MD5PasswordHasher,
        "encode",
        lambda self, *a, **k: calls.append(1) or original(self, *a, **k),
    )
    assert_error(login("ghost@example.com", "whatever"), 401, "invalid_credentials")
    assert calls, "the hasher did not run for an unknown email"


@pytest.mark.parametrize(
    "body",
    [{}, {"email": "a@example.com"}, {"password": "x"}, {"email": "", "password": ""}],
)
def test_login_missing_fields_are_validation_errors(db, api, body):
    response = api.post("/api/auth/login", body, format="json")
    assert_error(response, 400, "validation_error")


def test_login_malformed_json(db, api):
    response = api.post("/api/auth/login", "{not json", content_type="application/json")
    assert_error(response, 400, "malformed_request")


def test_login_ignores_a_stale_bearer_header(make_user, login):
    user = make_user()
    response = login(user.email, HTTP_AUTHORIZATION="Bearer garbage")
    assert response.status_code == 200


# --- two-step login ---------------------------------------------------------------------


@pytest.fixture
def mfa_user(make_user, enrol_totp):
    user = make_user()
    secret, codes = enrol_totp(user)
    return user, secret, codes


def _challenge(login, user):
    response = login(user.email)
    assert response.status_code == 200
    body = response.json()
    assert body == {
        "mfa_required": True,
        "mfa_token": body["mfa_token"],
        "methods": ["totp", "backup_code"],
    }
    return body["mfa_token"]


def _verify(api, mfa_token, code):
    return api.post(
        "/api/auth/mfa/verify", {"mfa_token": mfa_token, "code": code}, format="json"
    )


def test_mfa_login_with_totp(mfa_user, login, api):
    user, secret, _ = mfa_user
    mfa_token = _challenge(login, user)
    response = _verify(api, mfa_token, pyotp.TOTP(secret).now())
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["mfa_enabled"] is True
    assert decode_access_token(body["access"])["mfa"] is True
    assert AuditEvent.objects.filter(action="mfa.used", actor=user).exists()
    assert AuditEvent.objects.filter(action="login.succeeded", actor=user).exists()


def test_mfa_login_with_a_backup_code_once(mfa_user, login, api):
    user, _, codes = mfa_user
    response = _verify(api, _challenge(login, user), codes[0].upper())
    assert response.status_code == 200
    assert decode_access_token(response.json()["access"])["mfa"] is True
    again = _verify(api, _challenge(login, user), codes[0])
    assert_error(again, 401, "invalid_mfa_code")


def test_mfa_token_is_single_use(mfa_user, login, api):
    user, secret, codes = mfa_user
    mfa_token = _challenge(login, user)
    assert _verify(api, mfa_token, codes[1]).status_code == 200
    assert_error(_verify(api, mfa_token, codes[2]), 401, "invalid_token")


def test_wrong_code_keeps_the_mfa_token_until_too_many(mfa_user, login, api, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    user, secret, codes = mfa_user
    mfa_token = _challenge(login, user)
    assert_error(_verify(api, mfa_token, "000000"), 401, "invalid_mfa_code")
    assert AuditEvent.objects.filter(action="mfa.failed", actor=user).exists()
    # A typo does not burn the token...
    assert _verify(api, mfa_token, codes[0]).status_code == 200
    # ...but five wrong codes do.
    mfa_token = _challenge(login, user)
    for _ in range(5):
        assert_error(_verify(api, mfa_token, "000000"), 401, "invalid_mfa_code")
    assert_error(_verify(api, mfa_token, codes[1]), 401, "invalid_token")


def test_mfa_verify_refuses_when_the_token_is_claimed(mfa_user, login, api):
    """A concurrent attempt holds the single-use claim: the other one is refused."""
    user, _, codes = mfa_user
    mfa_token = _challenge(login, user)
    from accounts.tokens import decode_mfa_token

    cache.add(f"mfa-used:{decode_mfa_token(mfa_token)['jti']}", 1, 60)
    assert_error(_verify(api, mfa_token, codes[0]), 401, "invalid_token")


def test_mfa_token_is_not_an_access_token(mfa_user, login, api):
    user, _, _ = mfa_user
    mfa_token = _challenge(login, user)
    response = api.get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {mfa_token}")
    assert_error(response, 401, "invalid_token")
    refresh = api.post("/api/auth/token/refresh", {"refresh": mfa_token}, format="json")
    assert_error(refresh, 401, "invalid_token")


@pytest.mark.parametrize("kind", ["access", "refresh", "garbage", "expired", "forged"])
def test_mfa_verify_refuses_other_tokens(kind, mfa_user, api, login, settings):
    user, secret, _ = mfa_user
    if kind in ("access", "refresh"):
        from accounts.tokens import issue_tokens

        token = issue_tokens(user, mfa=False)[kind]
    elif kind == "garbage":
        token = "a.b.c"
    elif kind == "expired":
        from accounts.tokens import MfaToken

        t = MfaToken()
        t["user_id"] = str(user.pk)
        t["exp"] = int(time.time()) - 1
        token = str(t)
    else:
        import jwt

        token = jwt.encode(
            {"token_type": "mfa", "user_id": str(user.pk), "jti": "x", "exp": 2**31},
            "not-the-key",
            algorithm="HS256",
        )
    response = _verify(api, token, pyotp.TOTP(secret).now())
    assert_error(response, 401, "invalid_token")


@pytest.mark.parametrize("change", ["deactivated", "org_deactivated", "logout_all"])
def test_mfa_token_dies_with_the_account(change, mfa_user, login, api, org):
    from accounts import revocation

    user, secret, codes = mfa_user
    mfa_token = _challenge(login, user)
    if change == "deactivated":
        user.is_active = False
        user.save()
    elif change == "org_deactivated":
        org.is_active = False
        org.save()
    else:
        revocation.revoke_user_tokens(user)
    assert_error(_verify(api, mfa_token, codes[0]), 401, "invalid_token")


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "12 345", "x" * 64])
def test_mfa_verify_bad_code_shapes(code, mfa_user, login, api):
    user, _, _ = mfa_user
    response = _verify(api, _challenge(login, user), code)
    assert_error(response, 401, "invalid_mfa_code")


@pytest.mark.parametrize(
    "body", [{}, {"mfa_token": "x"}, {"code": "123456"}, {"mfa_token": "x", "code": ""}]
)
def test_mfa_verify_missing_fields(body, db, api):
    assert_error(
        api.post("/api/auth/mfa/verify", body, format="json"), 400, "validation_error"
    )


def test_mfa_session_start_is_the_password_login(mfa_user, api):
    user, secret, _ = mfa_user
    started = time.time() - 100
    mfa_token = issue_mfa_token(user, session_started=started)
    response = _verify(api, mfa_token, pyotp.TOTP(secret).now())
    assert response.status_code == 200
    assert abs(decode_access_token(response.json()["access"])["sst"] - started) < 1e-3
