"""The served OpenAPI schema lists every error status an operation can answer, each
with the one error body (``core.openapi``); tests/fuzz checks the answers against it."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
METHODS = {"get", "put", "post", "delete", "patch"}


@pytest.fixture(scope="module")
def served(django_db_blocker):
    with django_db_blocker.unblock():
        response = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return response.json()


def _operations(served):
    return [
        (path, method, operation)
        for path, item in served["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def test_every_operation_lists_its_error_statuses_with_the_error_body(served):
    operations = _operations(served)
    assert len(operations) > 40
    for path, method, operation in operations:
        responses = operation["responses"]
        assert "default" not in responses, (path, method)
        expected = {"400", "503"}
        if any(operation.get("security", [])):
            expected |= {"401", "403"}
        if "{" in path or any(
            p["name"] == "page" for p in operation.get("parameters", [])
        ):
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"413", "415"}
        assert expected <= set(responses), (path, method, sorted(responses))
        for status, response in responses.items():
            if status[0] in "45":
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
                assert response["description"], (path, method, status)


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/api/auth/login", "post", "429"),
        ("/api/auth/password/change", "post", "429"),
        ("/api/users/{id}", "get", "404"),
        ("/api/users", "get", "404"),  # a page past the end
        ("/api/documents", "post", "415"),
        ("/api/users", "post", "413"),
    ],
)
def test_named_statuses_are_documented(served, path, method, status):
    assert status in served["paths"][path][method]["responses"]


def test_the_error_component_is_the_rendered_body(served):
    error = served["components"]["schemas"]["Error"]
    detail = served["components"]["schemas"]["ErrorDetail"]
    assert error["required"] == ["error"]
    assert set(detail["required"]) == {"code", "message", "details", "request_id"}
    body = APIClient().get("/api/users").json()  # 401, rendered by core.errors
    assert set(body) == set(error["properties"])
    assert set(body["error"]) == set(detail["properties"])
