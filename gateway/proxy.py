"""``ANY /api/{service}/{path}``: the policy chain of README "Gateway", then forwarding.

A plain Django view (no DRF, no session, no CSRF, no user lookup): in the steady state
it costs no database query and one cache round trip: one pipeline that counts the rate
limit, reads the registry version and the service's instance health and, for a token not
seen in the last moments, its revocation records.
"""

from __future__ import annotations

import hmac
import logging
import re
import time

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.views.decorators.csrf import csrf_exempt

from accounts import revocation
from accounts.tokens import decode_access_token
from core.errors import (
    ApiError,
    MalformedRequest,
    api_error_response,
    error_response,
    response_for_exception,
)
from core.net import counted_address

from . import metrics, paths, state
from .body import request_body
from .forward import forward
from .identity import admit, bearer, memoised_identity, verify
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
        # Django's CommonMiddleware would have checked ALLOWED_HOSTS by now.
        request.xenx_host = allowed_host(request)
        # Authentication unless public, then the MFA policy and the role list. A token
        # seen in the last moments has its identity memoised; any other is checked
        # against its revocation records, read in the call's one round trip below.
        auth = meta.get("HTTP_AUTHORIZATION")
        raw = payload = None
        state_keys: tuple[str, ...] = ()
        if auth or not svc.public:
            raw = bearer(auth)
            identity = memoised_identity(raw)
            if identity is None:
                payload = decode_access_token(raw)
                state_keys = tuple(
                    revocation.state_keys(
                        int(payload["user_id"]),
                        str(payload["jti"]),
                        payload.get("org"),
                        payload.get("fam"),  # the session (accounts.sessions)
                    )
                )
            else:
                admit(request, svc, identity)
        rest, query = paths.split_target(meta, service_name)
        path_error = None
        if not paths.is_clean(rest):
            path_error = MalformedRequest("The path is not a clean relative path.")
        elif query and _UNSAFE_QUERY.search(query):
            path_error = MalformedRequest("The query string holds control characters.")
        if path_error is not None and payload is None:
            raise path_error
        # Counted per user at the role the token names (a role change revokes the
        # user's tokens, so a valid token's role is the user's).
        role = identity.role if identity else payload.get("role") if payload else None
        user_id = (
            identity.user_id
            if identity
            else int(payload["user_id"])
            if payload
            else None
        )
        limit = None
        if path_error is None:
            limit = limit_for(
                svc, role=role, user_id=user_id, ip=lambda: counted_address(request)
            )
        found = None
        try:
            used, version, health, found = state.hot_round_trip(
                limit.key if limit else None,
                limit.period if limit else 0,
                svc.health_keys,
                state_keys,
            )
            registry.observe_version(version)
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
        if payload is not None:
            try:
                if found is None:  # fail-open without the cache: as fetch_states does
                    identity = verify(raw)
                else:
                    with revocation.prefetched(state_keys, found):
                        identity = verify(raw)
                admit(request, svc, identity)
                if path_error is not None:
                    raise path_error
            except ApiError:
                if limit is not None:
                    state.uncount(limit.key)
                raise
            if limit is not None and identity.role != role:
                state.uncount(limit.key)
                limit = limit_for(
                    svc, role=identity.role, user_id=identity.user_id, ip=None
                )
                if limit is not None:
                    used = state.hot_round_trip(limit.key, limit.period, ())[0]
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
    if rl_headers:  # digits only: written straight into the header store
        store = response.headers._store
        for name, value in rl_headers.items():
            store[name.lower()] = (name, value)
    return response


def allowed_host(request) -> str:
    """``request.get_host()`` (ALLOWED_HOSTS), its verdict memoised per raw host: the
    same few hosts recur, and Django's check is a measurable share of a call."""
    host = request._get_raw_host()
    verdict = _host_verdicts.get(host)
    if verdict is None:
        try:
            request.get_host()
            verdict = True
        except DisallowedHost:
            verdict = False
        if len(_host_verdicts) >= _HOST_VERDICTS_MAX:  # hostile hosts cannot grow it
            _host_verdicts.clear()
        _host_verdicts[host] = verdict
    if not verdict:
        raise MalformedRequest("The Host header is not allowed.")
    return host


_host_verdicts: dict[str, bool] = {}
_HOST_VERDICTS_MAX = 1024


@receiver(setting_changed)
def _forget_hosts(setting, **kwargs):
    if setting in ("ALLOWED_HOSTS", "DEBUG", "USE_X_FORWARDED_HOST"):
        _host_verdicts.clear()


def metrics_token_ok(auth: str) -> bool:
    token = settings.XENX_METRICS_TOKEN
    # bytes: compare_digest refuses non-ASCII text (Bearer café was a 500)
    expected = f"Bearer {token}".encode()
    given = auth.encode("utf-8", "surrogatepass")
    return bool(token) and hmac.compare_digest(given, expected)
