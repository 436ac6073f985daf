"""The XenX gateway benchmark (run it through ``bench/run``).

One run: an upstream nginx answering a small JSON body with keep-alive, the targets in
front of it or beside it, and wrk load against each, interleaved over rounds so that a
change in the machine's load hits every target alike. Reports medians of requests/s and
p50/p99 latency per target at each connection count, and the ratios of the XenX targets
to the Django peers. See README.md, section "Benchmark".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from benchkit.common import (
    ANONYMOUS_LIMIT,
    AUTH_SERVICE,
    BENCH,
    BODY,
    CALLERS,
    CLIENT_LIMIT,
    CONNECTIONS,
    GUNICORN_ARGS,
    HARD_LIMIT_SECONDS,
    PUBLIC_SERVICE,
    RESULTS,
    ROOT,
    WRK_THREADS,
    BenchError,
    Processes,
    Target,
    http_get,
    log,
    port_free,
    set_layout,
    wait_for_port,
)
from benchkit.load import (
    check_target,
    measure_instructions,
    measure_percall,
    run_wrk,
)
from benchkit.machine import CpuMeter, loadavg, machine_info
from benchkit.pyspy import profile_target
from benchkit.report import print_table, render_markdown, summarize
from benchkit.servers import (
    PROXY_SERVER,
    UPSTREAM_SERVER,
    clean_env,
    prepare_xenx,
    remove_reference,
    start_gunicorn,
    start_nginx,
    start_reference,
    xenx_env,
)

# --- main --------------------------------------------------------------------------

# What --targets takes; f and g are the --reference's, added beside d and e.
TARGET_KEYS = "abcdehi"
# The targets XenX serves on its own port (it is set up when any of them runs).
XENX_KEYS = {"d", "e", "h", "i"}


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round of 3 s runs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--targets",
        default="a,b,c,d,e",
        help="comma-separated subset of a,b,c,d,e,h,i (h: XenX with the OpenID "
        "provider's authorization-code tokens of the same users as d, i: with "
        "client-credentials tokens of as many machine clients; not run by default)",
    )
    parser.add_argument(
        "--callers",
        type=int,
        default=CALLERS,
        help=f"users (d, h), client addresses (e) and machine clients (i) rotated per "
        f"request ({CALLERS})",
    )
    parser.add_argument(
        "--port-base", type=int, default=18500, help="five ports from here (18500)"
    )
    parser.add_argument(
        "--xenx-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra environment setting for XenX (repeatable), e.g. "
        "XENX_GATEWAY_POOL_SIZE=32",
    )
    parser.add_argument(
        "--percall",
        action="store_true",
        help="after the load, the in-process cost per call of b-i (one thread, "
        "best of 3 x 1000 calls, CPU and wall microseconds; see bench/percall.py)",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="after the load, the instructions of one call of b-i in process under "
        "valgrind's callgrind (user space; the same however busy the machine is; "
        "about a minute per target; see bench/benchkit/load.py)",
    )
    parser.add_argument(
        "--profile",
        default="",
        metavar="KEYS",
        help="after the measured rounds, one extra run per target (e.g. b,d) under "
        "py-spy; writes bench/results/profile-KEY.txt (collapsed stacks) and a summary",
    )
    parser.add_argument(
        "--reference",
        default="",
        metavar="REV",
        help="also serve XenX at git revision REV (a worktree of this repository, "
        "same database and Redis db, its own cache key prefix) as targets f (like d) "
        "and g (like e), interleaved with the others: before/after in one run",
    )
    parser.add_argument(
        "--layout",
        default="2x8",
        metavar="WxT",
        help="gunicorn workers x threads (gthread) of every Django target alike "
        "(2x8, the issue's setting)",
    )
    parser.add_argument(
        "--keep-servers",
        type=float,
        default=0,
        metavar="S",
        help="after the load, keep the servers up S seconds (to profile by hand)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.warmup = 1, 3.0, 1.0
    keys = [k.strip() for k in args.targets.split(",") if k.strip()]
    if not keys or any(k not in TARGET_KEYS for k in keys):
        parser.error("--targets takes letters among " + ",".join(TARGET_KEYS))
    if args.reference:
        # the reference runs beside what it is compared with
        keys += [ref for ref, of in (("f", "d"), ("g", "e")) if of in keys]
        if not {"f", "g"} & set(keys):
            parser.error("--reference needs d or e among the --targets")
    args.keys = keys
    match = re.fullmatch(r"([1-9][0-9]?)x([1-9][0-9]?)", args.layout)
    if not match:
        parser.error("--layout takes WORKERSxTHREADS, e.g. 2x8")
    set_layout(int(match.group(1)), int(match.group(2)))
    args.xenx_extra = {}
    for item in args.xenx_env:
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            parser.error(f"--xenx-env takes NAME=VALUE, got {item!r}")
        args.xenx_extra[name] = value
    args.profile_keys = [k.strip() for k in args.profile.split(",") if k.strip()]
    if any(k not in keys for k in args.profile_keys):
        parser.error("--profile takes letters among the --targets")
    if args.callers < 1:
        parser.error("--callers >= 1")
    if args.rounds < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--rounds >= 1, --seconds > 0, --warmup >= 0")
    if not (args.seconds.is_integer() and args.warmup.is_integer()):
        # wrk's -d takes whole seconds only ("0.5s" is a usage error)
        parser.error("--seconds and --warmup take whole seconds")
    estimate = (
        60
        + args.keep_servers
        + args.rounds
        * len(CONNECTIONS)
        * len(keys)
        * (args.seconds + args.warmup + 0.5)
    )
    estimate += len(args.profile_keys) * (args.seconds + 3)
    estimate += 60 if args.percall else 0
    estimate += 60 * len([k for k in keys if k != "a"]) if args.instructions else 0
    if estimate > HARD_LIMIT_SECONDS - 20:
        parser.error(
            f"this would take about {estimate:.0f} s; the run must stay under "
            f"{HARD_LIMIT_SECONDS} s: fewer rounds or shorter runs"
        )
    if args.port_base < 18500 or args.port_base + 5 > 18699:
        parser.error("ports must stay in 18500-18699")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    base = args.port_base
    upstream_port = base
    all_targets = {
        "a": Target(
            "a",
            "nginx proxy (machine limit)",
            base + 1,
            "/api/echo/json",
            server="nginx-proxy",
        ),
        "b": Target(
            "b", "django-revproxy", base + 2, "/api/echo/json", server="revproxy"
        ),
        "c": Target(
            "c", "bare Django view (ceiling)", base + 3, "/json", server="bare-django"
        ),
        "d": Target(
            "d",
            f"XenX, {args.callers:,} users, limited",
            base + 4,
            f"/api/{AUTH_SERVICE}/json",
            server="xenx",
        ),
        "e": Target(
            "e",
            f"XenX public, {args.callers:,} IPs, limited",
            base + 4,
            f"/api/{PUBLIC_SERVICE}/json",
            client_ips=args.callers,
            server="xenx",
        ),
        "h": Target(
            "h",
            f"XenX, {args.callers:,} users, OIDC tokens",
            base + 4,
            f"/api/{AUTH_SERVICE}/json",
            server="xenx",
        ),
        "i": Target(
            "i",
            f"XenX, {args.callers:,} machine clients",
            base + 4,
            f"/api/{AUTH_SERVICE}/json",
            server="xenx",
        ),
    }
    if args.reference:
        all_targets["f"] = Target(
            "f",
            f"XenX at {args.reference} (reference), users",
            base + 5,
            f"/api/{AUTH_SERVICE}/json",
            server="xenx-reference",
        )
        all_targets["g"] = Target(
            "g",
            f"XenX at {args.reference} (reference), IPs",
            base + 5,
            f"/api/{PUBLIC_SERVICE}/json",
            client_ips=args.callers,
            server="xenx-reference",
        )
    targets = [all_targets[k] for k in "abcdefghi" if k in args.keys]

    machine = machine_info()
    load_before = loadavg()
    log(
        f"machine: {machine['nproc']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB, Linux {machine['kernel']}"
    )
    log(
        f"software: Python {machine['python']}, Django {machine['django']}, "
        f"gunicorn {machine['gunicorn']}, django-revproxy {machine['django_revproxy']}, "
        f"urllib3 {machine['urllib3']}, nginx {machine['nginx']}, wrk {machine['wrk']}"
    )
    log(f"load average before: {load_before}")
    if args.xenx_extra:
        log(f"XenX extra settings: {args.xenx_extra}")

    ports = sorted({upstream_port, *(t.port for t in targets)})
    busy = [p for p in ports if not port_free(p)]
    if busy:
        raise BenchError(f"ports already in use on 127.0.0.1: {busy}")

    own_tmp = not os.environ.get("BENCH_TMP")
    tmp = Path(os.environ.get("BENCH_TMP") or tempfile.mkdtemp(prefix="xenx-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    pidfile = tmp / "pids"
    procs = Processes(tmp, pidfile)
    problems: list[str] = []
    percall: dict[str, dict] = {}
    instructions: dict[str, int] = {}
    try:
        log(f"starting servers (logs in {tmp})")
        start_nginx(
            procs,
            tmp,
            "upstream",
            UPSTREAM_SERVER.format(port=upstream_port, body=BODY),
        )
        if "a" in args.keys:
            start_nginx(
                procs,
                tmp,
                "nginx-proxy",
                PROXY_SERVER.format(port=base + 1, upstream_port=upstream_port),
            )
        site_env = clean_env()
        site_env.update(
            DJANGO_SETTINGS_MODULE="benchsite.settings",
            BENCH_UPSTREAM=f"http://127.0.0.1:{upstream_port}/",
            BENCH_BODY=BODY,
            SECRET_KEY=secrets.token_urlsafe(64),
        )
        for key, name in (("b", "revproxy"), ("c", "bare-django")):
            if key in args.keys:
                start_gunicorn(
                    procs,
                    tmp,
                    name,
                    all_targets[key].port,
                    "benchsite.wsgi:application",
                    env=site_env,
                    cwd=BENCH,
                )
        env = None
        if XENX_KEYS & set(args.keys):
            env = xenx_env(secrets.token_urlsafe(64))
            env.update(args.xenx_extra)
            log(
                f"preparing XenX: database, migrations, services, {args.callers:,} "
                "users and their tokens"
            )
            tokens_file = tmp / "tokens.txt"
            provider_file = tmp / "provider-tokens.txt" if "h" in args.keys else None
            machines_file = tmp / "machine-tokens.txt" if "i" in args.keys else None
            prepare_xenx(
                env,
                upstream_port,
                args.callers,
                tokens_file,
                provider_file=provider_file,
                machines_file=machines_file,
            )
            all_targets["d"].tokens_file = tokens_file
            all_targets["h"].tokens_file = provider_file
            all_targets["i"].tokens_file = machines_file
            start_gunicorn(
                procs, tmp, "xenx", base + 4, "xenx.wsgi:application", env=env, cwd=ROOT
            )
            if args.reference:
                reference_env = start_reference(procs, tmp, args.reference, env, base)
                all_targets["f"].tokens_file = tokens_file
        for port in ports:
            wait_for_port(port, procs)

        log("checking every target answers 200 with the upstream's body")
        status, _, body = http_get(upstream_port, "/json")
        if status != 200 or body != BODY.encode():
            raise BenchError(f"upstream answered {status} {body!r}")
        for t in targets:
            check_target(t)

        total = args.rounds * len(CONNECTIONS) * len(targets)
        log(
            f"load: {args.rounds} round(s) x {len(CONNECTIONS)} connection counts x "
            f"{len(targets)} targets = {total} runs of {args.seconds:g} s "
            f"(+{args.warmup:g} s warm-up each)"
        )
        log(
            f"{'round':>5} {'conns':>5} {'target':<40} {'req/s':>10} {'p50 ms':>8} "
            f"{'p99 ms':>8} {'load avg':>16} {'others':>6}"
        )
        for rnd in range(1, args.rounds + 1):
            for conns in CONNECTIONS:
                for t in targets:
                    procs.check_alive()
                    if args.warmup > 0:
                        run_wrk(t, conns, args.warmup)
                    load = loadavg()
                    parts = {
                        procs.pid_of(t.server): "server",
                        procs.pid_of("upstream"): "upstream",
                    }
                    with CpuMeter(procs.pgids(), parts) as cpu:
                        res = run_wrk(t, conns, args.seconds)
                    res.update(
                        round=rnd,
                        conns=conns,
                        target=t.key,
                        loadavg=load,
                        cpu_busy_cores=round(cpu.busy_cores, 2),
                        cpu_ours_cores=round(cpu.ours_cores, 2),
                        cpu_others_cores=round(cpu.others_cores, 2),
                        cpu_steal_cores=round(cpu.steal_cores, 2),
                        cpu_us_per_request=cpu.per_request_us(res["requests"]),
                    )
                    t.runs.append(res)
                    flag = ""
                    if res["non_2xx_3xx"] or res["socket_errors"]:
                        flag = (
                            f"  !! {res['non_2xx_3xx']} non-2xx/3xx, "
                            f"{res['socket_errors']} socket errors"
                        )
                        problems.append(
                            f"round {rnd}, {conns} conns, ({t.key}): {flag.strip('! ')}"
                        )
                    log(
                        f"{rnd:>5} {conns:>5} ({t.key}) {t.label:<36} "
                        f"{res['rps']:>10,.0f} {res['p50_ms']:>8.2f} "
                        f"{res['p99_ms']:>8.2f} {load:>16} "
                        f"{res['cpu_others_cores']:>6.2f}{flag}"
                    )

        def env_of(t):
            if t.key in "bc":
                return site_env
            return reference_env if t.key in "fg" else env

        if args.percall:
            log("in-process cost per call (one thread, no client socket)")
            for t in targets:
                if t.key == "a":
                    continue
                percall[t.key] = measure_percall(t, env_of(t))
                log(
                    f"  ({t.key}) {t.label:<36} cpu {percall[t.key]['cpu_us']:7.0f} us"
                    f"   wall {percall[t.key]['wall_us']:7.0f} us"
                )
        if args.instructions:
            log("instructions per call in process (callgrind, one thread)")
            for t in targets:
                if t.key == "a":
                    continue
                instructions[t.key] = measure_instructions(t, env_of(t))["instructions"]
                log(
                    f"  ({t.key}) {t.label:<36} {instructions[t.key]:>12,} instructions"
                )
        if args.profile_keys:
            log("profiling (extra runs, not counted in the figures)")
            for key in args.profile_keys:
                profile_target(all_targets[key], procs, args.seconds)
        if args.keep_servers:
            log(f"keeping the servers up {args.keep_servers:g} s (--keep-servers)")
            time.sleep(args.keep_servers)
    finally:
        procs.stop_all()
        if args.reference:
            remove_reference(tmp)
        if pidfile.exists():
            pidfile.unlink()
        if own_tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    summary, ratios = summarize(targets)
    result = {
        "date": started_at,
        "machine": machine,
        "loadavg_before": load_before,
        "loadavg_after": loadavg(),
        "elapsed_seconds": round(time.monotonic() - started, 1),
        "config": {
            "rounds": args.rounds,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "connections": list(CONNECTIONS),
            "wrk_threads": WRK_THREADS,
            "gunicorn": GUNICORN_ARGS,
            "body": BODY,
            "quick": args.quick,
            "xenx_env_extra": args.xenx_extra,
            "callers": args.callers,
            "limits": [CLIENT_LIMIT, ANONYMOUS_LIMIT],
        },
        "targets": {t.key: {"label": t.label, "url": t.url} for t in targets},
        "summary": summary,
        "ratios": ratios,
        "runs": [r for t in targets for r in t.runs],
        "percall": percall,
        "instructions": instructions,
        "reference": args.reference,
        "problems": problems,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(render_markdown(result))
    print_table(result)
    log(
        "others = CPU cores busy with work other than this run's servers, Redis and wrk "
        f"(of {machine['nproc']}): above ~0.2 the figures are disturbed."
    )
    log(
        f"\nwrote {RESULTS / 'latest.json'} and latest.md "
        f"({result['elapsed_seconds']:.0f} s)"
    )
    if problems:
        log("\nPROBLEMS (the figures above include failed requests):")
        for p in problems:
            log(f"  {p}")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"\nBENCH FAILED: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
