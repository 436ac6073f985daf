"""CPU per call of the gateway's one Redis round trip, client by client (issue 13).

The hot path's pipeline (INCR + EXPIRE NX of a rate-limit key, MGET of the registry
version, two health keys and three revocation records) sent N times by redis-py's
``Pipeline`` object and by one pooled redis-py connection used directly (what
``gateway.state.pipeline`` does), each with hiredis's parser when it is installed (it is
in requirements.txt) or redis-py's pure-Python one. Measured on the benchmark machine
(issue 13), CPU per call: the hand-written RESP client this replaced (fastredis) 16-18
µs, the direct connection with hiredis 19-22 µs (15-17 µs with the packed bytes
memoised, as the gateway does), ``Pipeline`` with hiredis 23-25 µs,
``Pipeline`` with the Python parser 38 µs.
Run from the repository root with Redis up: ``python bench/redispipe.py [REDIS_URL]``
(default redis://127.0.0.1:6379/8, the benchmark's db).
"""

from __future__ import annotations

import sys
import time

import redis

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

    def via_redis_py():
        pipe = client.pipeline(transaction=False)
        for command in commands():
            pipe.execute_command(*command)
        pipe.execute()

    pool = client.connection_pool

    def via_redis_py_connection():
        # redis-py's own connection and parser, without the Pipeline object: what the
        # hot path would do with one pooled connection per call.
        conn = pool.get_connection()
        try:
            cmds = commands()
            conn.send_packed_command(conn.pack_commands(cmds))
            [conn.read_response() for _ in cmds]
        finally:
            pool.release(conn)

    packed = {}

    def via_redis_py_packed_once():
        # ... and the packed bytes memoised per command tuple, as the gateway does.
        conn = pool.get_connection()
        try:
            cmds = tuple(commands())
            data = packed.get(cmds)
            if data is None:
                data = packed[cmds] = b"".join(conn.pack_commands(cmds))
            conn.send_packed_command((data,), check_health=False)
            [conn.read_response() for _ in cmds]
        finally:
            pool.release(conn)

    parser = client.connection_pool.connection_kwargs.get("parser_class")
    try:
        import hiredis  # noqa: F401

        has_hiredis = True
    except ImportError:
        has_hiredis = False
    print(
        f"redis-py {redis.__version__} pipeline "
        f"({'hiredis' if has_hiredis else 'Python parser'}{parser or ''})"
        f" {best_cpu(via_redis_py):6.1f} us CPU per call"
    )
    print(
        f"redis-py connection, no Pipeline      {best_cpu(via_redis_py_connection):6.1f}"
        " us CPU per call"
    )
    print(
        f"redis-py connection, packed once      {best_cpu(via_redis_py_packed_once):6.1f}"
        " us CPU per call"
    )
    client.delete("bench:rl", "bench:u")
    return 0


if __name__ == "__main__":
    sys.exit(main())
