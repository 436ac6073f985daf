"""The in-process registry snapshot the proxy reads on every call.

Built from the database once, then rebuilt only when the registry version in the shared
cache changes (a save or delete anywhere bumps it). The version is read at most every
``CHECK_SECONDS`` on its own, and for free on every proxied call, inside the pipelined
round trip that counts the rate limit, so a change shows on every worker and node
within about a second without a database query per call.

With a process-local cache (the default mode: no ``REDIS_URL``) that version never
leaves the process that wrote it, so a management command run beside the server would
never reach it. There the snapshot is also checked against the database's version row
(``RegistryVersion``, moved in the transaction of every write): one primary-key read at
most every ``DB_CHECK_SECONDS`` per process, never with a shared cache.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.db.models import F

from . import breaker, prober, state
from .headers import forwarded_keys
from .models import RegistryVersion, Service
from .validators import parse_rate

CHECK_SECONDS = 0.5
DB_CHECK_SECONDS = 1.0
_ROW = 1  # the primary key of the one RegistryVersion row


def bump_database_version() -> None:
    """Move the database's registry version, in the caller's transaction (called for
    every registry write): what processes with a process-local cache watch."""
    if not RegistryVersion.objects.filter(pk=_ROW).update(version=F("version") + 1):
        RegistryVersion.objects.get_or_create(pk=_ROW, defaults={"version": 1})


def database_version() -> int | None:
    return (
        RegistryVersion.objects.filter(pk=_ROW)
        .values_list("version", flat=True)
        .first()
    )


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
    # WSGI key → header name of the client headers forwarded (gateway.headers)
    forwarded_keys: dict = field(default_factory=forwarded_keys)
    serves_pages: bool = False
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
            forwarded_keys=forwarded_keys(tuple(svc.forward_headers or ())),
            serves_pages=svc.serves_pages,
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
        # Process-local cache only (decided at the first refresh): the database's
        # version row, and when it was last read.
        self._watch_database = not prober.cache_is_shared()
        self._db_seen: int | None = None  # the version row as last read
        self._db_checked = 0.0
        self._db_lock = threading.Lock()

    def get(self, name: str) -> ServiceSnap | None:
        """The service named ``name`` as of at most ~``CHECK_SECONDS`` ago (about
        ``DB_CHECK_SECONDS`` for writes of other processes with a process-local
        cache)."""
        now = time.monotonic()
        if self._watch_database and now - self._db_checked > DB_CHECK_SECONDS:
            self._check_database(now)
        if (
            self._stale or now - self._checked > CHECK_SECONDS
        ) and now >= self._retry_at:
            self._refresh()
        return self._services.get(name)

    def _check_database(self, now: float) -> None:
        # One thread reads the row; the others serve the snapshot meanwhile.
        if not self._db_lock.acquire(blocking=False):
            return
        try:
            if now - self._db_checked <= DB_CHECK_SECONDS:
                return
            self._db_checked = now
            try:
                version = database_version()
            except DatabaseError:  # the snapshot serves on (README "Failure policy")
                return
            if version != self._db_seen:
                self._db_seen = version
                self._stale = True
        finally:
            self._db_lock.release()

    def observe_version(self, version: int | None) -> None:
        """A version read on the hot path's round trip: reload on the next call if it
        moved."""
        self._checked = time.monotonic()
        if version != self._version:
            self._stale = True

    def invalidate(self) -> None:
        self._stale = True

    def recheck_database(self) -> None:
        """Let the next ``get`` read the database's version row, as once an interval
        has passed (how a test skips the wait)."""
        self._db_checked = -math.inf

    def reset(self) -> None:
        with self._lock:
            self._services = None
            self._version = None
            self._stale = True
            self._checked = 0.0
            self._retry_at = 0.0
            self._db_seen = None
            self._db_checked = 0.0

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
            if self._services is None:
                self._watch_database = not prober.cache_is_shared()
                if self._watch_database:  # read before the build: never newer
                    self._db_checked = now
                    self._db_seen = database_version()
            db_seen = self._db_seen  # a newer one seen during the build: build again
            if self._services is None or self._stale or version != self._version:
                try:
                    self._services = build_snapshot()
                except DatabaseError:
                    if self._services is None:
                        raise
                    # PostgreSQL down: keep serving the last snapshot (README
                    # "Failure policy"); try again after a check interval.
                    self._retry_at = now + CHECK_SECONDS
                    return
                self._version = version
            self._stale = self._db_seen != db_seen
            self._checked = now


registry = Registry()
