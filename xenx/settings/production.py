"""Production settings: secure by default, secrets required from the environment."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DEV_SECRET_KEY, SECRET_KEY
from .env import env_bool, env_int

XENX_ENVIRONMENT = "production"
DEBUG = env_bool("DEBUG", False)
if not DEBUG and (
    not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY or len(SECRET_KEY) < 50
):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters "
        "when DEBUG is off (python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )

# X-Forwarded-Proto is believed only from XENX_TRUSTED_PROXIES: see
# core.middleware.ForwardedProtoMiddleware (no SECURE_PROXY_SSL_HEADER, which trusts all).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^health$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SECURE = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Applications' redirect URIs are https in production (RFC 9700 2.1); http stays for
# development and tests, and for loopback callbacks there (RFC 8252).
OAUTH2_PROVIDER = {**OAUTH2_PROVIDER, "ALLOWED_REDIRECT_URI_SCHEMES": ["https"]}  # noqa: F405
# collectstatic (scripts/run does it) writes gzip'd copies with content-hashed names,
# which WhiteNoise serves with far-future cache headers.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Our own checks (xenx.W001, xenx.E001) judge the cache with the worker count.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
