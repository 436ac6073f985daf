"""The one reset hook: what a process remembers between requests, forgotten between
tests (``tests/conftest.py`` calls ``fresh_process`` before each test and
``forget_memos`` after it)."""

from __future__ import annotations

from django.core.cache import cache

from accounts import revocation, tokens
from core import cache as core_cache
from gateway import assertions, pipeline, prober, state
from gateway.registry import registry


def forget_memos() -> None:
    """No per-process memo: the cache's fail-fast window, the revocation memo, the
    verified access tokens, the registry snapshot, the identity assertions, the
    ALLOWED_HOSTS verdicts, the hot path's Redis client, memos and connection
    (``gateway.state.forget``), and whether the prober thread was started."""
    core_cache.reset()
    revocation.clear_memo()
    tokens.verified_tokens.clear()
    registry.reset()
    assertions.clear()
    pipeline.host_verdicts.clear()
    state.forget()
    prober.forget_started()


def fresh_process() -> None:
    """``forget_memos`` and an empty shared cache (a test may have pointed the cache
    elsewhere meanwhile: it is cleared before a test, never after)."""
    forget_memos()
    cache.clear()
