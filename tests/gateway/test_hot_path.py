"""The proxied call's steady state: no database query, one Redis round trip (the
token's revocation records, the rate limit, the registry version and the instances'
health in one pipeline), memoised identity or not."""

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.roles import Role
from gateway import registry as registry_module


@pytest.fixture
def count_round_trips(monkeypatch):
    """Counts writes to Redis: each command or pipeline is one round trip."""
    from redis.connection import Connection

    counter = {"n": 0}
    original_send = Connection.send_packed_command

    def send(self, *args, **kwargs):
        counter["n"] += 1
        return original_send(self, *args, **kwargs)

    monkeypatch.setattr(Connection, "send_packed_command", send)
    return counter


@pytest.mark.parametrize("public", [True, False])
def test_steady_state_no_query(
    make_service, upstream, auth_client, make_user, api, public, monkeypatch
):
    # With a process-local cache the registry also reads the database's version row
    # once a second (tests/gateway/test_registry_versions.py): not within this test.
    monkeypatch.setattr(registry_module, "DB_CHECK_SECONDS", 3600)
    make_service("svc", [upstream.url], public=public)
    caller = api if public else auth_client(make_user(Role.CLIENT))
    assert caller.get("/api/svc/x").status_code == 200  # warms the snapshot
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert caller.get("/api/svc/x").status_code == 200
    assert len(queries) == 0, [q["sql"] for q in queries]


@pytest.mark.skipif(
    not settings.CACHES["default"]["BACKEND"].startswith("django_redis"),
    reason="needs Redis",
)
def test_one_round_trip_per_call(
    make_service, upstream, auth_client, make_user, count_round_trips, monkeypatch
):
    from accounts import revocation

    make_service("svc", [upstream.url])
    caller = auth_client(make_user(Role.CLIENT))
    assert caller.get("/api/svc/x").status_code == 200
    # without the per-process memo: the revocation records come with the pipeline
    monkeypatch.setattr(revocation, "memo_seconds", lambda: 0)
    revocation.clear_memo()
    for _ in range(3):
        count_round_trips["n"] = 0
        assert caller.get("/api/svc/x").status_code == 200
        assert count_round_trips["n"] == 1
    # with the memo (the steady state under load): one
    monkeypatch.setattr(revocation, "memo_seconds", lambda: 0.5)
    caller.get("/api/svc/x")
    count_round_trips["n"] = 0
    assert caller.get("/api/svc/x").status_code == 200
    assert count_round_trips["n"] == 1


def _count(user, service_name):
    from django.core.cache import cache

    from gateway import ratelimit
    from gateway.registry import registry

    limit = ratelimit.limit_for(
        registry.get(service_name), role=user.role, user_id=user.pk, ip=None
    )
    return cache.get(limit.key) or 0


def test_refused_calls_do_not_use_up_the_limit(
    make_service, upstream, auth_client, make_user
):
    """The count goes out with the revocation records, before the verdict on them; a
    refused call takes its count back."""
    from accounts import revocation

    make_service("svc", [upstream.url], rate_limits={"client": "5/m", "cpa": "5/m"})
    make_service("cpa-only", [upstream.url], allowed_roles=[Role.CPA])
    user = make_user(Role.CLIENT)
    caller = auth_client(user)
    assert caller.get("/api/svc/x").status_code == 200
    assert _count(user, "svc") == 1
    assert caller.get("/api/svc/x/../y").status_code == 400  # path: never counted
    assert caller.get("/api/cpa-only/x").status_code == 403
    assert _count(user, "cpa-only") == 0
    revocation.revoke_user_tokens(user)
    for _ in range(3):
        assert caller.get("/api/svc/x").status_code == 401
    assert _count(user, "svc") == 1
    assert upstream.requests and len(upstream.requests) == 1
