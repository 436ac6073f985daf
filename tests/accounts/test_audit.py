"""The audit log: what is recorded, GET /api/audit-events scoping and filters, and the
read-only admin."""

from datetime import timedelta

import pytest
from django.utils import timezone

from auditlog import audit
from auditlog.models import AuditEvent
from tests.conftest import DEFAULT_PASSWORD, assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def events(make_user, org, other_org):
    alice = make_user("cpa")
    bob = make_user("client", organization=other_org)
    audit.record(audit.Action.LOGIN_SUCCEEDED, actor=alice, target=alice)
    audit.record(audit.Action.LOGIN_FAILED, target=alice, data={"email": alice.email})
    audit.record(audit.Action.LOGIN_SUCCEEDED, actor=bob, target=bob)
    old = audit.record(audit.Action.LOGOUT, actor=bob, target=bob)
    AuditEvent.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=3)
    )
    return alice, bob


def _ids(response):
    assert response.status_code == 200, response.content
    return [e["action"] for e in response.json()["results"]]


def test_admin_sees_every_event(make_user, auth_client, events):
    admin = auth_client(make_user("admin"))
    response = admin.get("/api/audit-events")
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == AuditEvent.objects.count()
    first = body["results"][0]
    assert set(first) == {
        "id",
        "created_at",
        "action",
        "actor",
        "actor_email",
        "target_type",
        "target_id",
        "target_repr",
        "organization",
        "ip",
        "user_agent",
        "request_id",
        "data",
    }


def test_staff_sees_only_its_organization(make_user, auth_client, events, org):
    staff = auth_client(make_user("staff"))
    body = staff.get("/api/audit-events").json()
    assert body["count"] >= 2
    assert {e["organization"] for e in body["results"]} == {org.pk}


def test_staff_filters_cannot_reach_another_organization(
    make_user, auth_client, events
):
    _, bob = events  # bob is in the other organization
    staff = auth_client(make_user("staff"))
    body = staff.get(f"/api/audit-events?actor={bob.pk}").json()
    assert body["count"] == 0 and body["results"] == []


@pytest.mark.parametrize("role", ["cpa", "client"])
def test_others_are_refused(role, make_user, auth_client, events):
    assert_error(
        auth_client(make_user(role)).get("/api/audit-events"), 403, "permission_denied"
    )


def test_anonymous_is_refused(api, db):
    assert_error(api.get("/api/audit-events"), 401, "not_authenticated")


def test_filters(make_user, auth_client, events):
    alice, bob = events
    admin = auth_client(make_user("admin"))
    assert set(_ids(admin.get("/api/audit-events?action=login.failed"))) == {
        "login.failed"
    }
    both = _ids(admin.get("/api/audit-events?action=login.failed,logout"))
    assert set(both) == {"login.failed", "logout"}
    mine = admin.get(f"/api/audit-events?actor={bob.pk}").json()["results"]
    assert {e["actor"] for e in mine} == {bob.pk} and len(mine) == 2
    since = (timezone.now() - timedelta(days=1)).isoformat()
    recent = _ids(admin.get("/api/audit-events", {"since": since}))
    assert "logout" not in recent
    old = _ids(admin.get("/api/audit-events", {"until": since}))
    assert old == ["logout"]


@pytest.mark.parametrize(
    "query",
    ["action=nope", "actor=abc", "since=yesterday", "until=2026-13-45T00:00:00"],
)
def test_bad_filters(query, make_user, auth_client, events):
    response = auth_client(make_user("admin")).get(f"/api/audit-events?{query}")
    assert_error(response, 400, "validation_error")


def test_pagination(make_user, auth_client, events):
    admin = auth_client(make_user("admin"))
    body = admin.get("/api/audit-events?page_size=2").json()
    assert len(body["results"]) == 2 and body["next"]


def test_events_carry_request_context(make_user, api):
    user = make_user()
    api.post(
        "/api/auth/login",
        {"email": user.email, "password": DEFAULT_PASSWORD},
        format="json",
        REMOTE_ADDR="192.0.2.44",
        HTTP_USER_AGENT="pytest-agent",
        HTTP_X_REQUEST_ID="req-123",
    )
    event = AuditEvent.objects.get(action="login.succeeded")
    assert event.ip == "192.0.2.44"
    assert event.user_agent == "pytest-agent"
    assert event.request_id == "req-123"
    assert event.organization_id == user.organization_id
    assert event.target_id == str(user.pk) and event.target_type == "accounts.user"


def test_failed_login_is_recorded_even_though_the_request_fails(make_user, api):
    user = make_user()
    api.post(
        "/api/auth/login", {"email": user.email, "password": "nope"}, format="json"
    )
    event = AuditEvent.objects.get(action="login.failed")
    assert event.target_id == str(user.pk) and event.actor is None


def test_admin_is_read_only_and_scoped(make_user, events, org, client):
    staff = make_user("staff")
    from django.contrib.admin.sites import site

    model_admin = site._registry[AuditEvent]

    class Request:
        user = staff

    assert model_admin.has_add_permission(Request()) is False
    assert model_admin.has_change_permission(Request()) is False
    assert model_admin.has_delete_permission(Request()) is False
    assert set(
        model_admin.get_queryset(Request()).values_list("organization_id", flat=True)
    ) == {org.pk}
