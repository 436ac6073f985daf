"""Sessions on the portal account page and in Django admin (README "Tokens, keys and sessions")."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import UserSession
from auditlog.models import AuditEvent
from core.roles import Role
from tests.conftest import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/accounts/usersession/"


def _browser(user, agent="Browser/1.0"):
    browser = Client(HTTP_USER_AGENT=agent)
    browser.force_login(user, backend="accounts.backends.EmailBackend")
    return browser


def _api_login(user, agent="App/1.0"):
    response = APIClient().post(
        "/api/auth/login",
        {"email": user.email, "password": DEFAULT_PASSWORD},
        format="json",
        HTTP_USER_AGENT=agent,
    )
    assert response.status_code == 200
    return response.json()


def _signed_in(browser) -> bool:
    return browser.get("/portal/account").status_code == 200


def test_account_page_lists_api_and_portal_sessions(make_user):
    user = make_user(Role.CPA)
    _api_login(user, "App/1.0")
    other_browser = _browser(user, "Other/1.0")
    assert _signed_in(other_browser)
    browser = _browser(user, "Mine/1.0")
    page = browser.get("/portal/account").content.decode()
    assert "Where you are signed in" in page
    rows = UserSession.objects.filter(user=user)
    assert rows.count() == 3
    for row in rows:
        assert f"/portal/account/sessions/{row.pk}/end" in page
    assert page.count("This session") == 1
    assert "App/1.0" in page


def test_sign_out_another_portal_session(make_user):
    user = make_user(Role.CLIENT)
    phone = _browser(user, "Phone/1.0")
    assert _signed_in(phone)
    laptop = _browser(user, "Laptop/1.0")
    assert _signed_in(laptop)
    row = UserSession.objects.get(user=user, last_user_agent="Phone/1.0")
    response = laptop.post(f"/portal/account/sessions/{row.pk}/end")
    assert response.status_code == 302 and response["Location"] == "/portal/account"
    assert not _signed_in(phone)  # redirected to the login page
    assert _signed_in(laptop)
    event = AuditEvent.objects.get(action=AuditEvent.Action.SESSION_ENDED)
    assert event.data == {"session": row.pk, "kind": "portal", "via": "portal"}
    assert (
        f"/portal/account/sessions/{row.pk}/end"
        not in laptop.get("/portal/account").content.decode()
    )


def test_sign_out_this_portal_session(make_user):
    user = make_user(Role.CLIENT)
    browser = _browser(user)
    assert _signed_in(browser)
    row = UserSession.objects.get(user=user, kind="portal")
    response = browser.post(f"/portal/account/sessions/{row.pk}/end")
    assert response.status_code == 302 and response["Location"] == "/portal/login"
    assert not _signed_in(browser)


def test_sign_out_an_api_session_from_the_portal(make_user):
    user = make_user(Role.CLIENT)
    tokens = _api_login(user)
    browser = _browser(user)
    row = UserSession.objects.get(user=user, kind="api")
    assert browser.post(f"/portal/account/sessions/{row.pk}/end").status_code == 302
    me = APIClient().get(
        "/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"
    )
    assert me.status_code == 401 and me.json()["error"]["code"] == "token_revoked"


def test_another_users_session_is_404_in_the_portal(make_user):
    user, other = make_user(Role.CLIENT), make_user(Role.CLIENT)
    _api_login(other)
    theirs = UserSession.objects.get(user=other)
    browser = _browser(user)
    assert browser.post(f"/portal/account/sessions/{theirs.pk}/end").status_code == 404
    assert browser.post("/portal/account/sessions/999999/end").status_code == 404
    assert UserSession.objects.get(pk=theirs.pk).ended_at is None


def test_sign_out_needs_post_and_csrf(make_user):
    user = make_user(Role.CLIENT)
    _api_login(user)
    row = UserSession.objects.get(user=user, kind="api")
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user, backend="accounts.backends.EmailBackend")
    assert browser.get(f"/portal/account/sessions/{row.pk}/end").status_code == 405
    assert browser.post(f"/portal/account/sessions/{row.pk}/end").status_code == 403
    assert UserSession.objects.get(pk=row.pk).ended_at is None


def test_anonymous_sign_out_goes_to_login(make_user):
    response = Client().post("/portal/account/sessions/1/end")
    assert response.status_code == 302 and "/portal/login" in response["Location"]


# --- Django admin -------------------------------------------------------------------


def test_staff_see_their_organizations_sessions_only(make_user, other_org):
    staff = make_user(Role.STAFF)
    colleague = make_user(Role.CPA)
    foreigner = make_user(Role.CPA, organization=other_org)
    admin = make_user(Role.ADMIN, organization=staff.organization)
    for user in (colleague, foreigner, admin):
        _api_login(user)
    page = _browser(staff).get(CHANGELIST)
    assert page.status_code == 200
    listed = {s.user for s in page.context["cl"].queryset}
    assert colleague in listed
    assert foreigner not in listed and admin not in listed
    foreign_row = UserSession.objects.get(user=foreigner)
    response = _browser(staff).post(
        CHANGELIST, {"action": "end_sessions", "_selected_action": [foreign_row.pk]}
    )
    assert response.status_code in (200, 302)
    assert UserSession.objects.get(pk=foreign_row.pk).ended_at is None


def test_admins_see_everyones_sessions_and_end_them_audited(make_user, other_org):
    admin = make_user(Role.ADMIN)
    victim = make_user(Role.CLIENT, organization=other_org)
    tokens = _api_login(victim)
    browser = _browser(admin)
    listing = browser.get(f"{CHANGELIST}?user__id__exact={victim.pk}")
    rows = list(listing.context["cl"].queryset)
    assert [r.user for r in rows] == [victim]
    response = browser.post(
        CHANGELIST, {"action": "end_sessions", "_selected_action": [rows[0].pk]}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action=AuditEvent.Action.SESSION_ENDED)
    assert event.actor == admin and event.data["via"] == "admin"
    me = APIClient().get(
        "/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"
    )
    assert me.status_code == 401


def test_admin_ends_a_portal_session(make_user):
    admin, user = make_user(Role.ADMIN), make_user(Role.CLIENT)
    victim_browser = _browser(user)
    assert _signed_in(victim_browser)
    row = UserSession.objects.get(user=user, kind="portal")
    _browser(admin).post(
        CHANGELIST, {"action": "end_sessions", "_selected_action": [row.pk]}
    )
    assert not _signed_in(victim_browser)


@pytest.mark.parametrize("role", [Role.CPA, Role.CLIENT])
def test_other_roles_cannot_open_the_sessions_admin(role, make_user):
    response = _browser(make_user(role)).get(CHANGELIST)
    assert response.status_code in (302, 403, 404)


def test_sessions_are_read_only_in_admin(make_user):
    admin = make_user(Role.ADMIN)
    _api_login(admin)
    row = UserSession.objects.get(user=admin, kind="api")
    browser = _browser(admin)
    assert browser.get(f"{CHANGELIST}add/").status_code == 403
    page = browser.get(f"{CHANGELIST}{row.pk}/change/")
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
