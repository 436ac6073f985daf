"""Proxied calls answered at the WSGI layer, before Django's request handler.

``/api/{registered service}/…`` goes straight to the gateway through the middleware
that settings list before ``GatewayMiddleware`` (request id, access log, API error
body: the same instances Django would run, built from ``settings.MIDDLEWARE``), so the
call keeps its request id, access log line, error body and ``django.request`` logging.
What it skips does nothing for it: Django's handler (URL conf set-up, the
``request_started`` / ``request_finished`` signals and their receivers, except
``request_started`` once on a process's first proxied call, which starts the health
prober) and the middleware after ``GatewayMiddleware``, which that middleware skips
anyway. Database
connections are still closed or recycled after each call as ``request_finished`` would
(the hot path uses none; a registry or revocation reload may). Everything else, and any
call ``GatewayMiddleware`` would not take (an unknown service, plain HTTP under
``SECURE_SSL_REDIRECT``), goes to Django's application unchanged.

Wired in ``xenx/wsgi.py``; the test client, which bypasses WSGI, still meets
``GatewayMiddleware`` with the same result.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_started
from django.db import connections
from django.utils.log import log_response
from django.utils.module_loading import import_string

from core.middleware import apply_forwarded_proto

from .middleware import GatewayMiddleware, service_of
from .proxy import proxy_view

MIDDLEWARE_PATH = "gateway.middleware.GatewayMiddleware"
FORWARDED_PROTO_PATH = "core.middleware.ForwardedProtoMiddleware"


class GatewayApplication:
    def __init__(self, application):
        self.application = application
        self.hsts = GatewayMiddleware.hsts_value()
        self.ssl_redirect = settings.SECURE_SSL_REDIRECT
        self.chain = self._build_chain()
        self._started_in: int | None = None

    def _build_chain(self):
        """The middleware listed before GatewayMiddleware, around the gateway, as
        Django's handler composes them; None when GatewayMiddleware is not installed."""
        if MIDDLEWARE_PATH not in settings.MIDDLEWARE:
            return None
        handler = convert_exception_to_response(self._gateway)
        before = settings.MIDDLEWARE[: settings.MIDDLEWARE.index(MIDDLEWARE_PATH)]
        for path in reversed(before):
            if path == FORWARDED_PROTO_PATH:  # applied in __call__, before the check
                continue
            try:
                instance = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            handler = convert_exception_to_response(instance)
        return handler

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        name = service_of(path) if self.chain is not None else None
        if name is None:
            return self.application(environ, start_response)
        request = WSGIRequest(environ)
        # ForwardedProtoMiddleware's work, done once here, before the scheme check
        apply_forwarded_proto(environ)
        if self.ssl_redirect and not request.is_secure():
            return self.application(environ, start_response)  # SecurityMiddleware
        request.xenx_service = name
        if self._started_in != os.getpid():
            # The first call of each process sends Django's request_started, so that
            # what starts on a process's first request (the health prober) starts.
            self._started_in = os.getpid()
            request_started.send(sender=self.__class__, environ=environ)
        response = None
        try:
            response = self.chain(request)
            if response.status_code >= 400:  # as Django's handler logs them
                log_response(
                    "%s: %s",
                    response.reason_phrase,
                    request.path,
                    response=response,
                    request=request,
                )
            start_response(
                f"{response.status_code} {response.reason_phrase}",
                [
                    # (name, value) pairs as Django's handler emits them, read
                    # straight from the header store (its items() view is a
                    # measurable share of a small call)
                    *response.headers._store.values(),
                    *(
                        ("Set-Cookie", c.output(header=""))
                        for c in response.cookies.values()
                    ),
                ],
            )
            if response.streaming:
                return response  # its close() ends the call as Django's would
            return [response.content]
        finally:
            if response is None or not response.streaming:
                close_old_connections()

    def _gateway(self, request):
        response = proxy_view(request, request.xenx_service)
        if self.hsts and request.is_secure():
            response.headers.setdefault("Strict-Transport-Security", self.hsts)
        return response


def close_old_connections() -> None:
    """``django.db.close_old_connections`` for the connections this thread opened; the
    hot path opens none, and listing every alias's connection was a measurable share
    of a call."""
    local = connections._connections
    for alias in connections:
        conn = getattr(local, alias, None)
        if conn is not None:
            conn.close_if_unusable_or_obsolete()
