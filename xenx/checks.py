"""System checks for configuration mistakes that would only show in production."""

import ipaddress
import ssl
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from accounts import throttling
from core import rates
from gateway.validators import RATE_KEYS

# Every name XENX_RATE_LIMITS may hold: the gateway's roles and "anonymous", and the
# identity endpoints' throttles (their optional names included).
RATE_LIMIT_NAMES = frozenset(RATE_KEYS) | throttling.NAMES

# Checks of XENX_* settings: run by every ``manage.py check`` and ``runserver``, and by
# xenx/wsgi.py before a worker serves anything (gunicorn refuses to start on an error).
SETTINGS_TAG = "xenx_settings"


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


def _error(message: str, hint: str, id: str) -> Error:
    return Error(message, hint=hint, id=id)


@register(SETTINGS_TAG)
def check_rate_limits(app_configs, **kwargs):
    """Every XENX_RATE_LIMITS entry is a known name with a rate like ``60/m``: a bad
    one must never leave a role silently unlimited."""
    errors = []
    known = RATE_LIMIT_NAMES | set(settings.XENX_RATE_LIMIT_DEFAULTS)
    for name, rate in settings.XENX_RATE_LIMITS.items():
        try:
            rates.parse_rate(rate)
        except rates.InvalidRate as exc:
            errors.append(
                _error(
                    f"XENX_RATE_LIMITS[{name[:40]!r}]: {exc}",
                    "Use N/s, N/m, N/h, N/d, optionally with a multiplier: 10/15m.",
                    "xenx.E002",
                )
            )
            continue
        if name not in known:
            errors.append(
                _error(
                    f"XENX_RATE_LIMITS names {name[:40]!r}, which no limit uses.",
                    f"Names: {', '.join(sorted(known))}.",
                    "xenx.E003",
                )
            )
    return errors


_POSITIVE_INTS = (
    "XENX_MAX_UPLOAD_BYTES",
    "XENX_GATEWAY_MAX_BODY_BYTES",
    "XENX_GATEWAY_POOL_SIZE",
    "XENX_SESSION_MAX_DAYS",
)


@register(SETTINGS_TAG)
def check_settings(app_configs, **kwargs):
    """The other XENX_* settings: values a typo would turn into something unintended."""
    errors = []
    for name in _POSITIVE_INTS:
        value = getattr(settings, name, 1)
        if not isinstance(value, int) or value < 1:
            errors.append(
                _error(f"{name} = {value!r} must be at least 1.", "", "xenx.E004")
            )
    # XENX_CLIENT_TIMEOUT bounds each read and write of a client's connection
    # (xenx/worker.py); the connect timeout, each connection to an upstream.
    for name, default, most in (
        ("XENX_CLIENT_TIMEOUT", 30, 3600),
        ("XENX_GATEWAY_CONNECT_TIMEOUT", 3, 300),
    ):
        seconds = getattr(settings, name, default)
        if not isinstance(seconds, int | float) or not 0 < seconds <= most:
            errors.append(
                _error(
                    f"{name} = {seconds!r} must be a number of seconds above 0 and at "
                    f"most {most}.",
                    "",
                    "xenx.E004",
                )
            )
    for entry in settings.XENX_TRUSTED_PROXIES:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            errors.append(
                _error(
                    f"XENX_TRUSTED_PROXIES holds {entry!r}, not an address or CIDR.",
                    "Comma-separated addresses or networks: 10.0.0.1,172.16.0.0/12.",
                    "xenx.E005",
                )
            )
    token = settings.XENX_METRICS_TOKEN
    if token is not None and not (token.isascii() and token.isprintable()):
        errors.append(
            _error("XENX_METRICS_TOKEN must be printable ASCII.", "", "xenx.E006")
        )
    bundle = getattr(settings, "XENX_GATEWAY_CA_BUNDLE", None)
    if bundle:
        try:
            ssl.create_default_context(cafile=bundle)
        except (OSError, ssl.SSLError, ValueError):
            errors.append(
                _error(
                    f"XENX_GATEWAY_CA_BUNDLE = {bundle!r} is not a readable PEM file "
                    "of CA certificates.",
                    "",
                    "xenx.E008",
                )
            )
    public = urlsplit(settings.XENX_PUBLIC_URL or "")
    if public.scheme not in ("http", "https") or not public.netloc:
        errors.append(
            _error(
                f"XENX_PUBLIC_URL = {settings.XENX_PUBLIC_URL!r} is not an http(s) URL.",
                "",
                "xenx.E007",
            )
        )
    return errors
