"""Small middleware, one concern each: request id, access log, API error bodies, the
size of JSON bodies."""

import io
import logging
import os
import re
import time

from django.http import HttpResponse, UnreadablePostError
from django.utils.functional import SimpleLazyObject, empty
from django.views import defaults

from . import jsonbody
from .errors import error_response, response_for_exception
from .net import is_trusted_proxy
from .request_context import LogContext, log_context, set_user_id

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
access_logger = logging.getLogger("xenx.access")
# Proxied calls (responses marked ``xenx_proxied``) log here: 5xx at WARNING, the rest
# at INFO, which settings switch off by default (the gateway's metrics count them).
gateway_access_logger = logging.getLogger("xenx.access.gateway")


def is_api_path(path: str) -> bool:
    """Paths whose errors must use the JSON error body (README "Conventions")."""
    return path.startswith("/api/") or path == "/health" or path.startswith("/health/")


class ForwardedProtoMiddleware:
    """The scheme a trusted proxy says the client used: ``X-Forwarded-Proto`` is
    believed only from a peer in XENX_TRUSTED_PROXIES (Django's SECURE_PROXY_SSL_HEADER
    would believe any peer), and then sets ``request.scheme`` / ``is_secure()``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        apply_forwarded_proto(request.META)
        return self.get_response(request)


def apply_forwarded_proto(meta) -> None:
    """Set ``wsgi.url_scheme`` from ``X-Forwarded-Proto`` when a trusted proxy sent it
    (the middleware above, and the gateway's WSGI dispatch before it checks the scheme).
    """
    proto = meta.get("HTTP_X_FORWARDED_PROTO")
    if proto and is_trusted_proxy(meta.get("REMOTE_ADDR", "")):
        value = proto.split(",", 1)[0].strip().lower()
        if value in ("http", "https"):
            meta["wsgi.url_scheme"] = value


class RequestIdMiddleware:
    """Keep a well-formed incoming X-Request-ID, otherwise make one; echo it back.

    It also opens and closes the request's log context (core.request_context): a
    worker thread serves one request after another, and a value left from the last
    one (its user id) would be logged as this one's. The gateway's WSGI path runs
    this middleware too (gateway/wsgi.py).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = (
            incoming if REQUEST_ID_RE.fullmatch(incoming) else os.urandom(16).hex()
        )
        request.request_id = request_id
        token = log_context.set(LogContext(request_id))
        try:
            response = self.get_response(request)
        finally:
            log_context.reset(token)
        response["X-Request-ID"] = request_id
        return response


def _known_user_id(request):
    """The user id if something already resolved the user; never triggers a lookup."""
    explicit = getattr(request, "xenx_user_id", None)
    if explicit is not None:
        return explicit
    user = request.__dict__.get("user")
    if user is None:
        return None
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return None
    return getattr(user, "pk", None)


class AccessLogMiddleware:
    """One JSON line per request: id, user, method, path, status, duration."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        start = time.perf_counter()
        response = self.get_response(request)
        logger, level = access_logger, logging.INFO
        if getattr(response, "xenx_proxied", False):
            logger = gateway_access_logger
            if response.status_code >= 500:
                level = logging.WARNING
            if not logger.isEnabledFor(level):
                return response
        user_id = _known_user_id(request)
        set_user_id(user_id)
        logger.log(
            level,
            "request",
            extra={
                "request_id": getattr(request, "request_id", None),
                "user_id": user_id,
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - start) * 1000, 2),
            },
        )
        return response


class ApiErrorMiddleware:
    """Under /api/ and /health every error the platform produces has the one body.

    Exceptions from views become error bodies here; error responses produced by Django
    itself (resolver 404, 405 from plain views, CSRF 403, debug pages) are rewritten.
    Responses marked ``xenx_passthrough`` (proxied upstream answers) are left alone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api_path(request.path)
            and not getattr(response, "xenx_error", False)
            and not getattr(response, "xenx_passthrough", False)
        ):
            headers = {}
            for name in ("Allow", "Retry-After", "WWW-Authenticate"):
                if response.has_header(name):
                    headers[name] = response[name]
            return error_response(request, response.status_code, headers=headers)
        return response

    def process_exception(self, request, exception):
        if is_api_path(request.path):
            return response_for_exception(request, exception)
        if isinstance(exception, UnreadablePostError):  # a page's body cut short
            return defaults.bad_request(request, exception)
        return None


class BodyLimitMiddleware:
    """A JSON body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is 413 before it is read.

    By its Content-Length when it has one. A chunked body (``Transfer-Encoding``, which
    the server de-chunks: ``wsgi.input_terminated``) has none, and Django would read it
    as empty: it is read here, at most one byte past the limit, and handed on as a body
    of known length. Proxied calls never come here (the gateway takes them first and
    has its own limit, the service's ``max_body_bytes``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        meta = request.META
        if jsonbody.is_json(meta.get("CONTENT_TYPE", "")):
            refused = self._refuse_large(request, meta)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _refuse_large(self, request, meta):
        limit = jsonbody.body_limit()
        length = meta.get("CONTENT_LENGTH") or ""
        if length:
            if length.isdigit() and int(length) > limit:
                return self._response(request)
            return None
        if meta.get("HTTP_TRANSFER_ENCODING") and meta.get("wsgi.input_terminated"):
            data = meta["wsgi.input"].read(limit + 1)
            if len(data) > limit:
                return self._response(request)
            meta["CONTENT_LENGTH"] = str(len(data))
            request._stream = io.BytesIO(data)
            request._read_started = False
        return None

    @staticmethod
    def _response(request):
        exc = jsonbody.too_large()
        if is_api_path(request.path):
            return error_response(request, exc.status, exc.code, exc.message)
        return HttpResponse(exc.message, status=413, content_type="text/plain")
