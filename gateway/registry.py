"""The in-process registry snapshot the proxy reads on every call.

Built from the database once, then rebuilt only when the registry version in the shared
cache changes (a save or delete anywhere bumps it). The version is read at most every
``CHECK_SECONDS`` on its own, and for free on every proxied call, inside the pipelined
round trip that counts the rate limit, so a change shows on every worker and node
within about a second without a database query per call.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError

from . import breaker, state
from .models import Service
from .validators import parse_rate

CHECK_SECONDS = 0.5


@dataclass(slots=True, eq=False)
class InstanceSnap:
    id: int
    url: str
    weight: int
    scheme: str
    host: str
    port: int
    base_path: str  # the URL's own path prefix without the trailing slash
    ca_bundle: str = ""  # PEM file of trusted CAs for https ("": the system's)


@dataclass(slots=True, eq=False)
class ServiceSnap:
    id: int
    name: str
    enabled: bool
    public: bool
    allowed_roles: frozenset
    timeout: float
    retries: int
    rates: dict  # role or "anonymous" → (rate string, count, period seconds)
    max_body_bytes: int
    allowed_content_types: tuple
    forward_authorization: bool
    health_check_path: str
    instances: tuple  # enabled instances only
    health_keys: tuple = ()
    closed: tuple = ()  # every instance's circuit closed (gateway.breaker.closed)
    sign_identity: bool = False
    _current: dict = field(default_factory=dict)  # smooth WRR state per instance
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self, candidates: list[InstanceSnap]) -> InstanceSnap:
        """Smooth weighted round robin (nginx's): even spread, exact proportions."""
        if len(candidates) == 1:
            return candidates[0]
        with self._lock:
            current = self._current
            total = 0
            best = None
            best_weight = 0
            for inst in candidates:
                weight = current.get(inst.id, 0) + inst.weight
                current[inst.id] = weight
                total += inst.weight
                if best is None or weight > best_weight:
                    best, best_weight = inst, weight
            current[best.id] = best_weight - total
            return best


def _instance_snap(inst, ca_bundle: str = "") -> InstanceSnap:
    parts = urlsplit(inst.url)
    default_port = 443 if parts.scheme == "https" else 80
    return InstanceSnap(
        id=inst.id,
        url=inst.url.rstrip("/"),
        weight=inst.weight,
        scheme=parts.scheme,
        host=parts.hostname,
        port=parts.port or default_port,
        base_path=parts.path.rstrip("/"),
        ca_bundle=ca_bundle if parts.scheme == "https" else "",
    )


def _rates(service) -> dict:
    merged = {**settings.XENX_RATE_LIMITS, **(service.rate_limits or {})}
    rates = {}
    for name, rate in merged.items():
        try:
            count, period = parse_rate(rate)
        except ValidationError:  # refused by the system check xenx.E002 already
            continue  # noqa: S112
        rates[name] = (rate, count, period)
    return rates


def build_snapshot() -> dict[str, ServiceSnap]:
    services = {}
    for svc in Service.objects.prefetch_related("instances"):
        ca_bundle = svc.ca_bundle or settings.XENX_GATEWAY_CA_BUNDLE or ""
        instances = tuple(
            _instance_snap(i, ca_bundle) for i in svc.instances.all() if i.enabled
        )
        health_keys = breaker.keys(i.id for i in instances)
        services[svc.name] = ServiceSnap(
            id=svc.id,
            name=svc.name,
            enabled=svc.enabled,
            public=svc.public,
            allowed_roles=frozenset(svc.allowed_roles or ()),
            timeout=float(svc.timeout_seconds),
            retries=int(svc.retries),
            rates=_rates(svc),
            max_body_bytes=svc.effective_max_body_bytes,
            allowed_content_types=tuple(
                t.lower() for t in (svc.allowed_content_types or ())
            ),
            forward_authorization=svc.forward_authorization,
            health_check_path=svc.health_check_path,
            instances=instances,
            health_keys=health_keys,
            closed=breaker.closed(instances),
            sign_identity=svc.sign_identity,
        )
    return services


class Registry:
    def __init__(self):
        self._services: dict[str, ServiceSnap] | None = None
        self._version: int | None = None
        self._checked = 0.0
        self._stale = True
        self._retry_at = 0.0  # after a failed reload: not before this
        self._lock = threading.Lock()

    def get(self, name: str) -> ServiceSnap | None:
        """The service named ``name`` as of at most ~``CHECK_SECONDS`` ago."""
        now = time.monotonic()
        if (
            self._stale or now - self._checked > CHECK_SECONDS
        ) and now >= self._retry_at:
            self._refresh()
        return self._services.get(name)

    def observe_version(self, version: int | None) -> None:
        """A version read on the hot path's round trip: reload on the next call if it
        moved."""
        self._checked = time.monotonic()
        if version != self._version:
            self._stale = True

    def invalidate(self) -> None:
        self._stale = True

    def reset(self) -> None:
        with self._lock:
            self._services = None
            self._version = None
            self._stale = True
            self._checked = 0.0
            self._retry_at = 0.0

    def _refresh(self) -> None:
        with self._lock:
            now = time.monotonic()
            if not self._stale and now - self._checked <= CHECK_SECONDS:
                return  # another thread did it
            try:
                version = state.get_version()
            except state.CacheDown:
                # Keep serving the snapshot; the proxy fails closed on its own
                # round trip. Without one yet, read the database.
                version = self._version
                if self._services is not None:
                    self._checked = now
                    return
            if self._services is None or self._stale or version != self._version:
                try:
                    self._services = build_snapshot()
                except DatabaseError:
                    if self._services is None:
                        raise
                    # PostgreSQL down: keep serving the last snapshot the README,
                    # "Failure policy"); try again after a check interval.
                    self._retry_at = now + CHECK_SECONDS
                    return
                self._version = version
            self._stale = False
            self._checked = now


registry = Registry()
