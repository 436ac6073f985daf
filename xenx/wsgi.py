import os

from django.core.wsgi import get_wsgi_application
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xenx.settings.development")
application = get_wsgi_application()
# Proxied /api/{service}/ calls go straight to the gateway (gateway/wsgi.py), named by
# string as xenx/urls.py includes the apps' URLs.
application = import_string("gateway.wsgi.GatewayApplication")(application)
