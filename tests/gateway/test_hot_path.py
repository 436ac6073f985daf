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
