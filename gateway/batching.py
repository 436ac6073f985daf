"""Batched counting for callers far below their limit: no Redis round trip per call.

Every call is still counted in the shared cache, one count for every worker and node;
what changes is when. A per-process background thread flushes pending increments every
``FLUSH_SECONDS`` with one pipeline (INCRBY + EXPIRE per key) that also reads the
registry version and the health of the services in use. A call is counted locally
(``pending``) and answered without a round trip only when all of this holds:

- Redis answered a flush less than ``FRESH_SECONDS`` ago (otherwise: synchronous, which
  fails closed when Redis is down);
- the limit is at least ``MIN_LIMIT`` per window (small limits are always exact);
- the last known shared count plus this process's pending ones is below half the limit,
  and the pending ones stay below 1 % of it.

So every 429 is decided on the exact shared count; the only slack is what other
processes have counted but not yet flushed, at most 1 % of the limit each. This is the
same trade Kong's rate-limiting plugin offers with ``sync_rate``.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from . import state

FLUSH_SECONDS = 0.1
FRESH_SECONDS = 1.0
MIN_LIMIT = 1000
HEALTH_IDLE_SECONDS = 10.0

logger = logging.getLogger("xenx.gateway")


class _Entry:
    __slots__ = ("period", "count", "window_end", "known", "pending", "synced_at")

    def __init__(self, period, count, window_end):
        self.period, self.count, self.window_end = period, count, window_end
        self.known, self.pending, self.synced_at = 0, 0, 0.0


_lock = threading.Lock()
_entries: dict[str, _Entry] = {}
# service name → [health values, fetched at, health keys, last used]
_health: dict[str, list] = {}
_last_ok = 0.0
_thread_pid: int | None = None


def enabled() -> bool:
    from django.conf import settings

    return state.fast_redis_available() and getattr(
        settings, "XENX_GATEWAY_RATE_BATCH", True
    )


def fast_path(svc, limit):
    """(count, health values) without a round trip, or None: do the round trip."""
    now = time.monotonic()
    if now - _last_ok > FRESH_SECONDS:
        return None
    cached = _health.get(svc.name)
    if (
        cached is None
        or cached[2] != svc.health_keys
        or now - cached[1] > FRESH_SECONDS
    ):
        return None
    cached[3] = now
    if limit is None:
        return None, cached[0]
    if limit.count < MIN_LIMIT:
        return None
    with _lock:
        entry = _entries.get(limit.key)
        if entry is None or now - entry.synced_at > FRESH_SECONDS:
            return None
        used = entry.known + entry.pending + 1
        if used * 2 >= limit.count or (entry.pending + 1) * 100 > limit.count:
            return None
        entry.pending += 1
    return used, cached[0]


def after_round_trip(svc, limit, count, health) -> None:
    """Remember what a synchronous round trip learnt, for the calls that follow."""
    if not enabled():
        return
    now = time.monotonic()
    _health[svc.name] = [health, now, svc.health_keys, now]
    if limit is not None and count is not None and limit.count >= MIN_LIMIT:
        with _lock:
            entry = _entries.get(limit.key)
            if entry is None:
                entry = _entries[limit.key] = _Entry(
                    limit.period, limit.count, limit.window_end
                )
            entry.known = max(entry.known, count)
            entry.synced_at = now
    _ensure_thread()


def note_open(svc, index: int, open_until: int) -> None:
    """This process opened a circuit: stop using the instance at once."""
    cached = _health.get(svc.name)
    if cached is not None:
        values = list(cached[0])
        values[index] = open_until
        cached[0] = values


def reset() -> None:
    global _last_ok
    with _lock:
        _entries.clear()
    _health.clear()
    _last_ok = 0.0


def _ensure_thread() -> None:
    global _thread_pid
    if _thread_pid == os.getpid():
        return
    with _lock:
        if _thread_pid == os.getpid():
            return
        _thread_pid = os.getpid()
        threading.Thread(target=_run, name="xenx-gateway-flush", daemon=True).start()


def _run() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        try:
            flush()
        except Exception:  # noqa: BLE001 - the flusher must survive anything
            logger.exception("gateway flush failed")


def flush() -> None:
    global _last_ok
    now = time.monotonic()
    wall = time.time()
    with _lock:
        for key in [k for k, e in _entries.items() if e.window_end < wall - 1]:
            del _entries[key]
        # INCRBY 0 for an idle entry: it learns what the other processes counted.
        batch = [(k, e.pending, e.period) for k, e in _entries.items()]
        for key, _, _ in batch:
            _entries[key].pending = 0
    services = [
        (name, cached[2])
        for name, cached in list(_health.items())
        if now - cached[3] < HEALTH_IDLE_SECONDS
    ]
    for name in [
        n for n, c in list(_health.items()) if now - c[3] >= HEALTH_IDLE_SECONDS
    ]:
        _health.pop(name, None)
    health_keys = [k for _, keys in services for k in keys]
    try:
        totals, version, values = state.flush_round_trip(batch, health_keys)
    except state.CacheDown:
        with _lock:
            for key, pending, _ in batch:
                if key in _entries:
                    _entries[key].pending += pending
        return
    done = time.monotonic()
    with _lock:
        for (key, _, _), total in zip(batch, totals, strict=True):
            entry = _entries.get(key)
            if entry is not None:
                entry.known = max(entry.known, total)
                entry.synced_at = done
    offset = 0
    for name, keys in services:
        cached = _health.get(name)
        if cached is not None and cached[2] == keys:
            cached[0] = values[offset : offset + len(keys)]
            cached[1] = done
        offset += len(keys)
    from .registry import registry

    registry.observe_version(version)
    _last_ok = done
