"""drf-spectacular post-processing of the served OpenAPI schema (``/api/schema/``)."""

from __future__ import annotations

_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch"})
_ERROR_SCHEMA = {"$ref": "#/components/schemas/Error"}
# What each error status means on every operation that can answer it (README
# "Conventions"); a view documents its own (e.g. 429 where a throttle counts) with
# extend_schema, and keeps its description.
EVERY_OPERATION = {
    "400": "Malformed request (`malformed_request`: unreadable JSON or body, a bad "
    "query parameter or Host) or invalid fields (`validation_error`).",
    "503": "The database or the shared cache is unavailable (`service_unavailable`).",
}
WITH_A_TOKEN = {
    "401": "No valid access token (`not_authenticated`, `invalid_token`, "
    "`token_revoked`).",
    "403": "The caller may not do this (`permission_denied`), or its organization "
    "requires a second factor this session has not passed (`mfa_required`).",
}
WITH_A_PATH_ID = {
    "404": "No such object, or one outside the caller's scope (`not_found`).",
}
PAGINATED = {"404": "No such page of the list (`not_found`)."}
WITH_A_BODY = {
    "413": "The body is over its limit (`payload_too_large`).",
    "415": "The body's media type is not accepted (`unsupported_media_type`).",
}
DESCRIPTIONS = {
    **EVERY_OPERATION,
    **WITH_A_TOKEN,
    **WITH_A_PATH_ID,
    **WITH_A_BODY,
    "429": "Too many attempts (`rate_limited`); `Retry-After` says when to retry.",
}


def error_responses(result, generator, request, public):
    """Every operation lists every error status it can answer, each with XenX's one
    error body: 400 and 503 everywhere, 401 and 403 where a token is needed, 404 on a
    path with an id or a page number, 413 and 415 with a request body, and what the view adds itself
    (429 on throttled operations). No catch-all ``default``: a status an operation
    answers and does not list is a bug the Schemathesis run (``tests/fuzz``) finds."""
    schemas = result.get("components", {}).get("schemas", {})
    if "Error" not in schemas:  # the error serializer is not referenced: leave as is
        return result
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            statuses = dict(EVERY_OPERATION)
            if any(requirement for requirement in operation.get("security", [])):
                statuses.update(WITH_A_TOKEN)
            if "{" in path:
                statuses.update(WITH_A_PATH_ID)
            elif any(p.get("name") == "page" for p in operation.get("parameters", [])):
                statuses.update(PAGINATED)
            if "requestBody" in operation:
                statuses.update(WITH_A_BODY)
            responses = operation.setdefault("responses", {})
            responses.pop("default", None)
            for status, description in statuses.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = {
                        "application/json": {"schema": _ERROR_SCHEMA}
                    }
                    if not response.get("description") and status in DESCRIPTIONS:
                        response["description"] = DESCRIPTIONS[status]
            operation["responses"] = dict(sorted(responses.items()))
    return result
