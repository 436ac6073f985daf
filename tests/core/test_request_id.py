import json
import logging

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/health/live", "/api/nope", "/admin/login/"])
def test_every_response_has_a_request_id(client, path):
    response = client.get(path)
    assert len(response["X-Request-ID"]) >= 16


@pytest.mark.parametrize("incoming", ["abc-123", "A.b_c-9", "x" * 128])
def test_well_formed_incoming_request_id_is_kept(client, incoming):
    response = client.get("/health/live", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming", ["", "has space", "x" * 129, "semi;colon", "new\nline", "ünïcode"]
)
def test_malformed_incoming_request_id_is_replaced(client, incoming):
    response = client.get("/health/live", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert len(response["X-Request-ID"]) == 32


def test_access_log_is_a_json_line_with_request_fields(client, caplog):
    from core.logging import JsonFormatter, RequestIdFilter

    with caplog.at_level(logging.INFO, logger="xenx.access"):
        client.get("/health/live", HTTP_X_REQUEST_ID="log-me")
    record = next(r for r in caplog.records if r.name == "xenx.access")
    RequestIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "log-me"
    assert line["method"] == "GET"
    assert line["path"] == "/health/live"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    assert "user_id" in line
