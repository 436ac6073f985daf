"""No 500 from client input (issue 10 item 6): each hostile value is answered with the
error body of README "Conventions" and logged below ERROR, without a traceback."""

import logging

import pytest

from core.jsonbody import MAX_DEPTH, TooDeep, check_depth
from tests.conftest import assert_error


@pytest.fixture
def no_error_logs(caplog):
    caplog.set_level(logging.INFO)
    yield
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not bad, [(r.name, r.getMessage()) for r in bad]


@pytest.fixture
def public(db):
    from gateway.services import service_create

    return service_create(name="pub", instances=["http://127.0.0.1:9"], public=True)


@pytest.mark.usefixtures("no_error_logs")
@pytest.mark.parametrize("path", ["/api/pub/%ff", "/api/pub/a%c3", "/api/pub/%ff/x"])
def test_invalid_utf8_in_a_proxied_path_is_400(api, public, path):
    assert_error(api.get(path), 400, "malformed_request")


@pytest.mark.usefixtures("no_error_logs")
@pytest.mark.parametrize("path", ["/portal/%ff", "/admin/%ff", "/%ff", "/api/%ff"])
def test_invalid_utf8_elsewhere_is_never_500(client, db, path):
    assert client.get(path).status_code in (301, 302, 400, 404)


@pytest.mark.usefixtures("no_error_logs")
@pytest.mark.parametrize("token", ["café", "caf\u00c3\u00a9", "\u20ac"])
def test_non_ascii_bearer_on_metrics_is_401(client, db, settings, token):
    settings.XENX_METRICS_TOKEN = "s3cret"
    resp = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_error(resp, 401, "invalid_token")


@pytest.mark.usefixtures("no_error_logs")
def test_non_ascii_bearer_on_the_gateway_is_401(api, public):
    assert_error(
        api.get("/api/pub/x", HTTP_AUTHORIZATION="Bearer café"), 401, "invalid_token"
    )


@pytest.mark.usefixtures("no_error_logs")
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_is_400(api, db, opener):
    body = opener * 100_000
    resp = api.post("/api/auth/login", body, content_type="application/json")
    assert_error(resp, 400, "malformed_request")


def test_nesting_at_the_cap_is_parsed(api, db):
    body = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    resp = api.post("/api/auth/login", body, content_type="application/json")
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    ("data", "deep"),
    [
        (b'["[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["]', False),
        (b'{"a": "\\"[[[[", "b": [1]}', False),
        (b"[" * (MAX_DEPTH + 1), True),
        (b'[{"a": ' * 60 + b"1" + b"}]" * 60, True),
    ],
)
def test_check_depth_ignores_brackets_in_strings(data, deep):
    if deep:
        with pytest.raises(TooDeep):
            check_depth(data * 1)
    else:
        check_depth(data * 5 if data.startswith(b'["') else data)


@pytest.mark.usefixtures("no_error_logs")
@pytest.mark.parametrize(
    "path", ["/health/live", "/health/ready", "/health", "/metrics"]
)
@pytest.mark.parametrize("method", ["post", "put", "delete", "patch"])
def test_writes_to_health_and_metrics_are_405(client, db, path, method):
    resp = getattr(client, method)(path)
    if path == "/metrics":
        assert resp.status_code == 405
        return
    assert_error(resp, 405, "method_not_allowed")
    assert "GET" in resp["Allow"]
