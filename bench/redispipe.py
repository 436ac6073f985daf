"""CPU per call of the gateway's one Redis round trip, client by client (issue 13).

The hot path's pipeline (INCR + EXPIRE NX of a rate-limit key, MGET of the registry
version, two health keys and three revocation records) sent N times by:
``fastredis`` (gateway/fastredis.py, one RESP buffer on a per-thread socket), redis-py's
``pipeline`` with its pure-Python parser, and redis-py with hiredis when importable.
Run from the repository root with Redis up: ``python bench/redispipe.py [REDIS_URL]``
(default redis://127.0.0.1:6379/8, the benchmark's db). Add hiredis to the path to
measure it without installing it: ``PYTHONPATH=/some/dir/with/hiredis``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from gateway import fastredis  # noqa: E402

CALLS = 5000
KEYS = [
    "bench:version",
    "bench:open:1",
    "bench:fail:1",
    "bench:u",
    "bench:j",
    "bench:o",
]


def commands():
    return [
        ("INCR", "bench:rl"),
        ("EXPIRE", "bench:rl", 61, "NX"),
        ("MGET", *KEYS),
    ]


def best_cpu(fn) -> float:
    for _ in range(500):
        fn()
    best = float("inf")
    for _ in range(3):
        c0 = time.process_time()
        for _ in range(CALLS):
            fn()
        best = min(best, (time.process_time() - c0) / CALLS)
    return best * 1e6


def main() -> int:
    url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/8"
    client = redis.Redis.from_url(url)
    client.set("bench:u", b"\x80\x04" + b"x" * 120)  # a pickled record's size
    params = fastredis.params_of(client)

    def via_fastredis():
        fastredis.execute(params, commands())

    def via_redis_py():
        pipe = client.pipeline(transaction=False)
        for command in commands():
            pipe.execute_command(*command)
        pipe.execute()

    parser = client.connection_pool.connection_kwargs.get("parser_class")
    try:
        import hiredis  # noqa: F401

        has_hiredis = True
    except ImportError:
        has_hiredis = False
    print(f"fastredis                   {best_cpu(via_fastredis):6.1f} us CPU per call")
    print(
        f"redis-py {redis.__version__} pipeline "
        f"({'hiredis' if has_hiredis else 'Python parser'}{parser or ''})"
        f" {best_cpu(via_redis_py):6.1f} us CPU per call"
    )
    client.delete("bench:rl", "bench:u")
    return 0


if __name__ == "__main__":
    sys.exit(main())
