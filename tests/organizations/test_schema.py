"""Every users/organizations/documents endpoint is in the OpenAPI schema, with its list filters."""

import pytest

pytestmark = pytest.mark.django_db

PATHS = {
    "/api/organizations": {"get", "post"},
    "/api/organizations/{id}": {"get", "patch", "delete"},
    "/api/organizations/{id}/invitations": {"get", "post"},
    "/api/users": {"get", "post"},
    "/api/users/{id}": {"get", "patch", "delete"},
    "/api/users/{id}/deactivate": {"post"},
    "/api/users/{id}/activate": {"post"},
    "/api/users/{id}/reset-mfa": {"post"},
    "/api/documents": {"get", "post"},
    "/api/documents/{id}": {"get", "delete"},
    "/api/documents/{id}/download": {"get"},
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def test_paths_and_methods(schema):
    for path, methods in PATHS.items():
        assert path in schema["paths"], path
        assert set(schema["paths"][path]) >= methods, path


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/users", {"role", "is_active", "organization", "search", "page"}),
        ("/api/organizations", {"is_active", "search", "page"}),
        ("/api/documents", {"owner", "search", "page"}),
    ],
)
def test_list_filters_are_documented(schema, path, params):
    names = {p["name"] for p in schema["paths"][path]["get"]["parameters"]}
    assert names >= params


def test_upload_is_multipart(schema):
    body = schema["paths"]["/api/documents"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data"}


def test_schema_endpoint_serves(api):
    resp = api.get("/api/schema/")
    assert resp.status_code == 200
    assert b"/api/documents/{id}/download" in resp.content
