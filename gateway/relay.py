"""The upstream's answer relayed to the client: status and headers as sent (minus
hop-by-hop), body read at once when small, streamed otherwise."""

from __future__ import annotations

import re
from http.cookies import Morsel

import httptools
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse

from core.errors import ApiError

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
SMALL_RESPONSE = 256 * 1024  # responses up to this are read at once, not streamed
# Response header values a WSGI server refuses (and CR/LF, which would split them).
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


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


def _platform_cookies() -> tuple[str, str]:
    return (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME)


def relay(request, upstream):
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
        except (EOFError, OSError, httptools.HttpParserError) as exc:
            # The upstream broke mid-body (gateway.upstream.Response.stream): closed
            # before the last byte (EOFError), reset, timed out (TimeoutError, the
            # kernel's timeout included), TLS (all OSErrors), or bytes llhttp refuses.
            # A bug here is not the upstream's failure: it is a 500, not a 502.
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
            cookie_name = value.split("=", 1)[0].strip()
            if cookie_name in _platform_cookies():
                continue  # XenX's own session and CSRF cookies are XenX's alone
            if cookies is None:
                cookies = response.cookies
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
