"""GET /health (aggregate) and GET /metrics (README "Gateway" (health)), and the cache-down policy."""

import pytest

from core.roles import Role
from gateway import breaker, state
from tests.conftest import assert_error


def test_health_ok_with_services(make_service, upstream, api):
    make_service("svc", [upstream.url, upstream.url + "/b"])
    body = api.get("/health").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "ok"
    assert body["checks"]["services"]["svc"] == {
        "status": "ok",
        "healthy_instances": 2,
        "total_instances": 2,
    }


def test_health_degraded_and_down_services_never_make_it_down(
    make_service, upstream, api
):
    half = make_service(
        "half",
        [
            upstream.url,
            upstream.url + "/b",
            {"url": upstream.url + "/c", "enabled": False},
        ],
    )
    dead = make_service("dead", [upstream.url])
    breaker.mark_down(half.instances.first().id, 30)
    breaker.mark_down(dead.instances.get().id, 30)
    resp = api.get("/health")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "degraded"
    assert body["checks"]["services"]["half"] == {
        "status": "degraded",
        "healthy_instances": 1,
        "total_instances": 2,
    }
    assert body["checks"]["services"]["dead"]["status"] == "down"


def test_health_down_when_cache_fails(db, api, monkeypatch):
    monkeypatch.setattr(
        "core.health.check_cache",
        lambda: {"status": "down", "latency_ms": 1.0},
    )
    resp = api.get("/health")
    assert resp.status_code == 503
    assert resp.json()["status"] == "down"


def test_metrics_access(
    db, api, auth_client, make_user, settings, make_service, upstream
):
    make_service("svc", [upstream.url])
    admin = auth_client(make_user(Role.ADMIN))
    admin.get("/api/svc/x")
    assert_error(api.get("/metrics"), 401, "not_authenticated")
    assert_error(
        auth_client(make_user(Role.STAFF)).get("/metrics"), 403, "permission_denied"
    )
    resp = admin.get("/metrics")
    assert resp.status_code == 200
    text = resp.content.decode()
    assert (
        'xenx_gateway_requests_total{method="GET",service="svc",status="2xx"}' in text
    )
    assert "xenx_gateway_request_duration_seconds_bucket" in text
    settings.XENX_METRICS_TOKEN = "s3cret-token"
    assert (
        api.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
    )
    assert_error(
        api.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong"), 401, "invalid_token"
    )


def test_metrics_count_rate_limits_and_upstream_errors(
    make_service, auth_client, make_user, upstream
):
    from tests.gateway.conftest import closed_port_url

    make_service("lim", [upstream.url], rate_limits={"admin": "1/m"})
    make_service("dead", [closed_port_url()], retries=0)
    admin = auth_client(make_user(Role.ADMIN))
    admin.get("/api/lim/x")
    admin.get("/api/lim/x")
    admin.get("/api/dead/x")
    text = admin.get("/metrics").content.decode()
    assert 'xenx_gateway_rate_limited_total{service="lim"}' in text
    assert (
        'xenx_gateway_upstream_errors_total{kind="connect_error",service="dead"}'
        in text
    )


@pytest.fixture
def cache_down(monkeypatch):
    def boom(*args, **kwargs):
        raise state.CacheDown()

    monkeypatch.setattr(state, "hot_round_trip", boom)


def test_proxy_fails_closed_without_cache(make_service, upstream, api, cache_down):
    make_service("open", [upstream.url], public=True)
    resp = api.get("/api/open/x")
    assert_error(resp, 503, "service_unavailable")
    assert upstream.requests == []


def test_proxy_fails_open_when_configured(
    make_service, upstream, api, cache_down, settings
):
    settings.XENX_FAIL_OPEN_WITHOUT_CACHE = True
    make_service("open", [upstream.url], public=True)
    assert api.get("/api/open/x").status_code == 200


def test_access_log_of_proxied_calls(make_service, upstream, api, caplog):
    import logging

    make_service("open", [upstream.url], public=True)
    with caplog.at_level(logging.DEBUG, logger="xenx.access"):
        logging.getLogger("xenx.access.gateway").setLevel(logging.WARNING)
        api.get("/api/open/x")
        api.get("/api/open/x?status=503")
        api.get("/api/nope/x")
    lines = [
        (r.name, r.levelname, r.status)
        for r in caplog.records
        if r.name.startswith("xenx.access")
    ]
    assert lines == [
        ("xenx.access.gateway", "WARNING", 503),  # upstream 5xx
        ("xenx.access", "INFO", 404),  # the gateway's own answers are always logged
    ]
