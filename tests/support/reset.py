"""The one reset hook: what a process remembers between requests, forgotten between
tests (``tests/conftest.py`` calls it before and after each)."""

from __future__ import annotations

from django.core.cache import cache

from accounts import revocation
from core import cache as core_cache
from gateway import assertions
from gateway.registry import registry


def fresh_process() -> None:
    """An empty shared cache and no per-process memo: the cache's fail-fast window, the
    revocation memo, the registry snapshot and the identity assertions."""
    core_cache.reset()
    cache.clear()
    revocation.clear_memo()
    registry.reset()
    assertions.clear()
