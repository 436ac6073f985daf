"""Which of the client's request headers reach an upstream, and what a proxied answer
a browser would run is wrapped in (README "Gateway").

Request headers are an allowlist: the end-to-end headers clients send to an HTTP API
(what Kong and Envoy users expect to pass) plus the names a service lists in its own
``forward_headers``. Everything else is dropped, so a header a back end (or a
framework in front of it) reads as a path override or an identity (``X-Original-URL``,
``Remote-User``, ``True-Client-IP``, …) never comes from the client. Hop-by-hop
headers, the framing headers and the headers the gateway sets itself can never be
listed by a service either.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.core.exceptions import ValidationError

# Forwarded from the client by default (README "Gateway"): content negotiation,
# representation metadata of the body, caching and conditional requests, ranges, the
# browser's own context (origin, referrer, fetch metadata, CORS preflight), the
# client's identity as software (User-Agent), and W3C trace context. Content-Type and
# Content-Length are the gateway's own (from the body it forwards).
DEFAULT_FORWARDED = (
    "Accept",
    "Accept-Charset",
    "Accept-Encoding",
    "Accept-Language",
    "Access-Control-Request-Headers",
    "Access-Control-Request-Method",
    "Cache-Control",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Range",
    "Cookie",
    "Date",
    "If-Match",
    "If-Modified-Since",
    "If-None-Match",
    "If-Range",
    "If-Unmodified-Since",
    "Origin",
    "Pragma",
    "Prefer",
    "Range",
    "Referer",
    "Sec-Fetch-Dest",
    "Sec-Fetch-Mode",
    "Sec-Fetch-Site",
    "Sec-Fetch-User",
    "Traceparent",
    "Tracestate",
    "User-Agent",
)

# Never taken from the client, whatever a service lists: hop-by-hop and framing
# headers, the ones the gateway writes itself, Authorization (``forward_authorization``
# decides), and names back ends or their frameworks read as a path override or an
# identity.
NEVER_FORWARDED = frozenset(
    name.lower()
    for name in (
        # hop-by-hop (RFC 9110 7.6.1) and framing
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Trailers",
        "Transfer-Encoding",
        "Upgrade",
        "Expect",
        "Host",
        "Content-Length",
        "Content-Type",
        "Authorization",
        # the gateway's own
        "X-Request-ID",
        "X-Forwarded-For",
        "X-Forwarded-Proto",
        "X-Forwarded-Host",
        "X-Forwarded-Port",
        "X-Forwarded-Prefix",
        "X-Forwarded-Server",
        "Forwarded",
        "X-Real-IP",
        "X-User-Id",
        "X-User-Email",
        "X-User-Role",
        "X-Organization-Id",
        "X-XenX-Identity",
        "X-Client-Id",
        # path overrides and identities other software believes
        "X-Original-URL",
        "X-Original-URI",
        "X-Rewrite-URL",
        "X-Original-Forwarded-For",
        "Remote-User",
        "Remote-Addr",
        "X-Remote-User",
        "X-Remote-Addr",
        "X-Forwarded-User",
        "X-Forwarded-Email",
        "X-Forwarded-Groups",
        "X-Forwarded-Preferred-Username",
        "X-Forwarded-Access-Token",
        "X-Authenticated-User",
        "X-Auth-Request-User",
        "X-Auth-Request-Email",
        "True-Client-IP",
        "X-Client-IP",
        "X-Cluster-Client-IP",
        "CF-Connecting-IP",
        "Fastly-Client-IP",
        "X-ProxyUser-Ip",
    )
)
# A header name as WSGI can carry it back unchanged: no underscore (CGI turns "-" into
# "_", so ``A_B`` and ``A-B`` are one key), at most 64 characters.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
MAX_FORWARD_HEADERS = 32


def meta_key(name: str) -> str:
    return "HTTP_" + name.upper().replace("-", "_")


def forwarded_keys(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """WSGI key → header name for every client header a service forwards: the default
    allowlist and the service's own ``forward_headers``. Built once per registry
    snapshot, so the names sent upstream are a fixed, bounded set."""
    keys = {meta_key(name): name for name in DEFAULT_FORWARDED}
    for name in extra:
        if name.lower() not in NEVER_FORWARDED:  # refused on save already
            keys[meta_key(name)] = name
    return keys


def client_headers(meta, allowed: dict[str, str], connection_named) -> dict:
    """The client's headers that go upstream, in the client's order: the allowed ones
    not named in its ``Connection`` header, XenX's own cookies removed from ``Cookie``.

    The request's own keys are walked against the allowlist, by ``filter`` with the
    dictionary's own membership test: a call sends a few of the ~30 allowed names, and
    a loop over the allowlist in Python was a measured share of a public call (README
    "Benchmark")."""
    headers = {}
    for key in filter(allowed.__contains__, meta):
        if key in connection_named:
            continue
        value = meta[key]
        name = allowed[key]
        if key == "HTTP_COOKIE":
            value = _without_platform_cookies(value)
            if not value:
                continue
        headers[name] = value
    return headers


def _without_platform_cookies(value: str) -> str:
    """XenX's own session and CSRF cookies stay with XenX."""
    names = (settings.SESSION_COOKIE_NAME + "=", settings.CSRF_COOKIE_NAME + "=")
    if not any(n in value for n in names):
        return value
    kept = [c for c in value.split(";") if not c.strip().startswith(names)]
    return ";".join(kept).strip()


def validate_forward_headers(value) -> None:
    """A service's ``forward_headers``: header names, none the gateway owns."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError("Give a list of header names.")
    if len(value) > MAX_FORWARD_HEADERS:
        raise ValidationError(f"At most {MAX_FORWARD_HEADERS} header names.")
    for name in value:
        if not NAME_RE.match(name):
            raise ValidationError(
                f"{name!r} is not a header name (letters, digits and '-', at most 64)."
            )
        if name.lower() in NEVER_FORWARDED:
            raise ValidationError(
                f"{name!r} is never taken from the client (hop-by-hop, set by the "
                "gateway, or read as a path or an identity)."
            )
    if len({v.lower() for v in value}) != len(value):
        raise ValidationError("A header name is listed twice.")


# Answers a browser would render and run scripts in, on XenX's own origin: HTML, XML
# and SVG documents, and an answer with no usable type (browsers sniff it).
_RUNNABLE = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
        "multipart/x-mixed-replace",
    }
)
SANDBOX = "sandbox"


def runs_in_browser(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return not media or "/" not in media or media in _RUNNABLE or media.endswith("+xml")


def sandbox(response, serves_pages: bool):
    """A proxied answer a browser would run gets ``Content-Security-Policy: sandbox``
    (an opaque origin: no script, no access to XenX's cookies or pages) and
    ``nosniff``, unless its service ``serves_pages``."""
    if serves_pages or not runs_in_browser(response.get("Content-Type")):
        return response
    store = response.headers._store
    policy = store.get("content-security-policy")
    # A second policy is enforced on top of the upstream's own (CSP 3: policies
    # separated by a comma each apply).
    value = SANDBOX if policy is None else f"{policy[1]}, {SANDBOX}"
    store["content-security-policy"] = ("Content-Security-Policy", value)
    store["x-content-type-options"] = ("X-Content-Type-Options", "nosniff")
    return response
