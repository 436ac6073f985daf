"""Django admin: staff scoped to their organization, admins everywhere, the second factor
to get in, audit events read-only."""

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.admin import role_change_errors
from accounts.models import User
from auditlog.models import AuditEvent
from core.roles import Role

CHANGELIST = "/admin/accounts/user/"


def _change_url(user):
    return f"/admin/accounts/user/{user.pk}/change/"


def _form_data(user, **overrides):
    data = {
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email_verified": "on" if user.email_verified else "",
        "role": user.role,
        "organization": user.organization_id or "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v != ""}


@pytest.fixture
def staff_admin(signed_in):
    return signed_in(Role.STAFF)


def test_staff_changelist_shows_only_own_org(staff_admin, make_user, other_org):
    browser, staff = staff_admin
    mine = make_user(Role.CLIENT, email="mine@example.com")
    foreign = make_user(Role.CLIENT, organization=other_org, email="foreign@x.com")
    response = browser.get(CHANGELIST)
    assert response.status_code == 200
    emails = {u.email for u in response.context["cl"].result_list}
    assert emails == {staff.email, mine.email}
    assert foreign.email.encode() not in response.content
    # The organization filter lists only the staff member's own organization.
    assert other_org.name.encode() not in response.content


def test_admin_changelist_shows_everyone(signed_in, make_user, other_org):
    browser, _ = signed_in(Role.ADMIN)
    foreign = make_user(Role.CLIENT, organization=other_org)
    response = browser.get(CHANGELIST)
    assert foreign.email.encode() in response.content


def test_search_and_filters(staff_admin, make_user):
    browser, _ = staff_admin
    make_user(Role.CLIENT, email="findme@example.com")
    make_user(Role.CPA, email="cpa-person@example.com", is_active=False)
    found = browser.get(CHANGELIST, {"q": "findme"}).context["cl"].result_list
    assert [u.email for u in found] == ["findme@example.com"]
    by_role = browser.get(CHANGELIST, {"role__exact": "cpa"}).context["cl"].result_list
    assert [u.email for u in by_role] == ["cpa-person@example.com"]
    inactive = browser.get(CHANGELIST, {"is_active__exact": "0"}).context["cl"]
    assert [u.email for u in inactive.result_list] == ["cpa-person@example.com"]


def test_mfa_filter(staff_admin, make_user):
    browser, _ = staff_admin
    with_mfa = make_user(Role.CLIENT)
    TOTPDevice.objects.create(user=with_mfa, name="app", confirmed=True)
    unconfirmed = make_user(Role.CLIENT)
    TOTPDevice.objects.create(user=unconfirmed, name="app", confirmed=False)
    on = browser.get(CHANGELIST, {"mfa": "yes"}).context["cl"].result_list
    assert [u.pk for u in on] == [with_mfa.pk]
    off = browser.get(CHANGELIST, {"mfa": "no"}).context["cl"].result_list
    assert with_mfa.pk not in {u.pk for u in off}
    assert unconfirmed.pk in {u.pk for u in off}


def test_foreign_user_change_page_is_not_found(staff_admin, make_user, other_org):
    browser, _ = staff_admin
    foreign = make_user(Role.CLIENT, organization=other_org)
    response = browser.get(_change_url(foreign))
    # Django admin answers a missing object with a redirect to the admin index.
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    response = browser.post(_change_url(foreign), _form_data(foreign, first_name="X"))
    assert response.status_code == 302
    foreign.refresh_from_db()
    assert foreign.first_name != "X"


def test_staff_role_choices_exclude_admin(staff_admin, make_user, org, other_org):
    browser, _ = staff_admin
    client = make_user(Role.CLIENT)
    form = browser.get(_change_url(client)).context["adminform"].form
    assert [c[0] for c in form.fields["role"].choices if c[0]] == [
        "staff",
        "cpa",
        "client",
    ]
    assert list(form.fields["organization"].queryset) == [org]


def test_staff_cannot_grant_admin(staff_admin, make_user):
    browser, _ = staff_admin
    client = make_user(Role.CLIENT)
    response = browser.post(_change_url(client), _form_data(client, role="admin"))
    assert response.status_code == 200  # the form again, with an error
    assert response.context["adminform"].form.errors["role"]
    client.refresh_from_db()
    assert client.role == Role.CLIENT


def test_staff_cannot_move_user_to_other_org(staff_admin, make_user, other_org):
    browser, _ = staff_admin
    client = make_user(Role.CLIENT)
    response = browser.post(
        _change_url(client), _form_data(client, organization=other_org.pk)
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["organization"]
    response = browser.post(_change_url(client), _form_data(client, organization=""))
    assert response.context["adminform"].form.errors["organization"]
    client.refresh_from_db()
    assert client.organization_id != other_org.pk and client.organization_id


def test_staff_can_change_role_within_org_and_it_is_audited(staff_admin, make_user):
    browser, _ = staff_admin
    client = make_user(Role.CLIENT)
    response = browser.post(_change_url(client), _form_data(client, role="cpa"))
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.role == Role.CPA
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.USER_ROLE_CHANGED, target_id=str(client.pk)
    ).exists()


def test_staff_cannot_add_admin(staff_admin, org):
    browser, _ = staff_admin
    response = browser.post(
        "/admin/accounts/user/add/",
        {
            "email": "newadmin@example.com",
            "role": "admin",
            "organization": org.pk,
            "password1": "An0ther-long-passphrase",
            "password2": "An0ther-long-passphrase",
        },
    )
    assert response.status_code == 200
    assert not User.objects.filter(email="newadmin@example.com").exists()


def test_staff_cannot_change_an_admin_in_their_org(staff_admin, make_user, org):
    browser, _ = staff_admin
    boss = make_user(Role.ADMIN, organization=org)
    response = browser.post(_change_url(boss), _form_data(boss, role="client"))
    assert response.status_code == 403
    boss.refresh_from_db()
    assert boss.role == Role.ADMIN


def test_server_side_rule_whatever_the_form():
    class Actor:
        is_authenticated = is_active = True
        role = Role.STAFF
        organization_id = 1

    class Target:
        pk, role = 5, Role.CLIENT

    assert role_change_errors(Actor(), Target(), {"role": Role.ADMIN})
    assert role_change_errors(Actor(), Target(), {"organization": None})
    assert not role_change_errors(Actor(), Target(), {"role": Role.CPA})


def test_admin_can_grant_admin(signed_in, make_user):
    browser, _ = signed_in(Role.ADMIN)
    client = make_user(Role.CLIENT)
    response = browser.post(_change_url(client), _form_data(client, role="admin"))
    assert response.status_code == 302
    client.refresh_from_db()
    assert client.role == Role.ADMIN


def test_staff_sees_own_org_only_in_organizations(staff_admin, org, other_org):
    browser, _ = staff_admin
    response = browser.get("/admin/organizations/organization/")
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [org]
    assert (
        browser.get(f"/admin/organizations/organization/{other_org.pk}/change/")[
            "Location"
        ]
        == "/admin/"
    )
    # View only: no saving the organization.
    response = browser.post(
        f"/admin/organizations/organization/{org.pk}/change/",
        {"name": "Renamed", "slug": org.slug},
    )
    assert response.status_code == 403


def test_documents_admin_scoped(staff_admin, make_user, other_org, make_document):
    browser, _ = staff_admin
    mine = make_document(make_user(Role.CLIENT), title="Ours")
    make_document(make_user(Role.CLIENT, organization=other_org), title="Theirs")
    response = browser.get("/admin/organizations/document/")
    assert response.status_code == 200
    assert [d.pk for d in response.context["cl"].result_list] == [mine.pk]


def test_audit_events_are_read_only(signed_in, make_user):
    browser, admin = signed_in(Role.ADMIN)
    from auditlog import audit

    event = audit.record(audit.Action.LOGOUT, actor=admin, target=admin)
    url = f"/admin/auditlog/auditevent/{event.pk}/change/"
    response = browser.get(url)
    assert response.status_code == 200
    assert b'name="_save"' not in response.content
    assert browser.post(url, {"action": "login.failed"}).status_code == 403
    assert browser.get("/admin/auditlog/auditevent/add/").status_code == 403
    assert (
        browser.post(f"/admin/auditlog/auditevent/{event.pk}/delete/").status_code
        == 403
    )


# --- Getting in ---------------------------------------------------------------------


def test_admin_login_is_the_portal_login(db):
    response = Client().get("/admin/")
    assert response.status_code == 302
    login = Client().get(response["Location"])
    assert login.status_code == 302
    assert login["Location"].startswith("/portal/login?next=/admin/")


@pytest.mark.parametrize("role", [Role.CPA, Role.CLIENT])
def test_non_staff_roles_cannot_enter_admin(signed_in, role):
    browser, _ = signed_in(role)
    response = browser.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0] == "/portal/"
    assert b"cannot use the admin site" in response.content


def _with_device(user):
    return TOTPDevice.objects.create(user=user, name="app", confirmed=True)


def test_staff_with_totp_must_pass_it(signed_in):
    browser, staff = signed_in(Role.STAFF)
    _with_device(staff)
    response = browser.get("/admin/")
    assert response.status_code == 302
    response = browser.get(response["Location"])
    # The unverified session is ended and sent to the two-step login.
    assert response["Location"].startswith("/portal/login?next=/admin/")
    assert "_auth_user_id" not in browser.session


def test_staff_with_verified_session_enters(signed_in):
    browser, staff = signed_in(Role.STAFF)
    device = _with_device(staff)
    session = browser.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    assert browser.get("/admin/").status_code == 200
    assert browser.get(CHANGELIST).status_code == 200


def test_staff_sets_password_in_admin_revokes_tokens_and_audits(
    staff_admin, make_user, auth_client, other_org
):
    from tests.conftest import assert_error

    browser, staff = staff_admin
    client = make_user(Role.CLIENT)
    api = auth_client(client)
    url = f"/admin/accounts/user/{client.pk}/password/"
    new = "brand-new-passphrase-31"
    response = browser.post(
        url, {"password1": new, "password2": new, "usable_password": "true"}
    )
    assert response.status_code == 302, response.content[:2000]
    client.refresh_from_db()
    assert client.check_password(new)
    assert_error(api.get("/api/auth/me"), 401, "token_revoked")
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.PASSWORD_RESET, actor=staff, target_id=str(client.pk)
    ).exists()
    foreign = make_user(Role.CLIENT, organization=other_org)
    assert (
        browser.get(f"/admin/accounts/user/{foreign.pk}/password/").status_code == 404
    )


def test_admin_organization_changes_are_audited(signed_in, org):
    browser, admin = signed_in(Role.ADMIN)
    url = f"/admin/organizations/organization/{org.pk}/change/"
    response = browser.post(
        url, {"name": org.name, "slug": org.slug, "mfa_required": "on"}
    )  # is_active unticked: deactivates
    assert response.status_code == 302, response.content[:1500]
    org.refresh_from_db()
    assert org.mfa_required and not org.is_active
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.ORGANIZATION_DEACTIVATED, actor=admin
    ).exists()
    response = browser.post(
        "/admin/organizations/organization/add/",
        {"name": "New Firm", "slug": "new-firm", "is_active": "on"},
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.ORGANIZATION_CREATED, target_repr="New Firm"
    ).exists()


def test_document_delete_in_admin_is_audited_and_scoped(
    staff_admin, make_user, other_org, make_document
):
    browser, staff = staff_admin
    mine = make_document(make_user(Role.CLIENT))
    foreign = make_document(make_user(Role.CLIENT, organization=other_org))
    browser.post(
        "/admin/organizations/document/",
        {
            "action": "delete_selected",
            "_selected_action": [mine.pk, foreign.pk],
            "post": "yes",
        },
    )
    from organizations.models import Document

    assert list(Document.objects.values_list("pk", flat=True)) == [foreign.pk]
    assert (
        AuditEvent.objects.filter(
            action=AuditEvent.Action.DOCUMENT_DELETED, actor=staff
        ).count()
        == 1
    )


def test_every_accounts_and_organizations_admin_is_scoped_for_staff(
    staff_admin, make_user, other_org, make_document
):
    """Any changelist of these apps staff can open lists only rows ``visible`` gives."""
    from django.contrib import admin as django_admin

    from accounts.oidc.services import application_create
    from accounts.tokens import issue_tokens
    from auditlog import audit
    from organizations.scoping import visible
    from organizations.services import invitation_create

    browser, staff = staff_admin
    foreign_client = make_user(Role.CLIENT, organization=other_org)
    make_document(foreign_client)
    invitation_create(organization=other_org, email="f@example.com", role=Role.CLIENT)
    audit.record(audit.Action.LOGOUT, actor=foreign_client, target=foreign_client)
    issue_tokens(foreign_client, mfa=False)  # a session (accounts.UserSession)
    application_create(  # an application of the other organization
        actor=make_user(Role.ADMIN),
        name="Foreign app",
        client_type="confidential",
        grant_types=["authorization_code"],
        redirect_uris=["https://app.example.com/cb"],
        organization=other_org,
    )
    checked = 0
    for model in django_admin.site._registry:
        if model._meta.app_label not in ("accounts", "organizations"):
            continue
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        response = browser.get(url)
        if response.status_code == 403:
            continue
        assert response.status_code == 200, url
        shown = {obj.pk for obj in response.context["cl"].result_list}
        allowed = set(visible(staff, model).values_list("pk", flat=True))
        assert shown <= allowed, url
        assert model.objects.exclude(pk__in=allowed).exists(), url  # not vacuous
        checked += 1
    assert checked >= 4  # users, audit events, organizations, documents, invitations
