import json
import logging
import socket

import pytest

from core.logging import RequestIdFilter
from core.request_context import current_user_id
from gateway.services import service_create

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


class _Records(logging.Handler):
    """Records as the console handler sees them: through XenX's RequestIdFilter."""

    def __init__(self):
        super().__init__()
        self.addFilter(RequestIdFilter())
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_an_anonymous_request_never_logs_the_previous_users_id(
    auth_client, make_user, api, settings
):
    """Issue 24: the log context was never reset, so an anonymous call served by the
    same thread after a signed-in one logged that user's id (here the gateway's
    "upstream failure" line of an anonymous call to a public service)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    service_create(name="pub", instances=[closed], public=True, retries=0)
    user = make_user()
    handler = _Records()
    logging.getLogger().addHandler(handler)
    try:
        assert auth_client(user).get("/api/auth/me").status_code == 200
        assert current_user_id() is None  # closed with the request
        assert api.get("/api/pub/x").status_code == 502
    finally:
        logging.getLogger().removeHandler(handler)
    signed_in = [r for r in handler.records if r.getMessage() == "request"][0]
    assert signed_in.user_id == user.pk
    failure = [r for r in handler.records if r.getMessage() == "upstream failure"]
    assert failure and failure[0].user_id is None
