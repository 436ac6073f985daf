"""The one measurement of "linear in its input": double a worst-case input three times
and compare times, never absolute times (the machine may be busy).

Time is this thread's CPU time (``time.thread_time``), not the wall clock: the
other processes of a busy machine take the CPU away from the test, never add to the
work it measures.

``assert_linear(make, run)`` builds the input for each size with ``make(size)`` and
times ``run(input)`` at four sizes, ``size``, 2x, 4x and 8x. Each time is the best
of ``repeat`` runs (noise only ever adds time), the sizes taken in turn so that a
busy moment hits them alike; a tiny one is made measurable by running the call as
many times at every size as the smallest needs to last ``MIN_SECONDS``. Each doubling may multiply the time by at most ``max_ratio`` (2.5:
a linear parser doubles, a quadratic one quadruples). A machine busy at the wrong
moment can still spoil one series, so a failing series is measured again, up to
``attempts`` times, before the test fails.

``peak_bytes(run, input)`` is the tracemalloc peak of one call, for the memory half.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

MIN_SECONDS = 0.01


def _once(run: Callable[[Any], Any], data: Any, number: int) -> float:
    start = time.thread_time()
    for _ in range(number):
        run(data)
    return time.thread_time() - start


def _calibrate(run: Callable[[Any], Any], data: Any) -> int:
    number = 1
    while number < 1_000_000:
        start = time.thread_time()
        for _ in range(number):
            run(data)
        if time.thread_time() - start >= MIN_SECONDS:
            return number
        number *= 2
    return number


def measure(
    make: Callable[[int], Any],
    run: Callable[[Any], Any],
    size: int,
    *,
    repeat: int = 4,
) -> list[float]:
    """Best-of-``repeat`` seconds of ``run(make(n))`` for n = size, 2x, 4x, 8x."""
    inputs = [make(size * 2**step) for step in range(4)]
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        run(inputs[0])  # warm up: imports, compiled patterns, caches
        number = _calibrate(run, inputs[0])
        best = [float("inf")] * len(inputs)
        for _ in range(repeat):  # round robin: a busy moment hits every size alike
            for index, data in enumerate(inputs):
                best[index] = min(best[index], _once(run, data, number))
        return best
    finally:
        if gc_was_enabled:
            gc.enable()


def assert_linear(
    make: Callable[[int], Any],
    run: Callable[[Any], Any],
    size: int,
    *,
    max_ratio: float = 2.5,
    repeat: int = 4,
    attempts: int = 3,
) -> list[float]:
    """Fail unless each doubling of the input multiplies ``run``'s time by at most
    ``max_ratio``; returns the times of the passing series."""
    for _ in range(attempts):
        times = measure(make, run, size, repeat=repeat)
        ratios = [later / earlier for earlier, later in zip(times, times[1:])]
        if all(ratio <= max_ratio for ratio in ratios):
            return times
    raise AssertionError(
        f"not linear: sizes {[size * 2**s for s in range(4)]} took "
        f"{[f'{t:.4f}' for t in times]} s, ratios {[f'{r:.2f}' for r in ratios]} "
        f"(at most {max_ratio} per doubling)"
    )


def peak_bytes(run: Callable[[Any], Any], data: Any) -> int:
    """tracemalloc's peak, in bytes, over one ``run(data)``; ``run`` expects the
    refusal it is testing for (``pytest.raises``) itself."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        run(data)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
