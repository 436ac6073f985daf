"""Invitations (README "Organizations, users and documents"): who invites whom, the email, expiry, single use, binding to
email, organization and role; the functions registration calls."""

import logging
import smtplib
import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.template import TemplateSyntaxError
from django.utils import timezone

from accounts.services import user_accept_invitation
from auditlog.models import AuditEvent
from core.errors import ValidationFailed
from core.roles import Role
from organizations.models import Invitation, hash_invitation_token
from organizations.selectors import invitation_get_valid
from organizations.services import invitation_accept, invitation_create
from tests.conftest import UserFactory, assert_error

pytestmark = pytest.mark.django_db

ADMIN, STAFF, CPA, CLIENT = Role.ADMIN, Role.STAFF, Role.CPA, Role.CLIENT


def invite(client, org, email="invitee@example.com", role=CLIENT):
    return client.post(
        f"/api/organizations/{org.pk}/invitations",
        {"email": email, "role": role},
        format="json",
    )


@pytest.mark.parametrize(
    ("actor_role", "role", "status"),
    [
        (ADMIN, ADMIN, 201),
        (ADMIN, STAFF, 201),
        (ADMIN, CLIENT, 201),
        (STAFF, ADMIN, 403),
        (STAFF, STAFF, 201),
        (STAFF, CPA, 201),
        (STAFF, CLIENT, 201),
        (CPA, STAFF, 403),  # a cpa invites clients only
        (CPA, CPA, 403),
        (CPA, ADMIN, 403),
        (CPA, CLIENT, 201),
        (CLIENT, CLIENT, 403),
    ],
)
def test_who_invites_which_role(make_user, auth_client, org, actor_role, role, status):
    resp = invite(auth_client(make_user(actor_role)), org, role=role)
    if status == 403:
        assert_error(resp, 403, "permission_denied")
        assert not Invitation.objects.exists()
        assert mail.outbox == []
    else:
        assert resp.status_code == 201, resp.content
        assert Invitation.objects.get().role == role


def test_invitation_answer_email_and_storage(make_user, auth_client, org):
    staff = make_user(STAFF)
    before = timezone.now()
    resp = invite(auth_client(staff), org, email="New.Person@Example.com")
    body = resp.json()
    assert {"token", "email", "role", "expires_at"} <= set(body)
    assert body["email"] == "new.person@example.com" and body["role"] == CLIENT
    invitation = Invitation.objects.get()
    # 7 days by default; only a hash of the token is stored.
    assert (
        before + timedelta(days=7)
        <= invitation.expires_at
        <= timezone.now() + timedelta(days=7)
    )
    assert invitation.token_hash == hash_invitation_token(body["token"])
    assert body["token"] not in invitation.token_hash
    assert invitation.organization == org and invitation.created_by == staff
    (message,) = mail.outbox
    assert message.to == ["new.person@example.com"]
    assert body["token"] in message.body
    assert org.name in message.subject
    html = message.alternatives[0][0]
    assert body["token"] in html
    assert AuditEvent.objects.filter(action="invitation.created").exists()


def test_invitation_list_never_shows_tokens(make_user, auth_client, org):
    staff = auth_client(make_user(STAFF))
    token = invite(staff, org).json()["token"]
    invite(staff, org, email="cpa@example.com", role=CPA)
    body = staff.get(f"/api/organizations/{org.pk}/invitations").json()
    assert body["count"] == 2
    assert token not in str(body)
    assert body["results"][0]["status"] == "pending"
    # A cpa sees only the client invitations.
    cpa = auth_client(make_user(CPA))
    emails = [
        i["email"]
        for i in cpa.get(f"/api/organizations/{org.pk}/invitations").json()["results"]
    ]
    assert emails == ["invitee@example.com"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "nope", "role": CLIENT}, "email"),
        ({"email": "a@example.com", "role": "root"}, "role"),
        ({"role": CLIENT}, "email"),
    ],
)
def test_bad_invitation_input_is_400(make_user, auth_client, org, body, field):
    resp = auth_client(make_user(STAFF)).post(
        f"/api/organizations/{org.pk}/invitations", body, format="json"
    )
    assert field in assert_error(resp, 400, "validation_error")["details"]


def test_inviting_an_existing_account_answers_like_a_new_one(
    make_user, auth_client, org, other_org
):
    """A CPA inviting another organization's member learns nothing: the same 201
    (with a token) as for a new address; the owner is mailed instead of the link."""
    existing = make_user(CLIENT, organization=other_org)
    cpa = auth_client(make_user(CPA))
    mail.outbox.clear()
    fresh = invite(cpa, org, email="nobody.yet@example.com")
    taken = invite(cpa, org, email=existing.email.upper())
    assert (fresh.status_code, taken.status_code) == (201, 201)
    assert set(fresh.json()) == set(taken.json())
    assert taken.json()["email_sent"] is True and taken.json()["token"]
    assert [m.to for m in mail.outbox] == [["nobody.yet@example.com"], [existing.email]]
    assert "/portal/signup/" in mail.outbox[0].body
    assert "/portal/signup/" not in mail.outbox[1].body
    assert "already has a XenX account" in mail.outbox[1].body
    existing.refresh_from_db()
    assert existing.organization_id == other_org.pk  # nothing moved


def test_inviting_into_a_deactivated_org_is_400(make_user, auth_client, org_factory):
    dead = org_factory(is_active=False)
    resp = invite(auth_client(make_user(ADMIN)), dead)
    assert "organization" in assert_error(resp, 400, "validation_error")["details"]


# --- The functions registration uses -----------------------------------------------


@pytest.fixture
def issued(org):
    invitation, token = invitation_create(
        organization=org, email="invitee@example.com", role=CPA
    )
    return invitation, token


def _invalid(token, email):
    with pytest.raises(ValidationFailed) as exc:
        invitation_get_valid(token=token, email=email)
    assert exc.value.code == "validation_error"
    return exc.value.details["invitation"][0]


def test_valid_invitation_is_found_case_insensitively(issued):
    invitation, token = issued
    assert invitation_get_valid(token=token, email="Invitee@Example.com") == invitation


def test_unknown_token(issued):
    assert "unknown" in _invalid("not-a-token", "invitee@example.com")
    assert "unknown" in _invalid("", "invitee@example.com")


def test_wrong_email(issued):
    assert "another email" in _invalid(issued[1], "someone-else@example.com")


def test_expired(issued):
    invitation, token = issued
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert "expired" in _invalid(token, "invitee@example.com")


def test_deactivated_organization(issued, org):
    org.is_active = False
    org.save()
    assert "deactivated" in _invalid(issued[1], "invitee@example.com")


def test_accept_lands_the_user_in_org_and_role_once(issued, org):
    invitation, token = issued
    user = UserFactory(email="invitee@example.com", role=CLIENT, organization=None)
    user_accept_invitation(
        invitation=invitation_get_valid(token=token, email=user.email), user=user
    )
    user.refresh_from_db()
    assert (user.organization, user.role) == (org, CPA)
    assert list(user.groups.values_list("name", flat=True)) == [CPA]
    invitation.refresh_from_db()
    assert invitation.accepted_by == user and invitation.accepted_at
    assert AuditEvent.objects.filter(
        action="invitation.accepted", target_id=str(invitation.pk)
    ).exists()
    # Used twice: refused both when looked up and when accepted again.
    assert "already been used" in _invalid(token, user.email)
    with pytest.raises(ValidationFailed):
        invitation_accept(invitation=invitation, user=user)
    assert AuditEvent.objects.filter(action="invitation.accepted").count() == 1


def test_accept_refuses_another_email(issued):
    other = UserFactory(email="other@example.com")
    with pytest.raises(ValidationFailed):
        invitation_accept(invitation=issued[0], user=other)
    assert Invitation.objects.get().accepted_at is None


def test_accept_refuses_an_invitation_that_expired_after_lookup(issued):
    invitation, token = issued
    found = invitation_get_valid(token=token, email="invitee@example.com")
    Invitation.objects.filter(pk=invitation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    user = UserFactory(email="invitee@example.com", organization=None)
    with pytest.raises(ValidationFailed):
        invitation_accept(invitation=found, user=user)


def _in_thread(fn):
    """Run ``fn`` on its own connection, outside the test's transaction (its writes
    commit), and return its result."""
    from django.db import connections

    result = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    return result.get("value")


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks need PostgreSQL"
)
def test_concurrent_accepts_use_the_invitation_once(db):
    # Committed rows (so two connections race on them), cleaned up by hand: a
    # transactional test would flush the role Groups for the tests after it.
    from accounts.models import User
    from organizations.models import Organization

    def setup():
        org = Organization.objects.create(name="Race", slug="race-firm")
        invitation, _ = invitation_create(
            organization=org, email="race@example.com", role=CLIENT
        )
        user = User.objects.create_user("race@example.com", organization=None)
        return org.pk, invitation.pk, user.pk

    def cleanup():
        AuditEvent.objects.filter(organization_id=org_id).delete()
        Invitation.objects.filter(pk=invitation_id).delete()
        User.objects.filter(pk=user_id).delete()
        Organization.objects.filter(pk=org_id).delete()

    org_id, invitation_id, user_id = _in_thread(setup)
    try:
        barrier = threading.Barrier(2)
        results = []

        def accept():
            from django.db import connections

            try:
                invitation = Invitation.objects.get(pk=invitation_id)
                user = User.objects.get(pk=user_id)
                barrier.wait()
                invitation_accept(invitation=invitation, user=user)
                results.append("ok")
            except ValidationFailed:
                results.append("refused")
            finally:
                connections.close_all()

        threads = [threading.Thread(target=accept) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        accepted = _in_thread(
            lambda: AuditEvent.objects.filter(
                action="invitation.accepted", organization_id=org_id
            ).count()
        )
        assert sorted(results) == ["ok", "refused"]
        assert accepted == 1
    finally:
        _in_thread(cleanup)


def test_email_failure_keeps_the_invitation_and_says_so(
    make_user, auth_client, org, settings
):
    from tests.support.mail import BROKEN_BACKEND

    settings.EMAIL_BACKEND = BROKEN_BACKEND
    resp = invite(auth_client(make_user(STAFF)), org)
    assert resp.status_code == 201
    assert resp.json()["email_sent"] is False and resp.json()["token"]
    assert Invitation.objects.count() == 1


class SmtpFailing(BaseEmailBackend):
    """A mail server that answers, then fails: ``SmtpFailing.error``."""

    error: Exception = smtplib.SMTPServerDisconnected("gone")

    def send_messages(self, email_messages):
        raise SmtpFailing.error


@pytest.mark.parametrize(
    "error",
    [
        smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
        smtplib.SMTPRecipientsRefused({"invitee@example.com": (550, b"no such user")}),
        smtplib.SMTPAuthenticationError(535, b"bad credentials"),
        TimeoutError("timed out"),
    ],
    ids=type,
)
@pytest.mark.parametrize("taken", [False, True], ids=["new_address", "taken_address"])
def test_a_mail_server_failure_keeps_the_invitation_and_its_resend(
    error, taken, make_user, auth_client, org, settings, monkeypatch
):
    """The invitation (or, for an address with an account, its owner's notice) is not
    sent: the invitation stands, email_sent is False and the token is answered; a
    resend the same."""
    monkeypatch.setattr(SmtpFailing, "error", error)
    settings.EMAIL_BACKEND = f"{__name__}.SmtpFailing"
    if taken:
        make_user(CLIENT, email="invitee@example.com")
    staff = auth_client(make_user(STAFF))
    resp = invite(staff, org)
    assert resp.status_code == 201, resp.content
    assert resp.json()["email_sent"] is False and resp.json()["token"]
    [invitation] = Invitation.objects.filter(email="invitee@example.com")
    assert invitation.token_hash == hash_invitation_token(resp.json()["token"])
    resent = staff.post(
        f"/api/organizations/{org.pk}/invitations/{invitation.pk}/resend"
    )
    assert resent.status_code == 200, resent.content
    assert resent.json()["email_sent"] is False and resent.json()["token"]


def test_the_file_backend_that_cannot_write_keeps_the_invitation(
    make_user, auth_client, org, settings, tmp_path
):
    """The default backend (core.mail_backends) with a path that is not a directory:
    ImproperlyConfigured at send time, the same as a mail server that is down."""
    settings.EMAIL_BACKEND = "core.mail_backends.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "a-file")
    (tmp_path / "a-file").write_text("")
    resp = invite(auth_client(make_user(STAFF)), org)
    assert resp.status_code == 201
    assert resp.json()["email_sent"] is False and resp.json()["token"]


def test_an_invitation_template_error_is_a_500_not_an_unsent_email(
    make_user, auth_client, org, monkeypatch, caplog
):
    """A template bug is not taken for a mail server that is down: the request fails
    (500) and "could not send" is not logged. The invitation was committed before
    the mail: a resend mails it once the template is fixed."""

    def render(name, context=None):
        raise TemplateSyntaxError(f"a bug in {name}")

    monkeypatch.setattr("core.emails.render_to_string", render)
    with caplog.at_level(logging.ERROR):
        resp = invite(auth_client(make_user(STAFF)), org)
    assert_error(resp, 500, "internal_error")
    assert not [r for r in caplog.records if "could not send" in r.getMessage()]
    assert mail.outbox == []


def test_client_inviting_gets_403_even_with_a_bad_body(make_user, auth_client, org):
    resp = auth_client(make_user(CLIENT)).post(
        f"/api/organizations/{org.pk}/invitations", {}, format="json"
    )
    assert_error(resp, 403, "permission_denied")


# --- Resend and revoke (README "Lifecycle") ---------------------------------------------


def _register_with(token, email="invitee@example.com"):
    from rest_framework.test import APIClient

    return APIClient().post(
        "/api/auth/register",
        {"email": email, "password": "Long-enough-passphrase-1", "invitation": token},
        format="json",
    )


def test_resend_makes_a_new_link_and_the_old_one_stops(make_user, auth_client, org):
    cpa = auth_client(make_user(CPA))
    first = invite(cpa, org).json()
    mail.outbox.clear()
    resent = cpa.post(f"/api/organizations/{org.pk}/invitations/{first['id']}/resend")
    assert resent.status_code == 200
    body = resent.json()
    assert body["id"] == first["id"] and body["token"] != first["token"]
    assert body["expires_at"] >= first["expires_at"]
    assert [m.to for m in mail.outbox] == [["invitee@example.com"]]
    assert f"/portal/signup/{body['token']}" in mail.outbox[0].body
    old = _register_with(first["token"])
    assert "invitation" in assert_error(old, 400, "validation_error")["details"]
    assert _register_with(body["token"]).status_code == 201
    assert AuditEvent.objects.filter(action="invitation.resent").count() == 1


def test_revoke_withdraws_the_link(make_user, auth_client, org):
    staff = auth_client(make_user(STAFF))
    created = invite(staff, org).json()
    response = staff.delete(f"/api/organizations/{org.pk}/invitations/{created['id']}")
    assert response.status_code == 204
    error = assert_error(_register_with(created["token"]), 400, "validation_error")
    assert "no longer valid" in error["details"]["invitation"][0]
    listed = staff.get(f"/api/organizations/{org.pk}/invitations").json()
    assert listed["count"] == 0  # the list is of pending invitations
    # Withdrawn once: a second revoke or a resend is refused.
    again = staff.delete(f"/api/organizations/{org.pk}/invitations/{created['id']}")
    assert "invitation" in assert_error(again, 400, "validation_error")["details"]
    resend = staff.post(
        f"/api/organizations/{org.pk}/invitations/{created['id']}/resend"
    )
    assert_error(resend, 400, "validation_error")
    event = AuditEvent.objects.get(action="invitation.revoked")
    assert event.organization_id == org.pk


def test_an_accepted_invitation_cannot_be_resent(make_user, auth_client, org):
    staff = auth_client(make_user(STAFF))
    created = invite(staff, org).json()
    assert _register_with(created["token"]).status_code == 201
    resend = staff.post(
        f"/api/organizations/{org.pk}/invitations/{created['id']}/resend"
    )
    assert_error(resend, 400, "validation_error")


def test_pending_list_shape(make_user, auth_client, org):
    staff_user = make_user(STAFF)
    staff = auth_client(staff_user)
    invite(staff, org)
    result = staff.get(f"/api/organizations/{org.pk}/invitations").json()["results"]
    assert result[0]["invited_by"] == staff_user.pk
    assert {"id", "email", "role", "invited_by", "created_at", "expires_at"} <= set(
        result[0]
    )
    assert "token" not in result[0]


@pytest.mark.parametrize("inv", ["999999", "99999999999999999999"])
def test_unknown_or_huge_invitation_id_is_404(make_user, auth_client, org, inv):
    staff = auth_client(make_user(STAFF))
    response = staff.post(f"/api/organizations/{org.pk}/invitations/{inv}/resend")
    assert_error(response, 404, "not_found")


def test_another_organizations_invitation_is_404_even_by_its_id(
    make_user, auth_client, org, other_org
):
    admin = auth_client(make_user(ADMIN))
    foreign = invite(admin, other_org).json()
    staff = auth_client(make_user(STAFF))
    # Through the caller's own organization's URL: still not found.
    for url in (
        f"/api/organizations/{org.pk}/invitations/{foreign['id']}/resend",
        f"/api/organizations/{other_org.pk}/invitations/{foreign['id']}/resend",
    ):
        assert_error(staff.post(url), 404, "not_found")
