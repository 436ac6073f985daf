"""System checks for configuration mistakes that would only show in production."""

import ipaddress
import os
import re
import ssl
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from accounts import throttling
from core import rates
from gateway.validators import RATE_KEYS
from xenx.settings import env

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
    if settings.XENX_WORKERS > 1:
        return [
            Error(
                "The default cache is process-local but WEB_CONCURRENCY says "
                f"{settings.XENX_WORKERS} workers run.",
                hint="Set REDIS_URL so that rate limits, revocation and health are shared.",
                id="xenx.E001",
            )
        ]
    if settings.XENX_ENVIRONMENT != "production":
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


# Every numeric XENX_* setting: (name, lowest, highest, what it counts). A bound of
# None is open; a float low bound is exclusive (a timeout of 0 s is no timeout).
_RANGES = (
    ("XENX_ACCESS_TOKEN_MINUTES", 1, 24 * 60, "minutes"),
    ("XENX_REFRESH_TOKEN_DAYS", 1, 365, "days"),
    ("XENX_SESSION_MAX_DAYS", 1, 3650, "days"),
    ("XENX_MAX_UPLOAD_BYTES", 1, None, "bytes"),
    ("XENX_GATEWAY_MAX_BODY_BYTES", 1, None, "bytes"),
    ("DATA_UPLOAD_MAX_MEMORY_SIZE", 1, None, "bytes"),
    ("XENX_GATEWAY_POOL_SIZE", 1, 1024, "connections"),
    ("XENX_WORKERS", 1, 1024, "worker processes (WEB_CONCURRENCY)"),
    ("XENX_HEALTH_CHECK_INTERVAL", 0, 86400, "seconds (0: off)"),
    ("XENX_DEMO_PORT", 1, 65535, "a TCP port"),
    ("XENX_CACHE_FAIL_FAST_SECONDS", 0, 60, "seconds"),
    ("XENX_CLIENT_TIMEOUT", 0.0, 3600, "seconds"),
    ("XENX_CLIENT_REQUEST_TIMEOUT", 0.0, 3600, "seconds"),
    ("XENX_GATEWAY_CONNECT_TIMEOUT", 0.0, 300, "seconds"),
)


def _in_range(value, low, high) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if value != value or value in (float("inf"), float("-inf")):  # NaN, infinity
        return False
    above = value > low if isinstance(low, float) else value >= low
    return above and (high is None or value <= high)


def _range_text(low, high, unit: str) -> str:
    lowest = f"above {low:g}" if isinstance(low, float) else f"at least {low}"
    return f"{lowest}{'' if high is None else f' and at most {high}'} {unit}"


@register(SETTINGS_TAG)
def check_settings(app_configs, **kwargs):
    """The other XENX_* settings: values a typo would turn into something unintended."""
    errors = []
    for name, low, high, unit in _RANGES:
        if not hasattr(settings, name):
            continue
        value = getattr(settings, name)
        if not _in_range(value, low, high):
            errors.append(
                _error(
                    f"{name} = {value!r} is out of range: it must be "
                    f"{_range_text(low, high, unit)}.",
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
    bundle = settings.XENX_GATEWAY_CA_BUNDLE
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


# An address gunicorn binds: host:port (an IPv6 host in brackets), or unix:/a/path.
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def address_problem(value: str) -> str | None:
    """Why ``value`` is not an address to listen on, or None."""
    if value.startswith("unix:"):
        return None if value[5:].startswith("/") else "a unix socket needs a path"
    host, sep, port = value.rpartition(":")
    if not sep or not port.isascii() or not port.isdigit() or len(port) > 5:
        return "it is not host:port"
    if not 1 <= int(port) <= 65535:
        return "the port is not 1-65535"
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "the IPv6 address is malformed"
        return None
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        labels = host.split(".")
        if not host or len(host) > 253 or not all(map(_HOST_LABEL.fullmatch, labels)):
            return "the host is not an address or a host name"
    return None


@register(SETTINGS_TAG)
def check_address(app_configs, **kwargs):
    """XENX_ADDR, which gunicorn binds: refused here, once, instead of by a worker
    that would be restarted forever."""
    value = settings.XENX_ADDR
    problem = address_problem(value) if isinstance(value, str) else "not a string"
    if problem is None:
        return []
    return [
        _error(
            f"XENX_ADDR = {value[:60]!r} cannot be listened on: {problem}.",
            "Give host:port, e.g. 127.0.0.1:8000 or [::1]:8000.",
            "xenx.E012",
        )
    ]


@register(SETTINGS_TAG)
def check_environment_names(app_configs, **kwargs):
    """An XENX_* variable no setting reads is a typo (XENX_RATE_LIMIT for
    XENX_RATE_LIMITS): the intended setting would silently keep its default."""
    unknown = sorted(
        name
        for name in os.environ
        if name.startswith("XENX_") and name not in env.DECLARED
    )
    return [
        _error(
            f"The environment sets {name[:60]}, which is not an XenX setting.",
            'Check its spelling against README "Settings (environment)".',
            "xenx.E009",
        )
        for name in unknown
    ]
