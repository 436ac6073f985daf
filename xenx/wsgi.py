import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xenx.settings.development")
application = get_wsgi_application()


def _refuse_bad_settings() -> None:
    """runserver refuses to serve on a system-check error; so does a WSGI worker (the
    XENX_* setting checks): a bad setting is never silently ignored in production."""
    from django.core.checks import ERROR, run_checks

    from xenx.checks import SETTINGS_TAG

    errors = [m for m in run_checks(tags=[SETTINGS_TAG]) if m.level >= ERROR]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{m.id}: {m.msg}" for m in errors))


_refuse_bad_settings()
# Proxied /api/{service}/ calls go straight to the gateway (gateway/wsgi.py), named by
# string as xenx/urls.py includes the apps' URLs.
application = import_string("gateway.wsgi.GatewayApplication")(application)
