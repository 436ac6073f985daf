"""Active health checks inside the gateway, as Kong's: every serving process runs one
daemon thread that, every ``XENX_HEALTH_CHECK_INTERVAL`` seconds, GETs the
``health_check_path`` of each enabled instance and writes the verdict to the cache
(``gateway.probes``), where the proxy's breaker, ``list_services``, Django admin and
``/health`` read it.

With a shared cache (Redis) each probe is claimed for one interval with ``cache.add``,
so N workers on M nodes probe each instance once per interval in all, not N × M times.
With the local-memory cache (one process) the process probes on its own.

The thread starts in serving processes only: gunicorn's ``post_worker_init``
(``gunicorn.conf.py``) or, under any other server, the first request. Management
commands and tests never start it unless they call ``start()``; the interval 0 turns it
off (the test settings' default).
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.signals import request_started
from django.db import DatabaseError, close_old_connections

from core.cache import CACHE_ERRORS

from . import breaker
from .probes import check_all

logger = logging.getLogger("xenx.gateway.prober")
_start_lock = threading.Lock()
_started_in: int | None = (
    None  # pid of the process whose thread runs (forks start anew)
)


def interval_seconds() -> int:
    return settings.XENX_HEALTH_CHECK_INTERVAL


def down_seconds(interval: float) -> float:
    """A failed check keeps the instance out for longer than one interval, so it stays
    out until a later check (or the breaker's trial) finds it well."""
    return max(breaker.OPEN_SECONDS, 2 * interval)


def cache_is_shared() -> bool:
    """False for caches that live in one process (local memory, dummy): their health
    verdicts never reach another process."""

    return not isinstance(caches["default"], LocMemCache | DummyCache)


def claim_key(instance_id: int) -> str:
    return f"gw:probe:{instance_id}"


def probe_round(interval: int) -> list[tuple[str, str, bool, str]]:
    """Probe every enabled instance whose probe this process claims for ``interval``
    seconds; returns the checks made (see ``checks.check_all``)."""
    pid = os.getpid()
    ttl = max(1, int(interval))

    def claim(instance) -> bool:
        return bool(caches["default"].add(claim_key(instance.id), pid, ttl))

    return check_all(down_seconds=down_seconds(interval), claim=claim)


# Why an instance left the service, for an operator whose upstream has no /health.
UNHEALTHY = (
    "UNHEALTHY: out of service until its health check path (the service's "
    "health_check_path, default /health) answers 2xx or 3xx; set the path with "
    "register_service NAME URL --health-path PATH or in Django admin"
)


def run(interval: int, rounds: int | None = None) -> None:
    """The prober thread's loop: sleep ``interval`` seconds, probe, log each instance
    whose verdict changed; ``rounds`` times (None: for ever, as the thread does). A
    round that meets an outage or a surprise is skipped, never the end of the loop."""
    verdicts: dict[str, bool] = {}
    for _ in itertools.repeat(None) if rounds is None else range(rounds):
        time.sleep(interval)
        try:
            # As around a request: this thread's database connection is kept between
            # rounds for DB_CONN_MAX_AGE, and dropped when it broke or grew too old.
            close_old_connections()
            results = probe_round(interval)
        except (*CACHE_ERRORS, DatabaseError) as exc:  # an outage: next round
            logger.warning("health checks skipped: %s", exc)
            continue
        except Exception:  # noqa: BLE001 - the prober must outlive any surprise
            logger.exception("health checks failed this round")
            continue
        finally:
            close_old_connections()
        for service, url, ok, detail in results:
            if verdicts.get(url) != ok:
                logger.log(
                    logging.INFO if ok else logging.WARNING,
                    "instance %s",
                    "healthy" if ok else UNHEALTHY,
                    extra={"service": service, "instance": url, "detail": detail},
                )
            verdicts[url] = ok


def start() -> bool:
    """Start this process's prober thread (idempotent). False when it is off."""
    global _started_in
    interval = interval_seconds()
    if interval <= 0:
        return False
    with _start_lock:
        if _started_in == os.getpid():
            return True
        _started_in = os.getpid()
    threading.Thread(
        target=run, args=(interval,), name="xenx-health-checks", daemon=True
    ).start()
    return True


def forget_started() -> None:
    """Let ``start()`` start a thread in this process again (between tests: one that
    replaced ``run`` to see what ``start`` does)."""
    global _started_in
    with _start_lock:
        _started_in = None


def _start_on_first_request(sender, **kwargs):
    request_started.disconnect(_start_on_first_request)
    start()


def connect_lazy_start() -> None:
    """Called by the app config: the first request of a process starts its prober."""
    request_started.connect(_start_on_first_request)
