from tests.conftest import assert_error
from xenx.roles import Role


def test_forwards_authenticated_get(make_service, upstream, make_user, auth_client):
    make_service("echo", [upstream.url])
    client = auth_client(make_user(Role.CLIENT))
    resp = client.get("/api/echo/a/b?x=1&y=%20")
    assert resp.status_code == 200, resp.content
    assert resp.json()["path"] == "/a/b?x=1&y=%20"
    assert resp["X-RateLimit-Limit"] == "120"


def test_unknown_service(db, api):
    assert_error(api.get("/api/nope/x"), 404, "service_not_found")
