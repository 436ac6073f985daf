import os

from django.core.checks import ERROR, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xenx.settings.development")
application = get_wsgi_application()


def _refuse_bad_settings() -> None:
    """runserver refuses to serve on a system-check error; so does a WSGI worker (the
    XENX_* setting checks): a bad setting is never silently ignored in production."""
    from xenx.checks import SETTINGS_TAG  # registers the checks: needs the apps loaded

    errors = [m for m in run_checks(tags=[SETTINGS_TAG]) if m.level >= ERROR]
    if errors:
        raise ImproperlyConfigured("; ".join(f"{m.id}: {m.msg}" for m in errors))


_refuse_bad_settings()
# Proxied /api/{service}/ calls go straight to the gateway (gateway/wsgi.py). Imported
# here, not at the top: the gateway's modules need the apps that
# get_wsgi_application() loads.
from gateway.wsgi import GatewayApplication  # noqa: E402

application = GatewayApplication(application)
