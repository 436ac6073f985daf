"""The upstream HTTP client: one urllib3 connection pool per instance, per process.

Measured choice (see README): urllib3's HTTPConnectionPool used directly, no
``requests.Session`` (which adds environment/proxy lookups, cookie handling and hooks
per call) and no PoolManager URL parsing per call. Each pool keeps up to
``XENX_GATEWAY_POOL_SIZE`` keep-alive connections (the worker's thread count) and never
blocks: a burst above it opens extra connections that are closed after use. Pools are
per instance, so a slow service cannot starve the others.
"""

from __future__ import annotations

import threading

import urllib3
from django.conf import settings

_pools: dict[tuple, urllib3.HTTPConnectionPool] = {}
_lock = threading.Lock()


def pool_for(instance) -> urllib3.HTTPConnectionPool:
    key = (instance.scheme, instance.host, instance.port)
    pool = _pools.get(key)
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                cls = (
                    urllib3.HTTPSConnectionPool
                    if instance.scheme == "https"
                    else urllib3.HTTPConnectionPool
                )
                pool = cls(
                    instance.host,
                    instance.port,
                    maxsize=settings.XENX_GATEWAY_POOL_SIZE,
                    block=False,
                    retries=False,
                )
                _pools[key] = pool
    return pool


def close_pools() -> None:
    with _lock:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
