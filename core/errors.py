"""The one error format of XenX, and every path that turns a failure into it.

Body: {"error": {"code", "message", "details", "request_id"}}. Views raise ``ApiError``
(or a subclass); DRF's handler, the API middleware and the gateway all render through
``error_response``.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse, UnreadablePostError
from rest_framework import exceptions as drf_exc
from rest_framework_simplejwt.exceptions import InvalidToken as JwtInvalidToken

logger = logging.getLogger("core.errors")

# What an outage of PostgreSQL or Redis raises: answered 503, never 500 (README
# "Failure policy").
DATABASE_OUTAGES: tuple[type[BaseException], ...] = (OperationalError, InterfaceError)
try:
    from django_redis.exceptions import ConnectionInterrupted
    from redis.exceptions import RedisError

    # Any redis-py error: django-redis wraps some in ConnectionInterrupted and lets the
    # rest through (a reply that is not RESP; an error reply to ttl, expire, touch…).
    CACHE_OUTAGES: tuple[type[BaseException], ...] = (ConnectionInterrupted, RedisError)
except ImportError:  # pragma: no cover - without django-redis there is no Redis
    CACHE_OUTAGES = ()

DEFAULT_CODES = {
    400: ("malformed_request", "The request is malformed."),
    401: ("not_authenticated", "Authentication credentials were not provided."),
    403: ("permission_denied", "You do not have permission to perform this action."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    406: ("not_acceptable", "Not acceptable."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Unsupported media type."),
    429: ("rate_limited", "Too many requests."),
    500: ("internal_error", "An internal error occurred."),
    502: ("bad_gateway", "The upstream service failed."),
    503: ("service_unavailable", "The service is unavailable."),
    504: ("gateway_timeout", "The upstream service did not answer in time."),
}


class ApiError(Exception):
    """An error with a stable machine code and an HTTP status."""

    status = 400
    code = "malformed_request"
    message = "The request is malformed."

    def __init__(
        self, message=None, *, code=None, status=None, details=None, headers=None
    ):
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationFailed(ApiError):
    status, code, message = 400, "validation_error", "Invalid input."


def details_text(exc: ApiError) -> str:
    """The error on one line ("field: message; ..."), for a management command."""
    if not exc.details:
        return exc.message
    parts = []
    for field, msgs in exc.details.items():
        text = msgs if isinstance(msgs, str) else " ".join(map(str, msgs))
        parts.append(text if field == "non_field_errors" else f"{field}: {text}")
    return "; ".join(parts)


class MalformedRequest(ApiError):
    status, code, message = 400, "malformed_request", "The request is malformed."


class NotAuthenticated(ApiError):
    status, code = 401, "not_authenticated"
    message = "Authentication credentials were not provided."


class InvalidCredentials(ApiError):
    status, code, message = 401, "invalid_credentials", "Invalid email or password."


class InvalidToken(ApiError):
    status, code, message = 401, "invalid_token", "The token is invalid or expired."


class TokenRevoked(ApiError):
    status, code, message = 401, "token_revoked", "The token has been revoked."


class InvalidMfaCode(ApiError):
    status, code, message = 401, "invalid_mfa_code", "The code is invalid."


class MfaRequired(ApiError):
    status, code = 403, "mfa_required"
    message = "Your organization requires two-factor authentication; enrol TOTP first."


class Forbidden(ApiError):
    status, code = 403, "permission_denied"
    message = "You do not have permission to perform this action."


class NotFound(ApiError):
    status, code, message = 404, "not_found", "Not found."


class PayloadTooLarge(ApiError):
    status, code, message = 413, "payload_too_large", "The request body is too large."


class UnsupportedMediaType(ApiError):
    status, code, message = 415, "unsupported_media_type", "Unsupported media type."


class RateLimited(ApiError):
    status, code, message = 429, "rate_limited", "Too many requests; slow down."

    def __init__(self, retry_after: int = 60, **kwargs):
        headers = {"Retry-After": str(max(1, int(retry_after)))}
        headers.update(kwargs.pop("headers", {}) or {})
        super().__init__(headers=headers, **kwargs)


class ServiceUnavailable(ApiError):
    status, code, message = 503, "service_unavailable", "The service is unavailable."


def request_id_of(request) -> str | None:
    return getattr(request, "request_id", None)


def error_response(
    request,
    status: int,
    code: str | None = None,
    message: str | None = None,
    details: dict | None = None,
    headers: dict | None = None,
) -> JsonResponse:
    """Render the one error body. Everything that reports an error ends here."""
    default_code, default_message = DEFAULT_CODES.get(status, ("error", "Error."))
    body = {
        "error": {
            "code": code or default_code,
            "message": message or default_message,
            "details": details or {},
            "request_id": request_id_of(request),
        }
    }
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    if status == 401 and "WWW-Authenticate" not in response:
        # RFC 9110 11.6.1: every 401 carries a challenge; RFC 6750 3.1 names a token
        # that was presented and refused (bad signature, expired, revoked).
        refused = body["error"]["code"] in _REFUSED_TOKEN_CODES
        response["WWW-Authenticate"] = (
            f'{BEARER_CHALLENGE}, error="invalid_token"'
            if refused
            else BEARER_CHALLENGE
        )
    response.xenx_error = True
    return response


BEARER_CHALLENGE = 'Bearer realm="api"'
_REFUSED_TOKEN_CODES = frozenset({"invalid_token", "token_revoked"})


def api_error_response(request, exc: ApiError) -> JsonResponse:
    return error_response(
        request, exc.status, exc.code, exc.message, exc.details, exc.headers
    )


def internal_error_response(request, exc: BaseException) -> JsonResponse:
    logger.error(
        "unhandled exception",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"path": request.path, "method": request.method},
    )
    return error_response(request, 500)


def response_for_exception(request, exc: BaseException) -> JsonResponse:
    """Map any exception raised while serving an API request to the error body."""
    if isinstance(exc, ApiError):
        return api_error_response(request, exc)
    if isinstance(exc, Http404):
        return error_response(request, 404)
    if isinstance(exc, PermissionDenied):
        return error_response(request, 403)
    if isinstance(exc, RequestDataTooBig):
        return error_response(request, 413)
    if isinstance(
        exc, UnreadablePostError
    ):  # cut short or stalled (XENX_CLIENT_TIMEOUT)
        return error_response(
            request, 400, "malformed_request", "The request body could not be read."
        )
    if isinstance(exc, drf_exc.APIException):
        return _drf_error_response(request, exc)
    if isinstance(exc, DATABASE_OUTAGES + CACHE_OUTAGES):
        return outage_response(request, exc)
    return internal_error_response(request, exc)


def outage_response(request, exc: BaseException) -> JsonResponse:
    """PostgreSQL or Redis did not answer: 503 ``service_unavailable`` (the client may
    retry), logged without a traceback (the outage, not the code, is at fault). A write
    that met it ran in one transaction, rolled back as a whole."""
    what = "database" if isinstance(exc, DATABASE_OUTAGES) else "cache"
    logger.warning(
        "%s unavailable: %s",
        what,
        str(exc).strip().splitlines()[0][:200]
        if str(exc).strip()
        else type(exc).__name__,
        extra={"path": request.path, "method": request.method},
    )
    return error_response(
        request,
        503,
        "service_unavailable",
        f"The {what} is unavailable; try again shortly.",
        headers={"Retry-After": "5"},
    )


def _flatten_details(detail) -> dict:
    """DRF validation details → {"field": ["msg", ...]}."""
    if isinstance(detail, dict):
        out = {}
        for field, value in detail.items():
            if isinstance(value, dict):
                for sub, msgs in _flatten_details(value).items():
                    out[f"{field}.{sub}"] = msgs
            elif isinstance(value, list):
                msgs = []
                for item in value:
                    if isinstance(item, dict):
                        for sub, sub_msgs in _flatten_details(item).items():
                            out[f"{field}.{sub}"] = sub_msgs
                    else:
                        msgs.append(str(item))
                if msgs:
                    out[field] = msgs
            else:
                out[field] = [str(value)]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [str(item) for item in detail]}
    return {"non_field_errors": [str(detail)]}


def _first_message(detail) -> str:
    if isinstance(detail, list | tuple) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        return _first_message(next(iter(detail.values())))
    return str(detail)


def _drf_error_response(request, exc: drf_exc.APIException) -> JsonResponse:
    headers = {}
    if isinstance(exc, drf_exc.ValidationError):
        return error_response(
            request,
            400,
            "validation_error",
            "Invalid input.",
            _flatten_details(exc.detail),
        )
    if isinstance(exc, drf_exc.ParseError):
        return error_response(
            request, 400, "malformed_request", _first_message(exc.detail)
        )
    if isinstance(exc, JwtInvalidToken):
        return error_response(
            request, 401, "invalid_token", "The token is invalid or expired."
        )
    if isinstance(exc, drf_exc.NotAuthenticated):
        return error_response(request, 401, "not_authenticated")
    if isinstance(exc, drf_exc.AuthenticationFailed):
        return error_response(request, 401, "invalid_token", _first_message(exc.detail))
    if isinstance(exc, drf_exc.Throttled):
        if exc.wait:
            headers["Retry-After"] = str(int(exc.wait) + 1)
        return error_response(request, 429, "rate_limited", headers=headers)
    if isinstance(exc, drf_exc.MethodNotAllowed):
        return error_response(
            request, 405, "method_not_allowed", _first_message(exc.detail)
        )
    if isinstance(exc, drf_exc.UnsupportedMediaType):
        return error_response(
            request, 415, "unsupported_media_type", _first_message(exc.detail)
        )
    status = exc.status_code
    code = DEFAULT_CODES.get(status, ("error", ""))[0]
    return error_response(request, status, code, _first_message(exc.detail))


def drf_exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: every API view error goes through the one renderer."""
    request = context.get("request")
    django_request = getattr(request, "_request", request)
    # DRF must not re-handle our response; its 401s get their challenge there too.
    return response_for_exception(django_request, exc)
