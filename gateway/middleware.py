"""Route proxied calls to the gateway before the rest of the middleware stack.

``/api/{service}/…`` for a registered service is answered here, right after the
request id, access log and error middleware: sessions, CSRF, authentication, OTP,
messages and URL resolution do nothing for a proxied call (it is authenticated by its
token, never by a session), so skipping them is the cheapest correct path. Of
SecurityMiddleware's work, what concerns a proxied call is kept here: a plain-HTTP call
is left to it (it redirects when ``SECURE_SSL_REDIRECT`` is on) and HSTS is added to
HTTPS answers; the upstream's own headers (nosniff, referrer policy…) are its own. Any
other request, and any unknown service name, continues down the stack as usual (the
catch-all route then answers ``service_not_found``). Under a WSGI server the project's
application takes these calls one step earlier still (``gateway/wsgi.py``).
"""

from django.conf import settings

from .proxy import proxy_view
from .registry import registry
from .validators import RESERVED_NAMES


def service_of(path: str) -> str | None:
    """The registered service a ``/api/{service}/…`` path calls, or None."""
    if not path.startswith("/api/"):
        return None
    end = path.find("/", 5)
    name = path[5:end] if end != -1 else path[5:]
    if name and name not in RESERVED_NAMES and registry.get(name) is not None:
        return name
    return None


class GatewayMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.ssl_redirect = settings.SECURE_SSL_REDIRECT
        self.hsts = self.hsts_value()

    @staticmethod
    def hsts_value() -> str | None:
        if not settings.SECURE_HSTS_SECONDS:
            return None
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        return hsts

    def __call__(self, request):
        name = service_of(request.path_info)
        if name is not None:
            secure = request.is_secure()
            if self.ssl_redirect and not secure:
                return self.get_response(request)  # SecurityMiddleware redirects
            response = proxy_view(request, name)
            if self.hsts and secure:
                response.headers.setdefault("Strict-Transport-Security", self.hsts)
            return response
        return self.get_response(request)
