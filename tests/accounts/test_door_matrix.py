"""The door matrix (issue 9, README "Identity" "every door"): one policy decides whether a session
may act, and one write path per security action revokes and audits, whether the
request came through the API, the gateway, the portal, Django admin or a command.

Outcomes are compared in door-neutral terms: ALLOW (the page or call answers), ENROL
(sent to / refused for two-factor enrolment: 403 ``mfa_required`` or the account page),
REFUSED (401 ``token_revoked`` or back to the login page).
"""

from __future__ import annotations

import time

import jwt
import pyotp
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts import mfa, services, token_services
from accounts.passwords import password_change
from accounts.tokens import decode_access_token, issue_tokens
from auditlog.models import AuditEvent
from core.roles import Role
from organizations.services import organization_deactivate, organization_update
from tests.conftest import DEFAULT_PASSWORD, OrganizationFactory, UserFactory
from tests.gateway.conftest import (  # noqa: F401  fixtures
    _closed_pools,
    make_service,
    upstream,
    upstream_factory,
)
from tests.support.login import api_login

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("totp_clock")]

ALLOW, ENROL, REFUSED = "allow", "enrol", "refused"
DOORS = ("api", "gateway", "portal", "admin")
NEW_PASSWORD = "another-horse-battery-staple-77"


# --- credentials and probes -----------------------------------------------------------


def _totp_code(secret: str) -> str:
    return pyotp.TOTP(secret).at(mfa.now())  # the frozen clock (totp_clock)


def _enrol(user, *, spare_session=None):
    started = mfa.totp_begin_enrolment(user=user, password=DEFAULT_PASSWORD)
    # A code of the previous step keeps the current one free for the test.
    code = pyotp.TOTP(started["secret"]).at(mfa.now() - 30)
    mfa.totp_confirm(user=user, code=code, spare_session=spare_session)
    user.refresh_from_db()
    return started["secret"]


def _browser(user, *, verified: bool) -> Client:
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if verified and device is not None:
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
    return client


def _credential(door, user, *, verified=False):
    if door in ("api", "gateway"):
        return issue_tokens(user, mfa=verified)["access"]
    return _browser(user, verified=verified)


def _classify_page(client, response):
    if response.status_code == 302 and response["Location"].startswith("/admin/login/"):
        response = client.get(response["Location"])
    if response.status_code == 200:
        return ALLOW
    assert response.status_code == 302, response.status_code
    location = response["Location"]
    if location.startswith("/portal/account"):
        return ENROL
    assert location.startswith("/portal/login"), location
    return REFUSED


def _classify_call(response):
    if response.status_code == 200:
        return ALLOW
    code = response.json()["error"]["code"]
    if response.status_code == 403 and code == "mfa_required":
        return ENROL
    assert (response.status_code, code) == (401, "token_revoked"), response.content
    return REFUSED


@pytest.fixture
def door_service(make_service, upstream):  # noqa: F811
    return make_service("door", [upstream.url])


def probe(door, credential):
    """What ``door`` answers this credential now."""
    if door == "api":
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
        return _classify_call(client.get("/api/users"))
    if door == "gateway":
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {credential}")
        return _classify_call(client.get("/api/door/x"))
    path = "/portal/" if door == "portal" else "/admin/"
    return _classify_page(credential, credential.get(path))


# --- "may this session act": state × door ----------------------------------------------


def _require_mfa(user):
    organization_update(organization=user.organization, mfa_required=True)


def _enrolled_elsewhere(user):
    _enrol(user)  # confirmed in another session: this one did not pass it


def _password_changed_elsewhere(user):
    password_change(user=user, old_password=DEFAULT_PASSWORD, new_password=NEW_PASSWORD)


STATES = {
    # name: (before the credential, after it, verified credential, outcome)
    "active": (None, None, False, ALLOW),
    "org_mfa_required_no_totp": (None, _require_mfa, False, ENROL),
    "org_mfa_required_totp_passed": (_enrol, _require_mfa, True, ALLOW),
    "totp_passed": (_enrol, None, True, ALLOW),
    "totp_enrolled_in_another_session": (None, _enrolled_elsewhere, False, REFUSED),
    "user_deactivated": (
        None,
        lambda u: services.user_deactivate(user=u),
        False,
        REFUSED,
    ),
    "org_deactivated": (
        None,
        lambda u: organization_deactivate(organization=u.organization),
        False,
        REFUSED,
    ),
    "logout_all": (
        None,
        lambda u: token_services.logout_all(request=None, user=u),
        False,
        REFUSED,
    ),
    "password_changed_elsewhere": (None, _password_changed_elsewhere, False, REFUSED),
}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("state", list(STATES))
def test_may_act_is_decided_alike_on_every_door(state, door, door_service, org):
    before, after, verified, expected = STATES[state]
    user = UserFactory(role=Role.STAFF, organization=org)
    if before:
        before(user)
    credential = _credential(door, user, verified=verified)
    if after:
        after(user)
        user.refresh_from_db()
    assert probe(door, credential) == expected


@pytest.mark.parametrize("door", DOORS)
def test_a_fresh_credential_after_the_change_works(door, door_service, org):
    """Revocation is of what existed: a login after logout-all acts normally."""
    user = UserFactory(role=Role.STAFF, organization=org)
    token_services.logout_all(request=None, user=user)
    assert probe(door, _credential(door, user)) == ALLOW


# --- login: password step × door × account state ----------------------------------------

LOGIN_STATES = {
    # name: (setup, password, outcome, audit action)
    "ok": (None, DEFAULT_PASSWORD, "in", "login.succeeded"),
    "wrong_password": (None, "wrong-password-123456", "refused", "login.failed"),
    "user_deactivated": (
        lambda u: services.user_deactivate(user=u),
        DEFAULT_PASSWORD,
        "refused",
        "login.failed",
    ),
    "org_deactivated": (
        lambda u: organization_deactivate(organization=u.organization),
        DEFAULT_PASSWORD,
        "refused",
        "login.failed",
    ),
    "totp_enrolled": (_enrol, DEFAULT_PASSWORD, "second_step", None),
    "org_mfa_required_no_totp": (
        _require_mfa,
        DEFAULT_PASSWORD,
        "in",
        "login.succeeded",
    ),
}


def _login(door, user, password):
    if door == "api":
        response = api_login(user.email, password)
        if response.status_code == 401:
            assert response.json()["error"]["code"] == "invalid_credentials"
            return "refused", None
        body = response.json()
        return ("second_step" if body.get("mfa_required") else "in"), body
    client = Client()
    next_url = "/admin/" if door == "admin" else "/portal/"
    response = client.post(
        f"/portal/login?next={next_url}",
        {"email": user.email, "password": password, "next": next_url},
    )
    if response.status_code == 200:
        assert b"Incorrect email or password" in response.content
        return "refused", client
    if response["Location"] == "/portal/login/verify":
        return "second_step", client
    assert response["Location"] == next_url, response["Location"]
    return "in", client


@pytest.mark.parametrize("door", ("api", "portal", "admin"))
@pytest.mark.parametrize("state", list(LOGIN_STATES))
def test_login_password_step_alike_on_every_door(state, door, org):
    setup, password, expected, action = LOGIN_STATES[state]
    user = UserFactory(role=Role.STAFF, organization=org)
    if setup:
        setup(user)
    AuditEvent.objects.all().delete()
    outcome, _ = _login(door, user, password)
    assert outcome == expected
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert actions == ({action} if action else set())
    if action:
        event = AuditEvent.objects.get(action=action)
        assert event.target_id == str(user.pk)
        assert event.organization_id == user.organization_id


@pytest.mark.parametrize("door", ("api", "portal", "admin"))
@pytest.mark.parametrize("right", [True, False], ids=["right_code", "wrong_code"])
def test_login_second_step_alike_on_every_door(right, door, org, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = UserFactory(role=Role.STAFF, organization=org)
    secret = _enrol(user)
    _, state = _login(door, user, DEFAULT_PASSWORD)
    AuditEvent.objects.all().delete()
    code = _totp_code(secret) if right else "000000"
    if door == "api":
        response = APIClient().post(
            "/api/auth/mfa/verify",
            {"mfa_token": state["mfa_token"], "code": code},
            format="json",
        )
        passed = response.status_code == 200
        if passed:
            assert probe("api", response.json()["access"]) == ALLOW
    else:
        response = state.post("/portal/login/verify", {"code": code})
        passed = response.status_code == 302
        if passed:
            assert probe(door, state) == ALLOW
    assert passed is right
    actions = sorted(AuditEvent.objects.values_list("action", flat=True))
    assert actions == (["login.succeeded", "mfa.used"] if right else ["mfa.failed"])


# --- password change × door ------------------------------------------------------------


def _change_password(door, user, old):
    """Change the password through ``door``; returns (changed, the acting credential's
    next probe door and credential)."""
    if door == "api":
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {issue_tokens(user, mfa=False)['access']}"
        )
        response = client.post(
            "/api/auth/password/change",
            {"old_password": old, "new_password": NEW_PASSWORD},
            format="json",
        )
        if response.status_code == 200:
            return True, response.json()["access"], response
        return False, None, response
    client = _browser(user, verified=False)
    if door == "portal":
        response = client.post(
            "/portal/account/password",
            {
                "old_password": old,
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
            },
        )
    else:
        response = client.post(
            "/admin/password_change/",
            {
                "old_password": old,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )
    return response.status_code == 302, client, response


@pytest.mark.parametrize("door", ("api", "portal", "admin"))
@pytest.mark.parametrize("right", [True, False], ids=["right_old", "wrong_old"])
def test_password_change_alike_on_every_door(right, door, door_service, org):
    user = UserFactory(role=Role.STAFF, organization=org)
    other_token = issue_tokens(user, mfa=False)["access"]
    other_browser = _browser(user, verified=False)
    AuditEvent.objects.all().delete()
    old = DEFAULT_PASSWORD if right else "not-the-password-1"
    changed, acting, _ = _change_password(door, user, old)
    assert changed is right
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD) is right
    gone = REFUSED if right else ALLOW
    assert probe("api", other_token) == gone
    assert probe("gateway", other_token) == gone
    assert probe("portal", other_browser) == gone
    if right:  # the acting session goes on
        assert probe("portal" if door == "admin" else door, acting) == ALLOW
    events = list(AuditEvent.objects.values_list("action", "actor_id"))
    assert events == ([("password.changed", user.pk)] if right else [])


@pytest.mark.parametrize("door", ("api", "portal", "admin"))
def test_password_change_wrong_old_password_is_throttled_on_every_door(
    door, org, settings
):
    settings.XENX_RATE_LIMITS = {
        **settings.XENX_RATE_LIMITS,
        "password_change_account": "2/15m",
    }
    user = UserFactory(role=Role.STAFF, organization=org)
    for _ in range(2):
        assert _change_password(door, user, "not-the-password-1")[0] is False
    changed, _, response = _change_password(door, user, DEFAULT_PASSWORD)
    assert changed is False and response.status_code == 429
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


def test_admin_set_password_page_refuses_ones_own_account(org):
    admin = UserFactory(role=Role.ADMIN, organization=None)
    browser = _browser(admin, verified=False)
    page = f"/admin/accounts/user/{admin.pk}/password/"
    for response in (
        browser.get(page),
        browser.post(page, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD}),
    ):
        assert response.status_code == 302
        assert response["Location"] == "/admin/password_change/"
    admin.refresh_from_db()
    assert admin.check_password(DEFAULT_PASSWORD)


def test_admin_set_password_of_another_user_revokes_and_audits(door_service, org):
    admin = UserFactory(role=Role.ADMIN, organization=None)
    target = UserFactory(role=Role.STAFF, organization=org)
    token = issue_tokens(target, mfa=False)["access"]
    response = _browser(admin, verified=False).post(
        f"/admin/accounts/user/{target.pk}/password/",
        {
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert target.check_password(NEW_PASSWORD)
    assert probe("gateway", token) == REFUSED
    event = AuditEvent.objects.get(action="password.reset")
    assert (event.actor_id, event.organization_id) == (admin.pk, org.pk)


def test_seed_demo_password_reset_revokes(door_service, db):
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    user = services.get_user_model().objects.get(email="staff@demo.xenx.local")
    token = issue_tokens(user, mfa=False)["access"]
    call_command("seed_demo", "--reset-passwords", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert probe("api", token) == REFUSED
    assert AuditEvent.objects.filter(
        action="password.reset", target_id=str(user.pk)
    ).exists()


# --- profile edit, logout, TOTP confirmation × door ------------------------------------


@pytest.mark.parametrize("door", ("api", "portal"))
def test_profile_edit_goes_through_user_update_on_every_door(door, org):
    user = UserFactory(role=Role.STAFF, organization=org)
    data = {"first_name": "Ada", "last_name": "Lovelace"}
    if door == "api":
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {issue_tokens(user, mfa=False)['access']}"
        )
        assert client.patch("/api/auth/me", data, format="json").status_code == 200
    else:
        response = _browser(user, verified=False).post("/portal/account", data)
        assert response.status_code == 302
    user.refresh_from_db()
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    event = AuditEvent.objects.get(action="user.updated")
    assert (event.actor_id, event.target_id) == (user.pk, str(user.pk))
    assert sorted(event.data["changed"]) == ["first_name", "last_name"]


@pytest.mark.parametrize("door", ("api", "portal"))
def test_logout_alike_on_every_door(door, door_service, org):
    user = UserFactory(role=Role.STAFF, organization=org)
    if door == "api":
        issued = issue_tokens(user, mfa=False)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued['access']}")
        response = client.post(
            "/api/auth/logout", {"refresh": issued["refresh"]}, format="json"
        )
        assert response.status_code == 204
        assert probe("gateway", issued["access"]) == REFUSED
        assert probe("api", issued["access"]) == REFUSED
    else:
        browser = _browser(user, verified=False)
        assert browser.post("/portal/logout").status_code == 302
        assert probe("portal", browser) == REFUSED
    event = AuditEvent.objects.get(action="logout")
    assert event.actor_id == user.pk


@pytest.mark.parametrize("door", ("api", "portal"))
def test_totp_confirmation_keeps_the_confirming_session_only(door, door_service, org):
    user = UserFactory(role=Role.STAFF, organization=org)
    other_token = issue_tokens(user, mfa=False)["access"]
    other_browser = _browser(user, verified=False)
    if door == "api":
        access = issue_tokens(user, mfa=False)["access"]
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
        secret = client.post(
            "/api/auth/mfa/totp", {"password": DEFAULT_PASSWORD}, format="json"
        ).json()["secret"]
        response = client.post(
            "/api/auth/mfa/totp/confirm", {"code": _totp_code(secret)}, format="json"
        )
        assert response.status_code == 200
        assert len(response.json()["backup_codes"]) == 10
        # The very token that confirmed keeps working, here and at the gateway.
        assert client.post("/api/auth/mfa/backup-codes", {}).status_code == 400
        assert probe("api", access) == ALLOW
        assert probe("gateway", access) == ALLOW
    else:
        browser = _browser(user, verified=False)
        assert (
            browser.post(
                "/portal/account/mfa/totp", {"password": DEFAULT_PASSWORD}
            ).status_code
            == 302
        )
        secret = browser.session["portal_totp_enrolment"]["secret"]
        response = browser.post(
            "/portal/account/mfa/totp/confirm", {"code": _totp_code(secret)}
        )
        assert response.status_code == 200
        assert probe("portal", browser) == ALLOW
        assert probe("admin", browser) == ALLOW
    assert probe("api", other_token) == REFUSED
    assert probe("gateway", other_token) == REFUSED
    assert probe("portal", other_browser) == REFUSED
    assert AuditEvent.objects.filter(action="mfa.enabled", actor=user).count() == 1


# --- an administrator's actions on a user × door ---------------------------------------


def _admin_action(door, actor, target, action):
    if door == "api":
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {issue_tokens(actor, mfa=False)['access']}"
        )
        if action == "role_change":
            response = client.patch(
                f"/api/users/{target.pk}", {"role": Role.CPA}, format="json"
            )
        else:
            path = {"deactivate": "deactivate", "reset_mfa": "reset-mfa"}[action]
            response = client.post(f"/api/users/{target.pk}/{path}")
        assert response.status_code == 200, response.content
        return
    browser = _browser(actor, verified=False)
    if action == "role_change":
        response = browser.post(
            f"/admin/accounts/user/{target.pk}/change/",
            {
                "email": target.email,
                "first_name": target.first_name,
                "last_name": target.last_name,
                "email_verified": "on",
                "role": Role.CPA,
                "organization": target.organization_id,
                "last_login_0": "",
                "last_login_1": "",
                "date_joined_0": "2026-01-01",
                "date_joined_1": "00:00:00",
            },
        )
    else:
        response = browser.post(
            "/admin/accounts/user/",
            {
                "action": {"deactivate": "deactivate_users", "reset_mfa": "reset_mfa"}[
                    action
                ],
                "_selected_action": [target.pk],
            },
        )
    assert response.status_code == 302, response.content[:2000]


ADMIN_ACTIONS = {
    "deactivate": "user.deactivated",
    "role_change": "user.role_changed",
    "reset_mfa": "mfa.reset",
}


@pytest.mark.parametrize("door", ("api", "admin"))
@pytest.mark.parametrize("action", list(ADMIN_ACTIONS))
@pytest.mark.parametrize("actor_role", [Role.ADMIN, Role.STAFF])
def test_admin_actions_revoke_and_audit_alike_on_every_door(
    actor_role, action, door, door_service, org
):
    actor = UserFactory(role=actor_role, organization=org)
    target = UserFactory(role=Role.STAFF, organization=org)
    if action == "reset_mfa":
        _enrol(target)
    token = issue_tokens(target, mfa=True)["access"]
    _admin_action(door, actor, target, action)
    assert probe("api", token) == REFUSED
    assert probe("gateway", token) == REFUSED
    event = AuditEvent.objects.get(action=ADMIN_ACTIONS[action])
    assert (event.actor_id, event.target_id) == (actor.pk, str(target.pk))
    assert event.organization_id == org.pk
    if action == "reset_mfa":
        assert not TOTPDevice.objects.filter(user=target).exists()


# --- audit events belong to the target's organization, or none -------------------------


@pytest.mark.parametrize("door", ("api", "admin"))
def test_an_event_about_a_user_of_no_organization_is_for_admins_only(door, org):
    admin = UserFactory(role=Role.ADMIN, organization=org)  # an admin who is in org A
    staff = UserFactory(role=Role.STAFF, organization=org)
    client = UserFactory(role=Role.CLIENT, organization=None)  # self-registered
    _admin_action(door, admin, client, "deactivate")
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.organization_id is None
    staff_api = APIClient()
    staff_api.credentials(
        HTTP_AUTHORIZATION=f"Bearer {issue_tokens(staff, mfa=False)['access']}"
    )
    listed = staff_api.get("/api/audit-events").json()["results"]
    assert event.pk not in {e["id"] for e in listed}
    staff_admin = _browser(staff, verified=False)
    assert staff_admin.get(
        f"/admin/auditlog/auditevent/{event.pk}/change/"
    ).status_code in (
        302,
        404,
    )
    assert (
        client.email
        not in staff_admin.get("/admin/auditlog/auditevent/").content.decode()
    )
    admin_api = APIClient()
    admin_api.credentials(
        HTTP_AUTHORIZATION=f"Bearer {issue_tokens(admin, mfa=False)['access']}"
    )
    assert event.pk in {
        e["id"] for e in admin_api.get("/api/audit-events").json()["results"]
    }


# --- admin: third-party models, foreign rows -------------------------------------------

HIDDEN = (
    "/admin/otp_totp/totpdevice/",
    "/admin/otp_static/staticdevice/",
    "/admin/token_blacklist/outstandingtoken/",
    "/admin/token_blacklist/blacklistedtoken/",
)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.STAFF])
@pytest.mark.parametrize("path", HIDDEN)
def test_third_party_secrets_are_not_in_admin(path, role, org):
    user = UserFactory(role=role, organization=org)
    assert _browser(user, verified=False).get(path).status_code == 404


@pytest.mark.parametrize(("role", "status"), [(Role.ADMIN, 200), (Role.STAFF, 403)])
def test_role_groups_are_for_admins_only(role, status, org):
    user = UserFactory(role=role, organization=org)
    assert (
        _browser(user, verified=False).get("/admin/auth/group/").status_code == status
    )


def test_staff_never_see_a_foreign_row_in_admin(org):
    foreign = OrganizationFactory()
    stranger = UserFactory(role=Role.CLIENT, organization=foreign)
    staff = _browser(UserFactory(role=Role.STAFF, organization=org), verified=False)
    pages = [
        "/admin/accounts/user/",
        f"/admin/accounts/user/?organization__id__exact={foreign.pk}",
        "/admin/auditlog/auditevent/",
        "/admin/organizations/organization/",
        "/admin/organizations/document/",
        "/admin/organizations/invitation/",
    ]
    for page in pages:
        response = staff.get(page)
        assert response.status_code == 200, page
        body = response.content.decode()
        assert stranger.email not in body and foreign.name not in body, page
    searched = staff.get("/admin/accounts/user/", {"q": stranger.email})
    assert "0 results" in searched.content.decode()
    assert staff.get(f"/admin/accounts/user/{stranger.pk}/change/").status_code == 302
    autocomplete = staff.get(
        "/admin/autocomplete/",
        {"app_label": "accounts", "model_name": "user", "field_name": "organization"},
    )
    assert autocomplete.status_code in (403, 404) or foreign.name not in (
        autocomplete.content.decode()
    )


@pytest.mark.parametrize("door", ("api", "portal"))
def test_mfa_disable_alike_on_every_door(door, org, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = UserFactory(role=Role.STAFF, organization=org)
    secret = _enrol(user)
    AuditEvent.objects.all().delete()
    if door == "api":
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {issue_tokens(user, mfa=True)['access']}"
        )
        response = client.delete(
            "/api/auth/mfa/totp", {"code": _totp_code(secret)}, format="json"
        )
        assert response.status_code == 204
    else:
        browser = _browser(user, verified=True)
        response = browser.post(
            "/portal/account/mfa/disable", {"disable-code": _totp_code(secret)}
        )
        assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    event = AuditEvent.objects.get(action="mfa.disabled")
    assert (event.actor_id, event.organization_id) == (user.pk, org.pk)


def test_create_user_command_writes_through_user_create(org):
    call_command(
        "create_user",
        "new.cpa@example.com",
        "--role",
        "cpa",
        "--org",
        org.slug,
        stdout=open("/dev/null", "w"),  # noqa: SIM115
    )
    event = AuditEvent.objects.get(action="user.created")
    assert event.target_repr == "new.cpa@example.com"
    assert (event.actor_id, event.organization_id) == (None, org.pk)


@pytest.mark.parametrize("action", ["deactivate_users", "reset_mfa", "activate_users"])
def test_admin_actions_never_reach_a_foreign_row(action, org):
    foreign = UserFactory(role=Role.CLIENT, organization=OrganizationFactory())
    token = issue_tokens(foreign, mfa=False)["access"]
    staff = _browser(UserFactory(role=Role.STAFF, organization=org), verified=False)
    staff.post(
        "/admin/accounts/user/", {"action": action, "_selected_action": [foreign.pk]}
    )
    foreign.refresh_from_db()
    assert foreign.is_active and foreign.tokens_revoked_before is None
    assert probe("api", token) == ALLOW
    assert not AuditEvent.objects.filter(target_id=str(foreign.pk)).exists()
    for page in ("history", "password", "change"):
        response = staff.get(f"/admin/accounts/user/{foreign.pk}/{page}/")
        assert response.status_code in (302, 403, 404), page
        assert foreign.email not in response.content.decode()


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Basic dXNlcjpwdw==",
        "Token x",
        "Bearer x.y.z",
    ],
)
@pytest.mark.parametrize("door", ("api", "gateway"))
def test_a_malformed_authorization_header_is_401_on_every_door(
    header, door, door_service
):
    path = "/api/users" if door == "api" else "/api/door/x"
    response = APIClient().get(path, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    if header == "Bearer x.y.z":  # a token, refused: RFC 6750's error names it
        assert response["WWW-Authenticate"] == REFUSED_TOKEN
    else:  # a header that is not "Bearer <token>"
        assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["error"]["code"] in ("invalid_token", "not_authenticated")


REFUSED_TOKEN = 'Bearer realm="api", error="invalid_token"'


def _expired_token(user):
    """The claims of a real token, signed with the project's key, an hour past expiry."""
    token = issue_tokens(user, mfa=False)["access"]
    claims = dict(decode_access_token(token), exp=int(time.time()) - 3600)
    return jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


@pytest.mark.parametrize(
    ("case", "code", "challenge"),
    [
        ("no header", "not_authenticated", 'Bearer realm="api"'),
        ("garbage token", "invalid_token", REFUSED_TOKEN),
        ("forged signature", "invalid_token", REFUSED_TOKEN),
        ("expired token", "invalid_token", REFUSED_TOKEN),
        ("revoked token", "token_revoked", REFUSED_TOKEN),
    ],
)
@pytest.mark.parametrize("door", ("api", "gateway"))
def test_every_401_carries_a_challenge_on_every_door(
    case, code, challenge, door, door_service, org
):
    """RFC 9110 11.6.1: a 401 without WWW-Authenticate is not a 401; the token doors
    answer every refusal of a credential with the same challenge."""
    user = UserFactory(role=Role.CLIENT, organization=org)
    token = issue_tokens(user, mfa=False)["access"]
    header = {
        "no header": None,
        "garbage token": "Bearer not-a-jwt",
        "forged signature": "Bearer "
        + jwt.encode(decode_access_token(token), "x" * 64, algorithm="HS256"),
        "expired token": "Bearer " + _expired_token(user),
        "revoked token": "Bearer " + token,
    }[case]
    if case == "revoked token":
        token_services.logout_all(request=None, user=user)
    path = "/api/users" if door == "api" else "/api/door/x"
    client = APIClient()
    response = (
        client.get(path)
        if header is None
        else client.get(path, HTTP_AUTHORIZATION=header)
    )
    assert response.status_code == 401, case
    assert response.json()["error"]["code"] == code, case
    assert response["WWW-Authenticate"] == challenge, case


# --- lifecycle writes × door (README "Lifecycle") ---------------------------------------


@pytest.mark.parametrize("door", ("api", "portal"))
def test_totp_enrolment_needs_the_current_password_on_every_door(door, org):
    user = UserFactory(role=Role.STAFF, organization=org)
    for password, started in (("not-the-password-1", False), (DEFAULT_PASSWORD, True)):
        if door == "api":
            client = APIClient()
            client.credentials(
                HTTP_AUTHORIZATION=f"Bearer {issue_tokens(user, mfa=False)['access']}"
            )
            response = client.post(
                "/api/auth/mfa/totp", {"password": password}, format="json"
            )
            assert response.status_code == (201 if started else 400)
        else:
            browser = _browser(user, verified=False)
            response = browser.post("/portal/account/mfa/totp", {"password": password})
            assert response.status_code == (302 if started else 400)
        assert TOTPDevice.objects.filter(user=user).exists() is started


@pytest.mark.parametrize("door", ("api", "portal"))
def test_logout_ends_the_whole_session_on_every_door(door, door_service, org):
    """API: every access token of the logged-out family; portal: the session."""
    user = UserFactory(role=Role.STAFF, organization=org)
    if door == "api":
        issued = issue_tokens(user, mfa=False)
        sibling = APIClient().post(
            "/api/auth/token/refresh", {"refresh": issued["refresh"]}, format="json"
        )
        current = sibling.json()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {current['access']}")
        response = client.post(
            "/api/auth/logout", {"refresh": current["refresh"]}, format="json"
        )
        assert response.status_code == 204
        for other_door in ("api", "gateway"):
            assert probe(other_door, issued["access"]) == REFUSED
    else:
        browser = _browser(user, verified=False)
        assert browser.post("/portal/logout").status_code == 302
        assert probe("portal", browser) == REFUSED


def _change_email(door, actor, target):
    """Rename ``target``: by an admin (admin door) or by the user from the mailed
    link (API and portal doors)."""
    from accounts.email_change import email_change_request

    if door == "admin":
        browser = _browser(actor, verified=False)
        response = browser.post(
            f"/admin/accounts/user/{target.pk}/change/",
            {
                "email": "renamed@example.com",
                "first_name": target.first_name,
                "last_name": target.last_name,
                "email_verified": "on",
                "role": target.role,
                "organization": target.organization_id,
                "last_login_0": "",
                "last_login_1": "",
                "date_joined_0": "2026-01-01",
                "date_joined_1": "00:00:00",
            },
        )
        assert response.status_code == 302, response.content[:2000]
        return
    from django.core import mail

    mail.outbox.clear()
    email_change_request(
        user=target, password=DEFAULT_PASSWORD, new_email="renamed@example.com"
    )
    [message] = [m for m in mail.outbox if m.to == ["renamed@example.com"]]
    token = message.body.split("/api/auth/email/confirm:")[1].split()[0]
    if door == "api":
        response = APIClient().post("/api/auth/email/confirm", {"token": token})
        assert response.status_code == 200
    else:
        response = Client().post("/portal/email/confirm", {"token": token})
        assert response.status_code == 302


@pytest.mark.parametrize("door", ("api", "portal", "admin"))
def test_email_change_revokes_every_token_on_every_door(door, door_service, org):
    admin = UserFactory(role=Role.ADMIN, organization=None)
    target = UserFactory(role=Role.CPA, organization=org)
    token = issue_tokens(target, mfa=False)["access"]
    browser = _browser(target, verified=False)
    _change_email(door, admin, target)
    target.refresh_from_db()
    assert target.email == "renamed@example.com"
    assert probe("api", token) == REFUSED
    assert probe("gateway", token) == REFUSED
    assert probe("portal", browser) == REFUSED


@pytest.mark.parametrize("door", ("api", "admin"))
@pytest.mark.parametrize("actor_role", [Role.ADMIN, Role.STAFF])
def test_unlock_alike_on_every_door(door, actor_role, org, settings):
    from accounts import throttling

    settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMITS, "login_account": "2/15m"}
    actor = UserFactory(role=actor_role, organization=org)
    target = UserFactory(role=Role.CLIENT, organization=org)
    for _ in range(2):
        _login("api", target, "wrong-password-123456")
    assert throttling.account_lock_seconds(target) > 0
    if door == "api":
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {issue_tokens(actor, mfa=False)['access']}"
        )
        assert client.post(f"/api/users/{target.pk}/unlock").status_code == 200
    else:
        response = _browser(actor, verified=False).post(
            "/admin/accounts/user/",
            {"action": "unlock_users", "_selected_action": [target.pk]},
        )
        assert response.status_code == 302
    assert throttling.account_lock_seconds(target) == 0
    event = AuditEvent.objects.get(action="user.unlocked")
    assert (event.actor_id, event.target_id) == (actor.pk, str(target.pk))
    assert event.organization_id == org.pk


@pytest.mark.parametrize("door", ("api", "portal"))
@pytest.mark.parametrize("write", ["resend", "revoke"])
def test_invitation_writes_alike_on_every_door(door, write, org):
    from organizations.models import Invitation
    from organizations.services import invitation_create

    cpa = UserFactory(role=Role.CPA, organization=org)
    invitation, _token = invitation_create(
        organization=org, email="invitee@example.com", role=Role.CLIENT, actor=cpa
    )
    if door == "api":
        client = APIClient()
        client.credentials(
            HTTP_AUTHORIZATION=f"Bearer {issue_tokens(cpa, mfa=False)['access']}"
        )
        base = f"/api/organizations/{org.pk}/invitations/{invitation.pk}"
        response = (
            client.post(f"{base}/resend") if write == "resend" else client.delete(base)
        )
        assert response.status_code == (200 if write == "resend" else 204)
    else:
        response = _browser(cpa, verified=False).post(
            f"/portal/invitations/{invitation.pk}/{write}"
        )
        assert response.status_code == 302
    action = {"resend": "invitation.resent", "revoke": "invitation.revoked"}[write]
    event = AuditEvent.objects.get(action=action)
    assert (event.actor_id, event.organization_id) == (cpa.pk, org.pk)
    invitation = Invitation.objects.get(pk=invitation.pk)
    assert (invitation.revoked_at is not None) is (write == "revoke")
