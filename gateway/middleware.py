"""Route proxied calls to the gateway before the rest of the middleware stack.

``/api/{service}/…`` for a registered service is answered here, right after the
request id, access log, error and security middleware: sessions, CSRF, authentication,
OTP, messages and URL resolution do nothing for a proxied call (it is authenticated by
its token, never by a session), so skipping them is the cheapest correct path. Any
other request, and any unknown service name, continues down the stack as usual (the
catch-all route then answers ``service_not_found``).
"""

from .proxy import proxy_view
from .registry import registry
from .validators import RESERVED_NAMES


class GatewayMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith("/api/"):
            end = path.find("/", 5)
            name = path[5:end] if end != -1 else path[5:]
            if name and name not in RESERVED_NAMES and registry.get(name) is not None:
                return proxy_view(request, name)
        return self.get_response(request)
