"""The proxied call's steady state: no database query, at most two Redis round trips."""

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from gateway import fastredis
from xenx.roles import Role


@pytest.fixture
def count_round_trips(monkeypatch):
    """Counts writes to Redis: each command or pipeline is one round trip."""
    from redis.connection import Connection

    counter = {"n": 0}
    original_send = Connection.send_packed_command
    original_exec = fastredis._Conn.execute

    def send(self, *args, **kwargs):
        counter["n"] += 1
        return original_send(self, *args, **kwargs)

    def execute(self, commands):
        counter["n"] += 1
        return original_exec(self, commands)

    monkeypatch.setattr(Connection, "send_packed_command", send)
    monkeypatch.setattr(fastredis._Conn, "execute", execute)
    return counter


@pytest.mark.parametrize("public", [True, False])
def test_steady_state_no_query(
    make_service, upstream, auth_client, make_user, api, public
):
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
def test_at_most_two_round_trips(
    make_service, upstream, auth_client, make_user, count_round_trips, monkeypatch
):
    from accounts import revocation

    make_service("svc", [upstream.url])
    caller = auth_client(make_user(Role.CLIENT))
    assert caller.get("/api/svc/x").status_code == 200
    # without the per-process memo: the token check (one get_many) + one pipeline
    monkeypatch.setattr(revocation, "memo_seconds", lambda: 0)
    revocation.clear_memo()
    count_round_trips["n"] = 0
    assert caller.get("/api/svc/x").status_code == 200
    assert count_round_trips["n"] == 2
    # with the memo (the steady state under load): one
    monkeypatch.setattr(revocation, "memo_seconds", lambda: 0.5)
    caller.get("/api/svc/x")
    count_round_trips["n"] = 0
    assert caller.get("/api/svc/x").status_code == 200
    assert count_round_trips["n"] == 1


@pytest.mark.skipif(
    not settings.CACHES["default"]["BACKEND"].startswith("django_redis"),
    reason="needs Redis",
)
def test_large_limits_counted_in_batches(
    make_service, upstream, api, count_round_trips, monkeypatch
):
    """Far below a large limit a call makes no round trip; the count still reaches the
    shared cache (flushed), and near the limit counting is exact again."""
    from gateway import batching, ratelimit
    from gateway.registry import registry

    make_service(
        "svc", [upstream.url], public=True, rate_limits={"anonymous": "2000/m"}
    )
    assert api.get("/api/svc/x").status_code == 200  # synchronous: learns the count
    batching.flush()  # what the background thread does every 0.1 s
    count_round_trips["n"] = 0
    for _ in range(10):
        assert api.get("/api/svc/x").status_code == 200
    assert count_round_trips["n"] == 0
    batching.flush()
    limit = ratelimit.limit_for(
        registry.get("svc"), role=None, user_id=None, ip="127.0.0.1"
    )
    from django.core.cache import cache

    assert cache.get(limit.key) == 11
    # close to the limit: every call goes to Redis again
    cache.set(limit.key, 1990, 120)
    batching.flush()
    count_round_trips["n"] = 0
    resp = api.get("/api/svc/x")
    assert resp["X-RateLimit-Remaining"] == str(2000 - 1991)
    assert count_round_trips["n"] == 1
