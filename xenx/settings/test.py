"""Test settings: fast hashing, in-memory email, real PostgreSQL/Redis when named."""

from .base import *  # noqa: F403
from .base import CACHES, REDIS_URL
from .env import declare, env_int, env_str

XENX_ENVIRONMENT = "test"
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
XENX_EMAIL_IN_BACKGROUND = False  # mail.outbox is filled at once, in the test's thread
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
MEDIA_ROOT = __import__("pathlib").Path(
    env_str("XENX_TEST_MEDIA_ROOT", "/tmp/xenx-test-media")  # noqa: S108
)
# The test suite's own knobs (README "Conventions": longer fuzz runs).
declare("XENX_FUZZ_RANDOM", "XENX_FUZZ_EXAMPLES", "XENX_SCHEMA_EXAMPLES")
# Static files from the finders, as in development (no collectstatic before tests).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# No background health checks in tests unless a test asks (gateway/prober.py).
XENX_HEALTH_CHECK_INTERVAL = env_int("XENX_HEALTH_CHECK_INTERVAL", 0)
if REDIS_URL:
    # Keep parallel test runs on one Redis apart.
    CACHES["default"]["KEY_PREFIX"] = env_str("XENX_CACHE_PREFIX", "xenx-test")
