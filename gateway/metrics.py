"""Prometheus metrics of the gateway, and ``/metrics``'s text (README "Gateway",
metrics table): the gateway's counters, the identity counters of ``accounts.metrics``
and, computed at each scrape from the registry and the shared health state, each
instance's health.

With several gunicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory,
cleared at deploy): prometheus_client then keeps each worker's counters in memory-mapped
files there and ``/metrics`` sums every worker of the node. Each node is scraped on its
own, as usual for Prometheus. Without it the numbers are the answering process's only.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

import accounts.metrics  # noqa: F401  (its counters are in the text /metrics serves)
from core.memo import Memo

from . import selectors

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter(
    "xenx_gateway_requests_total",
    "Proxied calls by service, method and status class.",
    ["service", "method", "status"],
)
LATENCY = Histogram(
    "xenx_gateway_request_duration_seconds",
    "Time to the response headers of proxied calls.",
    ["service", "method", "status"],
    buckets=(
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1,
        2.5,
        5,
        10,
        30,
    ),
)
UPSTREAM_ERRORS = Counter(
    "xenx_gateway_upstream_errors_total",
    "Failed upstream attempts by service and kind.",
    ["service", "kind"],
)
RATE_LIMITED = Counter(
    "xenx_gateway_rate_limited_total",
    "Calls refused with 429 by service.",
    ["service"],
)

_STATUS_CLASS = {n: f"{n}xx" for n in range(1, 6)}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The metric children of each label set, to skip prometheus_client's own look-up; an
# evicted one is looked up again (the registry keeps the child and its counts).
metric_children = Memo(1024, name="metric children")


def observe(service: str, method: str, status: int, seconds: float) -> None:
    if method not in _METHODS:
        method = "OTHER"
    labels = (service, method, _STATUS_CLASS.get(status // 100, "other"))
    children = metric_children.get(labels)
    if children is None:
        children = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
        metric_children.set(labels, children)
    children[0].inc()
    children[1].observe(seconds)


class InstanceHealth:
    """``xenx_gateway_instance_healthy``: read at each scrape from the registry and the
    health state every worker and node shares (as ``/health`` reads it)."""

    def collect(self):
        family = GaugeMetricFamily(
            "xenx_gateway_instance_healthy",
            "1 while an enabled instance (label upstream: its URL) of an enabled service "
            "takes calls (its circuit closed or half-open), else 0.",
            labels=["service", "upstream"],
        )
        services = [s for s in selectors.service_list() if s.enabled]
        instances = [i for s in services for i in s.instances.all() if i.enabled]
        healthy = selectors.instance_health(instances)
        for service in services:
            for instance in service.instances.all():
                if instance.enabled:
                    family.add_metric(
                        [service.name, instance.url], float(healthy[instance.id])
                    )
        yield family


def render() -> tuple[bytes, str]:
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        counters = generate_latest(registry)
    else:
        counters = generate_latest()
    health = CollectorRegistry()
    health.register(InstanceHealth())
    return counters + generate_latest(health), CONTENT_TYPE_LATEST
