"""Development settings: the embedded defaults (SQLite, local-memory cache) unless the
environment names PostgreSQL and Redis."""

from .base import *  # noqa: F403

# django-ratelimit refuses a local-memory cache; in development a single process is fine.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
