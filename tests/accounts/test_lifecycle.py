"""The security side of a person's lifecycle through the API (README "Lifecycle"):
TOTP enrolment needs the current password, logout ends the whole session, an email
change (confirmed from the new address) revokes every token, lockout says how long and
can be lifted, and security events mail the account."""

from __future__ import annotations

import re
from urllib.parse import quote

import pyotp
import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts import mfa, passwords, throttling
from accounts.tokens import decode_access_token, issue_tokens
from auditlog.models import AuditEvent
from core.roles import Role
from tests.conftest import DEFAULT_PASSWORD, assert_error

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "another-horse-battery-staple-77"


def _bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


@pytest.fixture
def rates(settings):
    def set_rates(**overrides):
        settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMITS, **overrides}

    return set_rates


# --- TOTP enrolment needs the current password ----------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 400, "validation_error"),  # a stolen access token alone
        ({"password": ""}, 400, "validation_error"),
        ({"password": "not-the-password-1"}, 400, "validation_error"),
        ({"password": ["x"]}, 400, "validation_error"),
        ({"password": DEFAULT_PASSWORD}, 201, None),
    ],
    ids=["missing", "empty", "wrong", "not_a_string", "right"],
)
def test_totp_enrolment_needs_the_current_password(
    make_user, auth_client, body, status, code
):
    client = auth_client(make_user())
    response = client.post("/api/auth/mfa/totp", body, format="json")
    if code:
        error = assert_error(response, status, code)
        assert "password" in error["details"]
        assert not client.user.totpdevice_set.exists()
    else:
        assert response.status_code == 201
        assert set(response.json()) == {"secret", "otpauth_uri", "qr_svg"}


def test_wrong_passwords_at_enrolment_are_throttled(make_user, auth_client, rates):
    rates(password_change_account="2/15m")
    client = auth_client(make_user())
    for _ in range(2):
        response = client.post(
            "/api/auth/mfa/totp", {"password": "wrong-password-1"}, format="json"
        )
        assert_error(response, 400, "validation_error")
    # Locked: even the right password is refused now.
    response = client.post(
        "/api/auth/mfa/totp", {"password": DEFAULT_PASSWORD}, format="json"
    )
    assert_error(response, 429, "rate_limited")
    assert int(response["Retry-After"]) >= 1


def test_confirming_session_gets_an_mfa_pair_and_keeps_its_token(
    make_user, auth_client
):
    """README "Identity": the confirm answer is a fresh pair of the same session with
    ``mfa: true`` (it has just shown the password and a code); the token that asked
    keeps working with its own claims; every other session is revoked."""
    user = make_user()
    client = auth_client(user)
    other = issue_tokens(user, mfa=False)
    secret = client.post(
        "/api/auth/mfa/totp", {"password": DEFAULT_PASSWORD}, format="json"
    ).json()["secret"]
    body = client.post(
        "/api/auth/mfa/totp/confirm",
        {"code": pyotp.TOTP(secret).now()},
        format="json",
    ).json()
    fresh = decode_access_token(body["access"])
    asked = decode_access_token(client.tokens["access"])
    assert fresh["mfa"] is True and asked["mfa"] is False
    assert fresh["fam"] == asked["fam"]
    assert client.get("/api/auth/me").status_code == 200
    assert _bearer(body["access"]).get("/api/auth/me").status_code == 200
    assert_error(_bearer(other["access"]).get("/api/auth/me"), 401, "token_revoked")


# --- logout ends the whole session -----------------------------------------------------


def test_logout_ends_every_token_of_the_session(make_user, gateway_service):
    user = make_user()
    first = issue_tokens(user, mfa=False)
    # A refresh: a second access token of the same session (family).
    rotated = APIClient().post(
        "/api/auth/token/refresh", {"refresh": first["refresh"]}, format="json"
    )
    assert rotated.status_code == 200
    second = rotated.json()
    other_session = issue_tokens(user, mfa=False)
    listed = _bearer(other_session["access"]).get("/api/auth/sessions").json()
    assert listed["count"] == 2  # visible (and endable) until it is ended
    response = _bearer(second["access"]).post(
        "/api/auth/logout", {"refresh": second["refresh"]}, format="json"
    )
    assert response.status_code == 204
    for access in (first["access"], second["access"]):
        assert_error(_bearer(access).get("/api/auth/me"), 401, "token_revoked")
        assert_error(_bearer(access).get(gateway_service), 401, "token_revoked")
    assert_error(
        APIClient().post(
            "/api/auth/token/refresh", {"refresh": second["refresh"]}, format="json"
        ),
        401,
        "token_revoked",
    )
    # The other session lives and no longer lists the ended one.
    client = _bearer(other_session["access"])
    assert client.get(gateway_service).status_code == 200
    assert client.get("/api/auth/sessions").json()["count"] == 1
    assert not AuditEvent.objects.filter(action="token.reuse_detected").exists()


# --- email change ------------------------------------------------------------------------


def _confirm_link_token(message) -> str:
    return re.search(r"/api/auth/email/confirm:\s+(\S+)", message.body).group(1)


def test_email_change_confirmed_from_the_new_address(
    make_user, auth_client, gateway_service
):
    user = make_user(email="old@example.com")
    client = auth_client(user)
    mail.outbox.clear()
    response = client.post(
        "/api/auth/email/change",
        {"password": DEFAULT_PASSWORD, "new_email": "New@Example.com"},
        format="json",
    )
    assert response.status_code == 202
    by_address = {m.to[0]: m for m in mail.outbox}
    assert set(by_address) == {"old@example.com", "new@example.com"}
    notice = by_address["old@example.com"]
    assert "change of your XenX email address" in notice.subject
    assert "new@example.com" in notice.body
    token = _confirm_link_token(by_address["new@example.com"])
    link = f"/portal/email/confirm?token={quote(token, safe='/')}"
    assert link in by_address["new@example.com"].body
    user.refresh_from_db()
    assert user.email == "old@example.com"  # nothing changes before the link

    confirmed = APIClient().post("/api/auth/email/confirm", {"token": token})
    assert confirmed.status_code == 200
    assert confirmed.json()["email"] == "new@example.com"
    # Every token of the user is revoked: none names the old address any more.
    assert_error(client.get("/api/auth/me"), 401, "token_revoked")
    assert_error(client.get(gateway_service), 401, "token_revoked")
    # The link works once.
    again = APIClient().post("/api/auth/email/confirm", {"token": token})
    assert "token" in assert_error(again, 400, "validation_error")["details"]
    actions = list(
        AuditEvent.objects.filter(target_id=str(user.pk))
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert "email.change_requested" in actions and "email.changed" in actions
    user.refresh_from_db()
    fresh = issue_tokens(user, mfa=False)["access"]
    assert decode_access_token(fresh)["email"] == "new@example.com"
    assert _bearer(fresh).get(gateway_service).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"new_email": "x@example.com"}, "password"),
        ({"new_email": "x@example.com", "password": "wrong-password-1"}, "password"),
        ({"password": DEFAULT_PASSWORD, "new_email": "not-an-email"}, "new_email"),
        ({"password": DEFAULT_PASSWORD}, "new_email"),
    ],
    ids=["no_password", "wrong_password", "bad_email", "no_email"],
)
def test_email_change_bad_input(make_user, auth_client, body, field):
    client = auth_client(make_user())
    mail.outbox.clear()
    response = client.post("/api/auth/email/change", body, format="json")
    assert field in assert_error(response, 400, "validation_error")["details"]
    assert mail.outbox == []


def test_email_change_to_a_taken_address_answers_the_same(
    make_user, auth_client, other_org
):
    taken = make_user(email="taken@example.com", organization=other_org)
    client = auth_client(make_user(email="mover@example.com"))
    mail.outbox.clear()
    response = client.post(
        "/api/auth/email/change",
        {"password": DEFAULT_PASSWORD, "new_email": "TAKEN@example.com"},
        format="json",
    )
    assert response.status_code == 202
    by_address = {m.to[0]: m for m in mail.outbox}
    assert set(by_address) == {"mover@example.com", taken.email}
    assert "already has a XenX account" in by_address[taken.email].body
    assert "/email/confirm" not in by_address[taken.email].body


@pytest.mark.parametrize(
    "token", ["", "garbage", "a" * 600, "eyJ1IjoxfQ:1abc:forged"], ids=str
)
def test_email_confirm_bad_tokens(db, token):
    response = APIClient().post(
        "/api/auth/email/confirm", {"token": token}, format="json"
    )
    assert_error(response, 400, "validation_error")


def test_an_admin_renaming_an_address_revokes_the_old_tokens(
    make_user, gateway_service
):
    """The reported attack: the old token must not reach upstreams naming an address
    that now belongs to someone else."""
    from accounts.services import user_update

    admin = make_user(Role.ADMIN)
    user = make_user(email="first@example.com")
    token = issue_tokens(user, mfa=False)["access"]
    assert _bearer(token).get(gateway_service).status_code == 200
    user_update(user=user, actor=admin, email="renamed@example.com")
    assert_error(_bearer(token).get(gateway_service), 401, "token_revoked")
    assert_error(_bearer(token).get("/api/auth/me"), 401, "token_revoked")


# --- lockout ---------------------------------------------------------------------------


def _login(email, password):
    return APIClient().post(
        "/api/auth/login", {"email": email, "password": password}, format="json"
    )


def _lock(user, rates):
    rates(login_account="3/15m")
    for _ in range(3):
        assert_error(_login(user.email, "wrong-password-1"), 401, "invalid_credentials")
    response = _login(user.email, DEFAULT_PASSWORD)
    error = assert_error(response, 429, "rate_limited")
    return error, int(response["Retry-After"])


def test_a_locked_account_is_told_how_long_to_wait(make_user, rates):
    user = make_user()
    error, retry_after = _lock(user, rates)
    assert 1 <= retry_after <= 15 * 60
    assert "slow down" not in error["message"]
    assert re.search(r"try again in \d+ (minute|second)s?", error["message"])
    assert throttling.account_lock_seconds(user) == pytest.approx(retry_after, abs=2)


def test_an_unknown_address_is_locked_with_the_same_words(db, rates):
    rates(login_account="3/15m")
    for _ in range(3):
        _login("nobody@example.com", "wrong-password-1")
    error = assert_error(_login("nobody@example.com", "x"), 429, "rate_limited")
    assert "try again in" in error["message"]


def test_a_password_reset_lifts_the_lock(make_user, rates):
    user = make_user()
    _lock(user, rates)
    mail.outbox.clear()
    passwords.password_reset_request(request=None, email=user.email)
    uid, token = re.search(
        r"/portal/password-reset/([^/\s]+)/(\S+)", mail.outbox[0].body
    ).groups()
    response = APIClient().post(
        "/api/auth/password/reset/confirm",
        {"uid": uid, "token": token, "new_password": NEW_PASSWORD},
        format="json",
    )
    assert response.status_code == 204
    assert _login(user.email, NEW_PASSWORD).status_code == 200


@pytest.mark.parametrize(
    ("actor_role", "same_org", "status"),
    [
        (Role.ADMIN, False, 200),
        (Role.STAFF, True, 200),
        (Role.STAFF, False, 404),
        (Role.CPA, True, 403),
        (Role.CLIENT, True, 404),
    ],
)
def test_unlock(make_user, auth_client, rates, other_org, actor_role, same_org, status):
    user = make_user(Role.CLIENT)
    _lock(user, rates)
    actor = make_user(actor_role, **({} if same_org else {"organization": other_org}))
    response = auth_client(actor).post(f"/api/users/{user.pk}/unlock")
    if status == 200:
        assert response.status_code == 200
        assert response.json()["id"] == user.pk
        assert _login(user.email, DEFAULT_PASSWORD).status_code == 200
        event = AuditEvent.objects.get(action="user.unlocked")
        assert (event.actor_id, event.target_id) == (actor.pk, str(user.pk))
    else:
        assert_error(
            response, status, {403: "permission_denied", 404: "not_found"}[status]
        )
        assert _login(user.email, DEFAULT_PASSWORD).status_code == 429
        assert not AuditEvent.objects.filter(action="user.unlocked").exists()


# --- security notices -------------------------------------------------------------------


def _subjects(to: str) -> list[str]:
    return [m.subject for m in mail.outbox if m.to == [to]]


def test_security_events_mail_the_account(make_user, auth_client, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = make_user()
    client = auth_client(user)
    mail.outbox.clear()
    assert (
        client.post(
            "/api/auth/password/change",
            {"old_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
            format="json",
        ).status_code
        == 200
    )
    assert _subjects(user.email) == ["Your XenX password was changed"]
    assert "every other session" in mail.outbox[-1].body
    user.refresh_from_db()
    started = mfa.totp_begin_enrolment(user=user, password=NEW_PASSWORD)
    totp = pyotp.TOTP(started["secret"])
    codes = mfa.totp_confirm(user=user, code=totp.now())
    new_codes = mfa.backup_codes_regenerate(user=user, code=codes[0])
    mfa.mfa_disable(user=user, code=new_codes[0])
    assert _subjects(user.email)[1:] == [
        "Two-factor authentication is on",
        "New backup codes for your XenX account",
        "Two-factor authentication is off",
    ]
    html = mail.outbox[-1].alternatives[0][0]
    assert "/portal/password-reset" in html
