"""Rate limits on proxied calls, counted in the shared cache.

django-ratelimit's rate parsing and cache keys (fixed windows with a per-key jitter) are
kept; the counting itself is one pipelined INCR + EXPIRE on the raw Redis client, sent in
the same round trip as the registry version and health reads (``state.hot_round_trip``).
django-ratelimit's own ``get_usage`` would cost two round trips (``add`` then ``incr``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django_ratelimit.core import _get_window, _make_cache_key


@dataclass(slots=True)
class Limit:
    key: str
    rate: str
    count: int
    period: int
    window_end: int  # epoch second at which the window resets


def limit_for(service, *, role: str | None, user_id, ip) -> Limit | None:
    """The limit that applies to this caller of ``service``, or None when none does.

    Authenticated calls count per user at their role's rate, anonymous ones per client
    IP at the ``anonymous`` rate; a service's own ``rate_limits`` override the defaults
    and each service has its own counter. ``ip`` may be a callable (only called for
    anonymous calls).
    """
    name = role or "anonymous"
    rate = service.rates.get(name)
    if rate is None:
        return None
    rate_str, count, period = rate
    value = f"u:{user_id}" if role else f"ip:{ip() if callable(ip) else ip}"
    window = _get_window(value, period)
    memo_key = (service.name, value, count, period, window)
    key = _keys.get(memo_key)
    if key is None:
        if len(_keys) >= _KEYS_MAX:
            _keys.clear()
        key = _make_cache_key(
            f"gateway.{service.name}", window, (count, period), value, None
        )
        _keys[memo_key] = key
    return Limit(key=key, rate=rate_str, count=count, period=period, window_end=window)


# django-ratelimit's key (a SHA-256) changes only with the window: memoised.
_keys: dict[tuple, str] = {}
_KEYS_MAX = 50_000


def headers_for(limit: Limit, used: int) -> dict[str, str]:
    reset = max(0, limit.window_end - int(time.time()))
    return {
        "X-RateLimit-Limit": str(limit.count),
        "X-RateLimit-Remaining": str(max(0, limit.count - used)),
        "X-RateLimit-Reset": str(reset),
    }
