"""/api/users (README "Organizations, users and documents"): role rules through POST and PATCH, deactivation,
activation, MFA reset, filters."""

import pytest
from django.contrib.auth import authenticate
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from auditlog.models import AuditEvent
from core.roles import Role
from tests.conftest import DEFAULT_PASSWORD, assert_error

pytestmark = pytest.mark.django_db

ADMIN, STAFF, CPA, CLIENT = Role.ADMIN, Role.STAFF, Role.CPA, Role.CLIENT


def new_user(role, **extra):
    return {
        "email": f"new-{role}@example.com",
        "first_name": "New",
        "last_name": "Person",
        "role": role,
        **extra,
    }


# --- Creation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("actor_role", "role", "status"),
    [
        (ADMIN, ADMIN, 201),
        (ADMIN, STAFF, 201),
        (STAFF, ADMIN, 403),  # only an admin creates an admin
        (STAFF, STAFF, 201),
        (STAFF, CPA, 201),
        (STAFF, CLIENT, 201),
        (CPA, ADMIN, 403),
        (CPA, STAFF, 403),  # a cpa creates only clients
        (CPA, CPA, 403),
        (CPA, CLIENT, 201),
        (CLIENT, CLIENT, 403),
        (CLIENT, ADMIN, 403),
    ],
)
def test_who_creates_which_role(make_user, auth_client, org, actor_role, role, status):
    body = new_user(role, organization=org.pk)
    resp = auth_client(make_user(actor_role)).post("/api/users", body, format="json")
    if status == 403:
        assert_error(resp, 403, "permission_denied")
        assert not User.objects.filter(email=body["email"]).exists()
    else:
        assert resp.status_code == 201, resp.content
        created = User.objects.get(email=body["email"])
        assert created.role == role
        assert list(created.groups.values_list("name", flat=True)) == [role]
        assert AuditEvent.objects.filter(
            action="user.created", target_id=str(created.pk)
        ).exists()


@pytest.mark.parametrize("actor_role", [STAFF, CPA])
def test_non_admin_cannot_create_in_another_org(
    make_user, auth_client, other_org, actor_role
):
    body = new_user(CLIENT, organization=other_org.pk)
    resp = auth_client(make_user(actor_role)).post("/api/users", body, format="json")
    assert_error(resp, 403, "permission_denied")
    # A nonexistent organization gives the same answer (no enumeration).
    body["organization"] = 999999
    resp = auth_client(make_user(actor_role)).post("/api/users", body, format="json")
    assert_error(resp, 403, "permission_denied")


@pytest.mark.parametrize("actor_role", [STAFF, CPA])
def test_organization_defaults_to_the_creators(make_user, auth_client, org, actor_role):
    resp = auth_client(make_user(actor_role)).post(
        "/api/users", new_user(CLIENT), format="json"
    )
    assert resp.status_code == 201
    assert resp.json()["organization"] == {"id": org.pk, "name": org.name}


def test_admin_creates_in_any_org_and_clients_without_one(
    make_user, auth_client, other_org
):
    admin = auth_client(make_user(ADMIN))
    resp = admin.post(
        "/api/users", new_user(CPA, organization=other_org.pk), format="json"
    )
    assert resp.json()["organization"]["id"] == other_org.pk
    resp = admin.post("/api/users", new_user(CLIENT), format="json")
    assert resp.json()["organization"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (new_user(CPA), "organization"),  # staff and cpa need an organization
        (new_user("root"), "role"),
        (new_user(CLIENT, email="not-an-email"), "email"),
        (new_user(CLIENT, password="123"), "password"),
        (new_user(CLIENT, organization=999999), "organization"),
        ({"role": CLIENT}, "email"),
    ],
)
def test_bad_creation_input_is_400(make_user, auth_client, body, field):
    resp = auth_client(make_user(ADMIN)).post("/api/users", body, format="json")
    err = assert_error(resp, 400, "validation_error")
    assert field in err["details"], err


def test_duplicate_email_is_400_case_insensitive(make_user, auth_client):
    existing = make_user(CLIENT)
    body = new_user(CLIENT, email=existing.email.upper())
    resp = auth_client(make_user(STAFF)).post("/api/users", body, format="json")
    assert "email" in assert_error(resp, 400, "validation_error")["details"]


def test_created_user_with_password_can_log_in(make_user, auth_client):
    body = new_user(CLIENT, password=DEFAULT_PASSWORD)
    auth_client(make_user(STAFF)).post("/api/users", body, format="json")
    assert authenticate(email=body["email"], password=DEFAULT_PASSWORD) is not None


def test_created_user_without_password_cannot_log_in(make_user, auth_client):
    auth_client(make_user(STAFF)).post("/api/users", new_user(CLIENT), format="json")
    assert not User.objects.get(email="new-client@example.com").has_usable_password()


# --- PATCH: escalation attempts -----------------------------------------------------


@pytest.mark.parametrize(
    ("actor_role", "target_role", "changes"),
    [
        (STAFF, CLIENT, {"role": ADMIN}),  # role → admin
        (STAFF, CPA, {"role": ADMIN}),
        (STAFF, ADMIN, {"first_name": "X"}),  # staff editing an admin of its org
        (STAFF, ADMIN, {"role": CLIENT}),
        (CPA, CLIENT, {"role": CPA}),  # a cpa manages clients only
        (CPA, CLIENT, {"role": STAFF}),
        (CPA, CLIENT, {"role": ADMIN}),
        (STAFF, CLIENT, {"organization": "other"}),  # moving between orgs
        (CPA, CLIENT, {"organization": "other"}),
        (STAFF, CLIENT, {"organization": None}),
        (CPA, CLIENT, {"is_active": False}),  # deactivation is admin/staff only
    ],
)
def test_escalation_through_patch_is_403(
    make_user, auth_client, org, other_org, actor_role, target_role, changes
):
    target = make_user(target_role, organization=org)
    if changes.get("organization") == "other":
        changes = {"organization": other_org.pk}
    resp = auth_client(make_user(actor_role)).patch(
        f"/api/users/{target.pk}", changes, format="json"
    )
    assert_error(resp, 403, "permission_denied")
    fresh = User.objects.get(pk=target.pk)
    assert (fresh.role, fresh.organization_id, fresh.is_active, fresh.first_name) == (
        target.role,
        target.organization_id,
        target.is_active,
        target.first_name,
    )
    assert not AuditEvent.objects.filter(target_id=str(target.pk)).exclude(
        action="user.created"
    )


@pytest.mark.parametrize("role", [STAFF, CPA, CLIENT, ADMIN])
@pytest.mark.parametrize(
    "changes", [{"role": ADMIN}, {"role": STAFF}, {"organization": None}]
)
def test_nobody_changes_its_own_role_or_org(make_user, auth_client, role, changes):
    me = make_user(role)
    if changes.get("role") == role:
        changes = {"role": CLIENT}
    resp = auth_client(me).patch(f"/api/users/{me.pk}", changes, format="json")
    if role == ADMIN and changes == {"organization": None}:
        assert resp.status_code == 200  # an admin already has none: no change
    else:
        assert_error(resp, 403, "permission_denied")
    assert User.objects.get(pk=me.pk).role == role


@pytest.mark.parametrize("role", [STAFF, CPA, CLIENT, ADMIN])
def test_everyone_edits_its_own_name(make_user, auth_client, role):
    me = make_user(role)
    resp = auth_client(me).patch(
        f"/api/users/{me.pk}", {"first_name": "Ada", "last_name": "L"}, format="json"
    )
    assert resp.status_code == 200
    assert (resp.json()["first_name"], resp.json()["last_name"]) == ("Ada", "L")


def test_staff_changes_roles_within_org_and_group_follows(make_user, auth_client):
    target = make_user(CLIENT)
    old = auth_client(target)
    assert old.get("/api/users").status_code == 200
    resp = auth_client(make_user(STAFF)).patch(
        f"/api/users/{target.pk}", {"role": CPA}, format="json"
    )
    assert resp.status_code == 200 and resp.json()["role"] == CPA
    target.refresh_from_db()
    assert list(target.groups.values_list("name", flat=True)) == [CPA]
    event = AuditEvent.objects.get(action="user.role_changed", target_id=str(target.pk))
    assert event.data == {"changed": {"role": [CLIENT, CPA]}}
    # Tokens carrying the old role are refused.
    assert_error(old.get("/api/users"), 401, "token_revoked")


def test_admin_grants_admin_and_moves_users(make_user, auth_client, other_org):
    target = make_user(CLIENT)
    old = auth_client(target)
    admin = auth_client(make_user(ADMIN))
    resp = admin.patch(
        f"/api/users/{target.pk}", {"organization": other_org.pk}, format="json"
    )
    assert resp.json()["organization"]["id"] == other_org.pk
    assert_error(old.get("/api/users"), 401, "token_revoked")
    event = AuditEvent.objects.get(action="user.updated", target_id=str(target.pk))
    assert event.data["changed"]["organization"][1] == other_org.pk
    resp = admin.patch(f"/api/users/{target.pk}", {"role": ADMIN}, format="json")
    assert resp.json()["role"] == ADMIN
    target.refresh_from_db()
    assert target.is_superuser and target.is_staff


def test_role_change_needing_an_org_is_400(make_user, auth_client):
    loner = make_user(CLIENT, organization=None)
    resp = auth_client(make_user(ADMIN)).patch(
        f"/api/users/{loner.pk}", {"role": CPA}, format="json"
    )
    assert "organization" in assert_error(resp, 400, "validation_error")["details"]


def test_patch_rejects_unknown_role_and_ignores_email(make_user, auth_client):
    target = make_user(CLIENT)
    staff = auth_client(make_user(STAFF))
    resp = staff.patch(f"/api/users/{target.pk}", {"role": "root"}, format="json")
    assert "role" in assert_error(resp, 400, "validation_error")["details"]
    resp = staff.patch(
        f"/api/users/{target.pk}", {"email": "hijack@example.com"}, format="json"
    )
    assert resp.status_code == 200
    assert User.objects.get(pk=target.pk).email == target.email


def test_put_is_not_allowed(make_user, auth_client):
    me = make_user(CLIENT)
    resp = auth_client(me).put(f"/api/users/{me.pk}", {}, format="json")
    assert_error(resp, 405, "method_not_allowed")


# --- Deactivate / activate / reset MFA ------------------------------------------------


def test_delete_deactivates_softly_and_tokens_die_at_once(make_user, auth_client):
    target = make_user(CLIENT)
    victim = auth_client(target)
    assert victim.get(f"/api/users/{target.pk}").status_code == 200
    resp = auth_client(make_user(STAFF)).delete(f"/api/users/{target.pk}")
    assert resp.status_code == 204
    target.refresh_from_db()
    assert target.is_active is False
    assert_error(victim.get(f"/api/users/{target.pk}"), 401, "token_revoked")
    assert authenticate(email=target.email, password=DEFAULT_PASSWORD) is None
    assert AuditEvent.objects.filter(
        action="user.deactivated", target_id=str(target.pk)
    ).exists()


def test_deactivate_then_activate(make_user, auth_client):
    target = make_user(CPA)
    old = auth_client(target)
    staff = auth_client(make_user(STAFF))
    resp = staff.post(f"/api/users/{target.pk}/deactivate")
    assert resp.status_code == 200 and resp.json()["is_active"] is False
    resp = staff.post(f"/api/users/{target.pk}/activate")
    assert resp.status_code == 200 and resp.json()["is_active"] is True
    actions = list(
        AuditEvent.objects.filter(target_id=str(target.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions[-2:] == ["user.deactivated", "user.activated"]
    # Tokens issued before the deactivation stay revoked; a new login works.
    assert_error(old.get("/api/users"), 401, "token_revoked")
    assert auth_client(target).get("/api/users").status_code == 200
    assert authenticate(email=target.email, password=DEFAULT_PASSWORD) is not None


def test_patch_is_active_goes_through_deactivation(make_user, auth_client):
    target = make_user(CLIENT)
    resp = auth_client(make_user(STAFF)).patch(
        f"/api/users/{target.pk}", {"is_active": False}, format="json"
    )
    assert resp.status_code == 200 and resp.json()["is_active"] is False
    assert AuditEvent.objects.filter(action="user.deactivated").count() == 1


@pytest.mark.parametrize("action", ["deactivate", "activate", "reset-mfa"])
def test_nobody_deactivates_or_resets_itself(make_user, auth_client, action):
    for role in (ADMIN, STAFF):
        me = make_user(role)
        resp = auth_client(me).post(f"/api/users/{me.pk}/{action}")
        assert_error(resp, 403, "permission_denied")
    me = make_user(STAFF)
    assert_error(
        auth_client(me).delete(f"/api/users/{me.pk}"), 403, "permission_denied"
    )


@pytest.mark.parametrize("action", ["deactivate", "activate", "reset-mfa"])
def test_staff_cannot_act_on_an_admin_of_its_org(make_user, auth_client, org, action):
    admin = make_user(ADMIN, organization=org)
    resp = auth_client(make_user(STAFF)).post(f"/api/users/{admin.pk}/{action}")
    assert_error(resp, 403, "permission_denied")


def test_staff_manages_another_staff_member(make_user, auth_client):
    colleague = make_user(STAFF)
    resp = auth_client(make_user(STAFF)).post(f"/api/users/{colleague.pk}/deactivate")
    assert resp.status_code == 200


def test_reset_mfa_removes_devices_revokes_tokens_and_audits(make_user, auth_client):
    target = make_user(CLIENT)
    TOTPDevice.objects.create(user=target, name="phone", confirmed=True)
    static = StaticDevice.objects.create(user=target, name="backup")
    static.token_set.create(token="abcd1234")
    old = auth_client(target)
    assert (
        auth_client(make_user(ADMIN))
        .get(f"/api/users/{target.pk}")
        .json()["mfa_enabled"]
    )
    resp = auth_client(make_user(STAFF)).post(f"/api/users/{target.pk}/reset-mfa")
    assert resp.status_code == 200
    assert resp.json()["mfa_enabled"] is False
    assert not TOTPDevice.objects.filter(user=target).exists()
    assert not StaticDevice.objects.filter(user=target).exists()
    assert_error(old.get("/api/users"), 401, "token_revoked")
    assert AuditEvent.objects.filter(
        action="mfa.reset", target_id=str(target.pk)
    ).exists()


# --- Lists ---------------------------------------------------------------------------


def test_filters_role_active_organization_and_search(
    make_user, auth_client, org, other_org
):
    make_user(CLIENT, first_name="Grace", email="grace@example.com")
    make_user(CLIENT, last_name="Hopper", is_active=False)
    make_user(CPA, email="cpa-one@example.com")
    make_user(CLIENT, organization=other_org, email="foreign-grace@example.com")
    admin = auth_client(make_user(ADMIN))

    def ids(query):
        resp = admin.get(f"/api/users?{query}&page_size=200")
        assert resp.status_code == 200, resp.content
        return {u["email"] for u in resp.json()["results"]}

    assert len(ids("role=client")) == 3
    assert ids("role=cpa") == {"cpa-one@example.com"}
    assert len(ids("is_active=false")) == 1
    assert ids("search=GRACE") == {"grace@example.com", "foreign-grace@example.com"}
    assert ids(f"search=grace&organization={org.pk}") == {"grace@example.com"}
    assert len(ids("search=hopper")) == 1
    staff = auth_client(make_user(STAFF))
    grace = staff.get("/api/users?search=grace").json()["results"]
    assert [u["email"] for u in grace] == ["grace@example.com"]


@pytest.mark.parametrize("query", ["role=root", "is_active=maybe", "organization=x"])
def test_bad_filter_values_are_400(make_user, auth_client, query):
    resp = auth_client(make_user(ADMIN)).get(f"/api/users?{query}")
    assert_error(resp, 400, "validation_error")


def test_list_is_paginated_with_the_user_object(make_user, auth_client):
    for _ in range(3):
        make_user(CLIENT)
    body = auth_client(make_user(STAFF)).get("/api/users?page_size=2").json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4 and len(body["results"]) == 2
    assert "page=2" in body["next"] and body["previous"] is None
    assert set(body["results"][0]) == {
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


def test_anonymous_is_401(api):
    assert_error(api.get("/api/users"), 401, "not_authenticated")
    assert_error(api.get("/api/organizations"), 401, "not_authenticated")
    assert_error(api.get("/api/documents"), 401, "not_authenticated")


def test_client_creating_users_gets_403_even_with_a_bad_body(make_user, auth_client):
    resp = auth_client(make_user(CLIENT)).post("/api/users", {}, format="json")
    assert_error(resp, 403, "permission_denied")
