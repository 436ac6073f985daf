"""What the gateway memoises from settings, through the gateway: the ALLOWED_HOSTS
verdict per raw host (``gateway.pipeline.allowed_host``, bounded, forgotten when a
setting it depends on changes) and the trusted proxies of X-Forwarded-For
(``core.net``, re-read when XENX_TRUSTED_PROXIES changes)."""

import pytest
from django.test import RequestFactory

from core.errors import MalformedRequest
from core.memo import Memo
from gateway import pipeline
from tests.conftest import assert_error


@pytest.fixture
def echo(make_service, upstream):
    make_service("echo", [upstream.url], public=True)
    return upstream


def call(api, host, **extra):
    return api.get("/api/echo/x", HTTP_HOST=host, **extra)


# --- ALLOWED_HOSTS ------------------------------------------------------------------------


def test_disallowed_host_is_400_on_every_call(echo, api):
    for _ in range(3):
        assert_error(call(api, "evil.example"), 400, "malformed_request")
        assert call(api, "testserver").status_code == 200
    assert_error(call(api, "evil.example:8080"), 400, "malformed_request")
    assert len(echo.requests) == 3  # only the allowed calls reached it
    verdicts = pipeline.host_verdicts
    assert {h: verdicts.get(h) for h in ("evil.example", "testserver")} == {
        "evil.example": False,
        "testserver": True,
    }
    assert verdicts.get("evil.example:8080") is False and len(verdicts) == 3


def test_allowed_hosts_change_takes_effect_at_once(echo, api, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    assert_error(call(api, "new.example"), 400, "malformed_request")
    assert call(api, "testserver").status_code == 200
    settings.ALLOWED_HOSTS = ["new.example"]
    assert call(api, "new.example").status_code == 200
    assert_error(call(api, "testserver"), 400, "malformed_request")
    settings.ALLOWED_HOSTS = [".example"]  # a subdomain pattern
    assert call(api, "new.example").status_code == 200
    assert call(api, "a.b.example").status_code == 200
    assert_error(call(api, "testserver"), 400, "malformed_request")
    settings.ALLOWED_HOSTS = ["*"]
    assert call(api, "testserver").status_code == 200
    assert call(api, "anything.invalid").status_code == 200


def test_forwarded_host_verdict_follows_use_x_forwarded_host(echo, api, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    forwarded = {"HTTP_X_FORWARDED_HOST": "evil.example"}
    assert call(api, "testserver", **forwarded).status_code == 200  # not believed
    settings.USE_X_FORWARDED_HOST = True
    assert_error(call(api, "testserver", **forwarded), 400, "malformed_request")
    settings.USE_X_FORWARDED_HOST = False
    assert call(api, "testserver", **forwarded).status_code == 200


def test_verdicts_stay_within_their_bound_through_the_gateway(echo, api, monkeypatch):
    monkeypatch.setattr(pipeline, "host_verdicts", Memo(8))
    for i in range(30):
        assert_error(call(api, f"h{i}.invalid"), 400, "malformed_request")
        assert len(pipeline.host_verdicts) <= 8
        if i % 7 == 0:
            assert call(api, "testserver").status_code == 200
    for i in range(30):  # forgotten verdicts are found again, the same
        assert_error(call(api, f"h{i}.invalid"), 400, "malformed_request")
    assert call(api, "testserver").status_code == 200
    assert len(pipeline.host_verdicts) <= 8


def test_verdicts_never_grow_beyond_the_real_bound():
    factory = RequestFactory()
    bound = pipeline.host_verdicts.maxsize
    for i in range(bound + 500):
        request = factory.get("/", HTTP_HOST=f"h{i}.invalid")
        with pytest.raises(MalformedRequest):
            pipeline.allowed_host(request)
        assert len(pipeline.host_verdicts) <= bound
    assert (
        pipeline.allowed_host(factory.get("/", HTTP_HOST="testserver")) == "testserver"
    )
    assert len(pipeline.host_verdicts) <= bound


# --- trusted proxies ----------------------------------------------------------------------


def forwarded_for(echo, api, chain="203.0.113.9"):
    assert call(api, "testserver", HTTP_X_FORWARDED_FOR=chain).status_code == 200
    return {k.lower(): v for k, v in echo.requests[-1].headers.items()}[
        "x-forwarded-for"
    ]


def test_trusted_proxies_change_takes_effect_at_once(echo, api, settings):
    settings.XENX_TRUSTED_PROXIES = ["10.9.9.9"]
    assert forwarded_for(echo, api) == "127.0.0.1"  # untrusted peer: chain dropped
    settings.XENX_TRUSTED_PROXIES = ["127.0.0.1"]
    assert forwarded_for(echo, api) == "203.0.113.9, 127.0.0.1"
    settings.XENX_TRUSTED_PROXIES = []
    assert forwarded_for(echo, api) == "127.0.0.1"
    settings.XENX_TRUSTED_PROXIES = ["127.0.0.0/8"]
    assert forwarded_for(echo, api) == "203.0.113.9, 127.0.0.1"
    settings.XENX_TRUSTED_PROXIES = ["10.9.9.9"]
    assert forwarded_for(echo, api) == "127.0.0.1"
