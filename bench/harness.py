"""The XenX gateway benchmark (run it through ``bench/run``).

One run: an upstream nginx answering a small JSON body with keep-alive, five targets in
front of it or beside it, and wrk load against each, interleaved over rounds so that a
change in the machine's load hits every target alike. Reports medians of requests/s and
p50/p99 latency per target at each connection count, and the ratios of the XenX targets
to the Django peers. See README.md, section "Benchmark".
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
WRK_SCRIPT = BENCH / "wrk.lua"

BODY = '{"ok":true,"from":"upstream","items":[1,2,3]}'
# The same for every Django target (b, c, d/e): the issue fixes these.
GUNICORN_ARGS = ["-k", "gthread", "--workers", "2", "--threads", "8", "--reuse-port"]
WRK_THREADS = 2
CONNECTIONS = (32, 4)
HARD_LIMIT_SECONDS = 600

# Overridable so two runs on one machine keep apart (database dropped, Redis db flushed).
PG_DB = os.environ.get("BENCH_PG_DB", "xenx_bench")
PG_URL = f"postgres://postgres@127.0.0.1:5432/{PG_DB}"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")
AUTH_SERVICE = "bench-auth"
PUBLIC_SERVICE = "bench-public"
BENCH_USER = "bench-user@example.com"
NEVER_LIMIT = "1000000000/m"  # high enough never to trigger, but still counted


class BenchError(Exception):
    """A failure that must stop the run loudly."""


@dataclass
class Target:
    key: str
    label: str
    port: int
    path: str
    token: bool = False  # send the bench user's access token
    server: str = ""  # the process serving it (for --profile)
    runs: list[dict] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"


def log(msg: str = "") -> None:
    print(msg, flush=True)


# --- processes ---------------------------------------------------------------------


class Processes:
    """Every process this run starts, each in its own process group, stopped at exit.
    Their pids are also written to ``pidfile`` so that bench/run's EXIT trap can stop
    them if this interpreter dies without running its ``finally``."""

    def __init__(self, tmp: Path, pidfile: Path | None):
        self.tmp = tmp
        self.pidfile = pidfile
        self.procs: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], *, env=None, cwd=None):
        logfile = open(self.tmp / f"{name}.out", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            cmd,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        logfile.close()
        self.procs.append((name, proc))
        if self.pidfile:
            with open(self.pidfile, "a") as fh:
                fh.write(f"{proc.pid}\n")
        return proc

    def pgids(self) -> set[int]:
        return {p.pid for _, p in self.procs if p.poll() is None}

    def pid_of(self, name: str) -> int | None:
        return next((p.pid for n, p in self.procs if n == name), None)

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                raise BenchError(
                    f"{name} exited with status {proc.returncode}; see {self.tmp}/{name}.*"
                )

    def stop_all(self) -> None:
        # SIGINT is the quick shutdown of both nginx and gunicorn.
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + 8
        for _, proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        for _, proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group too
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=2)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        # As the servers do: sockets of earlier runs in TIME_WAIT do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_for_port(port: int, procs: Processes, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def http_get(port: int, path: str, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def run(cmd: list[str], *, env=None, cwd=None, what: str) -> str:
    proc = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )
    if proc.returncode != 0:
        raise BenchError(
            f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


# --- machine -----------------------------------------------------------------------


def _version(cmd: list[str], pattern: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    match = re.search(pattern, out.stdout + out.stderr)
    return match.group(1) if match else "?"


def _dist(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict:
    cpu_model = "?"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": _dist("Django"),
        "gunicorn": _dist("gunicorn"),
        "django_revproxy": _dist("django-revproxy"),
        "urllib3": _dist("urllib3"),
        "requests": _dist("requests"),
        "nginx": _version(["nginx", "-v"], r"nginx/(\S+)"),
        "wrk": _version(["wrk", "-v"], r"wrk (\S+)"),
    }


def loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_times() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal, steal


def _group_jiffies(pgids: set[int]) -> int:
    """utime + stime of every live process in the given process groups."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                raw = fh.read()
        except OSError:
            continue
        rest = raw[raw.rfind(")") + 2 :].split()
        if int(rest[2]) in pgids:  # pgrp
            total += int(rest[11]) + int(rest[12])  # utime, stime
    return total


class CpuMeter:
    """How busy the machine was during a run, and how much of that was ours (the
    servers of this run and wrk) rather than other work on the machine."""

    def __init__(self, pgids: set[int]):
        self.pgids = pgids

    def __enter__(self):
        self.t0 = time.monotonic()
        self.m0 = _cpu_times()
        self.g0 = _group_jiffies(self.pgids)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.c0 = ru.ru_utime + ru.ru_stime
        return self

    def __exit__(self, *exc):
        wall = time.monotonic() - self.t0
        busy0, total0, steal0 = self.m0
        busy1, total1, steal1 = _cpu_times()
        ncpu = os.cpu_count() or 1
        ticks = max(1, total1 - total0)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = (_group_jiffies(self.pgids) - self.g0) / CLK_TCK
        ours += ru.ru_utime + ru.ru_stime - self.c0  # wrk, once it has exited
        self.busy_cores = ncpu * (busy1 - busy0) / ticks
        self.steal_cores = ncpu * (steal1 - steal0) / ticks
        self.ours_cores = ours / max(wall, 1e-6)
        self.others_cores = max(0.0, self.busy_cores - self.ours_cores)
        return False


# --- servers -----------------------------------------------------------------------

NGINX_COMMON = """
daemon off;
worker_processes auto;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}.error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/{name}-body;
    proxy_temp_path {tmp}/{name}-proxy;
    fastcgi_temp_path {tmp}/{name}-fastcgi;
    uwsgi_temp_path {tmp}/{name}-uwsgi;
    scgi_temp_path {tmp}/{name}-scgi;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
{body}
}}
"""

UPSTREAM_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        location = /json {{
            default_type application/json;
            return 200 '{body}';
        }}
    }}
"""

PROXY_SERVER = """
    upstream bench_upstream {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /api/echo/ {{
            proxy_pass http://bench_upstream/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""


def start_nginx(procs: Processes, tmp: Path, name: str, server_block: str) -> None:
    conf = tmp / f"{name}.conf"
    conf.write_text(NGINX_COMMON.format(tmp=tmp, name=name, body=server_block))
    run(["nginx", "-t", "-q", "-p", str(tmp), "-e", str(tmp / f"{name}.error.log"),
         "-c", str(conf)], what=f"nginx -t ({name})")  # fmt: skip
    procs.start(
        name,
        [
            "nginx",
            "-p",
            str(tmp),
            "-e",
            str(tmp / f"{name}.error.log"),
            "-c",
            str(conf),
        ],
    )


def start_gunicorn(
    procs: Processes, tmp: Path, name: str, port: int, app: str, *, env, cwd
) -> None:
    procs.start(
        name,
        [
            sys.executable,
            "-m",
            "gunicorn",
            *GUNICORN_ARGS,
            "--bind",
            f"127.0.0.1:{port}",
            "--chdir",
            str(cwd),
            "--error-logfile",
            str(tmp / f"{name}.error.log"),
            "--log-level",
            "warning",
            app,
        ],
        env=env,
        cwd=cwd,
    )


def clean_env() -> dict:
    env = dict(os.environ)
    for key in list(env):
        if key.startswith(("DJANGO_", "XENX_", "BENCH_")) or key in {
            "DATABASE_URL",
            "REDIS_URL",
            "SECRET_KEY",
            "DEBUG",
            "ALLOWED_HOSTS",
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "all_proxy",
            "ALL_PROXY",
        }:
            del env[key]
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def xenx_env(secret_key: str) -> dict:
    env = clean_env()
    env.update(
        DJANGO_SETTINGS_MODULE="xenx.settings.production",
        DEBUG="0",
        SECRET_KEY=secret_key,
        SECURE_SSL_REDIRECT="0",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=PG_URL,
        REDIS_URL=REDIS_URL,
        LOG_LEVEL="WARNING",
        WEB_CONCURRENCY="2",  # what the gunicorn below runs; XenX's checks judge it
        XENX_ACCESS_TOKEN_MINUTES="120",  # outlives the run
    )
    return env


def prepare_xenx(env: dict, upstream_port: int) -> str:
    """A fresh database and Redis db, the two services and the user; returns a token."""
    for cmd, what in (
        (["pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"], "PostgreSQL"),
        (["redis-cli", "-u", REDIS_URL, "ping"], "Redis"),
    ):
        try:
            ok = subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if not ok:
            raise BenchError(
                f"{what} does not answer on 127.0.0.1 (targets d and e need PostgreSQL "
                "on :5432 with user postgres and Redis on :6379; .ci/run shows how to "
                "start both), or leave them out: --targets a,b,c"
            )
    manage = [sys.executable, str(ROOT / "manage.py")]
    psql = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qc"]
    run([*psql, f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"], what="drop db")
    run([*psql, f"CREATE DATABASE {PG_DB}"], what="create db")
    run(["redis-cli", "-u", REDIS_URL, "flushdb"], what="flush the bench redis db")
    run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, what="migrate")
    upstream = f"http://127.0.0.1:{upstream_port}"
    # XenX's active health checks GET --health-path every 10 s; the upstream answers
    # only /json (a 404 would take the instance out).
    run(
        [*manage, "register_service", AUTH_SERVICE, upstream, "--health-path", "/json",
         "--roles", "client", "--rate-limit", f"client={NEVER_LIMIT}"],
        env=env, cwd=ROOT, what="register_service (authenticated)",
    )  # fmt: skip
    run(
        [*manage, "register_service", PUBLIC_SERVICE, upstream, "--public",
         "--health-path", "/json", "--rate-limit", f"anonymous={NEVER_LIMIT}"],
        env=env, cwd=ROOT, what="register_service (public)",
    )  # fmt: skip
    run(
        [*manage, "create_user", BENCH_USER, "--role", "client",
         "--password", secrets.token_urlsafe(16)],
        env=env, cwd=ROOT, what="create_user",
    )  # fmt: skip
    code = (
        "from accounts.models import User; from accounts.tokens import issue_tokens; "
        f"print('BENCH_TOKEN=' + issue_tokens(User.objects.get(email={BENCH_USER!r}),"
        " mfa=False)['access'])"
    )
    out = run([*manage, "shell", "-c", code], env=env, cwd=ROOT, what="issue token")
    match = re.search(r"^BENCH_TOKEN=(\S+)$", out, re.M)
    if not match:
        raise BenchError(f"no token in the shell's output: {out!r}")
    return match.group(1)


# --- checks and load ---------------------------------------------------------------


def check_target(target: Target, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if target.token else {}
    status, resp_headers, body = http_get(target.port, target.path, headers)
    if status != 200 or body != BODY.encode():
        raise BenchError(
            f"({target.key}) {target.url} answered {status} {body[:300]!r}; "
            f"expected 200 {BODY!r}"
        )
    if target.key in ("d", "e"):
        lowered = {k.lower(): v for k, v in resp_headers.items()}
        if "x-ratelimit-limit" not in lowered:
            raise BenchError(
                f"({target.key}) {target.url} has no X-RateLimit-Limit header: the call "
                "is not rate limited as the benchmark claims"
            )
    if target.token:
        status, _, body = http_get(target.port, target.path)
        if status != 401:
            raise BenchError(
                f"({target.key}) {target.url} without a token answered {status} "
                f"{body[:200]!r}; expected 401: the call is not authenticated"
            )
    log(f"  ({target.key}) {target.url}: 200, expected body")


RESULT_RE = re.compile(r"^BENCH_RESULT (.*)$", re.M)


def run_wrk(target: Target, conns: int, seconds: float, token: str | None) -> dict:
    env = dict(os.environ)
    env["BENCH_TOKEN"] = token if (target.token and token) else ""
    cmd = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{conns}",
        f"-d{seconds:g}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        target.url,
    ]
    proc = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 30
    )
    match = RESULT_RE.search(proc.stdout)
    if proc.returncode != 0 or not match:
        raise BenchError(f"wrk failed on {target.url}:\n{proc.stdout}\n{proc.stderr}")
    fields = {k: float(v) for k, v in (kv.split("=") for kv in match.group(1).split())}
    seconds_run = fields["duration_us"] / 1e6
    errors = int(
        fields["connect"] + fields["read"] + fields["write"] + fields["timeout"]
    )
    return {
        "rps": fields["requests"] / seconds_run,
        "p50_ms": fields["p50_us"] / 1000,
        "p90_ms": fields["p90_us"] / 1000,
        "p99_ms": fields["p99_us"] / 1000,
        "max_ms": fields["max_us"] / 1000,
        "requests": int(fields["requests"]),
        "non_2xx_3xx": int(fields["status"]),
        "socket_errors": errors,
        "seconds": round(seconds_run, 2),
    }


# --- report ------------------------------------------------------------------------


def summarize(targets: list[Target]) -> tuple[dict, dict]:
    summary: dict = {}
    for conns in CONNECTIONS:
        per = {}
        for t in targets:
            runs = [r for r in t.runs if r["conns"] == conns]
            if not runs:
                continue
            per[t.key] = {
                "label": t.label,
                "rps": round(statistics.median(r["rps"] for r in runs), 1),
                "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 3),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 3),
                "others_cores": round(
                    statistics.median(r.get("cpu_others_cores", 0) for r in runs), 2
                ),
                "rounds": len(runs),
                "rps_each": [round(r["rps"], 1) for r in runs],
            }
        summary[str(conns)] = per
    ratios: dict = {}
    for conns, per in summary.items():
        ratios[conns] = {}
        for num in ("d", "e"):
            for den in ("b", "c"):
                if num in per and den in per and per[den]["rps"]:
                    ratios[conns][f"{num}/{den}"] = round(
                        per[num]["rps"] / per[den]["rps"], 3
                    )
    return summary, ratios


def render_markdown(result: dict) -> str:
    m = result["machine"]
    lines = [
        f"# XenX benchmark, {result['date']}",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"Linux {m['kernel']}; Python {m['python']}, Django {m['django']}, "
        f"gunicorn {m['gunicorn']}, django-revproxy {m['django_revproxy']}, "
        f"urllib3 {m['urllib3']}, nginx {m['nginx']}, wrk {m['wrk']}.",
        f"Load average before the run: {result['loadavg_before']}; "
        f"after: {result['loadavg_after']}.",
        f"Rounds: {result['config']['rounds']}, {result['config']['seconds']} s per run "
        f"after {result['config']['warmup']} s warm-up, wrk -t{WRK_THREADS}; "
        'figures are medians over the rounds. "others\' CPU": cores busy with '
        f"work other than this run's servers and wrk during the runs (of {m['nproc']}).",
        "",
    ]
    if result["config"].get("xenx_env_extra"):
        lines += [f"XenX extra settings: {result['config']['xenx_env_extra']}", ""]
    for conns, per in result["summary"].items():
        lines += [
            f"## {conns} connections",
            "",
            "| target | req/s | p50 ms | p99 ms | req/s each round | others' CPU |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for key, row in per.items():
            each = ", ".join(f"{x:,.0f}" for x in row["rps_each"])
            lines.append(
                f"| ({key}) {row['label']} | {row['rps']:,.0f} | {row['p50_ms']:.2f} "
                f"| {row['p99_ms']:.2f} | {each} | {row['others_cores']:.2f} |"
            )
        ratios = result["ratios"].get(conns, {})
        if ratios:
            lines += ["", "Ratios of req/s: " + ", ".join(
                f"{k} = {v:.2f}" for k, v in ratios.items())]  # fmt: skip
        lines.append("")
    if result.get("percall"):
        lines += [
            "## In-process cost per call (--percall)",
            "",
            "| target | CPU us/call | wall us/call |",
            "|---|---:|---:|",
        ]
        for key, row in result["percall"].items():
            label = result["targets"][key]["label"]
            lines.append(
                f"| ({key}) {label} | {row['cpu_us']:.0f} | {row['wall_us']:.0f} |"
            )
        lines.append("")
    if result["problems"]:
        lines += ["## Problems", ""] + [f"- {p}" for p in result["problems"]] + [""]
    return "\n".join(lines)


def print_table(result: dict) -> None:
    log()
    log(
        f"{'target':<44} {'conns':>5} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'others':>6}"
    )
    for conns, per in result["summary"].items():
        for key, row in per.items():
            log(
                f"({key}) {row['label']:<40} {conns:>5} {row['rps']:>10,.0f} "
                f"{row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['others_cores']:>6.2f}"
            )
        ratios = result["ratios"].get(conns, {})
        if ratios:
            log(
                f"    ratios at {conns} connections: "
                + ", ".join(f"{k} = {v:.2f}" for k, v in ratios.items())
            )
    for key, row in result.get("percall", {}).items():
        label = result["targets"][key]["label"]
        log(
            f"in process, one thread: ({key}) {label:<36} cpu {row['cpu_us']:7.0f} us/call"
            f"  wall {row['wall_us']:7.0f} us/call"
        )


def measure_percall(target: Target, env: dict) -> dict:
    cmd = [sys.executable, str(BENCH / "percall.py"), target.key, target.path]
    cmd += ["--expect", BODY]
    if target.token:
        cmd += ["--user", BENCH_USER]
    RESULTS.mkdir(exist_ok=True)
    cmd += ["--cprofile", str(RESULTS / f"percall-{target.key}.prof")]
    out = run(cmd, env=env, cwd=BENCH if target.key in "bc" else ROOT, what="percall")
    return {k: round(v, 1) for k, v in json.loads(out.strip().splitlines()[-1]).items()}


# --- profiling (--profile) -----------------------------------------------------------


def _frame_key(frame: str) -> tuple[str, str]:
    """'func (path/to/file.py:12)' -> ('func (file.py)', package or project dir)."""
    match = re.match(r"^(.*) \((.*?)(?::\d+)?\)$", frame)
    if not match:
        return frame, "?"
    func, path = match.groups()
    parts = path.split("/")
    if "site-packages" in parts:
        pkg = parts[parts.index("site-packages") + 1]
    elif path.startswith("<"):
        pkg = "stdlib"
    elif any(re.fullmatch(r"python3\.\d+", part) for part in parts):
        idx = next(i for i, p in enumerate(parts) if re.fullmatch(r"python3\.\d+", p))
        pkg = "stdlib:" + parts[idx + 1].removesuffix(".py")
    else:
        pkg = parts[0] if len(parts) > 1 else "project"
        try:
            rel = Path(path).resolve().relative_to(ROOT)
            pkg = rel.parts[0] if len(rel.parts) > 1 else "project"
        except ValueError:
            pass
    return f"{func} ({parts[-1]})", pkg


# Leaf frames that block (in C, without the GIL) rather than compute.
WAIT_LEAVES = {
    "_worker (thread.py)",
    "EpollSelector.select (selectors.py)",
    "PollSelector.select (selectors.py)",
    "SocketIO.readinto (socket.py)",
    "poll_wait_for_socket.<locals>.do_poll (wait.py)",
    "Condition.wait (threading.py)",
    "Event.wait (threading.py)",
    "Arbiter.sleep (arbiter.py)",
    "Connection.read_response (connection.py)",
    "SocketBuffer._read_from_socket (resp3.py)",
    "SocketBuffer._read_from_socket (socket.py)",
    "_read_from_socket (socket.py)",
}


def summarize_profile(raw: Path, top: int = 25) -> str:
    """Self and inclusive sample shares by function, and self share by package."""
    self_c: dict[str, int] = {}
    incl_c: dict[str, int] = {}
    pkg_c: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_frame_key(f) for f in stack.split(";")]
        frames = [f for f in frames if not f[0].startswith("process ")]
        if not frames:
            continue
        leaf, pkg = frames[-1]
        if leaf in WAIT_LEAVES:
            pkg = "(waiting)"
        self_c[leaf] = self_c.get(leaf, 0) + n
        pkg_c[pkg] = pkg_c.get(pkg, 0) + n
        for name in {f[0] for f in frames}:
            incl_c[name] = incl_c.get(name, 0) + n
    if not total:
        return "no samples"

    def table(counts: dict[str, int], title: str) -> list[str]:
        rows = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
        return [title] + [f"  {100 * c / total:5.1f}%  {k}" for k, c in rows]

    out = [
        f"{total} wall-clock samples of threads py-spy saw as active (blocking calls it "
        "missed count as (waiting)); for CPU shares use --percall's cProfile dump"
    ]
    out += table(pkg_c, "self time by package:")
    out += table(self_c, "self time by function:")
    out += table(incl_c, "inclusive time by function:")
    return "\n".join(out)


def profile_target(
    target: Target, procs: Processes, seconds: float, token: str | None
) -> Path | None:
    pid = procs.pid_of(target.server)
    if pid is None or target.server.startswith("nginx"):
        log(f"  ({target.key}) not a Python server: not profiled")
        return None
    RESULTS.mkdir(exist_ok=True)
    raw = RESULTS / f"profile-{target.key}.txt"
    cmd = [
        str(Path(sys.executable).parent / "py-spy"),
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--full-filenames",
        "--rate",
        "250",
        "--duration",
        f"{seconds + 1:g}",
        "--format",
        "raw",
        "--output",
        str(raw),
    ]
    spy = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    time.sleep(1.0)  # let it attach to the workers
    res = run_wrk(target, CONNECTIONS[0], seconds, token)
    try:
        _, err = spy.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
        _, err = spy.communicate()
    if spy.returncode != 0 or not raw.exists():
        raise BenchError(f"py-spy failed on ({target.key}): {err.decode()[-1000:]}")
    summary = summarize_profile(raw)
    (RESULTS / f"profile-{target.key}.summary.txt").write_text(summary + "\n")
    log(
        f"  ({target.key}) {res['rps']:,.0f} req/s under py-spy; "
        f"{raw} and profile-{target.key}.summary.txt"
    )
    return raw


# --- main --------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round of 3 s runs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--targets", default="a,b,c,d,e", help="comma-separated subset of a,b,c,d,e"
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
        "XENX_GATEWAY_RATE_BATCH=0 to count every call in Redis synchronously",
    )
    parser.add_argument(
        "--percall",
        action="store_true",
        help="after the load, the in-process cost per call of b, c, d, e (one thread, "
        "best of 3 x 1000 calls, CPU and wall microseconds; see bench/percall.py)",
    )
    parser.add_argument(
        "--profile",
        default="",
        metavar="KEYS",
        help="after the measured rounds, one extra run per target (e.g. b,d) under "
        "py-spy; writes bench/results/profile-KEY.txt (collapsed stacks) and a summary",
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
    if not keys or any(k not in "abcde" for k in keys):
        parser.error("--targets takes letters among a,b,c,d,e")
    args.keys = keys
    args.xenx_extra = {}
    for item in args.xenx_env:
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            parser.error(f"--xenx-env takes NAME=VALUE, got {item!r}")
        args.xenx_extra[name] = value
    args.profile_keys = [k.strip() for k in args.profile.split(",") if k.strip()]
    if any(k not in keys for k in args.profile_keys):
        parser.error("--profile takes letters among the --targets")
    if args.rounds < 1 or args.seconds <= 0 or args.warmup < 0:
        parser.error("--rounds >= 1, --seconds > 0, --warmup >= 0")
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
    if estimate > HARD_LIMIT_SECONDS - 20:
        parser.error(
            f"this would take about {estimate:.0f} s; the run must stay under "
            f"{HARD_LIMIT_SECONDS} s: fewer rounds or shorter runs"
        )
    if args.port_base < 18500 or args.port_base + 4 > 18699:
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
            "XenX, authenticated + rate-limited",
            base + 4,
            f"/api/{AUTH_SERVICE}/json",
            token=True,
            server="xenx",
        ),
        "e": Target(
            "e",
            "XenX, public service",
            base + 4,
            f"/api/{PUBLIC_SERVICE}/json",
            server="xenx",
        ),
    }
    targets = [all_targets[k] for k in "abcde" if k in args.keys]

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
    token = None
    problems: list[str] = []
    percall: dict[str, dict] = {}
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
        if {"d", "e"} & set(args.keys):
            env = xenx_env(secrets.token_urlsafe(64))
            env.update(args.xenx_extra)
            log("preparing XenX: database, migrations, services, user, token")
            token = prepare_xenx(env, upstream_port)
            start_gunicorn(
                procs, tmp, "xenx", base + 4, "xenx.wsgi:application", env=env, cwd=ROOT
            )
        for port in ports:
            wait_for_port(port, procs)

        log("checking every target answers 200 with the upstream's body")
        status, _, body = http_get(upstream_port, "/json")
        if status != 200 or body != BODY.encode():
            raise BenchError(f"upstream answered {status} {body!r}")
        for t in targets:
            check_target(t, token)

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
                        run_wrk(t, conns, args.warmup, token)
                    load = loadavg()
                    with CpuMeter(procs.pgids()) as cpu:
                        res = run_wrk(t, conns, args.seconds, token)
                    res.update(
                        round=rnd,
                        conns=conns,
                        target=t.key,
                        loadavg=load,
                        cpu_busy_cores=round(cpu.busy_cores, 2),
                        cpu_ours_cores=round(cpu.ours_cores, 2),
                        cpu_others_cores=round(cpu.others_cores, 2),
                        cpu_steal_cores=round(cpu.steal_cores, 2),
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
        if args.percall:
            log("in-process cost per call (one thread, no client socket)")
            for t in targets:
                if t.key == "a":
                    continue
                percall[t.key] = measure_percall(t, site_env if t.key in "bc" else env)
                log(
                    f"  ({t.key}) {t.label:<36} cpu {percall[t.key]['cpu_us']:7.0f} us"
                    f"   wall {percall[t.key]['wall_us']:7.0f} us"
                )
        if args.profile_keys:
            log("profiling (extra runs, not counted in the figures)")
            for key in args.profile_keys:
                profile_target(all_targets[key], procs, args.seconds, token)
        if args.keep_servers:
            log(f"keeping the servers up {args.keep_servers:g} s (--keep-servers)")
            time.sleep(args.keep_servers)
    finally:
        procs.stop_all()
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
        },
        "targets": {t.key: {"label": t.label, "url": t.url} for t in targets},
        "summary": summary,
        "ratios": ratios,
        "runs": [r for t in targets for r in t.runs],
        "percall": percall,
        "problems": problems,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(render_markdown(result))
    print_table(result)
    log(
        "others = CPU cores busy with work other than this run's servers and wrk "
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
