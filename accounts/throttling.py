"""Rate limits on the identity endpoints, with django-ratelimit on the shared cache.

Two kinds of counters (README "Identity"):
- per client IP (``*_ip``): every attempt counts, checked and counted before the work;
- per account (``*_account``): only failures count; checked before the work (so a right
  password is refused too once the limit is reached) and counted on each failure.

Rates come from ``settings.XENX_RATE_LIMITS``. ``login_ip`` and ``login_account`` are
the documented ones; the other endpoints may be tuned with their own names and fall back
to the login rates.

The shared cache down (``core.cache.CACHE_ERRORS``: Redis's errors and a socket's, nothing
else, so a bug is never taken for an outage): the one fail-open rule
(``core.cache.fail_open``): 503 ``service_unavailable`` (fail closed, README "Failure
policy"), unless ``XENX_FAIL_OPEN_WITHOUT_CACHE`` is on.
"""

from __future__ import annotations

from types import SimpleNamespace

from django.conf import settings
from django.core.cache import caches
from django_ratelimit.core import _get_window, _make_cache_key, _split_rate, get_usage

from core.cache import CACHE_ERRORS, fail_open
from core.errors import RateLimited
from core.net import counted_address

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
    except CACHE_ERRORS as exc:  # the shared cache is down
        fail_open(exc, "Rate limiting is unavailable.")
        return None


def wait_in_words(seconds: int) -> str:
    """ "42 seconds", "1 minute", "7 minutes": how long a lockout still lasts."""
    seconds = max(1, int(seconds))
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)  # rounded up: never tell someone to come back early
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


class AccountLocked(RateLimited):
    """A per-account limit of failures was reached (a lockout, not a flood): the
    portal shows its lockout page with ``wait`` in words."""

    def __init__(self, *, wait: int, message: str):
        self.wait = wait
        super().__init__(retry_after=wait, message=message)


def _raise(usage, name: str, message: str | None = None) -> None:
    if name in metrics.LOCKOUT_OF:
        metrics.count(metrics.LOCKOUT_OF[name], "lockout")
    wait = max(1, int(usage.get("time_left") or 1))
    if message:
        raise AccountLocked(wait=wait, message=message.format(wait=wait_in_words(wait)))
    raise RateLimited(retry_after=wait)


def hit(request, name: str, value: str) -> None:
    """Count one attempt and refuse it (429) when over the limit."""
    usage = _usage(request, name, value, increment=True)
    if usage is not None and usage["should_limit"]:
        _raise(usage, name)


def check(request, name: str, value: str, message: str | None = None) -> None:
    """Refuse (429) when the failures already counted reached the limit; ``message``
    may say how long with ``{wait}`` (the real remaining wait, also ``Retry-After``)."""
    usage = _usage(request, name, value, increment=False)
    if usage is not None and (
        usage["should_limit"] or usage["count"] >= usage["limit"]
    ):
        _raise(usage, name, message)


def fail(request, name: str, value: str) -> None:
    """Count one failure (the caller answers the failure itself)."""
    _usage(request, name, value, increment=True)


def ip_of(request) -> str:
    """The client address to count (``core.net.counted_address``: IPv6 by its /64)."""
    if request is None:
        return "0.0.0.0"  # noqa: S104
    return counted_address(request)


def account_key(email: str) -> str:
    return (email or "").strip().lower()


def _counter_key(name: str, value: str) -> str:
    """django-ratelimit's cache key of the current window of counter ``name``."""
    rate = rate_for(name)
    _count, period = _split_rate(rate)
    window = _get_window(value, period)
    return _make_cache_key(f"xenx.{name}", window, rate, value, get_usage.ALL)


def reset(name: str, value: str) -> None:
    """Forget the attempts counted on ``value`` by counter ``name`` (this window)."""
    try:
        caches[getattr(settings, "RATELIMIT_USE_CACHE", "default")].delete(
            _counter_key(name, value)
        )
    except CACHE_ERRORS as exc:  # the shared cache is down
        fail_open(exc, "Rate limiting is unavailable.")


def reset_account_lock(user) -> None:
    """Lift the lockout of an account: its failed logins (``login_account``, by email)
    and failed second-factor codes (``mfa_account``, by id). A completed password
    reset and ``accounts.services.user_unlock`` call this."""
    reset("login_account", account_key(user.email))
    reset("mfa_account", str(user.pk))


def account_lock_seconds(user) -> int:
    """Seconds until the account may try a password again (0: not locked)."""
    usage = _usage(None, "login_account", account_key(user.email), increment=False)
    if usage is None or usage["count"] < usage["limit"]:
        return 0
    return max(1, int(usage.get("time_left") or 1))
