"""The bounded process memo. The per-process caches of XenX are ``Memo``s, except three
of ``gateway`` on every proxied call (``state._packed`` and ``_full_keys``,
``ratelimit._keys``): plain dictionaries emptied whole when full, bounded as well and
one method call cheaper per lookup.

A worker lives for days and sees keys chosen by clients (tokens, header names, hosts):
a plain ``dict`` grows with every new key until the worker runs out of memory. A
``Memo`` holds at most ``maxsize`` entries (the oldest written goes first) and, with
``ttl``, forgets an entry that many seconds after it was written.

Reads and writes are single dictionary operations, safe under the GIL from the worker's
threads; a race between two writers of one key keeps one of their values, which is all a
memo promises. Eviction drops the oldest insertion, not the least recently read: a memo
here stands in for work that is cheap enough to redo, and FIFO costs nothing per read.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Hashable
from typing import Any

_MISSING = object()


class Memo:
    """A bounded mapping of ``key -> value`` with an optional time to live."""

    __slots__ = ("_data", "_maxsize", "_ttl", "_clock", "name")

    def __init__(
        self,
        maxsize: int,
        *,
        ttl: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
    ) -> None:
        if maxsize < 1:
            raise ValueError("a memo holds at least one entry")
        if ttl is not None and not ttl > 0:
            raise ValueError("a memo's ttl is above 0 seconds, or None")
        self._data: dict[Hashable, Any] = {}
        self._maxsize = maxsize
        self._ttl = ttl
        self._clock = clock
        self.name = name

    @property
    def maxsize(self) -> int:
        return self._maxsize

    def get(self, key: Hashable, default: Any = None) -> Any:
        entry = self._data.get(key, _MISSING)
        if entry is _MISSING:
            return default
        if self._ttl is None:
            return entry
        expires, value = entry
        if expires <= self._clock():
            self._data.pop(key, None)
            return default
        return value

    def set(self, key: Hashable, value: Any) -> Any:
        """Remember ``value`` for ``key`` and return it."""
        data = self._data
        if key not in data and len(data) >= self._maxsize:
            # Another thread may empty or change it between the two calls: the memo is
            # then over its bound by an entry for a moment, never unbounded.
            with contextlib.suppress(StopIteration, KeyError, RuntimeError):
                data.pop(next(iter(data)))
        data[key] = value if self._ttl is None else (self._clock() + self._ttl, value)
        return value

    def get_or_set(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = self.set(key, compute())
        return value

    def pop(self, key: Hashable) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return self.get(key, _MISSING) is not _MISSING
