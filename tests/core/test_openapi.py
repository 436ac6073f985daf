"""The served OpenAPI schema documents the one error body on every operation
(``core.openapi``): what an operation answers with a status it does not list is that body."""

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


def test_every_operation_has_the_error_body_as_its_default(served):
    operations = [
        (path, method, operation)
        for path, item in served["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(operations) > 40
    for path, method, operation in operations:
        default = operation["responses"]["default"]
        schema = default["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}, (path, method)


def test_the_error_component_is_the_rendered_body(served):
    error = served["components"]["schemas"]["Error"]
    detail = served["components"]["schemas"]["ErrorDetail"]
    assert error["required"] == ["error"]
    assert set(detail["required"]) == {"code", "message", "details", "request_id"}
    body = APIClient().get("/api/users").json()  # 401, rendered by core.errors
    assert set(body) == set(error["properties"])
    assert set(body["error"]) == set(detail["properties"])
