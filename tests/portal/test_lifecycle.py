"""The lifecycle pages (README "Lifecycle"): each step reached from a mail link or a
visible link, bad input shown beside its field, links that cannot be used shown as one
clear page (never a 404 or a 500)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from accounts.models import User
from auditlog.models import AuditEvent
from core.roles import Role
from organizations.models import Invitation
from organizations.services import invitation_create, invitation_revoke
from tests.conftest import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "another-horse-battery-staple-77"


def _field_error(response, field: str) -> str:
    """The error list rendered beside ``field`` (its id), as text."""
    html = response.content.decode()
    marker = f'id="id_{field}_errors"'
    assert marker in html, html[:3000]
    return html[html.index(marker) :].split("</ul>", 1)[0]


def _invite(org, email="new.client@example.com", **kwargs):
    mail.outbox.clear()
    invitation, token = invitation_create(
        organization=org, email=email, role=Role.CLIENT, **kwargs
    )
    return invitation, token


def _signup_body(**overrides):
    return {
        "first_name": "Nora",
        "last_name": "Client",
        "new_password": NEW_PASSWORD,
        "new_password_confirm": NEW_PASSWORD,
        **overrides,
    }


# --- invitation sign-up ------------------------------------------------------------------


def test_the_invitation_mail_links_to_the_signup_page(org):
    _invitation, token = _invite(org)
    assert f"/portal/signup/{token}" in mail.outbox[0].body
    html = mail.outbox[0].alternatives[0][0]
    assert 'href="http' in html and f"/portal/signup/{token}" in html


def test_signup_joins_the_organization_and_signs_in(org):
    _invitation, token = _invite(org)
    browser = Client()
    page = browser.get(f"/portal/signup/{token}")
    assert page.status_code == 200
    assert org.name in page.content.decode()
    response = browser.post(f"/portal/signup/{token}", _signup_body())
    assert response.status_code == 302 and response["Location"] == "/portal/"
    user = User.objects.get(email="new.client@example.com")
    assert (user.role, user.organization_id, user.email_verified) == (
        Role.CLIENT,
        org.pk,
        True,
    )
    assert browser.get("/portal/").status_code == 200  # signed in
    # The link is used now: a clear page, not a 404.
    again = Client().get(f"/portal/signup/{token}")
    assert again.status_code == 410
    assert b"already been used" in again.content


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"new_password_confirm": "something-else-entirely-9"}, "new_password_confirm",
         "differ"),
        ({"new_password": "short", "new_password_confirm": "short"}, "new_password",
         "too short"),
        ({"first_name": ""}, "first_name", "required"),
    ],
    ids=["mismatched", "weak", "no_name"],
)  # fmt: skip
def test_signup_bad_input_beside_its_field(org, overrides, field, words):
    _invitation, token = _invite(org)
    response = Client().post(f"/portal/signup/{token}", _signup_body(**overrides))
    assert response.status_code == 400
    assert words in _field_error(response, field)
    assert not User.objects.filter(email="new.client@example.com").exists()


@pytest.mark.parametrize("state", ["unknown", "expired", "revoked", "org_inactive"])
def test_signup_links_that_cannot_be_used(org, state):
    invitation, token = _invite(org)
    if state == "unknown":
        token = "x" * 43
    elif state == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    elif state == "revoked":
        invitation_revoke(invitation=invitation)
    else:
        org.is_active = False
        org.save()
    for method in ("get", "post"):
        response = getattr(Client(), method)(f"/portal/signup/{token}", _signup_body())
        assert response.status_code == 410
        assert b"This invitation is no longer valid." in response.content
    assert not User.objects.filter(email="new.client@example.com").exists()


def test_signup_for_an_address_with_an_account_shows_check_your_email(
    org, other_org, make_user
):
    existing = make_user(Role.CLIENT, organization=other_org)
    _invitation, token = _invite(org, email=existing.email)
    response = Client().post(f"/portal/signup/{token}", _signup_body())
    assert response.status_code == 200
    assert b"Check your email" in response.content
    existing.refresh_from_db()
    assert existing.organization_id == other_org.pk


# --- self-registration and verification ---------------------------------------------------


def test_register_page_and_verification_link(db, settings):
    settings.XENX_SELF_REGISTRATION = True
    login_page = Client().get("/portal/login").content.decode()
    assert 'href="/portal/register"' in login_page
    mail.outbox.clear()
    body = {"email": "self@example.com", **_signup_body()}
    response = Client().post("/portal/register", body)
    assert response.status_code == 200 and b"Check your email" in response.content
    token = re.search(r"verify-email\?token=(\S+)", mail.outbox[0].body).group(1)
    browser = Client()
    assert browser.get(f"/portal/verify-email?token={token}").status_code == 200
    assert not User.objects.get(email="self@example.com").email_verified  # a GET
    done = browser.post("/portal/verify-email", {"token": token})
    assert done.status_code == 302 and done["Location"] == "/portal/login"
    assert User.objects.get(email="self@example.com").email_verified
    used = browser.post("/portal/verify-email", {"token": token})
    assert used.status_code == 410


def test_register_a_taken_address_shows_the_same_page(make_user, settings):
    settings.XENX_SELF_REGISTRATION = True
    existing = make_user(email="taken@example.com")
    body = {"email": "taken@example.com", **_signup_body()}
    response = Client().post("/portal/register", body)
    assert response.status_code == 200 and b"Check your email" in response.content
    assert User.objects.filter(email__iexact=existing.email).count() == 1


def test_register_is_not_offered_when_off(db, settings):
    settings.XENX_SELF_REGISTRATION = False
    assert b"/portal/register" not in Client().get("/portal/login").content
    assert Client().get("/portal/register").status_code == 404


@pytest.mark.parametrize("token", ["", "garbage", "MQ.bad-token"])
def test_bad_verification_links_show_a_clear_page(db, token):
    response = Client().post("/portal/verify-email", {"token": token})
    assert response.status_code == 410


# --- forgotten password -------------------------------------------------------------------


def test_forgot_password_to_a_new_password_and_sign_in(make_user):
    user = make_user()
    login_page = Client().get("/portal/login").content.decode()
    assert 'href="/portal/password-reset"' in login_page
    mail.outbox.clear()
    response = Client().post("/portal/password-reset", {"email": user.email})
    assert response.status_code == 200 and b"Check your email" in response.content
    link = re.search(r"(/portal/password-reset/\S+)", mail.outbox[0].body).group(1)
    browser = Client()
    assert browser.get(link).status_code == 200
    mismatch = browser.post(
        link,
        {"new_password": NEW_PASSWORD, "new_password_confirm": "different-horse-9"},
    )
    assert "differ" in _field_error(mismatch, "new_password_confirm")
    done = browser.post(
        link, {"new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}
    )
    assert done.status_code == 302 and done["Location"] == "/portal/login"
    signed_in = browser.post(
        "/portal/login", {"email": user.email, "password": NEW_PASSWORD}
    )
    assert signed_in.status_code == 302 and signed_in["Location"] == "/portal/"
    used = Client().get(link)
    assert used.status_code == 410 and b"cannot be used" in used.content
    subjects = [m.subject for m in mail.outbox]
    assert "Your XenX password was reset" in subjects


def test_forgot_password_answers_the_same_for_an_unknown_address(db):
    mail.outbox.clear()
    response = Client().post("/portal/password-reset", {"email": "who@example.com"})
    assert response.status_code == 200 and b"Check your email" in response.content
    assert mail.outbox == []


@pytest.mark.parametrize(
    "path",
    [
        "/portal/password-reset/MQ/bad-token",
        "/portal/password-reset/" + "A" * 80 + "/x",
        "/portal/password-reset/OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5OQ/x",
        "/portal/password-reset/%F0%9F%92%A9/x",
    ],
)
def test_bad_reset_links_show_a_clear_page(db, path):
    response = Client().get(path)
    assert response.status_code == 410
    assert b"cannot be used" in response.content


# --- lockout --------------------------------------------------------------------------------


def test_a_locked_account_sees_how_long_to_wait(make_user, settings):
    settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMITS, "login_account": "2/15m"}
    user = make_user()
    browser = Client()
    for _ in range(2):
        browser.post("/portal/login", {"email": user.email, "password": "wrong-pw-1"})
    response = browser.post(
        "/portal/login", {"email": user.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 429
    html = response.content.decode()
    assert re.search(r"Try again in <strong>\d+ (minutes?|seconds?)</strong>", html)
    assert "slow down" not in html.lower()
    assert 'href="/portal/password-reset"' in html
    assert 1 <= int(response["Retry-After"]) <= 900


# --- account: email change and MFA enrolment need the current password --------------------


def test_email_change_from_the_account_page(signed_in):
    browser, user = signed_in(Role.CLIENT)
    wrong = browser.post(
        "/portal/account/email",
        {"email-new_email": "new@example.com", "email-password": "wrong-password-1"},
    )
    assert wrong.status_code == 400
    assert "not correct" in _field_error(wrong, "email-password")
    mail.outbox.clear()
    done = browser.post(
        "/portal/account/email",
        {"email-new_email": "new@example.com", "email-password": DEFAULT_PASSWORD},
    )
    assert done.status_code == 302
    assert {m.to[0] for m in mail.outbox} == {user.email, "new@example.com"}
    link = re.search(r"(/portal/email/confirm\?token=\S+)", mail.outbox[-1].body)
    page = Client().get(link.group(1))
    assert page.status_code == 200 and b"Use my new address" in page.content


def test_totp_enrolment_asks_for_the_current_password(signed_in):
    browser, user = signed_in(Role.CLIENT)
    assert b'name="password"' in browser.get("/portal/account").content
    response = browser.post("/portal/account/mfa/totp", {"password": "nope-1234567"})
    assert response.status_code == 400
    assert "not correct" in _field_error(response, "password")
    assert not user.totpdevice_set.exists()


def test_bad_email_confirmation_links_show_a_clear_page(db):
    response = Client().post("/portal/email/confirm", {"token": "forged:1:x"})
    assert response.status_code == 410 and b"cannot be used" in response.content


# --- pending invitations: resend and revoke (portal) ------------------------------------------


@pytest.mark.parametrize(
    ("role", "scope", "status"),
    [
        (Role.ADMIN, "own", 302),
        (Role.STAFF, "own", 302),
        (Role.CPA, "own", 302),
        (Role.CLIENT, "own", 404),
        (Role.STAFF, "foreign", 404),
        (Role.CPA, "foreign", 404),
    ],
)
@pytest.mark.parametrize("write", ["resend", "revoke"])
def test_invitation_writes_role_by_organization(
    signed_in, org, other_org, role, scope, status, write
):
    invitation, _token = _invite(org if scope == "own" else other_org)
    browser, _ = signed_in(role)
    response = browser.post(f"/portal/invitations/{invitation.pk}/{write}")
    assert response.status_code == status
    audited = AuditEvent.objects.filter(
        action=f"invitation.{write}".replace("resend", "resent").replace(
            "revoke", "revoked"
        )
    ).exists()
    assert audited is (status == 302)


def test_clients_page_lists_pending_invitations_with_actions(signed_in, org):
    invitation, _token = _invite(org)
    browser, _ = signed_in(Role.CPA)
    html = browser.get("/portal/clients").content.decode()
    assert invitation.email in html
    assert f"/portal/invitations/{invitation.pk}/resend" in html
    assert f"/portal/invitations/{invitation.pk}/revoke" in html
    done = browser.post(f"/portal/invitations/{invitation.pk}/revoke", follow=True)
    assert f"Invitation to {invitation.email} withdrawn." in done.content.decode()
    assert f"/portal/invitations/{invitation.pk}/" not in done.content.decode()


def test_root_sends_people_to_the_portal(db):
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"] == "/portal/"


@pytest.mark.parametrize(("role", "scope", "revoked"), [
    (Role.ADMIN, "foreign", True),
    (Role.STAFF, "own", True),
    (Role.STAFF, "foreign", False),
])  # fmt: skip
def test_admin_revokes_invitations_through_the_service(
    signed_in, org, other_org, role, scope, revoked
):
    invitation, _token = _invite(org if scope == "own" else other_org)
    browser, actor = signed_in(role)
    response = browser.post(
        "/admin/organizations/invitation/",
        {"action": "revoke_invitations", "_selected_action": [invitation.pk]},
    )
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert (invitation.revoked_at is not None) is revoked
    events = AuditEvent.objects.filter(action="invitation.revoked", actor=actor)
    assert events.exists() is revoked
    # Never deleted in the admin: the row stays for the audit trail.
    assert Invitation.objects.filter(pk=invitation.pk).exists()
