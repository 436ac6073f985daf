"""Development settings: the embedded defaults (SQLite, local-memory cache) unless the
environment names PostgreSQL and Redis."""

from .base import *  # noqa: F403
from .base import LOGGING

# django-ratelimit refuses a local-memory cache; in development a single process is fine.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
# One readable line per record (production and tests log JSON lines).
LOGGING["handlers"]["console"]["formatter"] = "text"
