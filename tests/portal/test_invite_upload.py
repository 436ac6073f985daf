"""Inviting a client and uploading documents from the portal, and the admin actions."""

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django_otp.plugins.otp_totp.models import TOTPDevice

from auditlog.models import AuditEvent
from core.roles import Role
from organizations.models import Document, Invitation
from tests.portal.conftest import PDF_BYTES

INVITE = "/portal/clients/invite"
UPLOAD = "/portal/documents/upload"


@pytest.mark.parametrize("role", [Role.CPA, Role.STAFF])
def test_invite_a_client(signed_in, role, org):
    browser, inviter = signed_in(role)
    response = browser.post(INVITE, {"email": "New.Client@Example.com"})
    assert response.status_code == 302 and response["Location"] == "/portal/clients"
    invitation = Invitation.objects.get()
    assert (invitation.email, invitation.role, invitation.organization) == (
        "new.client@example.com",
        Role.CLIENT,
        org,
    )
    assert invitation.created_by == inviter
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new.client@example.com"]
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.INVITATION_CREATED, actor=inviter
    ).exists()
    page = browser.get("/portal/clients")
    assert b"Invitation sent to new.client@example.com" in page.content


@pytest.mark.parametrize(
    ("email", "message"),
    [("not-an-email", b"valid email"), ("", b"required")],
)
def test_invite_bad_email_beside_field(signed_in, email, message):
    browser, _ = signed_in(Role.CPA)
    response = browser.post(INVITE, {"email": email})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_email_errors"' in html
    assert message in response.content
    assert not Invitation.objects.exists()


def test_inviting_an_existing_user_looks_like_any_invitation(signed_in, make_user):
    existing = make_user(Role.CLIENT)
    browser, _ = signed_in(Role.CPA)
    response = browser.post(INVITE, {"email": existing.email}, follow=True)
    assert response.status_code == 200
    assert f"Invitation sent to {existing.email}".encode() in response.content
    assert b"already has an account" not in response.content


def test_client_cannot_invite(signed_in):
    browser, _ = signed_in(Role.CLIENT)
    assert browser.post(INVITE, {"email": "x@example.com"}).status_code == 404
    assert not Invitation.objects.exists()


def _pdf(name="return.pdf", content=PDF_BYTES, content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def test_cpa_uploads_for_a_client(signed_in, make_user):
    client_user = make_user(Role.CLIENT)
    browser, cpa = signed_in(Role.CPA)
    response = browser.post(
        UPLOAD,
        {
            "owner": client_user.pk,
            "title": "2025 return",
            "file": _pdf(),
            "back": "client",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"/portal/clients/{client_user.pk}"
    doc = Document.objects.get()
    assert (doc.owner, doc.uploaded_by, doc.title) == (client_user, cpa, "2025 return")
    assert doc.content_type == "application/pdf"
    download = browser.get(f"/portal/documents/{doc.pk}/download")
    assert b"".join(download.streaming_content) == PDF_BYTES


def test_client_uploads_for_itself(signed_in):
    browser, me = signed_in(Role.CLIENT)
    html = browser.get("/portal/documents").content.decode()
    assert 'name="owner"' not in html  # no owner choice for a client
    response = browser.post(UPLOAD, {"title": "", "file": _pdf("w2.pdf")})
    assert response.status_code == 302
    doc = Document.objects.get()
    assert doc.owner == me and doc.title == "w2.pdf"


def test_upload_owner_outside_scope_is_refused(signed_in, make_user, other_org):
    foreign = make_user(Role.CLIENT, organization=other_org)
    colleague = make_user(Role.CPA)
    browser, _ = signed_in(Role.CPA)
    for owner in (foreign, colleague):
        response = browser.post(UPLOAD, {"owner": owner.pk, "file": _pdf()})
        assert response.status_code == 400
        assert 'id="id_owner_errors"' in response.content.decode()
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("evil.pdf", b"MZ\x90\x00 not a pdf at all", b"not accepted"),
        ("fake.pdf", b"plain text pretending", b"does not match its name"),
        ("empty.pdf", b"", b"empty"),
    ],
)
def test_upload_type_decided_by_bytes(signed_in, make_user, name, content, message):
    client_user = make_user(Role.CLIENT)
    browser, _ = signed_in(Role.CPA)
    response = browser.post(
        UPLOAD, {"owner": client_user.pk, "file": _pdf(name, content)}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_file_errors"' in html
    assert message in response.content, html[html.index("id_file_errors") :][:300]
    assert not Document.objects.exists()


def test_upload_too_large(signed_in, make_user, settings):
    settings.XENX_MAX_UPLOAD_BYTES = 10
    client_user = make_user(Role.CLIENT)
    browser, _ = signed_in(Role.CPA)
    response = browser.post(UPLOAD, {"owner": client_user.pk, "file": _pdf()})
    _assert_too_large_form(response)
    assert not Document.objects.exists()


def _assert_too_large_form(response):
    """The upload form again (413), the error beside its file field."""
    assert response.status_code == 413
    html = response.content.decode()
    assert 'id="id_file_errors"' in html
    errors = html[html.index('id="id_file_errors"') :][:300]
    assert "larger than" in errors


# --- Admin actions --------------------------------------------------------------------


def _action(browser, action, users):
    return browser.post(
        "/admin/accounts/user/",
        {"action": action, "_selected_action": [u.pk for u in users]},
        follow=True,
    )


def test_staff_deactivate_activate_reset_mfa_audited(signed_in, make_user):
    browser, staff = signed_in(Role.STAFF)
    target = make_user(Role.CLIENT)
    TOTPDevice.objects.create(user=target, name="app", confirmed=True)

    response = _action(browser, "deactivate_users", [target])
    assert b"Deactivated: 1 user(s)." in response.content
    target.refresh_from_db()
    assert not target.is_active
    response = _action(browser, "activate_users", [target])
    target.refresh_from_db()
    assert target.is_active
    response = _action(browser, "reset_mfa", [target])
    assert not TOTPDevice.objects.filter(user=target).exists()
    actions = set(
        AuditEvent.objects.filter(actor=staff, target_id=str(target.pk)).values_list(
            "action", flat=True
        )
    )
    assert actions == {"user.deactivated", "user.activated", "mfa.reset"}


def test_staff_actions_skip_foreign_and_self(signed_in, make_user, other_org):
    browser, staff = signed_in(Role.STAFF)
    foreign = make_user(Role.CLIENT, organization=other_org)
    _action(browser, "deactivate_users", [foreign])
    foreign.refresh_from_db()
    assert foreign.is_active  # outside the scoped queryset: untouched
    response = _action(browser, "deactivate_users", [staff])
    assert b"Not changed" in response.content
    staff.refresh_from_db()
    assert staff.is_active


def test_pending_invitations_listed_in_scope(signed_in, org, other_org):
    from organizations.services import invitation_create

    invitation_create(organization=org, email="waiting@example.com", role=Role.CLIENT)
    invitation_create(
        organization=other_org, email="elsewhere@example.com", role=Role.CLIENT
    )
    browser, _ = signed_in(Role.CPA)
    html = browser.get("/portal/clients").content.decode()
    assert "waiting@example.com" in html
    assert "elsewhere@example.com" not in html


def test_upload_body_over_the_limit_is_not_read(signed_in, make_user, settings):
    settings.XENX_MAX_UPLOAD_BYTES = 100
    client_user = make_user(Role.CLIENT)
    browser, _ = signed_in(Role.CPA)
    big = _pdf(content=PDF_BYTES + b"x" * 200_000)
    response = browser.post(UPLOAD, {"owner": client_user.pk, "file": big})
    _assert_too_large_form(response)
    assert not Document.objects.exists()


def test_upload_part_over_the_limit_is_stopped(signed_in, make_user, settings):
    # A body a little over the limit passes the Content-Length guard; the upload
    # handler stops the file part as it passes the limit.
    settings.XENX_MAX_UPLOAD_BYTES = 1000
    client_user = make_user(Role.CLIENT)
    browser, _ = signed_in(Role.CPA)
    response = browser.post(
        UPLOAD, {"owner": client_user.pk, "file": _pdf(content=PDF_BYTES * 40)}
    )
    _assert_too_large_form(response)
    assert not Document.objects.exists()


def test_upload_still_needs_csrf_token(make_user):
    from django.test import Client

    client_user = make_user(Role.CLIENT)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(client_user, backend="accounts.backends.EmailBackend")
    response = browser.post(UPLOAD, {"file": _pdf()})
    assert response.status_code == 403
    assert not Document.objects.exists()


def test_upload_needs_login(db):
    from django.test import Client

    response = Client().post(UPLOAD, {"file": _pdf()})
    assert response.status_code == 302
    assert response["Location"].startswith("/portal/login")
