"""Load balancing, retries, timeouts and the circuit breaker (README "Gateway")."""

import collections

import pytest

from core.roles import Role
from gateway import breaker
from gateway.models import ServiceInstance
from tests.conftest import assert_error
from tests.gateway.conftest import closed_port_url


@pytest.fixture
def caller(auth_client, make_user):
    return auth_client(make_user(Role.CLIENT))


def served_by(resp):
    return resp.json()["server"]


def test_weighted_round_robin_over_40_calls(make_service, upstream_factory, caller):
    heavy, light = upstream_factory("heavy"), upstream_factory("light")
    make_service(
        "svc", [{"url": heavy.url, "weight": 3}, {"url": light.url, "weight": 1}]
    )
    counts = collections.Counter(served_by(caller.get("/api/svc/x")) for _ in range(40))
    assert counts == {"heavy": 30, "light": 10}


def test_disabled_instance_gets_nothing(make_service, upstream_factory, caller):
    a, b = upstream_factory("a"), upstream_factory("b")
    make_service("svc", [a.url, {"url": b.url, "enabled": False}])
    assert {served_by(caller.get("/api/svc/x")) for _ in range(6)} == {"a"}


def test_instance_killed_mid_run_no_failed_get(make_service, upstream_factory, caller):
    a, b = upstream_factory("a"), upstream_factory("b")
    make_service("svc", [a.url, b.url], retries=1)
    statuses = []
    for i in range(40):
        if i == 10:
            b.close()
        statuses.append(caller.get("/api/svc/x").status_code)
    assert statuses == [200] * 40
    assert len(a.requests) >= 25


def test_refused_instance_retried_for_post(make_service, upstream, caller):
    make_service("svc", [closed_port_url(), upstream.url], retries=1)
    for _ in range(4):  # the refused instance comes first at least once
        resp = caller.post("/api/svc/x", data=b"{}", content_type="application/json")
        assert resp.status_code == 200
    assert [r.method for r in upstream.requests] == ["POST"] * 4


def test_post_not_retried_once_sent(make_service, upstream_factory, caller):
    broken, good = upstream_factory("broken"), upstream_factory("good")
    broken.behavior = "reset"  # reads the request, then closes without an answer
    make_service("svc", [broken.url, good.url], retries=1)
    resp = caller.post("/api/svc/x", data=b"{}", content_type="application/json")
    assert_error(resp, 502, "bad_gateway")
    assert len(broken.requests) == 1
    assert good.requests == []


def test_get_retried_on_next_instance_after_reset(
    make_service, upstream_factory, caller
):
    broken, good = upstream_factory("broken"), upstream_factory("good")
    broken.behavior = "reset"
    make_service("svc", [broken.url, good.url], retries=1)
    resp = caller.get("/api/svc/x")
    assert resp.status_code == 200
    assert served_by(resp) == "good"
    assert len(broken.requests) == 1


def test_retries_zero_means_one_try(make_service, upstream, caller):
    make_service("svc", [closed_port_url(), upstream.url], retries=0)
    assert_error(caller.get("/api/svc/x"), 502, "bad_gateway")
    assert upstream.requests == []


def test_all_instances_down(make_service, caller):
    make_service("svc", [closed_port_url(), closed_port_url()], retries=3)
    assert_error(caller.get("/api/svc/x"), 502, "bad_gateway")


def test_slow_upstream_is_504(make_service, upstream, caller):
    make_service("svc", [upstream.url], timeout_seconds=0.3, retries=2)
    assert_error(caller.get("/api/svc/slow?s=1.5"), 504, "gateway_timeout")
    assert len(upstream.requests) == 1  # a read timeout is not retried


def test_no_healthy_instance_is_503_with_retry_after(make_service, upstream, caller):
    service = make_service("svc", [upstream.url])
    breaker.mark_down(service.instances.get().id, 30)
    resp = caller.get("/api/svc/x")
    assert_error(resp, 503, "service_unavailable")
    assert int(resp["Retry-After"]) > 0
    assert upstream.requests == []


def test_breaker_opens_after_five_failures_and_one_trial_closes_it(
    make_service, upstream, caller
):
    upstream.behavior = "reset"
    service = make_service("svc", [upstream.url], retries=0)
    instance_id = service.instances.get().id
    for _ in range(5):
        assert_error(caller.get("/api/svc/x"), 502, "bad_gateway")
    assert len(upstream.requests) == 5
    # open: refused without contacting the upstream
    assert_error(caller.get("/api/svc/x"), 503, "service_unavailable")
    assert len(upstream.requests) == 5
    # 30 s later (moved by hand): half-open, one trial decides; it fails → open again
    breaker.cache.set(breaker.open_key(instance_id), breaker.now_ms() - 1)
    assert_error(caller.get("/api/svc/x"), 502, "bad_gateway")
    assert len(upstream.requests) == 6
    assert_error(caller.get("/api/svc/x"), 503, "service_unavailable")
    # the upstream recovers; the next trial succeeds and closes the circuit
    upstream.behavior = None
    breaker.cache.set(breaker.open_key(instance_id), breaker.now_ms() - 1)
    assert caller.get("/api/svc/x").status_code == 200
    assert caller.get("/api/svc/x").status_code == 200
    assert breaker.get_health([instance_id])[instance_id] == (None, None)


def test_success_resets_the_failure_count(make_service, upstream, caller):
    service = make_service("svc", [upstream.url], retries=0)
    instance_id = service.instances.get().id
    upstream.behavior = "reset"
    for _ in range(4):
        caller.get("/api/svc/x")
    upstream.behavior = None
    assert caller.get("/api/svc/x").status_code == 200
    upstream.behavior = "reset"
    for _ in range(4):
        assert_error(caller.get("/api/svc/x"), 502, "bad_gateway")
    assert breaker.get_health([instance_id])[instance_id][0] is None  # still closed


def test_health_state_is_shared_not_per_process(make_service, upstream_factory, caller):
    """Another worker (or node) marking an instance down is seen here."""
    a, b = upstream_factory("a"), upstream_factory("b")
    make_service("svc", [a.url, b.url])
    caller.get("/api/svc/x")
    b_id = ServiceInstance.objects.get(url=b.url).id
    breaker.mark_down(b_id, 30)  # as check_services in another process would
    assert {served_by(caller.get("/api/svc/x")) for _ in range(4)} == {"a"}


def test_registry_change_seen_without_restart(make_service, upstream_factory, caller):
    from gateway.services import service_update

    a, b = upstream_factory("a"), upstream_factory("b")
    service = make_service("svc", [a.url])
    assert served_by(caller.get("/api/svc/x")) == "a"
    service_update(service=service, instances=[b.url])
    assert served_by(caller.get("/api/svc/x")) == "b"


def test_database_down_keeps_serving_the_snapshot(
    make_service, upstream, caller, monkeypatch
):
    from django.db import DatabaseError

    from gateway import registry as registry_module

    make_service("svc", [upstream.url])
    assert caller.get("/api/svc/x").status_code == 200

    def down():
        raise DatabaseError("connection refused")

    monkeypatch.setattr(registry_module, "build_snapshot", down)
    calls = []
    monkeypatch.setattr(
        registry_module, "build_snapshot", lambda: calls.append(1) or down()
    )
    registry_module.registry.invalidate()  # as if the version had moved
    assert caller.get("/api/svc/x").status_code == 200
    assert caller.get("/api/svc/x").status_code == 200
    assert len(calls) == 1  # not retried on every call


def test_a_client_body_cut_short_is_400_and_never_opens_the_breaker(
    make_service, upstream, caller
):
    """A client that promises more bytes than it sends is the client's fault: 400, and
    no amount of such calls marks the upstream unhealthy."""
    import io

    service = make_service("svc", [upstream.url], retries=0)
    instance_id = service.instances.get().id
    for _ in range(6):
        response = caller.generic(
            "POST",
            "/api/svc/upload",
            content_type="application/octet-stream",
            **{"wsgi.input": io.BytesIO(b"x" * 1000), "CONTENT_LENGTH": "200000"},
        )
        assert_error(response, 400, "malformed_request")
    assert breaker.get_health([instance_id])[instance_id] == (None, None)
    assert caller.get("/api/svc/x").status_code == 200
