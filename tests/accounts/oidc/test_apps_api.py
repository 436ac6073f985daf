"""/api/apps, the admin and register_app: who manages which application (a matrix),
the secret shown once and stored hashed, bad input as validation_error."""

import pytest
from django.contrib.auth.hashers import check_password
from django.test import Client

from accounts.models import Application
from auditlog.models import AuditEvent
from core.roles import Role
from tests.conftest import assert_error

from .conftest import REDIRECT

pytestmark = pytest.mark.django_db

BODY = {
    "name": "Planner",
    "client_type": "confidential",
    "grant_types": ["authorization_code", "refresh_token"],
    "redirect_uris": [REDIRECT],
}


def test_admin_registers_and_the_secret_is_shown_once(make_user, auth_client):
    api = auth_client(make_user(Role.ADMIN))
    response = api.post("/api/apps", BODY, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    app = Application.objects.get(client_id=body["client_id"])
    assert check_password(body["client_secret"], app.client_secret)
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    shown = api.get(f"/api/apps/{app.client_id}").json()
    assert "client_secret" not in shown
    assert AuditEvent.objects.filter(action="application.created").count() == 1


def test_public_client_has_no_secret(make_user, auth_client):
    api = auth_client(make_user(Role.ADMIN))
    body = api.post(
        "/api/apps", {**BODY, "client_type": "public"}, format="json"
    ).json()
    assert "client_secret" not in body


@pytest.mark.parametrize(
    "change, field",
    [
        ({"grant_types": ["password"]}, "grant_types"),
        ({"grant_types": ["authorization_code", "client_credentials"]}, "grant_types"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"role": "admin"}, "role"),
        ({"client_type": "secretive"}, "client_type"),
        ({"organization": 999999}, "organization"),
    ],
)
def test_bad_input_is_validation_error(make_user, auth_client, change, field):
    api = auth_client(make_user(Role.ADMIN))
    error = assert_error(
        api.post("/api/apps", {**BODY, **change}, format="json"),
        400,
        "validation_error",
    )
    assert field in error["details"], error


def test_machine_client_must_be_confidential(make_user, auth_client):
    api = auth_client(make_user(Role.ADMIN))
    body = {
        **BODY,
        "client_type": "public",
        "grant_types": ["client_credentials"],
        "redirect_uris": [],
    }
    error = assert_error(
        api.post("/api/apps", body, format="json"), 400, "validation_error"
    )
    assert "client_type" in error["details"]


# who → (own organization's app, another organization's app, an app of no organization)
MATRIX = {
    Role.ADMIN: (200, 200, 200),
    Role.STAFF: (200, 404, 404),
    Role.CPA: (403, 403, 403),
    Role.CLIENT: (403, 403, 403),
}


@pytest.mark.parametrize("role", list(MATRIX))
def test_who_manages_which_application(
    role, make_user, auth_client, org, other_org, register
):
    own, _ = register(organization=org)
    foreign, _ = register(organization=other_org)
    orphan, _ = register()
    actor = make_user(role, organization=org)
    api = auth_client(actor)
    for app, expected in zip((own, foreign, orphan), MATRIX[role], strict=True):
        read = api.get(f"/api/apps/{app.client_id}")
        assert read.status_code == expected, (role, app, read.content)
        patch = api.patch(
            f"/api/apps/{app.client_id}", {"name": "Renamed"}, format="json"
        )
        assert patch.status_code == expected, (role, app, patch.content)
    listed = api.get("/api/apps")
    if MATRIX[role][0] == 200:
        ids = {a["client_id"] for a in listed.json()["results"]}
        assert own.client_id in ids
        assert (foreign.client_id in ids) == (role == Role.ADMIN)
    else:
        assert listed.status_code == 403


def test_staff_registers_only_for_its_own_organization(
    make_user, auth_client, org, other_org
):
    api = auth_client(make_user(Role.STAFF, organization=org))
    mine = api.post("/api/apps", BODY, format="json")
    assert mine.status_code == 201 and mine.json()["organization"] == org.pk
    assert_error(
        api.post("/api/apps", {**BODY, "organization": other_org.pk}, format="json"),
        400,
        "validation_error",
    )
    assert_error(
        api.post("/api/apps", {**BODY, "organization": None}, format="json"),
        403,
        "permission_denied",
    )


def test_delete_and_disable(make_user, auth_client, register):
    api = auth_client(make_user(Role.ADMIN))
    app, _ = register()
    disabled = api.patch(
        f"/api/apps/{app.client_id}", {"enabled": False}, format="json"
    )
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert api.delete(f"/api/apps/{app.client_id}").status_code == 204
    assert api.get(f"/api/apps/{app.client_id}").status_code == 404


def test_apps_is_a_reserved_service_name(make_user, auth_client):
    api = auth_client(make_user(Role.ADMIN))
    body = {"name": "apps", "instances": [{"url": "http://127.0.0.1:9"}]}
    assert_error(
        api.post("/api/services", body, format="json"), 400, "validation_error"
    )


def _admin_client(user):
    client = Client()
    client.force_login(user, backend="accounts.backends.EmailBackend")
    return client


def test_admin_site_adds_an_application_with_the_secret_shown_once(make_user, org):
    client = _admin_client(make_user(Role.ADMIN))
    response = client.post(
        "/admin/accounts/application/add/",
        {
            "name": "Planner",
            "client_type": "confidential",
            "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": REDIRECT,
            "post_logout_redirect_uris": "",
            "organization": org.pk,
            "allowed_services": "[]",
            "role": "",
            "enabled": "on",
        },
        follow=True,
    )
    assert response.status_code == 200
    app = Application.objects.get(name="Planner")
    assert app.organization == org
    assert b"shown only now" in response.content
    assert AuditEvent.objects.filter(action="application.created").exists()


def test_staff_sees_only_its_organizations_applications_in_admin(
    make_user, org, other_org, register
):
    own, _ = register(organization=org)
    foreign, _ = register(organization=other_org, name="Foreign app")
    client = _admin_client(make_user(Role.STAFF, organization=org))
    listing = client.get("/admin/accounts/application/")
    assert listing.status_code == 200
    assert own.client_id.encode() in listing.content
    assert foreign.client_id.encode() not in listing.content
    assert client.get(
        f"/admin/accounts/application/{foreign.pk}/change/"
    ).status_code in (
        302,
        404,
    )
