"""Django's error handlers: JSON under /api/ and /health, Django's pages elsewhere."""

from django.views import defaults

from .errors import error_response
from .middleware import is_api_path


def handler404(request, exception=None):
    if is_api_path(request.path):
        return error_response(request, 404)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if is_api_path(request.path):
        return error_response(request, 500)
    return defaults.server_error(request)
