"""drf-spectacular post-processing of the served OpenAPI schema (``/api/schema/``)."""

from __future__ import annotations

import copy

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch"})
ERROR_RESPONSE = {
    "description": 'Any other status: the one error body (README "Conventions"), e.g. '
    "401 without a valid token, 403, 404, 405, 415, 429 or 503.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def error_responses(result, generator, request, public):
    """Every operation documents XenX's error body for the statuses it does not list
    (OpenAPI's ``default`` response): whatever an operation answers with 4xx or 5xx
    has that body, and clients (and Schemathesis) can check it against the schema."""
    schemas = result.get("components", {}).get("schemas", {})
    if "Error" not in schemas:  # the error serializer is not referenced: leave as is
        return result
    for item in result.get("paths", {}).values():
        for method, operation in item.items():
            if method in _METHODS:
                responses = operation.setdefault("responses", {})
                if "default" not in responses:
                    responses["default"] = copy.deepcopy(ERROR_RESPONSE)
    return result
