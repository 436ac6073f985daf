"""/api/organizations (README "Organizations, users and documents"): admin CRUD, soft deactivation, mfa_required."""

import pytest
from django.contrib.auth import authenticate

from auditlog.models import AuditEvent
from core.roles import Role
from organizations.models import Organization
from tests.conftest import DEFAULT_PASSWORD, assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(make_user, auth_client):
    return auth_client(make_user(Role.ADMIN))


def test_admin_creates_an_organization_with_a_generated_slug(admin):
    resp = admin.post("/api/organizations", {"name": "Acme & Sons"}, format="json")
    assert resp.status_code == 201
    body = resp.json()
    assert set(body) == {
        "id",
        "name",
        "slug",
        "is_active",
        "mfa_required",
        "created_at",
    }
    assert body["slug"] == "acme-sons" and body["is_active"] is True
    assert AuditEvent.objects.filter(
        action="organization.created", target_id=str(body["id"])
    ).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "X", "slug": "not a slug"}, "slug"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_organization_input_is_400(admin, body, field):
    resp = admin.post("/api/organizations", body, format="json")
    assert field in assert_error(resp, 400, "validation_error")["details"]


def test_duplicate_slug_is_400(admin, org):
    resp = admin.post(
        "/api/organizations", {"name": "X", "slug": org.slug}, format="json"
    )
    assert "slug" in assert_error(resp, 400, "validation_error")["details"]
    other = Organization.objects.create(name="Y", slug="y")
    resp = admin.patch(
        f"/api/organizations/{other.pk}", {"slug": org.slug}, format="json"
    )
    assert "slug" in assert_error(resp, 400, "validation_error")["details"]


def test_admin_updates_an_organization(admin, org):
    resp = admin.patch(
        f"/api/organizations/{org.pk}",
        {"name": "Renamed", "mfa_required": True},
        format="json",
    )
    assert resp.status_code == 200
    assert resp.json()["name"] == "Renamed" and resp.json()["mfa_required"] is True
    event = AuditEvent.objects.get(action="organization.updated")
    assert {f: after for f, (_, after) in event.data["changed"].items()} == {
        "name": "Renamed",
        "mfa_required": True,
    }


def test_delete_deactivates_and_members_are_locked_out(
    admin, make_user, auth_client, org
):
    member = make_user(Role.CPA)
    member_client = auth_client(member)
    assert member_client.get("/api/users").status_code == 200
    resp = admin.delete(f"/api/organizations/{org.pk}")
    assert resp.status_code == 204
    org.refresh_from_db()
    assert org.is_active is False
    assert_error(member_client.get("/api/users"), 401, "token_revoked")
    assert authenticate(email=member.email, password=DEFAULT_PASSWORD) is None
    assert AuditEvent.objects.filter(
        action="organization.deactivated", target_id=str(org.pk)
    ).exists()
    # The organization still exists and can be reactivated.
    resp = admin.patch(
        f"/api/organizations/{org.pk}", {"is_active": True}, format="json"
    )
    assert resp.json()["is_active"] is True
    assert authenticate(email=member.email, password=DEFAULT_PASSWORD) is not None


def test_filters(admin, org_factory):
    org_factory(name="Alpha Tax", slug="alpha")
    org_factory(name="Beta Tax", slug="beta", is_active=False)
    org_factory(name="Gamma", slug="gamma", mfa_required=True)

    def names(query):
        body = admin.get(f"/api/organizations?{query}").json()
        return {o["name"] for o in body["results"]}

    assert names("search=tax") == {"Alpha Tax", "Beta Tax"}
    assert names("is_active=false") == {"Beta Tax"}
    assert names("mfa_required=true") == {"Gamma"}
    assert_error(admin.get("/api/organizations?is_active=x"), 400, "validation_error")


def test_client_without_organization_sees_none(make_user, auth_client):
    loner = auth_client(make_user(Role.CLIENT, organization=None))
    assert loner.get("/api/organizations").json()["count"] == 0


# --- mfa_required (README "Organizations, users and documents") ------------------------------------------------------------


MFA_BLOCKED = [
    ("get", "/api/organizations"),
    ("get", "/api/organizations/{org}"),
    ("get", "/api/users"),
    ("get", "/api/users/{me}"),
    ("get", "/api/documents"),
    ("post", "/api/organizations/{org}/invitations"),
]


@pytest.fixture
def mfa_org(org):
    org.mfa_required = True
    org.save()
    return org


@pytest.mark.parametrize("role", [Role.STAFF, Role.CPA, Role.CLIENT])
@pytest.mark.parametrize(("method", "url"), MFA_BLOCKED)
def test_mfa_required_org_blocks_tokens_without_second_factor(
    mfa_org, make_user, auth_client, role, method, url
):
    me = make_user(role)
    client = auth_client(me, mfa=False)
    resp = getattr(client, method)(
        url.format(org=mfa_org.pk, me=me.pk), {}, format="json"
    )
    assert_error(resp, 403, "mfa_required")


@pytest.mark.parametrize(("method", "url"), MFA_BLOCKED[:5])
def test_mfa_required_org_lets_a_second_factor_token_through(
    mfa_org, make_user, auth_client, method, url
):
    me = make_user(Role.STAFF)
    resp = getattr(auth_client(me, mfa=True), method)(
        url.format(org=mfa_org.pk, me=me.pk)
    )
    assert resp.status_code == 200


def test_mfa_required_set_later_takes_effect_on_existing_tokens(
    admin, org, make_user, auth_client
):
    member = auth_client(make_user(Role.CLIENT))
    assert member.get("/api/documents").status_code == 200
    admin.patch(f"/api/organizations/{org.pk}", {"mfa_required": True}, format="json")
    assert_error(member.get("/api/documents"), 403, "mfa_required")
    assert member.get("/api/auth/me").status_code == 200


@pytest.mark.parametrize("role", [Role.STAFF, Role.CPA, Role.CLIENT])
def test_forbidden_callers_get_403_even_with_a_bad_body(
    make_user, auth_client, org, role
):
    caller = auth_client(make_user(role))
    assert_error(
        caller.post("/api/organizations", {}, format="json"), 403, "permission_denied"
    )
    resp = caller.patch(
        f"/api/organizations/{org.pk}", {"slug": "not a slug"}, format="json"
    )
    assert_error(resp, 403, "permission_denied")
