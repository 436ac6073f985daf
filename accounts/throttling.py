"""Rate limits on the identity endpoints, with django-ratelimit on the shared cache.

Two kinds of counters (README "Identity"):
- per client IP (``*_ip``): every attempt counts, checked and counted before the work;
- per account (``*_account``): only failures count; checked before the work (so a right
  password is refused too once the limit is reached) and counted on each failure.

Rates come from ``settings.XENX_RATE_LIMITS``. ``login_ip`` and ``login_account`` are
the documented ones; the other endpoints may be tuned with their own names and fall back
to the login rates.

The shared cache down (``core.errors.CACHE_OUTAGES``: Redis's errors, nothing else, so a
bug is never taken for an outage): 503 ``service_unavailable`` (fail closed, the
README), unless ``XENX_FAIL_OPEN_WITHOUT_CACHE`` is on.
"""

from __future__ import annotations

import ipaddress
from types import SimpleNamespace

from django.conf import settings
from django_ratelimit.core import get_usage

from core.errors import CACHE_OUTAGES, RateLimited, ServiceUnavailable
from core.net import client_ip

from . import metrics

FALLBACK = {
    "register_ip": "login_ip",
    "register_account": "login_account",
    "password_reset_ip": "login_ip",
    "password_reset_account": "login_account",
    "mfa_verify_ip": "login_ip",
    "mfa_account": "login_account",
    "password_change_account": "login_account",
}

# Every name XENX_RATE_LIMITS may hold for these throttles (README "Identity").
NAMES = frozenset({"login_ip", "login_account", *FALLBACK})


def rate_for(name: str) -> str:
    rates = settings.XENX_RATE_LIMITS
    return rates.get(name) or rates[FALLBACK.get(name, name)]


def _usage(request, name: str, value: str, *, increment: bool):
    if request is None:  # service called outside a request (portal forms pass one)
        request = SimpleNamespace(method="POST", META={})
    try:
        return get_usage(
            request,
            group=f"xenx.{name}",
            key=lambda group, req: value,
            rate=rate_for(name),
            increment=increment,
        )
    except CACHE_OUTAGES as exc:  # the shared cache is down (any other error is a bug)
        if getattr(settings, "XENX_FAIL_OPEN_WITHOUT_CACHE", False):
            return None
        raise ServiceUnavailable("Rate limiting is unavailable.") from exc


def _raise(usage, name: str) -> None:
    if name in metrics.LOCKOUT_OF:
        metrics.count(metrics.LOCKOUT_OF[name], "lockout")
    raise RateLimited(retry_after=max(1, int(usage.get("time_left") or 1)))


def hit(request, name: str, value: str) -> None:
    """Count one attempt and refuse it (429) when over the limit."""
    usage = _usage(request, name, value, increment=True)
    if usage is not None and usage["should_limit"]:
        _raise(usage, name)


def check(request, name: str, value: str) -> None:
    """Refuse (429) when the failures already counted reached the limit."""
    usage = _usage(request, name, value, increment=False)
    if usage is not None and (
        usage["should_limit"] or usage["count"] >= usage["limit"]
    ):
        _raise(usage, name)


def fail(request, name: str, value: str) -> None:
    """Count one failure (the caller answers the failure itself)."""
    _usage(request, name, value, increment=True)


def ip_of(request) -> str:
    """The client address to count: IPv4 as is, IPv6 by its /64 (one subscriber
    usually holds a whole /64, so single addresses would be free to rotate)."""
    if request is None:
        return "0.0.0.0"  # noqa: S104
    ip = client_ip(request)
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if address.version == 6:
        mask = getattr(settings, "RATELIMIT_IPV6_MASK", 64)
        return str(ipaddress.ip_network(f"{ip}/{mask}", strict=False).network_address)
    return ip


def account_key(email: str) -> str:
    return (email or "").strip().lower()
