"""The XenX fault harness (run it through ``bench/faults``).

Starts two XenX nodes on one PostgreSQL database and one private Redis, three upstream
instances and the fault proxies, then runs each scenario under load and prints one table:
every check with what was measured and what is required. Exits 1 when a check fails.
See README.md, section "Failure policy".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

from faultlib.cluster import Cluster, ClusterError, Ports
from faultlib.scenarios import SCENARIOS, Result, Timing, run
from harness import RESULTS, loadavg, log, machine_info, port_free

ORDER = list(SCENARIOS)  # shared, instance, worker, redis, postgres, soak


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="bench/faults", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true",
                        help="every scenario briefly (soak 30 s): under 4 minutes")  # fmt: skip
    parser.add_argument("--scenarios", default=",".join(ORDER),
                        help=f"comma-separated subset of {','.join(ORDER)}")  # fmt: skip
    parser.add_argument(
        "--soak", type=float, help="soak seconds (default 600, quick 30)"
    )
    parser.add_argument("--port-base", type=int, default=18900,
                        help="nodes, upstreams and proxies use 7 ports from here")  # fmt: skip
    parser.add_argument("--redis-port", type=int, default=18950)
    parser.add_argument(
        "--db", default="xenx_faults", help="database (dropped, created)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep server logs")
    args = parser.parse_args(argv)
    args.names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in args.names if n not in SCENARIOS]
    if unknown or not args.names:
        parser.error(f"--scenarios takes names among {','.join(ORDER)}")
    return args


def render(results: list[Result]) -> str:
    rows = [("scenario", "check", "measured", "required", "")]
    for res in results:
        name = f"{res.scenario} ({res.seconds:.0f} s)"
        if res.error:
            rows.append((name, "error", res.error.splitlines()[0], "", "FAIL"))
        for c in res.checks:
            rows.append(
                (name, c.name, c.measured, c.required, "ok" if c.ok else "FAIL")
            )
            name = ""
        if res.load:
            rows.append(("", "background load", f"{res.load['n']} calls "
                         f"{res.load['statuses']}, p50 {res.load['p50_ms']} ms, "
                         f"p99 {res.load['p99_ms']} ms", "", ""))  # fmt: skip
    return "\n".join("| " + " | ".join(cell.replace("|", "/") for cell in row) + " |"
                     + ("\n|---|---|---|---|---|" if i == 0 else "")
                     for i, row in enumerate(rows))  # fmt: skip


def main(argv=None) -> int:
    args = parse_args(argv)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    timing = Timing.quick() if args.quick else Timing()
    if args.soak:
        timing.soak = args.soak
    ports = Ports.from_base(args.port_base, args.redis_port)
    busy = [p for p in ports.all() if not port_free(p)]
    if busy:
        log(f"FAULTS FAILED: ports already in use on 127.0.0.1: {busy}")
        return 2
    machine = machine_info()
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    log(f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB, Linux {machine['kernel']}, Python "
        f"{machine['python']}, Django {machine['django']}, gunicorn {machine['gunicorn']}")  # fmt: skip
    log(
        f"load average before: {loadavg()}; command: bench/faults {' '.join(argv or sys.argv[1:])}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="xenx-faults-"))
    cluster = Cluster(ports, tmp, db_name=args.db)
    results: list[Result] = []
    t_start = time.monotonic()
    try:
        log(f"starting two nodes, Redis, upstreams, proxies (logs in {tmp})")
        cluster.start()
        log(f"cluster up in {time.monotonic() - t_start:.0f} s")
        for name in args.names:
            log(f"scenario {name} ...")
            res = run(name, cluster, timing)
            results.append(res)
            log(f"  {'ok' if res.ok else 'FAILED'} in {res.seconds:.0f} s"
                + ("" if res.ok else "\n" + textwrap.indent(res.failures(), "    ")))  # fmt: skip
    except ClusterError as exc:
        log(f"FAULTS FAILED: {exc}")
        return 2
    finally:
        cluster.stop()
    elapsed = time.monotonic() - t_start
    table = render(results)
    log("\n" + table)
    failed = [r.scenario for r in results if not r.ok]
    log(f"\n{len(results) - len(failed)} of {len(results)} scenarios held "
        f"({elapsed:.0f} s, load average after: {loadavg()})")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "faults-latest.json").write_text(json.dumps({
        "date": started, "machine": machine, "quick": args.quick,
        "elapsed_seconds": round(elapsed, 1), "timing": asdict(timing),
        "results": [asdict(r) | {"ok": r.ok} for r in results]}, indent=2) + "\n")  # fmt: skip
    (RESULTS / "faults-latest.md").write_text(table + "\n")
    if not args.keep_logs:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    if failed:
        log("FAILED: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
