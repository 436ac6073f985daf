"""Access and refresh tokens: the forged-token matrix, refresh rotation with reuse
detection, logout, logout-all, password change, deactivation, the absolute session
lifetime and the revocation check without a database query (README "Identity")."""

import base64
import json
import threading
import time

import jwt
import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts import revocation
from accounts.policy import Door, token_identity
from accounts.tokens import (
    decode_access_token,
    issue_mfa_token,
    issue_tokens,
)
from auditlog.models import AuditEvent
from core.errors import TokenRevoked
from tests.conftest import DEFAULT_PASSWORD, assert_error

pytestmark = pytest.mark.django_db

KEY = django_settings.SIMPLE_JWT["SIGNING_KEY"]


def _b64(data: dict) -> str:
    raw = json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _me(token):
    return APIClient().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def _refresh(token):
    return APIClient().post(
        "/api/auth/token/refresh", {"refresh": token}, format="json"
    )


# --- forged and misused tokens ------------------------------------------------------


def _forge(kind, user, org, api):
    tokens = issue_tokens(user, mfa=False)
    payload = decode_access_token(tokens["access"])
    if kind == "bad_signature":
        return jwt.encode(payload, "x" * 64, algorithm="HS256"), "invalid_token"
    if kind == "alg_none":
        header = _b64({"alg": "none", "typ": "JWT"})
        return f"{header}.{_b64(payload)}.", "invalid_token"
    if kind == "alg_hs512":
        return jwt.encode(payload, KEY, algorithm="HS512"), "invalid_token"
    if kind == "tampered_role":
        head, body, sig = tokens["access"].split(".")
        return f"{head}.{_b64({**payload, 'role': 'admin'})}.{sig}", "invalid_token"
    if kind == "expired":
        return jwt.encode(
            {**payload, "exp": int(time.time()) - 1}, KEY, algorithm="HS256"
        ), "invalid_token"
    if kind == "no_exp":
        body = {k: v for k, v in payload.items() if k != "exp"}
        return jwt.encode(body, KEY, algorithm="HS256"), "invalid_token"
    if kind == "no_type":
        body = {k: v for k, v in payload.items() if k != "token_type"}
        return jwt.encode(body, KEY, algorithm="HS256"), "invalid_token"
    if kind == "refresh_as_access":
        return tokens["refresh"], "invalid_token"
    if kind == "mfa_token_as_access":
        return issue_mfa_token(user), "invalid_token"
    if kind == "garbage":
        return "not-a-jwt", "invalid_token"
    if kind == "deactivated_user":
        user.is_active = False
        user.save()
        return tokens["access"], "token_revoked"
    if kind == "deactivated_org":
        org.is_active = False
        org.save()
        return tokens["access"], "token_revoked"
    if kind == "deleted_user":
        access = tokens["access"]
        user.delete()
        return access, "token_revoked"
    if kind == "after_logout":
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        assert (
            client.post(
                "/api/auth/logout", {"refresh": tokens["refresh"]}, format="json"
            ).status_code
            == 204
        )
        return tokens["access"], "token_revoked"
    if kind == "after_logout_all":
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        assert client.post("/api/auth/logout-all").status_code == 204
        return tokens["access"], "token_revoked"
    if kind == "after_password_change":
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        response = client.post(
            "/api/auth/password/change",
            {"old_password": DEFAULT_PASSWORD, "new_password": "An0ther-long-secret"},
            format="json",
        )
        assert response.status_code == 200
        return tokens["access"], "token_revoked"
    raise AssertionError(kind)


FORGED = [
    "bad_signature",
    "alg_none",
    "alg_hs512",
    "tampered_role",
    "expired",
    "no_exp",
    "no_type",
    "refresh_as_access",
    "mfa_token_as_access",
    "garbage",
    "deactivated_user",
    "deactivated_org",
    "deleted_user",
    "after_logout",
    "after_logout_all",
    "after_password_change",
]


@pytest.mark.parametrize("kind", FORGED)
def test_forged_or_revoked_access_tokens_are_refused(kind, make_user, org, api):
    user = make_user()
    token, code = _forge(kind, user, org, api)
    assert_error(_me(token), 401, code)


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("Bearer", "invalid_token"),
        ("Bearer a b", "invalid_token"),
        ("bearer not-a-jwt", "invalid_token"),
        ("Token abc", "not_authenticated"),
        ("Basic dXNlcjpwYXNz", "not_authenticated"),
    ],
)
def test_malformed_authorization_headers(header, code, db):
    response = APIClient().get("/api/auth/me", HTTP_AUTHORIZATION=header)
    assert_error(response, 401, code)


def test_no_token_is_not_authenticated(db):
    assert_error(APIClient().get("/api/auth/me"), 401, "not_authenticated")


def test_access_token_as_refresh_is_refused(make_user):
    tokens = issue_tokens(make_user(), mfa=False)
    assert_error(_refresh(tokens["access"]), 401, "invalid_token")


# --- refresh ------------------------------------------------------------------------


def test_refresh_rotates_and_keeps_claims(make_user):
    user = make_user()
    tokens = issue_tokens(user, mfa=True)
    response = _refresh(tokens["refresh"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= {"access", "refresh"}
    assert body["refresh"] != tokens["refresh"]
    old, new = (
        decode_access_token(tokens["access"]),
        decode_access_token(body["access"]),
    )
    assert new["mfa"] is True and new["sst"] == old["sst"]
    assert new["role"] == user.role
    assert _me(body["access"]).status_code == 200
    # The old access token still works until it expires (only the refresh rotated).
    assert _me(tokens["access"]).status_code == 200


def test_refresh_picks_up_a_role_change(make_user):
    user = make_user("client")
    tokens = issue_tokens(user, mfa=False)
    user.role = "cpa"
    user.save()
    body = _refresh(tokens["refresh"]).json()
    assert decode_access_token(body["access"])["role"] == "cpa"


def test_refresh_token_reuse_revokes_the_whole_family(make_user):
    user = make_user()
    first = issue_tokens(user, mfa=False)
    other_session = issue_tokens(user, mfa=False)
    rotated = _refresh(first["refresh"]).json()
    # The attacker (or the victim) presents the already rotated token.
    assert_error(_refresh(first["refresh"]), 401, "token_revoked")
    assert AuditEvent.objects.filter(
        action="token.reuse_detected", target_id=str(user.pk)
    ).exists()
    # Every refresh and access token of the user is now dead.
    assert_error(_refresh(rotated["refresh"]), 401, "token_revoked")
    assert_error(_refresh(other_session["refresh"]), 401, "token_revoked")
    assert_error(_me(rotated["access"]), 401, "token_revoked")
    assert_error(_me(other_session["access"]), 401, "token_revoked")
    # A fresh login works again.
    client = APIClient()
    fresh = client.post(
        "/api/auth/login",
        {"email": user.email, "password": DEFAULT_PASSWORD},
        format="json",
    ).json()
    assert _me(fresh["access"]).status_code == 200
    assert _refresh(fresh["refresh"]).status_code == 200


@pytest.mark.parametrize("change", ["deactivated", "org_deactivated"])
def test_refresh_refused_for_inactive_accounts(change, make_user, org):
    user = make_user()
    tokens = issue_tokens(user, mfa=False)
    if change == "deactivated":
        user.is_active = False
        user.save()
    else:
        org.is_active = False
        org.save()
    assert_error(_refresh(tokens["refresh"]), 401, "token_revoked")


def test_refresh_after_logout_all_is_revoked_without_reuse_alarm(make_user):
    user = make_user()
    old = issue_tokens(user, mfa=False)
    revocation.revoke_user_tokens(user)
    new = issue_tokens(user, mfa=False)
    assert_error(_refresh(old["refresh"]), 401, "token_revoked")
    assert not AuditEvent.objects.filter(action="token.reuse_detected").exists()
    # The session started after the revocation is untouched.
    assert _refresh(new["refresh"]).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        jwt.encode({"token_type": "refresh"}, "k" * 40, algorithm="HS256"),
    ],
)
def test_refresh_garbage(token, db):
    assert_error(_refresh(token), 401, "invalid_token")


@pytest.mark.parametrize("body", [{}, {"refresh": ""}, {"refresh": None}])
def test_refresh_missing_token(body, db):
    response = APIClient().post("/api/auth/token/refresh", body, format="json")
    assert_error(response, 400, "validation_error")


def test_refresh_forged_with_the_right_key_but_unknown_jti(make_user):
    user = make_user()
    payload = {
        "token_type": "refresh",
        "user_id": str(user.pk),
        "jti": "f" * 32,
        "exp": int(time.time()) + 3600,
        "ist": time.time(),
        "sst": time.time(),
    }
    assert_error(
        _refresh(jwt.encode(payload, KEY, algorithm="HS256")), 401, "invalid_token"
    )


def test_session_lifetime_caps_the_refresh_family(make_user, settings):
    user = make_user()
    max_seconds = settings.XENX_SESSION_MAX_DAYS * 86400
    # A session that started just under the cap ago: tokens expire at the cap.
    started = time.time() - max_seconds + 60
    tokens = issue_tokens(user, mfa=False, session_started=started)
    refresh = jwt.decode(tokens["refresh"], KEY, algorithms=["HS256"])
    assert refresh["exp"] <= started + max_seconds
    body = _refresh(tokens["refresh"]).json()
    again = jwt.decode(body["refresh"], KEY, algorithms=["HS256"])
    assert again["exp"] <= started + max_seconds
    assert decode_access_token(body["access"])["exp"] <= started + max_seconds


def test_session_past_its_lifetime_cannot_refresh(make_user, settings):
    user = make_user()
    settings.XENX_SESSION_MAX_DAYS = 1
    tokens = issue_tokens(user, mfa=False, session_started=time.time() - 86400 - 1)
    # issue_tokens capped exp at the session end, already past: the token is expired.
    assert_error(_refresh(tokens["refresh"]), 401, "invalid_token")


# --- logout -----------------------------------------------------------------------------


def test_logout_revokes_that_refresh_and_access(make_user, auth_client):
    user = make_user()
    client = auth_client(user)
    other = issue_tokens(user, mfa=False)
    response = client.post(
        "/api/auth/logout", {"refresh": client.tokens["refresh"]}, format="json"
    )
    assert response.status_code == 204
    assert_error(_me(client.tokens["access"]), 401, "token_revoked")
    assert_error(_refresh(client.tokens["refresh"]), 401, "token_revoked")
    assert AuditEvent.objects.filter(action="logout", actor=user).exists()
    # The logged-out session was ended, not stolen: refreshing it is no reuse alarm,
    # the user's other session lives (README "Tokens, keys and sessions").
    assert _me(other["access"]).status_code == 200
    assert not AuditEvent.objects.filter(action="token.reuse_detected").exists()


def test_logout_leaves_other_sessions_alone(make_user, auth_client):
    user = make_user()
    client = auth_client(user)
    other = issue_tokens(user, mfa=False)
    client.post(
        "/api/auth/logout", {"refresh": client.tokens["refresh"]}, format="json"
    )
    assert _me(other["access"]).status_code == 200
    assert _refresh(other["refresh"]).status_code == 200


def test_logout_needs_a_bearer_token(make_user):
    tokens = issue_tokens(make_user(), mfa=False)
    response = APIClient().post(
        "/api/auth/logout", {"refresh": tokens["refresh"]}, format="json"
    )
    assert_error(response, 401, "not_authenticated")


def test_logout_with_someone_elses_refresh_token(make_user, auth_client):
    client = auth_client(make_user())
    victim = issue_tokens(make_user(), mfa=False)
    response = client.post(
        "/api/auth/logout", {"refresh": victim["refresh"]}, format="json"
    )
    assert_error(response, 400, "validation_error")
    assert _refresh(victim["refresh"]).status_code == 200


@pytest.mark.parametrize("body", [{}, {"refresh": ""}, {"refresh": "garbage"}])
def test_logout_bad_bodies(body, make_user, auth_client):
    client = auth_client(make_user())
    assert_error(
        client.post("/api/auth/logout", body, format="json"), 400, "validation_error"
    )
    assert client.get("/api/auth/me").status_code == 200


def test_logout_all_revokes_everything_issued_before(make_user, auth_client):
    user = make_user()
    client = auth_client(user)
    other = issue_tokens(user, mfa=False)
    assert client.post("/api/auth/logout-all").status_code == 204
    for access in (client.tokens["access"], other["access"]):
        assert_error(_me(access), 401, "token_revoked")
    for refresh in (client.tokens["refresh"], other["refresh"]):
        assert_error(_refresh(refresh), 401, "token_revoked")
    assert AuditEvent.objects.filter(action="logout.all", actor=user).exists()
    assert BlacklistedToken.objects.filter(token__user=user).count() == 2


def test_tokens_issued_in_the_same_second_after_a_revocation_work(make_user):
    """iat is whole seconds; revocation compares the microsecond ``ist``."""
    user = make_user()
    before = issue_tokens(user, mfa=False)
    revocation.revoke_user_tokens(user)
    after = issue_tokens(user, mfa=False)
    assert (
        decode_access_token(before["access"])["iat"]
        >= decode_access_token(after["access"])["iat"] - 1
    )
    assert_error(_me(before["access"]), 401, "token_revoked")
    assert _me(after["access"]).status_code == 200


def test_a_fresh_user_instance_also_issues_valid_tokens_after_revocation(make_user):
    user = make_user()
    revocation.revoke_user_tokens(user)
    stale = type(user).objects.get(pk=user.pk)
    assert _me(issue_tokens(stale, mfa=False)["access"]).status_code == 200


# --- revocation state: cache, memo, no DB query ---------------------------------------------


def test_checking_an_access_token_costs_no_query_when_cached(make_user):
    user = make_user()
    access = issue_tokens(user, mfa=False)["access"]
    token_identity(access, door=Door.API)  # warms the cache
    revocation.clear_memo()  # another process: nothing memoised, the cache is warm
    with CaptureQueriesContext(connection) as queries:
        identity = token_identity(access, door=Door.API)
    assert identity.user_id == user.pk
    assert len(queries) == 0


def test_deactivation_reaches_a_process_with_a_warm_memo(make_user, settings):
    """Another process memoised the state; after the memo window it sees the change."""
    settings.XENX_REVOCATION_MEMO_SECONDS = 0.2
    user = make_user()
    access = issue_tokens(user, mfa=False)["access"]
    token_identity(access, door=Door.API)
    # A write made by another process: the DB changes and its invalidation drops the
    # shared record (``ustate:{user_id}``, accounts.revocation); this process's memo
    # does not change (a queryset update sends no post_save).
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    cache.delete(f"ustate:{user.pk}")
    token_identity(access, door=Door.API)  # still served from the memo
    time.sleep(0.25)
    with pytest.raises(TokenRevoked):
        token_identity(access, door=Door.API)


def test_a_stale_reader_cannot_overwrite_a_fresh_state(
    make_user, django_capture_on_commit_callbacks
):
    """Readers add, writers set: a state loaded before a write cannot win."""
    user = make_user()
    stale = revocation.get_user_state(user.pk)  # loaded from the row before the write
    assert stale.revoked_before == 0
    with django_capture_on_commit_callbacks(execute=True):  # the writer's refresh
        revocation.revoke_user_tokens(user)
    cache.add(f"ustate:{user.pk}", stale, 60)  # the slow reader
    assert revocation.get_user_state(user.pk).revoked_before > 0


# --- concurrency (real PostgreSQL) ---------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_refreshes_of_one_token_do_not_both_succeed(make_user):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    user = make_user()
    refresh = issue_tokens(user, mfa=False)["refresh"]
    barrier = threading.Barrier(4)
    results = []

    def worker():
        try:
            barrier.wait()
            results.append(_refresh(refresh).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 401, 401, 401], results
