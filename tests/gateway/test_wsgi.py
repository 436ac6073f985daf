"""Proxied calls answered at the WSGI layer (gateway/wsgi.py) keep what Django's handler
gave them: request id, access log, error body, django.request logging, HSTS, the SSL
redirect; every other request still goes through Django."""

import json
import logging

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.test import RequestFactory

from core.roles import Role
from gateway.wsgi import GatewayApplication


class Spy:
    """Django's application, counting the requests it was given."""

    def __init__(self):
        self.django = WSGIHandler()
        self.calls = 0

    def __call__(self, environ, start_response):
        self.calls += 1
        return self.django(environ, start_response)


def call(app, path, **extra):
    environ = RequestFactory().get(path, **extra).environ
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = int(status.split()[0])
        seen["headers"] = headers

    body = b"".join(app(environ, start_response))
    headers = {}
    for name, value in seen["headers"]:
        headers.setdefault(name.lower(), value)
    return seen["status"], headers, body


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    """As Django's test client does: the end of a call does not close the test's
    database connection (it holds the test's transaction)."""
    from django.core.signals import request_started
    from django.db import close_old_connections

    monkeypatch.setattr("gateway.wsgi.close_old_connections", lambda: None)
    request_started.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)


@pytest.fixture
def spy():
    return Spy()


@pytest.fixture
def wsgi(spy):
    return GatewayApplication(spy)


def test_proxied_call_skips_django_and_keeps_the_request_id(
    make_service, upstream, wsgi, spy
):
    make_service("open", [upstream.url], public=True)
    status, headers, _ = call(wsgi, "/api/open/x", HTTP_X_REQUEST_ID="trace-1")
    assert status == 200
    assert spy.calls == 0
    assert headers["x-request-id"] == "trace-1"
    assert upstream.requests[-1].headers["X-Request-ID"] == "trace-1"
    status, headers, _ = call(wsgi, "/api/open/x")
    assert len(headers["x-request-id"]) == 32  # made up when none came


def test_gateway_errors_keep_the_error_body_and_are_logged(
    make_service, upstream, wsgi, spy, caplog
):
    make_service("closed", [upstream.url])
    with caplog.at_level(logging.INFO):
        status, headers, body = call(wsgi, "/api/closed/x", HTTP_X_REQUEST_ID="r-2")
    assert status == 401 and spy.calls == 0
    error = json.loads(body)["error"]
    assert error["code"] == "not_authenticated"
    assert error["request_id"] == "r-2"
    assert headers["www-authenticate"].startswith("Bearer")
    assert upstream.requests == []
    assert ("xenx.access", "INFO") in {(r.name, r.levelname) for r in caplog.records}


def test_server_errors_reach_django_request_logger(
    make_service, upstream, wsgi, caplog
):
    make_service("open", [upstream.url], public=True)
    with caplog.at_level(logging.ERROR, logger="django.request"):
        status, _, _ = call(wsgi, "/api/open/x?status=503")
    assert status == 503
    assert [
        (r.name, r.levelname) for r in caplog.records if r.name == "django.request"
    ] == [("django.request", "ERROR")]


def test_access_log_of_proxied_calls_as_through_django(
    make_service, upstream, wsgi, caplog
):
    make_service("open", [upstream.url], public=True)
    with caplog.at_level(logging.DEBUG, logger="xenx.access"):
        logging.getLogger("xenx.access.gateway").setLevel(logging.WARNING)
        call(wsgi, "/api/open/x")
        call(wsgi, "/api/open/x?status=503")
        call(wsgi, "/api/nope/x")
    lines = [
        (r.name, r.levelname, r.status)
        for r in caplog.records
        if r.name.startswith("xenx.access")
    ]
    assert lines == [
        ("xenx.access.gateway", "WARNING", 503),
        ("xenx.access", "INFO", 404),
    ]


def test_other_paths_go_to_django(make_service, upstream, wsgi, spy):
    make_service("open", [upstream.url], public=True)
    status, _, body = call(wsgi, "/api/nope/x")
    assert status == 404
    assert json.loads(body)["error"]["code"] == "service_not_found"
    status, _, _ = call(wsgi, "/health")
    assert spy.calls == 2
    assert upstream.requests == []


def test_authenticated_call(make_service, upstream, wsgi, spy, make_user):
    from accounts.tokens import issue_tokens

    make_service("svc", [upstream.url])
    user = make_user(Role.CLIENT)
    token = issue_tokens(user, mfa=False)["access"]
    status, headers, _ = call(wsgi, "/api/svc/x", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert status == 200 and spy.calls == 0
    assert upstream.requests[-1].headers["X-User-Id"] == str(user.pk)
    assert "x-ratelimit-limit" in headers


def test_hsts_and_ssl_redirect(make_service, upstream, settings):
    make_service("open", [upstream.url], public=True)
    settings.SECURE_HSTS_SECONDS = 3600
    settings.SECURE_SSL_REDIRECT = True
    spy = Spy()  # Django's middleware read the settings when built
    wsgi = GatewayApplication(spy)
    status, _, _ = call(wsgi, "/api/open/x")
    assert status == 301 and spy.calls == 1  # Django's SecurityMiddleware redirects
    status, headers, _ = call(wsgi, "/api/open/x", secure=True)
    assert status == 200 and spy.calls == 1
    assert headers["strict-transport-security"] == "max-age=3600"


def test_first_proxied_call_of_a_process_sends_request_started(
    make_service, upstream, wsgi
):
    """What starts on a process's first request (the health prober) starts even when
    the process only serves proxied calls."""
    from django.core.signals import request_started

    make_service("open", [upstream.url], public=True)
    seen = []

    def receiver(sender, **kwargs):
        seen.append(sender)

    request_started.connect(receiver)
    try:
        for _ in range(3):
            assert call(wsgi, "/api/open/x")[0] == 200
    finally:
        request_started.disconnect(receiver)
    assert seen == [GatewayApplication]
