"""The circuit breaker of each upstream instance, shared by every worker and node
through the cache (README "Gateway": balancing, retries, breaker; active health
checks).

Two keys per instance: ``gw:open:{id}`` (epoch milliseconds until which its circuit is
open; absent: closed) and ``gw:fail:{id}`` (consecutive failures). The proxy reads both
for every instance of the service in the call's one round trip (``Circuit``, built by
``circuits``); a failure counts, ``FAIL_THRESHOLD`` of them open the circuit for
``OPEN_SECONDS``; then one trial request (claimed with ``cache.add``) closes it or opens
it again. The active checks (``gateway.probes``) write the same keys, and ``/health``,
``list_services`` and Django admin read them (``instance_health``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from django.core.cache import cache

from core.cache import CACHE_ERRORS

from .state import as_int

FAIL_THRESHOLD = 5  # consecutive failures that open the circuit
OPEN_SECONDS = 30
STATE_TTL = 86400


def open_key(instance_id: int) -> str:
    return f"gw:open:{instance_id}"


def fail_key(instance_id: int) -> str:
    return f"gw:fail:{instance_id}"


def trial_key(instance_id: int) -> str:
    return f"gw:trial:{instance_id}"


def keys(instance_ids) -> tuple[str, ...]:
    """The keys the proxy's round trip reads for these instances, in the order
    ``circuits`` expects: every open key, then every failure count."""
    ids = tuple(instance_ids)
    return tuple(open_key(i) for i in ids) + tuple(fail_key(i) for i in ids)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class Circuit:
    """One instance's breaker as the call read it."""

    instance: object  # gateway.registry.InstanceSnap
    open_until: int | None  # epoch ms; None: closed
    failures: int | None


def closed(instances) -> tuple[Circuit, ...]:
    """Every instance's circuit closed, no failure counted: what a call reads when
    nothing failed. The registry snapshot keeps it per service (``ServiceSnap.closed``),
    so such a call builds no ``Circuit``."""
    return tuple(Circuit(inst, None, None) for inst in instances)


def circuits(closed_: tuple[Circuit, ...], values) -> tuple[Circuit, ...]:
    """The circuits of the instances of ``closed_`` from the values the round trip read
    for ``keys(...)`` (None when they could not be read: closed, as far as this call
    knows); ``closed_`` itself when no instance has a value."""
    if not values or values.count(None) == len(values):
        return closed_
    count = len(closed_)
    return tuple(
        Circuit(c.instance, values[i], values[count + i]) for i, c in enumerate(closed_)
    )


def choose(circuits_, hold_seconds: float) -> tuple[list, object, tuple]:
    """(instances whose circuit is closed, a half-open instance whose single trial this
    call won or None, the ids of the instances with failures counted)."""
    now = None
    healthy, half_open, failing = [], [], ()
    for circuit in circuits_:
        if circuit.failures:
            failing += (circuit.instance.id,)
        if circuit.open_until is None:
            healthy.append(circuit.instance)
            continue
        if now is None:
            now = now_ms()
        if circuit.open_until <= now:
            half_open.append(circuit.instance)
    for inst in half_open:
        try:
            if try_trial(inst.id, hold_seconds):
                return healthy, inst, failing
        except CACHE_ERRORS:
            break
    return healthy, None, failing


def try_trial(instance_id: int, hold_seconds: float) -> bool:
    """Claim the single trial request of a half-open instance (one across workers)."""
    return bool(cache.add(trial_key(instance_id), 1, max(1, int(hold_seconds) + 1)))


def record_failure(instance_id: int, *, trial: bool = False) -> bool:
    """Count a failure; open the circuit at the threshold (or when a trial failed).
    Returns True when the circuit is (re)opened. The cache down: nothing recorded."""
    try:
        cache.add(fail_key(instance_id), 0, STATE_TTL)
        try:
            failures = cache.incr(fail_key(instance_id))
        except ValueError:
            cache.set(fail_key(instance_id), 1, STATE_TTL)
            failures = 1
        if trial or failures >= FAIL_THRESHOLD:
            cache.set(open_key(instance_id), now_ms() + OPEN_SECONDS * 1000, STATE_TTL)
            cache.delete(trial_key(instance_id))
            return True
    except CACHE_ERRORS:
        pass
    return False


def record_success(instance_id: int) -> None:
    """Close the circuit and reset the failure count."""
    with contextlib.suppress(*CACHE_ERRORS):
        cache.delete_many(
            [open_key(instance_id), fail_key(instance_id), trial_key(instance_id)]
        )


def mark_down(instance_id: int, seconds: float) -> None:
    """An active check failed: unhealthy until a check or a trial succeeds."""
    cache.set(open_key(instance_id), now_ms() + int(seconds * 1000), STATE_TTL)
    cache.set(fail_key(instance_id), FAIL_THRESHOLD, STATE_TTL)


def get_health(instance_ids) -> dict[int, tuple[int | None, int | None]]:
    """{instance_id: (open_until_ms, consecutive_failures)} for reporting."""
    ids = list(instance_ids)
    found = cache.get_many([open_key(i) for i in ids] + [fail_key(i) for i in ids])
    return {
        i: (as_int(found.get(open_key(i))), as_int(found.get(fail_key(i)))) for i in ids
    }


def is_healthy(open_until: int | None, at_ms: int | None = None) -> bool:
    return open_until is None or open_until <= (at_ms or now_ms())
