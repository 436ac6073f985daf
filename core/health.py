"""Liveness and readiness (README "Gateway" (health)). The aggregate /health lives in
the gateway."""

import time

from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from core.cache import CACHE_ERRORS


def check_database() -> dict:
    start = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        status = "ok"
    except DatabaseError:  # unreachable, timed out, refused: down
        status = "down"
    return {
        "status": status,
        "latency_ms": round((time.perf_counter() - start) * 1000, 2),
    }


def check_cache() -> dict:
    start = time.perf_counter()
    try:
        key = "health:probe"
        cache.set(key, "1", 10)
        status = "ok" if cache.get(key) == "1" else "down"
    except CACHE_ERRORS:
        status = "down"
    return {
        "status": status,
        "latency_ms": round((time.perf_counter() - start) * 1000, 2),
    }


def dependencies() -> tuple[dict, bool]:
    """({"database": …, "cache": …}, whether both answer): what ``/health/ready`` and
    the aggregate ``/health`` (``gateway.views.monitoring``) report."""
    checks = {"database": check_database(), "cache": check_cache()}
    return checks, all(c["status"] == "ok" for c in checks.values())


@csrf_exempt  # a POST is 405, not the CSRF check's 403
@require_GET
def live(request):
    return JsonResponse({"status": "ok"})


@csrf_exempt
@require_GET
def ready(request):
    checks, ok = dependencies()
    response = JsonResponse(
        {"status": "ok" if ok else "down", "checks": checks}, status=200 if ok else 503
    )
    response.xenx_passthrough = True  # the 503 body is the readiness report itself
    return response
