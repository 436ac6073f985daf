"""One active health check: GET an instance's ``health_check_path`` and write the
verdict to the shared cache, where the proxy's breaker, ``list_services``, Django admin
and ``/health`` read it. Used by the in-process prober (``gateway.prober``) and by the
one-off ``check_services`` command."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import urllib3
from django.conf import settings

from core.memo import Memo

from . import breaker
from .models import Service

MAX_CHECK_TIMEOUT = 5.0

MAX_PARALLEL_CHECKS = 16
# Only the status line counts. The body is never read, let alone decoded: an instance
# (or whatever answers at its address) could send a gzip bomb or an endless body. The
# head is bounded by http.client (64 KiB a line, 100 headers).
PROBE_HEADERS = {"Accept-Encoding": "identity"}

# One pool manager per CA bundle in use (a service's own, or the default).
pool_managers = Memo(64, name="probe pool managers")


def _http(service) -> urllib3.PoolManager:
    """A pool manager trusting the service's CA bundle (as the proxy does)."""
    cafile = service.ca_bundle or settings.XENX_GATEWAY_CA_BUNDLE or ""
    manager = pool_managers.get(cafile)
    if manager is None:
        manager = urllib3.PoolManager(
            num_pools=64, maxsize=2, retries=False, ca_certs=cafile or None
        )
        pool_managers.set(cafile, manager)
    return manager


def check_instance(instance, service, *, down_seconds: float) -> tuple[bool, str]:
    url = instance.url.rstrip("/") + service.health_check_path
    timeout = min(service.timeout_seconds, MAX_CHECK_TIMEOUT)
    try:
        response = _http(service).request(
            "GET",
            url,
            headers=PROBE_HEADERS,
            timeout=urllib3.Timeout(total=timeout),
            redirect=False,
            preload_content=False,
            decode_content=False,
        )
        ok = 200 <= response.status < 400
        detail = f"HTTP {response.status}"
        # The unread body stays on the connection: close it rather than reuse it.
        response.close()
        response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        ok, detail = False, type(exc).__name__
    if ok:
        breaker.record_success(instance.id)
    else:
        breaker.mark_down(instance.id, down_seconds)
    return ok, detail


def check_all(*, down_seconds: float, claim=None) -> list[tuple[str, str, bool, str]]:
    """[(service, instance url, healthy, detail)] for every enabled instance, or only
    those for which ``claim(instance)`` is true when it is given."""
    jobs = []
    for service in Service.objects.filter(enabled=True).prefetch_related("instances"):
        for instance in service.instances.all():
            if instance.enabled and (claim is None or claim(instance)):
                jobs.append((service, instance))
    if not jobs:
        return []

    def check(job):
        return check_instance(job[1], job[0], down_seconds=down_seconds)

    if len(jobs) == 1:  # no other thread needed
        results = [check(jobs[0])]
    else:  # threads for this round only: a kept pool only grows (ThreadPoolExecutor)
        with ThreadPoolExecutor(
            min(MAX_PARALLEL_CHECKS, len(jobs)), "xenx-health-check"
        ) as pool:
            results = list(pool.map(check, jobs))
    return [
        (svc.name, inst.url, ok, detail)
        for (svc, inst), (ok, detail) in zip(jobs, results, strict=True)
    ]
