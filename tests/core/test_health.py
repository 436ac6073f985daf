import pytest

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


def test_live(client):
    response = client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_when_database_and_cache_answer(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["cache"]["status"] == "ok"


def test_ready_is_503_when_cache_fails(client, monkeypatch):
    from core import health

    monkeypatch.setattr(
        health, "check_cache", lambda: {"status": "down", "latency_ms": 0}
    )
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["cache"]["status"] == "down"


def test_health_post_is_405_error_body(client):
    assert_error(client.post("/health/ready"), 405, "method_not_allowed")


def test_schema_and_docs_are_served_with_local_assets(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"openapi: 3" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()
    assert "//" not in html.split("swagger-ui-bundle.js")[0].rsplit('"', 1)[-1]
