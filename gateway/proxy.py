"""``ANY /api/{service}/{path}``: the policy chain of SPEC §6, then forwarding.

A plain Django view (no DRF, no session, no CSRF, no user lookup): in the steady state
it costs no database query and at most two cache round trips, the token's revocation
state (one ``get_many``, memoised ~0.5 s) and one pipeline that counts the rate limit and
reads the registry version and the service's instance health.
"""

from __future__ import annotations

import hmac
import logging
import re
import time

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.views.decorators.csrf import csrf_exempt

from xenx.errors import (
    ApiError,
    Forbidden,
    MalformedRequest,
    api_error_response,
    error_response,
    response_for_exception,
)
from xenx.net import client_ip

from . import batching, metrics, paths, state
from .body import request_body
from .forward import forward
from .identity import authenticate
from .ratelimit import headers_for, limit_for
from .registry import registry
from .validators import RESERVED_NAMES

logger = logging.getLogger("xenx.gateway")

# A query forwarded byte for byte may not hold what would break the request line: the
# raw target (gunicorn's RAW_URI) keeps bare CR, LF, NUL and other controls.
_UNSAFE_QUERY = re.compile(r"[\x00-\x20\x7f]")


@csrf_exempt
def proxy_view(request, service, rest=None):
    if service in RESERVED_NAMES:  # a platform route that does not exist
        return error_response(request, 404)
    start = time.perf_counter()
    svc = registry.get(service)
    try:
        response = _handle(request, service, svc)
    except Exception as exc:  # noqa: BLE001 - every failure gets the one error body
        response = response_for_exception(request, exc)
    metrics.observe(
        svc.name if svc else "_unknown",
        request.method,
        response.status_code,
        time.perf_counter() - start,
    )
    return response


def _handle(request, service_name, svc):
    if svc is None:
        return error_response(
            request, 404, "service_not_found", f"No service named {service_name!r}."
        )
    if not svc.enabled:
        return error_response(
            request, 503, "service_unavailable", f"Service {svc.name!r} is disabled."
        )
    meta = request.META
    identity = None
    rl_headers = None
    try:
        try:  # Django's CommonMiddleware would have checked ALLOWED_HOSTS by now
            request.xenx_host = request.get_host()
        except DisallowedHost:
            raise MalformedRequest("The Host header is not allowed.") from None
        # Authentication unless public, then the MFA policy: authenticate_access_token
        # raises 401 codes first and mfa_required (403) after.
        auth = meta.get("HTTP_AUTHORIZATION")
        if auth or not svc.public:
            identity = authenticate(request, auth)
            request.xenx_user_id = identity.user_id
            if svc.allowed_roles and identity.role not in svc.allowed_roles:
                raise Forbidden(f"Your role may not call service {svc.name!r}.")
        rest, query = paths.split_target(meta, service_name)
        if not paths.is_clean(rest):
            raise MalformedRequest("The path is not a clean relative path.")
        if query and _UNSAFE_QUERY.search(query):
            raise MalformedRequest("The query string holds control characters.")
        limit = limit_for(
            svc,
            role=identity.role if identity else None,
            user_id=identity.user_id if identity else None,
            ip=lambda: client_ip(request),
        )
        fast = batching.fast_path(svc, limit) if _batching() else None
        try:
            if fast is not None:
                used, health = fast
            else:
                used, version, health = state.hot_round_trip(
                    limit.key if limit else None,
                    limit.period if limit else 0,
                    svc.health_keys,
                )
                registry.observe_version(version)
                batching.after_round_trip(svc, limit, used, health)
        except state.CacheDown:
            if not settings.XENX_FAIL_OPEN_WITHOUT_CACHE:
                return error_response(
                    request,
                    503,
                    "service_unavailable",
                    "The gateway's shared state is unavailable.",
                    headers={"Retry-After": "5"},
                )
            used, health = None, [None] * len(svc.health_keys)
            limit = None
        rl_headers = headers_for(limit, used) if limit and used is not None else None
        if rl_headers and used > limit.count:
            metrics.RATE_LIMITED.labels(svc.name).inc()
            retry_after = max(1, int(rl_headers["X-RateLimit-Reset"]))
            return error_response(
                request,
                429,
                "rate_limited",
                "Too many requests; slow down.",
                headers={**rl_headers, "Retry-After": str(retry_after)},
            )
        body, length = request_body(request, svc)
        response = forward(request, svc, identity, rest, query, body, length, health)
    except ApiError as exc:
        response = api_error_response(request, exc)
    if rl_headers:
        for name, value in rl_headers.items():
            response[name] = value
    return response


_batching_enabled: bool | None = None


def _batching() -> bool:
    global _batching_enabled
    if _batching_enabled is None:
        _batching_enabled = batching.enabled()
    return _batching_enabled


def metrics_token_ok(auth: str) -> bool:
    token = settings.XENX_METRICS_TOKEN
    # bytes: compare_digest refuses non-ASCII text (Bearer café was a 500)
    expected = f"Bearer {token}".encode()
    given = auth.encode("utf-8", "surrogatepass")
    return bool(token) and hmac.compare_digest(given, expected)
