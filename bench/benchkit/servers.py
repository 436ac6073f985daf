"""The servers under test: nginx (upstream and target a), gunicorn, XenX set-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .common import (
    ANONYMOUS_LIMIT,
    AUTH_SERVICE,
    CLIENT_LIMIT,
    GUNICORN_ARGS,
    PG_DB,
    PG_URL,
    PUBLIC_SERVICE,
    REDIS_URL,
    ROOT,
    BenchError,
    Processes,
    layout,
    run,
)

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
        # what the gunicorn below runs: XenX's checks judge it, and its pools are sized
        # by it (gunicorn.conf.py, read from the checkout, would say 8 threads)
        WEB_CONCURRENCY=str(layout()[0]),
        GUNICORN_THREADS=str(layout()[1]),
        XENX_ACCESS_TOKEN_MINUTES="120",  # outlives the run
        # wrk plays the load balancer in front: (e) rotates client addresses.
        XENX_TRUSTED_PROXIES="127.0.0.1",
    )
    return env


def prepare_xenx(
    env: dict,
    upstream_port: int,
    callers: int,
    tokens_file: Path,
    *,
    provider_file: Path | None = None,
    machines_file: Path | None = None,
) -> None:
    """A fresh database and Redis db, the two services, ``callers`` client users and
    their access tokens (written to ``tokens_file``); with ``provider_file``, the same
    users' access tokens from the OpenID provider (one registered application,
    authorization code), with ``machines_file`` one client-credentials token of each
    of ``callers`` machine clients allowed the authenticated service (bench/benchkit/
    mint.py)."""
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
         "--roles", "client", "--rate-limit", CLIENT_LIMIT],
        env=env, cwd=ROOT, what="register_service (authenticated)",
    )  # fmt: skip
    run(
        [*manage, "register_service", PUBLIC_SERVICE, upstream, "--public",
         "--health-path", "/json", "--rate-limit", ANONYMOUS_LIMIT],
        env=env, cwd=ROOT, what="register_service (public)",
    )  # fmt: skip
    mint = [sys.executable, str(ROOT / "bench" / "benchkit" / "mint.py"), str(callers),
            str(tokens_file)]  # fmt: skip
    expected = [f"BENCH_USERS={callers}"]
    if provider_file:
        mint += ["--provider", str(provider_file)]
        expected.append(f"BENCH_PROVIDER={callers}")
    if machines_file:
        mint += ["--machines", str(machines_file), AUTH_SERVICE]
        expected.append(f"BENCH_MACHINES={callers}")
    out = run(mint, env=env, cwd=ROOT, what="create the users and mint their tokens")
    if not all(line in out.split() for line in expected):
        raise BenchError(f"minting {callers} tokens failed: {out!r}")


# --- the reference (--reference REV) -------------------------------------------------


# The reference's cache key prefix: it shares the bench's Redis db (flushed at the
# start) and keeps its rate-limit counts, revocation records and breaker state apart.
REFERENCE_CACHE_PREFIX = "xenx-reference"
VERSION_KEY = "gw:registry:version"  # gateway.state.VERSION_KEY (not imported: bench)


def start_reference(procs, tmp: Path, rev: str, env: dict, base_port: int) -> dict:
    """XenX at git revision ``rev`` (a detached worktree in ``tmp``) on port base + 5,
    with this run's settings, database, services, users and tokens; its own cache key
    prefix in the same Redis db.
    Returns its environment (for --percall)."""
    path = tmp / "reference"
    run(["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        what=f"--reference {rev}")  # fmt: skip
    changed = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--quiet", rev, "--", "*/migrations/*"],
        capture_output=True,
    )
    if changed.returncode != 0:
        raise BenchError(
            f"--reference {rev}: its migrations differ from this checkout's; the two "
            "share one database, so compare revisions with the same migrations"
        )
    run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
        what="git worktree add (reference)")  # fmt: skip
    ref_env = dict(env, XENX_CACHE_PREFIX=REFERENCE_CACHE_PREFIX)
    # The registry version the set-up wrote under XenX's prefix, copied under the
    # reference's: each call's round trip then reads (and parses) one in both.
    version = run(["redis-cli", "-u", REDIS_URL, "GET", f"xenx:1:{VERSION_KEY}"],
                  what="read the registry version").strip()  # fmt: skip
    if version:
        run(["redis-cli", "-u", REDIS_URL, "SET",
             f"{REFERENCE_CACHE_PREFIX}:1:{VERSION_KEY}", version],
            what="the reference's registry version")  # fmt: skip
    start_gunicorn(procs, tmp, "xenx-reference", base_port + 5,
                   "xenx.wsgi:application", env=ref_env, cwd=path)  # fmt: skip
    ref_env["BENCH_CHECKOUT"] = str(path)  # where --percall imports it from
    return ref_env


def remove_reference(tmp: Path) -> None:
    path = tmp / "reference"
    if path.exists():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
            capture_output=True,
        )
