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
from http.cookies import Morsel

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts import revocation
from accounts.policy import Door, bearer_token, token_identity
from accounts.tokens import Identity, decode_access_token
from xenx.errors import (
    ApiError,
    Forbidden,
    MalformedRequest,
    NotAuthenticated,
    PayloadTooLarge,
    UnsupportedMediaType,
    api_error_response,
    error_response,
    response_for_exception,
)
from xenx.net import client_ip, forwarded_chain

from . import assertions, content, metrics, paths, state
from .ratelimit import headers_for, limit_for
from .registry import registry
from .upstream import RequestRejected, UpstreamError, pool_for
from .validators import RESERVED_NAMES

logger = logging.getLogger("xenx.gateway")

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers never copied from the client: hop-by-hop ones, those the gateway sets
# itself, and the client's own Host (the upstream gets its own).
_DROP_META = frozenset(
    {
        "HTTP_HOST",
        # Content-Length / Content-Type come from CONTENT_LENGTH / CONTENT_TYPE; these
        # two only exist for a client header spelt with underscores (Content_Length),
        # and would add a second framing header upstream (request smuggling).
        "HTTP_CONTENT_LENGTH",
        "HTTP_CONTENT_TYPE",
        "HTTP_CONNECTION",
        "HTTP_KEEP_ALIVE",
        "HTTP_PROXY_AUTHORIZATION",
        "HTTP_PROXY_AUTHENTICATE",
        "HTTP_PROXY_CONNECTION",
        "HTTP_TE",
        "HTTP_TRAILER",
        "HTTP_TRAILERS",
        "HTTP_TRANSFER_ENCODING",
        "HTTP_UPGRADE",
        "HTTP_EXPECT",
        "HTTP_X_FORWARDED_FOR",
        "HTTP_X_FORWARDED_PROTO",
        "HTTP_X_FORWARDED_HOST",
        "HTTP_X_FORWARDED_PORT",
        "HTTP_X_REAL_IP",
        "HTTP_FORWARDED",
        "HTTP_X_REQUEST_ID",
        "HTTP_X_USER_ID",
        "HTTP_X_USER_EMAIL",
        "HTTP_X_USER_ROLE",
        "HTTP_X_ORGANIZATION_ID",
        assertions.META_KEY,
        "HTTP_AUTHORIZATION",
    }
)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
SMALL_BODY = 64 * 1024  # request bodies up to this are read at once (replayable)
SMALL_RESPONSE = 256 * 1024  # responses up to this are read at once, not streamed
CHUNK = 64 * 1024
# A query forwarded byte for byte may not hold what would break the request line: the
# raw target (gunicorn's RAW_URI) keeps bare CR, LF, NUL and other controls.
_UNSAFE_QUERY = re.compile(r"[\x00-\x20\x7f]")
# Response header values a WSGI server refuses (and CR/LF, which would split them).
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_header_names: dict[str, str] = {}


def _header_name(meta_key: str) -> str:
    name = _header_names.get(meta_key)
    if name is None:
        name = "-".join(p.capitalize() for p in meta_key[5:].split("_"))
        _header_names[meta_key] = name
    return name


class _BodyTooLarge(Exception):
    pass


class _ClientBodyError(Exception):
    """The client's body broke off (short of its Content-Length, or a read error): the
    client's fault, so it is a 400 and never counts against the upstream's health."""


class _StreamedBody:
    """The client's body read in chunks as it is sent upstream, counted against the
    service's limit (a chunked upload has no Content-Length to check up front)."""

    def __init__(self, stream, length: int | None, limit: int):
        self.stream, self.remaining, self.limit = stream, length, limit
        self.read_bytes = 0

    def _read(self, size: int) -> bytes:
        try:
            return self.stream.read(size)
        except OSError as exc:  # the client went away or stalled past the timeout
            raise _ClientBodyError() from exc

    def __iter__(self):
        while True:
            if self.remaining is None:
                chunk = self._read(CHUNK)
            elif self.remaining <= 0:
                return
            else:
                chunk = self._read(min(CHUNK, self.remaining))
                self.remaining -= len(chunk)
                if not chunk:
                    raise _ClientBodyError()
            if not chunk:
                return
            self.read_bytes += len(chunk)
            if self.read_bytes > self.limit:
                raise _BodyTooLarge()
            yield chunk


class _RawMorsel(Morsel):
    """One upstream Set-Cookie header, emitted exactly as the upstream sent it.

    Django's response headers hold one value per name; its WSGI handler emits one
    ``Set-Cookie`` line per entry of ``response.cookies``, so each upstream line becomes
    one entry here."""

    def __init__(self, name: str, raw: str):
        super().__init__()
        value = raw.split("=", 1)[1].split(";", 1)[0].strip() if "=" in raw else ""
        self._key, self._value, self._coded_value = name, value, value
        self.raw = raw

    def OutputString(self, attrs=None):  # noqa: N802 - Morsel's API
        return self.raw


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
        # Authentication unless public, then the MFA policy and the role list. A token
        # seen in the last moments has its identity memoised; any other is checked
        # against its revocation records, read in the call's one round trip below.
        auth = meta.get("HTTP_AUTHORIZATION")
        raw = payload = None
        state_keys: tuple[str, ...] = ()
        if auth or not svc.public:
            raw = _bearer(auth)
            identity = _memoised_identity(raw)
            if identity is None:
                payload = decode_access_token(raw)
                state_keys = tuple(
                    revocation.state_keys(
                        int(payload["user_id"]),
                        str(payload["jti"]),
                        payload.get("org"),
                        payload.get("fam"),
                    )
                )
            else:
                _admit(request, svc, identity)
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
                svc, role=role, user_id=user_id, ip=lambda: client_ip(request)
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
                    identity = _verify(raw)
                else:
                    with revocation.prefetched(state_keys, found):
                        identity = _verify(raw)
                _admit(request, svc, identity)
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
        body, length = _request_body(request, svc)
        response = _forward(request, svc, identity, rest, query, body, length, health)
    except ApiError as exc:
        response = api_error_response(request, exc)
    if rl_headers:  # ASCII digits: Django's per-header validation is not needed
        store = response.headers._store
        for name, value in rl_headers.items():
            store[name.lower()] = (name, value)
    return response


def _bearer(auth: str | None) -> str:
    raw = bearer_token(auth)
    if raw is None:
        raise NotAuthenticated(headers={"WWW-Authenticate": 'Bearer realm="api"'})
    return raw


def _verify(raw: str) -> Identity:
    try:
        identity = token_identity(raw, door=Door.GATEWAY)
    except state.CACHE_ERRORS:
        if not settings.XENX_FAIL_OPEN_WITHOUT_CACHE:
            raise ApiError(
                "The gateway's shared state is unavailable.",
                status=503,
                code="service_unavailable",
                headers={"Retry-After": "5"},
            ) from None
        identity = _identity_from_claims(decode_access_token(raw))
    _remember_identity(raw, identity)
    return identity


def _admit(request, svc, identity: Identity) -> None:
    request.xenx_user_id = identity.user_id
    if svc.allowed_roles and identity.role not in svc.allowed_roles:
        raise Forbidden(f"Your role may not call service {svc.name!r}.")


# Identities of tokens checked in the last moments, valid exactly as long as the
# revocation records they were built from are memoised by ``accounts.revocation`` (the
# same entries, not expired, not dropped by an invalidation in this process): reusing
# them adds no staleness and saves the JWT signature check on repeated calls.
_identity_memo: dict[str, tuple[Identity, tuple]] = {}
_IDENTITY_MEMO_MAX = 10_000


def _revocation_entries(identity: Identity):
    keys = revocation.state_keys(
        identity.user_id,
        identity.payload.get("jti"),
        identity.org_id,
        identity.payload.get("fam"),  # the session (accounts.sessions)
    )
    entries = tuple(revocation.memo_entry(k) for k in keys)
    if any(e is None for e in entries):
        return None
    return tuple(zip(keys, entries, strict=True))


def _remember_identity(raw: str, identity: Identity) -> None:
    entries = _revocation_entries(identity)
    if entries is None:
        return
    if len(_identity_memo) >= _IDENTITY_MEMO_MAX:
        _identity_memo.clear()
    _identity_memo[raw] = (identity, entries)


def _memoised_identity(raw: str) -> Identity | None:
    hit = _identity_memo.get(raw)
    if hit is None:
        return None
    identity, entries = hit
    now = time.monotonic()
    try:
        for key, entry in entries:
            if revocation.memo_entry(key) is not entry or entry[0] <= now:
                _identity_memo.pop(raw, None)
                return None
    except (TypeError, IndexError, KeyError):  # accounts.revocation changed shape
        _identity_memo.clear()
        return None
    if identity.payload.get("exp", 0) <= time.time():
        _identity_memo.pop(raw, None)
        return None
    return identity


def _identity_from_claims(payload: dict) -> Identity:
    """Fail-open mode without the cache: the signed claims alone."""
    return Identity(
        user_id=int(payload["user_id"]),
        email=str(payload.get("email", "")),
        role=str(payload.get("role", "")),
        org_id=payload.get("org"),
        mfa=bool(payload.get("mfa")),
        mfa_pending=False,
        payload=payload,
    )


def _request_body(request, svc):
    """(body, length): bytes, a chunk iterator or a spooled file, after the size
    (413) and content-type (415) checks."""
    meta = request.META
    raw_length = meta.get("CONTENT_LENGTH")
    stream = meta["wsgi.input"]
    length = None
    if raw_length:
        try:
            length = int(raw_length)
        except ValueError:
            raise MalformedRequest("Invalid Content-Length.") from None
        if length < 0:
            raise MalformedRequest("Invalid Content-Length.")
        if length > svc.max_body_bytes:
            raise PayloadTooLarge(
                f"The body may be at most {svc.max_body_bytes} bytes for this service."
            )
    elif not meta.get("wsgi.input_terminated"):
        length = 0  # no length and a server that cannot signal the end: no body
    if length == 0:
        return None, 0
    patterns = svc.allowed_content_types
    if patterns:
        mime = content.media_type(meta.get("CONTENT_TYPE", ""))
        if not content.allowed(mime, patterns):
            raise UnsupportedMediaType(
                f"Service {svc.name!r} does not accept {mime or 'an untyped body'}."
            )
    if length is not None and length <= SMALL_BODY:
        data = stream.read(length)
        if len(data) < length:
            raise MalformedRequest("The body ended before its Content-Length.")
        body = data
    else:
        body = _StreamedBody(stream, length, svc.max_body_bytes)
    if patterns and content.media_type(meta.get("CONTENT_TYPE", "")).startswith(
        "multipart/"
    ):
        try:
            spooled = content.spool([body] if isinstance(body, bytes) else body)
        except _BodyTooLarge:
            raise PayloadTooLarge() from None
        except _ClientBodyError:
            raise MalformedRequest(
                "The body ended before its Content-Length."
            ) from None
        content.check_multipart(meta, spooled, patterns)
        spooled.seek(0)
        if length is None:  # chunked from the client: now the size is known
            spooled.seek(0, 2)
            length = spooled.tell()
            spooled.seek(0)
        return _StreamedBody(spooled, length, svc.max_body_bytes), length
    return body, length


def _upstream_headers(request, svc, identity, length) -> dict:
    meta = request.META
    connection_named = set()
    conn = meta.get("HTTP_CONNECTION")
    if conn:
        connection_named = {
            "HTTP_" + t.strip().upper().replace("-", "_")
            for t in conn.split(",")
            if t.strip()
        }
    headers = {}
    for key, value in meta.items():
        if key.startswith("HTTP_"):
            if key in _DROP_META or key in connection_named:
                continue
            if key == "HTTP_COOKIE":
                value = _without_platform_cookies(value)
                if not value:
                    continue
            headers[_header_name(key)] = value
    content_type = meta.get("CONTENT_TYPE")
    if content_type:
        headers["Content-Type"] = content_type
    if length:
        headers["Content-Length"] = str(length)
    if svc.forward_authorization and meta.get("HTTP_AUTHORIZATION"):
        headers["Authorization"] = meta["HTTP_AUTHORIZATION"]
    headers["X-Forwarded-For"] = ", ".join(forwarded_chain(request))
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.xenx_host
    headers["X-Request-ID"] = request.request_id
    if identity is not None:
        headers["X-User-Id"] = str(identity.user_id)
        email = identity.email
        if not email.isascii():  # an IDN domain: its UTF-8 bytes, as latin-1 text
            email = email.encode().decode("latin-1")
        headers["X-User-Email"] = email
        headers["X-User-Role"] = identity.role
        if identity.org_id is not None:
            headers["X-Organization-Id"] = str(identity.org_id)
        if svc.sign_identity:
            headers[assertions.HEADER] = assertions.assertion_for(
                identity, svc.name, request.request_id
            )
    return headers


def _without_platform_cookies(value: str) -> str:
    """XenX's own session and CSRF cookies stay with XenX."""
    names = (settings.SESSION_COOKIE_NAME + "=", settings.CSRF_COOKIE_NAME + "=")
    if not any(n in value for n in names):
        return value
    kept = [c for c in value.split(";") if not c.strip().startswith(names)]
    return ";".join(kept).strip()


def _candidates(svc, health) -> tuple[list, object]:
    """(instances whose circuit is closed, a half-open instance whose single trial this
    call won, or None). ``health`` is [open_until…, failures…] from the round trip."""
    now = state.now_ms()
    healthy, half_open = [], []
    for index, inst in enumerate(svc.instances):
        open_until = health[index] if health else None
        if open_until is None:
            healthy.append(inst)
        elif open_until <= now:
            half_open.append(inst)
    for inst in half_open:
        try:
            if state.try_trial(inst.id, svc.timeout):
                return healthy, inst
        except state.CACHE_ERRORS:
            break
    return healthy, None


def _forward(request, svc, identity, rest, query, body, length, health):
    healthy, trial = _candidates(svc, health)
    if not healthy and trial is None:
        return error_response(
            request,
            503,
            "service_unavailable",
            f"No healthy instance of service {svc.name!r}.",
            headers={"Retry-After": str(state.OPEN_SECONDS)},
        )
    count = len(svc.instances)
    failures = {
        inst.id: health[count + i] if health else None
        for i, inst in enumerate(svc.instances)
    }
    headers = _upstream_headers(request, svc, identity, length)
    method = request.method
    connect_timeout = min(svc.timeout, settings.XENX_GATEWAY_CONNECT_TIMEOUT)
    url_tail = rest + ("?" + query if query is not None else "")
    replayable = body is None or isinstance(body, bytes)
    chunked = not replayable and length is None
    tries = svc.retries + 1
    last: UpstreamError | None = None
    remaining = list(healthy)
    inst = trial
    while tries > 0:
        if inst is None:
            if not remaining:
                break
            inst = svc.pick(remaining)
            remaining.remove(inst)
        tries -= 1
        try:
            upstream = pool_for(inst).request(
                method,
                inst.base_path + url_tail,
                headers,
                body,
                connect_timeout=connect_timeout,
                read_timeout=svc.timeout,
                chunked=chunked,
            )
        except _BodyTooLarge:
            return error_response(request, 413, "payload_too_large")
        except _ClientBodyError:
            raise MalformedRequest(
                "The body ended before its Content-Length."
            ) from None
        except RequestRejected:
            raise MalformedRequest("A header holds CR, LF or NUL.") from None
        except UpstreamError as failure:
            last = failure
            metrics.UPSTREAM_ERRORS.labels(svc.name, failure.kind).inc()
            state.record_failure(inst.id, trial=inst is trial)
            logger.warning(
                "upstream failure",
                extra={"service": svc.name, "instance": inst.url, "kind": failure.kind},
            )
            inst = None
            if failure.kind == "read_timeout":
                break  # the upstream had the request: waiting again doubles the wait
            if failure.sent and (method not in IDEMPOTENT or not replayable):
                break
            if not replayable and _consumed(body):
                break
            continue
        if inst is trial or failures.get(inst.id):
            state.record_success(inst.id)
        return _relay(request, upstream)
    if last is not None and last.timeout:
        return error_response(
            request,
            504,
            "gateway_timeout",
            "The upstream service did not answer in time.",
        )
    return error_response(request, 502, "bad_gateway", "The upstream service failed.")


def _consumed(body) -> bool:
    if hasattr(body, "read_bytes"):
        return body.read_bytes > 0
    return hasattr(body, "tell") and body.tell() > 0


def _relay(request, upstream):
    """The upstream's answer: status and headers as sent (minus hop-by-hop), body read
    at once when small, streamed otherwise."""
    connection_named = ()
    for name, value in upstream.headers:
        if name.lower() == "connection":
            connection_named = {t.strip().lower() for t in value.split(",")}
    length = upstream.length
    if (
        length is not None
        and length <= SMALL_RESPONSE
        or upstream.status in (204, 304)
        or request.method == "HEAD"
    ):
        try:
            data = upstream.read()
        except Exception as exc:  # noqa: BLE001 - the upstream broke mid-body
            upstream.close()
            raise ApiError(
                "The upstream service failed.", status=502, code="bad_gateway"
            ) from exc
        response = HttpResponse(
            data, status=upstream.status, reason=upstream.reason or None
        )
    else:
        response = StreamingHttpResponse(
            _stream(upstream), status=upstream.status, reason=upstream.reason or None
        )
    # Values come from latin-1 bytes split on CRLF, so Django's per-header charset and
    # newline validation (a measurable share of a small call) is redundant here; the
    # few values it would refuse are dropped.
    store = response.headers._store
    store.pop("content-type", None)
    cookies = None
    for name, value in upstream.headers:
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in connection_named:
            continue
        if _UNSAFE_VALUE.search(value):
            continue
        if lower == "set-cookie":
            if cookies is None:
                cookies = response.cookies
            cookie_name = value.split("=", 1)[0].strip()
            cookies[f"{cookie_name}\x00{len(cookies)}"] = _RawMorsel(cookie_name, value)
            continue
        existing = store.get(lower)
        store[lower] = (name, value if existing is None else f"{existing[1]}, {value}")
    response.xenx_passthrough = True
    response.xenx_proxied = True
    return response


def _stream(upstream):
    try:
        yield from upstream.stream()
    finally:
        upstream.close()


def metrics_token_ok(auth: str) -> bool:
    token = settings.XENX_METRICS_TOKEN
    return bool(token) and hmac.compare_digest(auth, f"Bearer {token}")
