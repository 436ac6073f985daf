"""System checks for configuration mistakes that would only show in production."""

import re

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

# django-ratelimit's own parser is lenient ("10/x" silently means 10/s); be strict here.
RATE_RE = re.compile(r"^\d+/\d*[smhd]$")

_PROCESS_LOCAL = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


def _cache_is_process_local() -> bool:
    return settings.CACHES["default"]["BACKEND"] in _PROCESS_LOCAL


@register(Tags.caches)
def check_shared_cache(app_configs, **kwargs):
    """Revocation, rate limits and gateway health must live in a shared cache.

    An error with several workers anywhere; a warning under production settings (where
    one process is rarely the whole deployment). Development and tests run one process.
    """
    if not _cache_is_process_local():
        return []
    if getattr(settings, "XENX_WORKERS", 1) > 1:
        return [
            Error(
                "The default cache is process-local but WEB_CONCURRENCY says "
                f"{settings.XENX_WORKERS} workers run.",
                hint="Set REDIS_URL so that rate limits, revocation and health are shared.",
                id="xenx.E001",
            )
        ]
    if getattr(settings, "XENX_ENVIRONMENT", "development") != "production":
        return []
    return [
        Warning(
            "The default cache is process-local: rate limits, token revocation and "
            "gateway health are not shared between processes or nodes.",
            hint="Set REDIS_URL in production.",
            id="xenx.W001",
        )
    ]


@register(deploy=True)
def check_rate_limits(app_configs, **kwargs):
    """Every XENX_RATE_LIMITS value must parse as django-ratelimit's N/period."""
    errors = []
    for name, rate in settings.XENX_RATE_LIMITS.items():
        if not isinstance(rate, str) or not RATE_RE.match(rate):
            errors.append(
                Error(
                    f"XENX_RATE_LIMITS[{name!r}] = {rate!r} is not a rate like '60/m'.",
                    hint="Use N/s, N/m, N/h, N/d, optionally with a multiplier: 10/15m.",
                    id="xenx.E002",
                )
            )
    return errors
