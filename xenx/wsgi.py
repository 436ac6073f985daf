import os

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

from xenx import startup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", startup.DEFAULT_SETTINGS)
# runserver refuses to serve on a system-check error; so does a WSGI worker: every
# error-level check (xenx/startup.py), a bad setting is never silently ignored.
_refusal = startup.refusal()
if _refusal:
    raise ImproperlyConfigured(_refusal)
application = get_wsgi_application()
# Proxied /api/{service}/ calls go straight to the gateway (gateway/wsgi.py). Imported
# here, not at the top: the gateway's modules need the apps that
# get_wsgi_application() loads.
from gateway.wsgi import GatewayApplication  # noqa: E402

application = GatewayApplication(application)
