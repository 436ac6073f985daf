"""/api/services CRUD (admin writes, staff reads) with validation and audit events."""

import pytest

from auditlog.models import AuditEvent
from core.roles import Role
from gateway import breaker
from gateway.models import Service
from tests.conftest import assert_error


@pytest.fixture
def admin(auth_client, make_user):
    return auth_client(make_user(Role.ADMIN))


def valid(**overrides):
    body = {
        "name": "billing",
        "description": "Invoices",
        "instances": [
            {"url": "http://127.0.0.1:9001", "weight": 2},
            {"url": "https://billing.internal"},
        ],
        "allowed_roles": ["cpa", "staff"],
        "rate_limits": {"client": "10/m", "anonymous": "5/15m"},
        "allowed_content_types": ["application/json"],
        "timeout_seconds": 5,
        "retries": 2,
    }
    body.update(overrides)
    return body


def test_create_read_update_delete(admin):
    resp = admin.post("/api/services", valid(), format="json")
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["name"] == "billing"
    assert [
        (i["url"], i["weight"], i["enabled"], i["healthy"]) for i in body["instances"]
    ] == [
        ("http://127.0.0.1:9001", 2, True, True),
        ("https://billing.internal", 1, True, True),
    ]
    assert body["public"] is False and body["forward_authorization"] is False
    assert {"created_at", "updated_at", "health_check_path", "max_body_bytes"} <= set(
        body
    )
    listing = admin.get("/api/services").json()
    assert listing["count"] == 1 and listing["results"][0]["name"] == "billing"
    resp = admin.patch(
        "/api/services/billing",
        {"public": True, "instances": [{"url": "http://127.0.0.1:9002"}]},
        format="json",
    )
    assert resp.status_code == 200, resp.content
    assert resp.json()["public"] is True
    assert [i["url"] for i in resp.json()["instances"]] == ["http://127.0.0.1:9002"]
    assert resp.json()["allowed_roles"] == ["cpa", "staff"]  # untouched
    assert admin.delete("/api/services/billing").status_code == 204
    assert not Service.objects.exists()
    actions = list(
        AuditEvent.objects.filter(action__startswith="service.").values_list(
            "action", flat=True
        )
    )
    assert sorted(actions) == ["service.created", "service.deleted", "service.updated"]


def test_healthy_field_is_live(admin):
    admin.post("/api/services", valid(), format="json")
    instance_id = Service.objects.get().instances.first().id
    breaker.mark_down(instance_id, 30)
    instances = admin.get("/api/services/billing").json()["instances"]
    assert [i["healthy"] for i in instances] == [False, True]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Billing"),
        ("name", "-billing"),
        ("name", "a" * 64),
        ("name", "bill_ing"),
        ("name", "auth"),
        ("name", "users"),
        ("name", "organizations"),
        ("name", "documents"),
        ("name", "services"),
        ("name", "audit-events"),
        ("name", "schema"),
        ("name", "docs"),
        ("name", "health"),
        ("instances", [{"url": "ftp://x.example"}]),
        ("instances", [{"url": "http://"}]),
        ("instances", [{"url": "billing.internal"}]),
        ("instances", [{"url": "http://x.example?a=1"}]),
        ("instances", [{"url": "http://x.example", "weight": 0}]),
        ("instances", [{"url": "http://x.example", "weight": -1}]),
        ("instances", [{"url": "http://x.example"}, {"url": "http://x.example"}]),
        ("rate_limits", {"client": "ten per minute"}),
        ("rate_limits", {"client": "10/x"}),
        ("rate_limits", {"client": "0/m"}),
        ("rate_limits", {"wizard": "10/m"}),
        ("rate_limits", ["10/m"]),
        ("allowed_roles", ["wizard"]),
        ("allowed_content_types", ["json"]),
        ("timeout_seconds", 0),
        ("retries", -1),
        ("health_check_path", "health"),
    ],
)
def test_validation_errors(admin, field, value):
    resp = admin.post("/api/services", valid(**{field: value}), format="json")
    error = assert_error(resp, 400, "validation_error")
    assert any(key.split(".")[0] == field for key in error["details"]), error
    assert not Service.objects.exists()


def test_duplicate_name(admin):
    admin.post("/api/services", valid(), format="json")
    error = assert_error(
        admin.post("/api/services", valid(), format="json"), 400, "validation_error"
    )
    assert "name" in error["details"]


def test_rename_refused(admin):
    admin.post("/api/services", valid(), format="json")
    assert_error(
        admin.patch("/api/services/billing", {"name": "other"}, format="json"),
        400,
        "validation_error",
    )


def test_unknown_service_detail(admin):
    assert_error(admin.get("/api/services/nope"), 404, "service_not_found")


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        (Role.ADMIN, 200, 201),
        (Role.STAFF, 200, 403),
        (Role.CPA, 403, 403),
        (Role.CLIENT, 403, 403),
    ],
)
def test_permissions(auth_client, make_user, role, read, write):
    caller = auth_client(make_user(role))
    assert caller.get("/api/services").status_code == read
    resp = caller.post("/api/services", valid(), format="json")
    assert resp.status_code == write
    if write == 403:
        assert_error(resp, 403, "permission_denied")


def test_anonymous_refused(db, api):
    assert_error(api.get("/api/services"), 401, "not_authenticated")


def test_admin_pages_show_instances_and_live_health(
    client, make_user, make_service, upstream
):
    from django.test import Client

    admin_user = make_user(Role.ADMIN)
    service = make_service("svc", [upstream.url, upstream.url + "/b"])
    breaker.mark_down(service.instances.first().id, 30)
    browser = Client()
    browser.force_login(admin_user)
    listing = browser.get("/admin/gateway/service/")
    assert listing.status_code == 200
    assert b"degraded (1/2)" in listing.content
    page = browser.get(f"/admin/gateway/service/{service.pk}/change/")
    assert page.status_code == 200
    assert page.content.count(b"UNHEALTHY") == 1
    assert upstream.url.encode() in page.content
