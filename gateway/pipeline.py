"""A proxied call as one explicit pipeline (README "Gateway"): a ``Call`` goes through
the steps of ``STEPS`` in order, each receiving what the earlier ones decided.

resolve → credentials → target → plan limit → round trip → judge → admit → enforce →
read body → forward (→ relay). Steps only raise (``core.errors.ApiError``); ``run`` returns the upstream's
answer and ``gateway.proxy.proxy_view`` renders whatever a step raised, in one place.

The round trip is planned: each party adds its keys to the call's one pipeline to the
cache (``state.hot_round_trip``): the rate limit its INCR/EXPIRE, the registry its
version, the breaker its instances' state, and revocation the token's records this
process has not memoised. The token is judged by ``accounts`` through one entry,
``accounts.policy.gateway_token`` (the token verified, the keys to read), which hands
back a continuation for what the round trip read (``TokenCheck.verdict``); besides it
the gateway only asks ``accounts.tokens.is_machine_payload`` what kind of caller the
verified claims name (``gateway.machines``). When every record is
memoised the token is judged and its role admitted before the round trip, and a refused
call is never counted; otherwise the count goes out with the records, and a call refused
on them takes its count back (``state.uncount``). No database query in the steady state.
"""

from __future__ import annotations

import re

from django.core.exceptions import DisallowedHost
from django.core.signals import setting_changed
from django.dispatch import receiver

from accounts.policy import gateway_token
from core.cache import fail_open
from core.errors import (
    ApiError,
    Forbidden,
    MalformedRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from core.memo import Memo
from core.net import counted_address

from . import breaker, machines, metrics, paths, state
from .body import request_body
from .forward import forward
from .ratelimit import headers_for, limit_for
from .registry import registry

# A query forwarded byte for byte may not hold what would break the request line: the
# raw target (gunicorn's RAW_URI) keeps bare CR, LF, NUL and other controls.
_UNSAFE_QUERY = re.compile(r"[\x00-\x20\x7f]")


class Call:
    """One proxied call and what the steps decided about it."""

    __slots__ = (
        "request",
        "name",  # the service name in the path
        "service",  # the registry's ServiceSnap
        "token",  # accounts.policy.TokenCheck, or None (public, no token)
        "claims",  # the verified access token's claims, or None
        "unread",  # revocation record keys to read in the round trip
        "identity",  # accounts.tokens.Identity once judged
        "rest",  # the path after /api/{service}
        "query",
        "target_error",  # a bad path or query, raised after the token's verdict
        "limit",  # gateway.ratelimit.Limit, or None
        "used",  # the limit's count after this call, or None
        "limit_headers",  # X-RateLimit-* for every answer once counted
        "records",  # what the round trip read of ``unread``
        "circuits",  # gateway.breaker.Circuit per instance
        "body",
        "length",
    )

    def __init__(self, request, name: str):
        self.request = request
        self.name = name
        self.service = self.token = self.claims = self.identity = self.limit = None
        self.rest = self.query = self.target_error = None
        self.used = self.limit_headers = self.records = self.body = None
        self.unread = self.circuits = ()
        self.length = 0


def resolve(call: Call) -> None:
    """The service from the registry snapshot: unknown 404, disabled 503; the Host
    header Django's CommonMiddleware would have checked (400)."""
    svc = call.service = registry.get(call.name)
    if svc is None:
        raise NotFound(f"No service named {call.name!r}.", code="service_not_found")
    if not svc.enabled:
        raise ServiceUnavailable(f"Service {svc.name!r} is disabled.")
    call.request.xenx_host = allowed_host(call.request)


def credentials(call: Call) -> None:
    """The Bearer token (none on a public service called without one): signature and
    expiry (401), then the records its verdict rests on. All memoised: judged and
    admitted now, before anything is counted."""
    auth = call.request.META.get("HTTP_AUTHORIZATION")
    if not auth and call.service.public:
        return
    token = call.token = gateway_token(auth)
    call.claims, call.unread = token.claims, token.unread
    if not call.unread:
        judge_token(call)
        admit(call)


def target(call: Call) -> None:
    """The path and query forwarded (400 for anything unsafe); a token still to be
    judged is answered first (401/403 before 400)."""
    call.rest, call.query = paths.split_target(call.request.META, call.name)
    if not paths.is_clean(call.rest):
        error = MalformedRequest("The path is not a clean relative path.")
    elif call.query and _UNSAFE_QUERY.search(call.query):
        error = MalformedRequest("The query string holds control characters.")
    else:
        return
    if call.claims is None or call.identity is not None:
        raise error
    call.target_error = error


def plan_limit(call: Call) -> None:
    """The caller's limit: per user at the role the token names (a role change revokes
    the user's tokens, so a valid token's role is the user's), per client address (IPv6
    by its /64) for anonymous calls. A call refused for its path is not counted."""
    if call.target_error is not None:
        return
    # A machine client (README "Machine clients") per application at the "app" rate.
    role, user_id = machines.rate_subject(call.claims)
    call.limit = limit_for(
        call.service,
        role=role,
        user_id=user_id,
        ip=lambda: counted_address(call.request),
    )


def round_trip(call: Call) -> None:
    """The call's one round trip to the cache. The cache down: the fail-open rule
    (503, or on without limits, breaker state or cached records)."""
    limit, svc = call.limit, call.service
    try:
        used, version, health, call.records = state.hot_round_trip(
            rl_key=limit.key if limit else None,
            period=limit.period if limit else 0,
            health_keys=svc.health_keys,
            cache_keys=call.unread,
        )
    except state.CacheDown as exc:
        fail_open(exc, "The gateway's shared state is unavailable.")
        call.limit = None  # and call.records stays None: the store reads them itself
        health = None
    else:
        registry.observe_version(version)
        if limit is not None:
            call.used = used
            call.limit_headers = headers_for(limit, used)
    call.circuits = breaker.circuits(svc.closed, health)


def judge_token(call: Call) -> None:
    """The token's verdict (401, 403 ``mfa_required``) on its records: memoised, read in
    the round trip, or read by the store (``accounts.policy.TokenCheck.verdict``)."""
    if call.claims is None or call.identity is not None:
        return
    try:
        call.identity = call.token.verdict(call.records)
    except ApiError:
        _take_back(call)
        raise


def admit(call: Call) -> None:
    """The service's exact role list (403), then a bad path held back for the token's
    verdict (400)."""
    identity, svc = call.identity, call.service
    if identity is not None:
        call.request.xenx_user_id = identity.user_id
        try:
            if identity.is_machine:  # its allowed_services (README "Machine clients")
                machines.admit(svc, identity)
            elif svc.allowed_roles and identity.role not in svc.allowed_roles:
                raise Forbidden(f"Your role may not call service {svc.name!r}.")
        except Forbidden:
            _take_back(call)
            raise
    if call.target_error is not None:
        raise call.target_error


def _take_back(call: Call) -> None:
    """A call counted with the records it was then refused on: refused calls do not
    use up the limit."""
    if call.used is not None:
        state.uncount(call.limit.key)
        call.used = call.limit_headers = None


def enforce(call: Call) -> None:
    """The rate limit, exact: every call counted in the shared cache (429)."""
    if call.used is not None and call.used > call.limit.count:
        metrics.RATE_LIMITED.labels(call.service.name).inc()
        headers = call.limit_headers
        raise RateLimited(int(headers["X-RateLimit-Reset"]), headers=headers)


def read_body(call: Call) -> None:
    """Size (413), content type (415), multipart framing (400): ``gateway.body``."""
    call.body, call.length = request_body(call.request, call.service)


STEPS = (
    resolve,
    credentials,
    target,
    plan_limit,
    round_trip,
    judge_token,
    admit,
    enforce,
    read_body,
)


def run(call: Call):
    """Every step in order, then forward and relay the upstream's answer."""
    for step in STEPS:
        step(call)
    return forward(call)


def allowed_host(request) -> str:
    """``request.get_host()`` (ALLOWED_HOSTS), its verdict memoised per raw host: the
    same few hosts recur, and Django's check is a measurable share of a call."""
    host = request._get_raw_host()
    verdict = host_verdicts.get(host)
    if verdict is None:
        try:
            request.get_host()
            verdict = True
        except DisallowedHost:
            verdict = False
        host_verdicts.set(host, verdict)  # bounded: hostile hosts cannot grow it
    if not verdict:
        raise MalformedRequest("The Host header is not allowed.")
    return host


# The ALLOWED_HOSTS verdict per raw Host header (``allowed_host``), forgotten when a
# setting it depends on changes. Public for its bound and ``clear`` (between tests:
# tests/support/reset.py).
host_verdicts = Memo(1024, name="host verdicts")


@receiver(setting_changed)
def _forget_hosts(setting, **kwargs):
    if setting in ("ALLOWED_HOSTS", "DEBUG", "USE_X_FORWARDED_HOST"):
        host_verdicts.clear()
