"""Reads of the service registry, with the live health from the shared cache."""

from __future__ import annotations

from core.cache import CACHE_ERRORS

from . import breaker
from .models import Service


def service_list():
    return Service.objects.prefetch_related("instances").order_by("name")


def service_get(name: str) -> Service | None:
    return service_list().filter(name=name).first()


def instance_health(instances) -> dict[int, bool]:
    """{instance id: healthy?}; an instance is healthy while its circuit is closed or
    half-open. Unknown (cache down) counts as unhealthy."""
    instances = list(instances)
    try:
        found = breaker.get_health(i.id for i in instances)
    except CACHE_ERRORS:
        return {i.id: False for i in instances}
    now = breaker.now_ms()
    return {i.id: breaker.is_healthy(found[i.id][0], now) for i in instances}


def service_health(service: Service, health: dict[int, bool] | None = None) -> dict:
    """{"status": ok|degraded|down, "healthy_instances", "total_instances"} (README
    "Gateway" (health))."""
    enabled = [i for i in service.instances.all() if i.enabled]
    if health is None:
        health = instance_health(enabled)
    healthy = sum(1 for i in enabled if health.get(i.id))
    if enabled and healthy == len(enabled):
        status = "ok"
    elif healthy:
        status = "degraded"
    else:
        status = "down"
    return {
        "status": status,
        "healthy_instances": healthy,
        "total_instances": len(enabled),
    }
