"""Password change, reset and confirm; registration and email verification; /me."""

import re

import pytest
from django.core import mail
from rest_framework.test import APIClient

from accounts.models import User
from accounts.tokens import decode_access_token, issue_tokens
from auditlog.models import AuditEvent
from tests.conftest import DEFAULT_PASSWORD, assert_error

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "Brand-new-passphrase-2026"


def _me(token):
    return APIClient().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")


# --- password change -----------------------------------------------------------------


def test_password_change_returns_new_tokens_and_revokes_the_others(
    make_user, auth_client
):
    user = make_user()
    client = auth_client(user, mfa=True)
    other = issue_tokens(user, mfa=False)
    response = client.post(
        "/api/auth/password/change",
        {"old_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert _me(body["access"]).status_code == 200
    assert decode_access_token(body["access"])["mfa"] is True
    for access in (client.tokens["access"], other["access"]):
        assert_error(_me(access), 401, "token_revoked")
    refresh = APIClient().post(
        "/api/auth/token/refresh", {"refresh": other["refresh"]}, format="json"
    )
    assert_error(refresh, 401, "token_revoked")
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action="password.changed", actor=user).exists()


def test_password_change_wrong_old_password(make_user, auth_client):
    client = auth_client(make_user())
    response = client.post(
        "/api/auth/password/change",
        {"old_password": "wrong", "new_password": NEW_PASSWORD},
        format="json",
    )
    error = assert_error(response, 400, "validation_error")
    assert "old_password" in error["details"]
    assert client.get("/api/auth/me").status_code == 200


@pytest.mark.parametrize("weak", ["short", "12345678901", "password123"])
def test_password_change_runs_the_validators(weak, make_user, auth_client):
    client = auth_client(make_user())
    response = client.post(
        "/api/auth/password/change",
        {"old_password": DEFAULT_PASSWORD, "new_password": weak},
        format="json",
    )
    error = assert_error(response, 400, "validation_error")
    assert "new_password" in error["details"]


def test_password_change_needs_authentication(db):
    response = APIClient().post(
        "/api/auth/password/change",
        {"old_password": "a", "new_password": "b"},
        format="json",
    )
    assert_error(response, 401, "not_authenticated")


# --- password reset ------------------------------------------------------------------


def _reset(email):
    return APIClient().post("/api/auth/password/reset", {"email": email}, format="json")


def _reset_values(message):
    uid = re.search(r'uid "([^"]+)"', message.body).group(1)
    token = re.search(r'token "([^"]+)"', message.body).group(1)
    return uid, token


def _confirm(uid, token, password=NEW_PASSWORD):
    return APIClient().post(
        "/api/auth/password/reset/confirm",
        {"uid": uid, "token": token, "new_password": password},
        format="json",
    )


def test_password_reset_full_flow(make_user):
    user = make_user()
    old = issue_tokens(user, mfa=False)
    assert _reset(user.email.upper()).status_code == 202
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [user.email]
    assert "password" in message.subject.lower()
    assert message.alternatives and message.alternatives[0][1] == "text/html"
    uid, token = _reset_values(message)
    assert token in message.alternatives[0][0]
    assert _confirm(uid, token).status_code == 204
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert_error(_me(old["access"]), 401, "token_revoked")
    # Single use.
    assert_error(
        _confirm(uid, token, "Yet-another-passphrase-9"), 400, "validation_error"
    )
    assert AuditEvent.objects.filter(action="password.reset", target_id=str(user.pk))
    assert AuditEvent.objects.filter(action="password.reset_requested")


def test_password_reset_link_ignores_the_host_header(make_user, settings):
    """No reset poisoning: the link is built from XENX_PUBLIC_URL, not from Host."""
    settings.ALLOWED_HOSTS = ["*"]
    settings.XENX_PUBLIC_URL = "https://id.example.org"
    user = make_user()
    APIClient().post(
        "/api/auth/password/reset",
        {"email": user.email},
        format="json",
        HTTP_HOST="evil.example.net",
        HTTP_X_FORWARDED_HOST="evil.example.net",
    )
    body = mail.outbox[0].body + mail.outbox[0].alternatives[0][0]
    assert "https://id.example.org/portal/password-reset/" in body
    assert "evil" not in body


@pytest.mark.parametrize("case", ["unknown", "inactive", "unusable_password"])
def test_password_reset_always_202_and_sends_nothing_when_it_should_not(
    case, make_user
):
    user = make_user()
    email = user.email
    if case == "unknown":
        email = "nobody@example.com"
    elif case == "inactive":
        user.is_active = False
        user.save()
    else:
        user.set_unusable_password()
        user.save()
    response = _reset(email)
    assert response.status_code == 202
    assert response.content in (b"", b"null")
    assert mail.outbox == []


def test_password_reset_bad_email_shape_is_still_202(db):
    assert _reset("not an email").status_code == 202


@pytest.mark.parametrize(
    ("uid", "token"),
    [("MQ", "bad-token"), ("!!", "x"), ("", ""), ("OTk5OTk5", "abc-def")],
)
def test_password_reset_confirm_bad_tokens(uid, token, make_user):
    make_user()
    response = _confirm(uid, token)
    assert_error(response, 400, "validation_error")


def test_password_reset_confirm_weak_password(make_user):
    user = make_user()
    _reset(user.email)
    uid, token = _reset_values(mail.outbox[0])
    error = assert_error(_confirm(uid, token, "123"), 400, "validation_error")
    assert "new_password" in error["details"]
    # The token was not spent by the failed attempt.
    assert _confirm(uid, token).status_code == 204


def test_reset_token_of_one_user_does_not_work_for_another(make_user):
    alice, bob = make_user(), make_user()
    _reset(alice.email)
    _, token = _reset_values(mail.outbox[0])
    from accounts.selectors import user_uid as _uid

    assert_error(_confirm(_uid(bob), token), 400, "validation_error")


# --- registration and email verification ---------------------------------------------------


def _register(**body):
    data = {
        "email": "new.person@example.com",
        "password": NEW_PASSWORD,
        "first_name": "New",
        "last_name": "Person",
        **body,
    }
    return APIClient().post("/api/auth/register", data, format="json")


def test_register_creates_a_client_without_organization_and_sends_verification(db):
    response = _register()
    assert response.status_code == 201
    body = response.json()
    assert body["role"] == "client" and body["organization"] is None
    assert body["email_verified"] is False and body["mfa_enabled"] is False
    user = User.objects.get(pk=body["id"])
    assert user.check_password(NEW_PASSWORD)
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [user.email]
    token = re.search(r"/api/auth/verify-email:\s+(\S+)", mail.outbox[0].body).group(1)
    assert f"token={token}" in mail.outbox[0].body
    verify = APIClient().post("/api/auth/verify-email", {"token": token}, format="json")
    assert verify.status_code == 204
    user.refresh_from_db()
    assert user.email_verified is True
    again = APIClient().post("/api/auth/verify-email", {"token": token}, format="json")
    assert_error(again, 400, "validation_error")
    assert AuditEvent.objects.filter(action="user.created", target_id=str(user.pk))
    assert AuditEvent.objects.filter(action="email.verified", actor=user)


@pytest.mark.parametrize("token", ["", "garbage", "MQ.abc-def", "x.y.z"])
def test_verify_email_bad_tokens(token, make_user):
    make_user(email_verified=False)
    response = APIClient().post(
        "/api/auth/verify-email", {"token": token}, format="json"
    )
    assert_error(response, 400, "validation_error")


def test_register_taken_email_answers_like_a_new_one_and_mails_the_owner(make_user):
    """No account enumeration: a taken address (any case) gets the 201 a new one
    gets, with the same fields; no account is made and the owner is told by mail."""
    owner = make_user(email="taken@example.com", first_name="Olive")
    mail.outbox.clear()
    fresh = _register(email="fresh.person@example.com")
    mail.outbox.clear()
    taken = _register(email="TAKEN@example.com")
    assert (fresh.status_code, taken.status_code) == (201, 201)
    assert set(taken.json()) == set(fresh.json())
    assert isinstance(taken.json()["id"], int)
    assert taken.json()["email"] == "taken@example.com"
    assert taken.json()["email_verified"] is False
    assert User.objects.filter(email__iexact="taken@example.com").count() == 1
    owner.refresh_from_db()
    assert owner.first_name == "Olive" and owner.check_password(DEFAULT_PASSWORD)
    assert [m.to for m in mail.outbox] == [["taken@example.com"]]
    assert "already has a XenX account" in mail.outbox[0].body
    assert "/portal/password-reset" in mail.outbox[0].body
    assert AuditEvent.objects.filter(
        action="registration.existing_account", target_id=str(owner.pk)
    ).exists()


def test_register_taken_email_with_a_weak_password_is_400_like_a_new_one(make_user):
    make_user(email="taken@example.com")
    for email in ("taken@example.com", "fresh.person@example.com"):
        error = assert_error(
            _register(email=email, password="short"), 400, "validation_error"
        )
        assert "password" in error["details"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"password": "short"}, "password"),
        ({"password": "new.person@example.com"}, "password"),
        ({"email": ""}, "email"),
    ],
)
def test_register_validation(body, field, db):
    error = assert_error(_register(**body), 400, "validation_error")
    assert field in error["details"]
    assert not User.objects.exists()


def test_register_disabled_without_invitation(db, settings):
    settings.XENX_SELF_REGISTRATION = False
    assert_error(_register(), 403, "permission_denied")


def test_register_with_a_bad_invitation(db):
    error = assert_error(_register(invitation="nope"), 400, "validation_error")
    assert "invitation" in error["details"]
    assert not User.objects.exists()


def test_register_cannot_choose_role_or_organization(org, db):
    response = _register(role="admin", organization=org.pk)
    assert response.status_code == 201
    assert response.json()["role"] == "client"
    assert response.json()["organization"] is None


# --- /me ------------------------------------------------------------------------------


def test_me_patch_changes_only_the_names(make_user, auth_client, org):
    user = make_user("cpa")
    client = auth_client(user)
    response = client.patch(
        "/api/auth/me",
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "role": "admin",
            "email": "x@example.com",
            "organization": None,
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["first_name"], body["last_name"]) == ("Ada", "Lovelace")
    assert body["role"] == "cpa" and body["email"] == user.email
    assert body["organization"] == {"id": org.pk, "name": org.name}


def test_me_patch_validation(make_user, auth_client):
    client = auth_client(make_user())
    response = client.patch("/api/auth/me", {"first_name": "x" * 151}, format="json")
    assert_error(response, 400, "validation_error")
