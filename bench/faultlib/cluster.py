"""Two XenX nodes on one PostgreSQL database and one private Redis, upstream
instances, and the fault proxies between them: started, inspected, hurt and stopped.

Node A and node B are separate gunicorn masters (2 XenX gthread workers each) under the
production settings, both reaching PostgreSQL through ``pg_proxy`` (a FaultProxy) and a
private ``redis-server`` (append-only file, fsync always, so a SIGKILL loses nothing)
directly. The machine's own PostgreSQL server only hosts the database; its own Redis is
never used.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .faultproxy import RESET, FaultProxy
from .load import call

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from harness import Processes, clean_env, wait_for_port  # noqa: E402

PASSWORD = "faults-" + "correct-horse-battery-staple"
SPECIAL_USERS = (
    "logout",
    "deactivate",
    "rolechange",
    "limited",
    "login",
    "revoked",
    "worker",
)
# XenX's own worker class, as gunicorn.conf.py serves it in production
GUNICORN = ["-k", "xenx.worker.ThreadWorker", "--workers", "2", "--threads", "8"]


class ClusterError(Exception):
    """The cluster could not be started as asked."""


def free_ports(count: int) -> list[int]:
    """``count`` ports the kernel hands out now (for the tests)."""
    socks, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


@dataclass
class Ports:
    nodes: list[int]  # node A, node B
    upstreams: list[int]  # three instances
    pg_proxy: int
    breaker: int  # a FaultProxy in RESET mode listed as an instance of "flaky"
    redis: int

    @classmethod
    def from_base(cls, base: int, redis: int) -> Ports:
        return cls([base, base + 1], [base + 2, base + 3, base + 4], base + 5,
                   base + 6, redis)  # fmt: skip

    @classmethod
    def ephemeral(cls) -> Ports:
        p = free_ports(8)
        return cls(p[0:2], p[2:5], p[5], p[6], p[7])

    def all(self) -> list[int]:
        return [*self.nodes, *self.upstreams, self.pg_proxy, self.breaker, self.redis]


def pg_server_url() -> str:
    """Where PostgreSQL is: ``FAULTS_PG_URL``, else the host of a postgres
    ``DATABASE_URL``, else postgres@127.0.0.1:5432."""
    url = os.environ.get("FAULTS_PG_URL") or ""
    if not url:
        db = os.environ.get("DATABASE_URL", "")
        url = db if db.startswith(("postgres://", "postgresql://")) else ""
    parts = urlsplit(url or "postgres://postgres@127.0.0.1:5432/postgres")
    return f"postgres://{parts.netloc}"


def pg_reachable(server: str) -> str | None:
    """None when PostgreSQL answers at ``server``, else the reason."""
    try:
        import psycopg2
    except ImportError:
        return "psycopg2 is not installed"
    try:
        psycopg2.connect(server + "/postgres", connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001
        return f"PostgreSQL at {server} does not answer: {str(exc).strip()[:200]}"
    return None


def _psql(server: str, *statements: str) -> None:
    import psycopg2

    conn = psycopg2.connect(server + "/postgres", connect_timeout=5)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


@dataclass
class Cluster:
    ports: Ports
    tmp: Path
    db_name: str = "xenx_faults"
    pg_server: str = field(default_factory=pg_server_url)
    users: int = 40
    limit: int = 40  # the "limited" service: client=LIMIT/h, counted exactly
    extra_env: dict = field(default_factory=dict)

    def __post_init__(self):
        self.procs = Processes(self.tmp, self.tmp / "pids")
        self.proxies: list[FaultProxy] = []
        self.seed: dict = {}
        self.redis_proc: subprocess.Popen | None = None

    # --- life cycle -----------------------------------------------------------------

    def start(self) -> Cluster:
        reason = pg_reachable(self.pg_server)
        if reason:
            raise ClusterError(reason)
        self.start_redis()
        pg = urlsplit(self.pg_server)
        self.pg_proxy = self._proxy(self.ports.pg_proxy, pg.port or 5432, "pg")
        self.breaker = self._proxy(self.ports.breaker, self.ports.upstreams[0], "brk")
        self.breaker.set_mode(RESET)
        _psql(self.pg_server, f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)',
              f'CREATE DATABASE "{self.db_name}"')  # fmt: skip
        self.env = self._node_env()
        self._manage(["migrate", "--noinput", "-v", "0"], what="migrate")
        self._seed()
        for i in range(len(self.ports.upstreams)):
            self.start_upstream(i)
        for i, port in enumerate(self.ports.nodes):
            self.procs.start(
                f"node{'AB'[i]}",
                [sys.executable, "-m", "gunicorn", *GUNICORN,
                 "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT),
                 "--graceful-timeout", "3", "--log-level", "warning",
                 "xenx.wsgi:application"],
                env=self.env, cwd=ROOT,
            )  # fmt: skip
        for port in [*self.ports.upstreams, *self.ports.nodes]:
            wait_for_port(port, self.procs, timeout=60)
        self.wait_serving()
        return self

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.stop()
        self.procs.stop_all()
        with contextlib.suppress(Exception):
            _psql(
                self.pg_server, f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'
            )

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _proxy(self, listen: int, target: int, name: str) -> FaultProxy:
        proxy = FaultProxy(listen, target, name)
        self.proxies.append(proxy)
        return proxy

    def _node_env(self) -> dict:
        env = clean_env()
        pg = urlsplit(self.pg_server)
        user = f"{pg.username}@" if pg.username else ""
        env.update(
            DJANGO_SETTINGS_MODULE="xenx.settings.production",
            DEBUG="0",
            SECRET_KEY=secrets.token_urlsafe(64),
            SECURE_SSL_REDIRECT="0",
            ALLOWED_HOSTS="127.0.0.1",
            DATABASE_URL=f"postgres://{user}127.0.0.1:{self.ports.pg_proxy}/{self.db_name}",
            REDIS_URL=f"redis://127.0.0.1:{self.ports.redis}/0",
            XENX_CACHE_PREFIX="faults",
            LOG_LEVEL="WARNING",
            WEB_CONCURRENCY="2",
            GUNICORN_THREADS="8",
            XENX_ACCESS_TOKEN_MINUTES="120",
            # The scenarios log in a few times from one address.
            XENX_RATE_LIMITS=json.dumps({"login_ip": "10000/m", "login_account": "10000/m"}),
        )  # fmt: skip
        env.update(self.extra_env)
        return env

    def _manage(self, args: list[str], *, what: str, extra: dict | None = None) -> str:
        env = dict(self.env, **(extra or {}))
        # Setup goes straight to PostgreSQL: the proxy may be hurt later, not now.
        pg = urlsplit(self.pg_server)
        user = f"{pg.username}@" if pg.username else ""
        env["DATABASE_URL"] = (
            f"postgres://{user}{pg.hostname}:{pg.port or 5432}/{self.db_name}"
        )
        proc = subprocess.run([sys.executable, str(ROOT / "manage.py"), *args],
                              env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        if proc.returncode != 0:
            raise ClusterError(
                f"{what} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
            )
        return proc.stdout

    def _seed(self) -> None:
        cfg = {
            "password": PASSWORD,
            "users": self.users,
            "special": list(SPECIAL_USERS),
            "limit": self.limit,
            "upstreams": [f"http://127.0.0.1:{p}" for p in self.ports.upstreams],
            "breaker_url": f"http://127.0.0.1:{self.ports.breaker}",
        }
        script = BENCH / "faultlib" / "seed.py"
        out = self._manage(
            ["shell", "-c", f"import runpy; runpy.run_path({str(script)!r})"],
            what="seed", extra={"FAULTS_SEED": json.dumps(cfg)},
        )  # fmt: skip
        line = next(x for x in out.splitlines() if x.startswith("SEED_JSON "))
        self.seed = json.loads(line[len("SEED_JSON ") :])

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Until both nodes proxy an authenticated call."""
        deadline = time.monotonic() + timeout
        token = self.seed["users"][0]["access"]
        for port in self.ports.nodes:
            while True:
                status, _, _, _ = call(port, "GET", "/api/echo/ping", token=token)
                if status == 200:
                    break
                if time.monotonic() > deadline:
                    raise ClusterError(f"node on {port} does not serve (last {status})")
                self.procs.check_alive()
                time.sleep(0.2)

    def query(self, sql: str) -> list[tuple]:
        """Rows of ``sql`` on the cluster's database, straight (not through the proxy)."""
        import psycopg2

        conn = psycopg2.connect(f"{self.pg_server}/{self.db_name}", connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            conn.close()

    # --- parts ----------------------------------------------------------------------

    @property
    def tokens(self) -> list[str]:
        return [u["access"] for u in self.seed["users"]]

    def node(self, i: int) -> int:
        return self.ports.nodes[i]

    def start_redis(self) -> None:
        self.redis_proc = self.procs.start(
            "redis",
            ["redis-server", "--port", str(self.ports.redis), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "yes", "--appendfsync", "always",
             "--dir", str(self.tmp), "--daemonize", "no", "--loglevel", "warning"],
        )  # fmt: skip
        wait_for_port(self.ports.redis, self.procs, timeout=15)

    def redis_signal(self, sig: int) -> None:
        os.kill(self.redis_proc.pid, sig)

    def kill_redis(self) -> None:
        self.redis_signal(signal.SIGKILL)
        self.redis_proc.wait(5)
        self._forget(self.redis_proc)

    def wipe_redis(self) -> None:
        """Delete the append-only file of a stopped Redis: it restarts empty."""
        import shutil

        shutil.rmtree(self.tmp / "appendonlydir", ignore_errors=True)

    def start_upstream(self, i: int) -> None:
        self.procs.start(
            f"upstream{i}",
            [sys.executable, str(BENCH / "faultlib" / "upstream.py"),
             str(self.ports.upstreams[i]), f"up{i}"],
        )  # fmt: skip

    def kill_upstream(self, i: int) -> None:
        name = f"upstream{i}"
        proc = next(p for n, p in self.procs.procs if n == name and p.poll() is None)
        proc.send_signal(signal.SIGKILL)
        proc.wait(5)
        self._forget(proc)

    def _forget(self, proc) -> None:
        """A process a scenario killed on purpose: no longer checked for life."""
        self.procs.procs = [(n, p) for n, p in self.procs.procs if p is not proc]

    def master_pid(self, node: int) -> int:
        return self.procs.pid_of(f"node{'AB'[node]}")

    def workers(self, node: int) -> list[int]:
        master = self.master_pid(node)
        try:
            with open(f"/proc/{master}/task/{master}/children") as fh:
                return sorted(int(x) for x in fh.read().split())
        except OSError:
            return []

    def all_workers(self) -> list[int]:
        return [w for n in range(len(self.ports.nodes)) for w in self.workers(n)]


def proc_stats(pid: int) -> dict | None:
    """RSS (KiB), threads and open sockets of a process, from /proc."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            status = dict(line.split(":", 1) for line in fh if ":" in line)
        sockets = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                    sockets += 1
    except OSError:
        return None
    return {
        "rss_kib": int(status["VmRSS"].split()[0]),
        "threads": int(status["Threads"]),
        "sockets": sockets,
    }
