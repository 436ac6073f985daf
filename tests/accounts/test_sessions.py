"""Sessions a user can see and end (README "Identity" "Sessions"): one per refresh family, listed
with their addresses and agents; ending one of three leaves the other two alive, on
every door (API, gateway, portal, Django admin), within a second on every node."""

import time

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import revocation, sessions
from accounts.models import UserSession
from accounts.policy import Door, token_identity
from accounts.tokens import decode_access_token
from auditlog.models import AuditEvent
from core.errors import TokenRevoked
from core.roles import Role
from tests.conftest import assert_error
from tests.support.login import api_login

pytestmark = pytest.mark.django_db

AGENTS = ["Phone/1.0", "Laptop/2.0", "Tablet/3.0"]


def _login(user, agent, ip="127.0.0.1"):
    response = api_login(user.email, HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    assert response.status_code == 200, response.content
    return response.json()


def _bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _refresh(refresh, agent="Refresher/1.0", ip="127.0.0.1"):
    return APIClient().post(
        "/api/auth/token/refresh",
        {"refresh": refresh},
        format="json",
        HTTP_USER_AGENT=agent,
        REMOTE_ADDR=ip,
    )


def _listed(token):
    response = _bearer(token).get("/api/auth/sessions")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def three(make_user):
    user = make_user(Role.CPA)
    return user, [_login(user, agent) for agent in AGENTS]


def test_one_session_per_login_with_its_details(three):
    user, logins = three
    body = _listed(logins[0]["access"])
    assert body["count"] == 3 and set(body) == {"count", "next", "previous", "results"}
    rows = body["results"]
    assert {r["user_agent"] for r in rows} == set(AGENTS)
    assert [r["current"] for r in rows if r["user_agent"] == "Phone/1.0"] == [True]
    assert sum(r["current"] for r in rows) == 1
    row = rows[0]
    assert set(row) == {
        "id",
        "created_at",
        "last_used_at",
        "expires_at",
        "ip",
        "user_agent",
        "login_ip",
        "login_user_agent",
        "current",
        "mfa",
    }
    assert row["ip"] == "127.0.0.1" and row["mfa"] is False


def test_a_refresh_updates_its_session_not_a_new_one(three):
    user, logins = three
    response = _refresh(logins[1]["refresh"], agent="Laptop/2.1")
    assert response.status_code == 200
    rows = _listed(logins[0]["access"])["results"]
    assert len(rows) == 3
    laptop = next(r for r in rows if r["login_user_agent"] == "Laptop/2.0")
    assert laptop["user_agent"] == "Laptop/2.1"
    assert laptop["last_used_at"] >= laptop["created_at"]
    assert rows[0]["id"] == laptop["id"]  # most recently used first
    # The refreshed pair belongs to the same session.
    assert [r["current"] for r in _listed(response.json()["access"])["results"]].count(
        True
    ) == 1
    assert (
        next(r for r in _listed(response.json()["access"])["results"] if r["current"])[
            "id"
        ]
        == laptop["id"]
    )


def test_mfa_login_is_marked(make_user, enrol_totp, login):
    import pyotp

    user = make_user()
    secret, _ = enrol_totp(user)
    challenge = login(user.email).json()
    tokens = (
        APIClient()
        .post(
            "/api/auth/mfa/verify",
            {"mfa_token": challenge["mfa_token"], "code": pyotp.TOTP(secret).now()},
            format="json",
        )
        .json()
    )
    (row,) = _listed(tokens["access"])["results"]
    assert row["mfa"] is True and row["current"] is True


# --- the matrix: end one of three, on every door ---------------------------------------


def _end_via_api(user, logins, victim_id):
    response = _bearer(logins[0]["access"]).delete(f"/api/auth/sessions/{victim_id}")
    assert response.status_code == 204, response.content


def _end_via_portal(user, logins, victim_id):
    browser = Client()
    browser.force_login(user, backend="accounts.backends.EmailBackend")
    page = browser.get("/portal/account")
    assert page.status_code == 200
    assert f"/portal/account/sessions/{victim_id}/end" in page.content.decode()
    response = browser.post(f"/portal/account/sessions/{victim_id}/end")
    assert response.status_code == 302 and response["Location"] == "/portal/account"


def _end_via_admin(user, logins, victim_id):
    from tests.conftest import UserFactory

    staff = UserFactory(role=Role.STAFF, organization=user.organization)
    browser = Client()
    browser.force_login(staff, backend="accounts.backends.EmailBackend")
    listing = browser.get(f"/admin/accounts/usersession/?user__id__exact={user.pk}")
    assert listing.status_code == 200
    response = browser.post(
        "/admin/accounts/usersession/",
        {"action": "end_sessions", "_selected_action": [str(victim_id)]},
    )
    assert response.status_code == 302, response.content[:500]


DOORS = {"api": _end_via_api, "portal": _end_via_portal, "admin": _end_via_admin}


@pytest.mark.parametrize("door", DOORS)
def test_end_one_of_three_sessions_the_other_two_live(door, three, gateway_service):
    user, logins = three
    rows = _listed(logins[0]["access"])["results"]
    victim = next(r for r in rows if r["login_user_agent"] == "Laptop/2.0")
    DOORS[door](user, logins, victim["id"])

    ended, alive = logins[1], [logins[0], logins[2]]
    # API door
    assert_error(_bearer(ended["access"]).get("/api/auth/me"), 401, "token_revoked")
    # gateway door
    assert_error(_bearer(ended["access"]).get(gateway_service), 401, "token_revoked")
    # its refresh token is refused, without the reuse alarm (which would end all)
    assert_error(_refresh(ended["refresh"]), 401, "token_revoked")
    assert not AuditEvent.objects.filter(
        action=AuditEvent.Action.TOKEN_REUSE_DETECTED
    ).exists()
    for tokens in alive:
        assert _bearer(tokens["access"]).get("/api/auth/me").status_code == 200
        assert _bearer(tokens["access"]).get(gateway_service).status_code == 200
        refreshed = _refresh(tokens["refresh"])
        assert refreshed.status_code == 200, refreshed.content
        assert (
            _bearer(refreshed.json()["access"]).get(gateway_service).status_code == 200
        )
    listed = _listed(logins[2]["access"])["results"]
    assert victim["id"] not in [r["id"] for r in listed] and len(listed) == 2
    event = AuditEvent.objects.get(action=AuditEvent.Action.SESSION_ENDED)
    assert event.target_id == str(user.pk)
    assert event.data == {"session": victim["id"], "kind": "api", "via": door}


def test_ending_reaches_a_process_with_a_warm_memo(three, settings):
    """Another node memoised the session as live; within the memo window (≤ 1 s) it
    refuses the family's tokens too, and checking costs no database query."""
    settings.XENX_REVOCATION_MEMO_SECONDS = 0.2
    user, logins = three
    access = logins[1]["access"]
    token_identity(access, door=Door.API)
    keys = revocation.keys_for(decode_access_token(access))
    memo = {k: revocation.memo.get(k) for k in keys if k in revocation.memo}
    victim = UserSession.objects.get(login_user_agent="Laptop/2.0")
    sessions.session_end(session=victim, actor=user)
    # The other node's memo, fresh for 0.3 s more (however slow this machine is).
    until = time.monotonic() + 0.3
    for key, (_, value) in memo.items():
        revocation.memo.set(key, (until, value))
    token_identity(access, door=Door.API)
    time.sleep(0.35)
    revocation.clear_memo()
    with CaptureQueriesContext(connection) as queries, pytest.raises(TokenRevoked):
        token_identity(access, door=Door.API)
    assert len(queries) == 0


def test_an_access_token_with_a_family_costs_no_query_when_cached(three):
    _, logins = three
    token_identity(logins[0]["access"], door=Door.API)
    revocation.clear_memo()
    with CaptureQueriesContext(connection) as queries:
        token_identity(logins[0]["access"], door=Door.API)
    assert len(queries) == 0


# --- refusals ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["999999", "abc", "-1", "1.5", "%00"])
def test_unknown_session_ids_are_404(three, bad):
    _, logins = three
    response = _bearer(logins[0]["access"]).delete(f"/api/auth/sessions/{bad}")
    assert_error(response, 404, "not_found")


def test_another_users_session_is_404_and_stays_alive(three, make_user):
    user, logins = three
    other = make_user()
    theirs = _login(other, "Other/1.0")
    (their_row,) = _listed(theirs["access"])["results"]
    response = _bearer(logins[0]["access"]).delete(
        f"/api/auth/sessions/{their_row['id']}"
    )
    assert_error(response, 404, "not_found")
    assert _bearer(theirs["access"]).get("/api/auth/me").status_code == 200


def test_an_ended_session_is_404_the_second_time(three):
    _, logins = three
    row = next(r for r in _listed(logins[0]["access"])["results"] if not r["current"])
    client = _bearer(logins[0]["access"])
    assert client.delete(f"/api/auth/sessions/{row['id']}").status_code == 204
    assert_error(client.delete(f"/api/auth/sessions/{row['id']}"), 404, "not_found")


def test_sessions_need_a_token(db):
    assert_error(APIClient().get("/api/auth/sessions"), 401, "not_authenticated")
    assert_error(APIClient().delete("/api/auth/sessions/1"), 401, "not_authenticated")


def test_ending_the_current_session_ends_this_token(three):
    _, logins = three
    current = next(r for r in _listed(logins[0]["access"])["results"] if r["current"])
    client = _bearer(logins[0]["access"])
    assert client.delete(f"/api/auth/sessions/{current['id']}").status_code == 204
    assert_error(client.get("/api/auth/me"), 401, "token_revoked")


def test_logout_and_logout_all_leave_no_listed_session(three):
    _, logins = three
    phone = _bearer(logins[0]["access"])
    assert (
        phone.post(
            "/api/auth/logout", {"refresh": logins[0]["refresh"]}, format="json"
        ).status_code
        == 204
    )
    listed = _listed(logins[2]["access"])["results"]
    assert {r["login_user_agent"] for r in listed} == {"Laptop/2.0", "Tablet/3.0"}
    assert _bearer(logins[2]["access"]).post("/api/auth/logout-all").status_code == 204
    fresh = _login(three[0], "New/1.0")
    assert [r["login_user_agent"] for r in _listed(fresh["access"])["results"]] == [
        "New/1.0"
    ]


def test_sessions_are_in_the_openapi_schema(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "get" in paths["/api/auth/sessions"]
    assert "delete" in paths["/api/auth/sessions/{id}"]
