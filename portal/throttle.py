"""Login throttling for the portal's session login: the API's rates and counters.

Interim until the identity branch's ``accounts.throttling`` lands; then this module only
calls it. Rates come from ``XENX_RATE_LIMITS`` (``login_ip`` counts every attempt from an
address, ``login_account`` counts failed attempts on an account)."""

from __future__ import annotations

from django.conf import settings
from django_ratelimit.core import get_usage

from xenx.net import client_ip


def _usage(request, group: str, value: str, *, increment: bool):
    return get_usage(
        request,
        group=group,
        key=lambda _group, _request: value,
        rate=settings.XENX_RATE_LIMITS[group],
        increment=increment,
    )


def check(request, email: str) -> int | None:
    """Count this attempt; seconds to wait when the address or account is limited."""
    ip_usage = _usage(request, "login_ip", client_ip(request), increment=True)
    account = _usage(request, "login_account", email.strip().lower(), increment=False)
    if ip_usage is not None and ip_usage["should_limit"]:
        return max(1, ip_usage["time_left"])
    # Failures so far, without this attempt: the limit-th failure is the last allowed.
    if account is not None and account["count"] >= account["limit"]:
        return max(1, account["time_left"])
    return None


def failed(request, email: str) -> None:
    """Count a failed attempt (wrong password or code) against the account."""
    _usage(request, "login_account", email.strip().lower(), increment=True)
