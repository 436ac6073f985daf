"""Cost of one call of a Django target, in process, one thread (``bench/run --percall``).

Calls the target's WSGI application directly (no client socket, no gunicorn) against the
running upstream, and prints the best of three batches as one JSON line: wall and CPU
microseconds per call. CPU time per call is the least disturbed figure on a busy
machine; wall time adds the round trips (upstream, Redis). ``--cprofile FILE`` also
writes a cProfile (CPU clock) of one batch.

Run by the harness with the target's environment (settings module, database, secret);
for XenX targets it rotates the benchmark's callers as the wrk script does (the users'
access tokens for (d), client addresses for (e), the provider's tokens for (h) and
(i)); for the token targets without the revocation memo, as under the load (see
below).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("key", choices=list("bcdefghi"))
    parser.add_argument("path")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--tokens", default="", help="access tokens, one a line")
    parser.add_argument("--client-ips", type=int, default=0)
    parser.add_argument("--expect", default="")
    parser.add_argument("--cprofile", default="")
    parser.add_argument(
        "--callgrind",
        type=int,
        default=0,
        metavar="N",
        help="under valgrind --tool=callgrind --instr-atstart=no: count the "
        "instructions of N calls only (instrumentation on around them)",
    )
    args = parser.parse_args()

    # XenX from the checkout the harness names (a --reference worktree), else this one
    checkout = os.environ.get("BENCH_CHECKOUT") or str(BENCH.parent)
    sys.path.insert(0, str(BENCH if args.key in "bc" else checkout))
    # No health prober in this process: its thread (started by the first call) would
    # probe the upstream every 10 s inside the measured calls, and the slower the run
    # (callgrind, a busy machine), the more of its rounds would land among them. The
    # calls themselves read the breaker's keys all the same.
    os.environ["XENX_HEALTH_CHECK_INTERVAL"] = "0"
    import django

    django.setup()
    from django.core.servers.basehttp import get_internal_wsgi_application

    app = get_internal_wsgi_application()  # the project's WSGI_APPLICATION
    if args.tokens:
        # Under the load each worker sees a given user about once a second (1,000 users,
        # 2 workers), past the revocation memo (0.5 s): every call checks its token's
        # records. One thread calling 1,000 users in turn would come back within the
        # memo, so it is switched off here to measure what the load does.
        from django.conf import settings

        settings.XENX_REVOCATION_MEMO_SECONDS = 0
    # Rotated per call, as the wrk script does: the request headers of each caller.
    callers = []
    if args.tokens:
        tokens = [t for t in Path(args.tokens).read_text().splitlines() if t]
        callers = [{"HTTP_AUTHORIZATION": f"Bearer {t}"} for t in tokens]
    if args.client_ips:
        ips = [
            {"HTTP_X_FORWARDED_FOR": f"10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}"}
            for k in range(args.client_ips)
        ]
        callers = [
            {**(callers[i % len(callers)] if callers else {}), **ips[i % len(ips)]}
            for i in range(max(len(callers), len(ips)))
        ]
    callers = callers or [{}]
    turn = itertools.count()

    statuses: list[str] = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    def call() -> bytes:
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": args.path,
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_USER_AGENT": "percall",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.url_scheme": "http",
            "wsgi.errors": sys.stderr,
        }
        environ.update(callers[next(turn) % len(callers)])
        result = app(environ, start_response)
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
        return body

    body = call()
    if not statuses[-1].startswith("200") or (
        args.expect and body != args.expect.encode()
    ):
        print(f"unexpected answer: {statuses[-1]} {body[:200]!r}", file=sys.stderr)
        return 1
    for _ in range(min(300, args.calls)):
        call()
    if args.callgrind:
        # The wall clock stands still for the counted calls: under valgrind they run
        # ~50x slower, so fixed rate-limit windows (per caller, jittered) would roll
        # over ~50x as often as under the load, each roll a new key to make, and the
        # count would depend on the time the run took.
        frozen = time.time()
        time.time = lambda: frozen
        for _ in callers:  # every caller seen once (its token verified), as under load
            call()
        # The collector is off for the counted calls: a collection (tens of millions
        # of instructions for a full one, a few for a young one) landing in one of the
        # two runs and not the other would swamp or skew the difference. What a call
        # allocates and frees still counts.
        gc.collect()
        gc.disable()
        _instrument("on")
        for _ in range(args.callgrind):
            call()
        _instrument("off")
        print(json.dumps({"calls": args.callgrind}))
        return 0
    best_wall = best_cpu = float("inf")
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.calls):
            call()
        w1, c1 = time.perf_counter(), time.process_time()
        best_wall = min(best_wall, (w1 - w0) / args.calls)
        best_cpu = min(best_cpu, (c1 - c0) / args.calls)
    if args.cprofile:
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        for _ in range(args.calls):
            call()
        prof.disable()
        prof.dump_stats(args.cprofile)
    print(json.dumps({"wall_us": best_wall * 1e6, "cpu_us": best_cpu * 1e6}))
    return 0


def _instrument(state: str) -> None:
    """callgrind's instrumentation on or off for this process (callgrind_control)."""
    done = subprocess.run(
        ["callgrind_control", "-i", state, str(os.getpid())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"callgrind_control -i {state}: {done.stdout}{done.stderr}")


if __name__ == "__main__":
    sys.exit(main())
