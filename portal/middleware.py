"""Browser security headers for the server-rendered pages (portal and admin)."""

from django.conf import settings


class SecurityHeadersMiddleware:
    """A strict Content-Security-Policy (no inline scripts) on /portal/ and /admin/.

    X-Frame-Options, Referrer-Policy and nosniff come from Django's own middleware
    (settings X_FRAME_OPTIONS, SECURE_REFERRER_POLICY, SECURE_CONTENT_TYPE_NOSNIFF).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        path = request.path
        if path.startswith("/portal/"):
            policy = settings.XENX_CSP
        elif path.startswith("/admin/"):
            policy = settings.XENX_ADMIN_CSP
        else:
            return response
        response.setdefault("Content-Security-Policy", policy)
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response
