"""The fault scenarios. Each takes a started ``Cluster`` and a ``Timing`` and returns a
``Result``: named checks, each with what was measured, what is required and whether it
held. Every scenario runs under a background load (``load.Load``) over both nodes.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import faultproxy
from .cluster import PASSWORD, Cluster, proc_stats
from .load import ERROR_KEYS, Load, Rec, call, pct, summarize

# gthread's 8 request threads, the main thread, gunicorn's heartbeat, the in-process
# health checker and, during a probe round, its pool (one thread per instance: 3).
# Batching's flush thread, which the first cap counted, is gone.
THREAD_CAP = 8 + 1 + 1 + 1 + 3


@dataclass
class Timing:
    """How long the outages and the soak last (``--quick`` shortens them)."""

    redis_down: float = 10.0
    pg_down: float = 10.0
    upstream_down: float = 10.0
    soak: float = 600.0
    threads: int = 6
    rate: float = 20.0  # requests/s per load thread

    @classmethod
    def quick(cls) -> Timing:
        return cls(redis_down=10.0, pg_down=10.0, upstream_down=5.0, soak=30.0)


@dataclass
class Check:
    name: str
    measured: str
    required: str
    ok: bool


@dataclass
class Result:
    scenario: str
    checks: list[Check] = field(default_factory=list)
    load: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and bool(self.checks) and all(c.ok for c in self.checks)

    def check(self, name: str, measured, required: str, ok: bool) -> None:
        self.checks.append(Check(name, str(measured), required, bool(ok)))

    def failures(self) -> str:
        lines = [f"{c.name}: measured {c.measured}, required {c.required}"
                 for c in self.checks if not c.ok]  # fmt: skip
        if self.error:
            lines.append(self.error)
        return "\n".join(lines)


# --- helpers --------------------------------------------------------------------------


def body_ok(doc) -> bool:
    err = doc.get("error") if isinstance(doc, dict) else None
    return isinstance(err, dict) and set(err) == ERROR_KEYS


def code_of(doc) -> str:
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        return str(doc["error"].get("code"))
    if isinstance(doc, dict) and "exception" in doc:
        return doc["exception"]
    return ""


def poll_until(
    fn: Callable[[], bool], timeout: float, every: float = 0.02
) -> float | None:
    """Seconds until ``fn()`` is true, or None after ``timeout``."""
    t0 = time.monotonic()
    while True:
        if fn():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(every)


def settled_within(port: int, path: str, token: str, t_change: float, watch: float,
                   done: Callable[[int, dict], bool]) -> tuple[float | None, int]:  # fmt: skip
    """Watch ``path`` on ``port`` for ``watch`` seconds after ``t_change`` with calls
    on fresh connections (so every worker is asked): (seconds from the change until
    the last call that did not show it ended, or None when none showed it; calls that
    did not show it)."""
    last_old, seen, old = None, False, 0
    while time.monotonic() < t_change + watch:
        status, doc, _, _ = call(port, "GET", path, token=token)
        if done(status, doc or {}):
            seen = True
        else:
            old += 1
            last_old = time.monotonic() - t_change
        time.sleep(0.01)
    status, doc, _, _ = call(port, "GET", path, token=token)
    if not seen or not done(status, doc or {}):
        return None, old
    return (last_old or 0.0), old


def refused_within(port: int, path: str, token: str, t_change: float):
    """``settled_within`` for a revocation: the token refused (401 or 403)."""
    return settled_within(port, path, token, t_change, 1.5,
                          lambda status, doc: status in (401, 403))  # fmt: skip


def refusal(took: float | None, through: int, status: int) -> str:
    if took is None:
        return f"never refused ({status})"
    return f"last call through {took * 1000:.0f} ms after ({through} through; {status})"


def ms(seconds: float | None) -> str:
    return "never" if seconds is None else f"{seconds * 1000:.0f} ms"


def at(recs: list[Rec], t_ref: float) -> str:
    return ", ".join(f"{r.t0 - t_ref:+.2f}" for r in recs[:10])


def fmt_statuses(recs: list[Rec]) -> str:
    return (
        ", ".join(f"{k}: {v}" for k, v in summarize(recs)["statuses"].items()) or "none"
    )


def sample_workers(cluster: Cluster) -> dict[int, dict]:
    return {pid: s for pid in cluster.all_workers() if (s := proc_stats(pid))}


class Sampler:
    """Samples RSS, threads and sockets of every worker every ``every`` seconds."""

    def __init__(self, cluster: Cluster, every: float = 1.0):
        self.cluster, self.every = cluster, every
        self.samples: list[tuple[float, dict[int, dict]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), sample_workers(self.cluster)))
            self._stop.wait(self.every)

    def max_threads(self, t0: float = 0.0, t1: float = float("inf")) -> int:
        return max((s["threads"] for t, d in self.samples if t0 <= t < t1
                    for s in d.values()), default=0)  # fmt: skip


@contextlib.contextmanager
def background_load(cluster: Cluster, timing: Timing, result: Result, **kwargs):
    load = Load(cluster.ports.nodes, cluster.tokens, threads=timing.threads,
                rate=timing.rate, **kwargs).start()  # fmt: skip
    try:
        yield load
    finally:
        load.stop()
        result.load = summarize(load.records)


# --- 1. shared state across nodes ----------------------------------------------------


def shared_state(cluster: Cluster, timing: Timing) -> Result:
    res = Result("shared state across nodes")
    a, b = cluster.node(0), cluster.node(1)
    seed = cluster.seed
    admin = seed["admin"]["access"]
    with background_load(cluster, timing, res):
        # Each change made through A; B (whose workers have the token memoised) is
        # watched until it refuses the token. The role change is seen on a service
        # open to clients only.
        for label, key, service, method, path, body, want in (
            ("logout", "logout", "echo", "POST", "/api/auth/logout", "refresh", 204),
            ("deactivation", "deactivate", "echo", "POST", "/api/users/{id}/deactivate",
             None, 200),
            ("role change", "rolechange", "clients", "PATCH", "/api/users/{id}",
             {"role": "cpa"}, 200),
        ):  # fmt: skip
            user = seed[key]
            call(b, "GET", f"/api/{service}/warm", token=user["access"])
            status = call(a, method, path.format(id=user["id"]),
                          token=user["access"] if key == "logout" else admin,
                          body={"refresh": user["refresh"]} if body == "refresh"
                          else body)[0]  # fmt: skip
            took, through = refused_within(b, f"/api/{service}/x", user["access"],
                                           time.monotonic())  # fmt: skip
            res.check(f"{label} on A, token refused on B", refusal(took, through, status),
                      "≤ 1000 ms", status == want and took is not None and took <= 1.0)  # fmt: skip
        # One user's calls over both nodes, 8 threads at once: exactly the limit passes.
        token = seed["limited"]["access"]
        statuses: list[int] = []
        lock = threading.Lock()

        def burst(n: int) -> None:
            for i in range(15):
                st = call(cluster.node((n + i) % 2), "GET", "/api/limited/x",
                          token=token)[0]  # fmt: skip
                with lock:
                    statuses.append(st)

        threads = [threading.Thread(target=burst, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        passed, limited = statuses.count(200), statuses.count(429)
        res.check("rate limit over both nodes", f"{passed} passed, {limited} × 429 of "
                  f"{len(statuses)}", f"exactly {cluster.limit} passed, rest 429",
                  passed == cluster.limit and passed + limited == len(statuses))  # fmt: skip
        # Breaker: failures seen through A open the circuit; B sends nothing there.
        brk = cluster.breaker
        for _ in range(40):
            if brk.accepted >= 5:
                break
            call(a, "GET", "/api/flaky/x", token=cluster.tokens[0])
        opened = brk.accepted
        _, health, _, _ = call(b, "GET", "/health")
        flaky = (health or {}).get("checks", {}).get("services", {}).get("flaky", {})
        before = brk.accepted
        oks = sum(call(b, "GET", "/api/flaky/x", token=cluster.tokens[1])[0] == 200
                  for _ in range(20))  # fmt: skip
        sent = brk.accepted - before
        res.check("breaker opened on A holds on B", f"{sent} of 20 calls on B reached "
                  f"the instance ({opened} failures on A; {oks}/20 answered 200; "
                  f"B's /health: {flaky.get('healthy_instances')}/"
                  f"{flaky.get('total_instances')} healthy)", "0 reached it, 20 × 200",
                  sent == 0 and oks == 20 and opened >= 5)  # fmt: skip
        # Service change on A routes on B.
        call(b, "GET", "/api/moving/warm", token=cluster.tokens[2])
        new = f"http://127.0.0.1:{cluster.ports.upstreams[2]}"
        status, _, _, _ = call(a, "PATCH", "/api/services/moving", token=admin,
                               body={"instances": [{"url": new}]})  # fmt: skip

        took, old = settled_within(
            b, "/api/moving/x", cluster.tokens[2], time.monotonic(), 2.5,
            lambda status, doc: status == 200 and doc.get("instance") == "up2",
        )  # fmt: skip
        res.check("service change on A routes on B", "never" if took is None else
                  f"last call to the old instance {took * 1000:.0f} ms after ({old} "
                  f"calls; PATCH {status})", "≤ 2000 ms",
                  status == 200 and took is not None and took <= 2.0)  # fmt: skip
    return res


# --- 2. upstream instance killed -----------------------------------------------------


def healthy_instances(port: int, service: str) -> int | None:
    _, doc, _, _ = call(port, "GET", "/health")
    svc = (doc or {}).get("checks", {}).get("services", {}).get(service, {})
    return svc.get("healthy_instances")


def instance_killed(cluster: Cluster, timing: Timing) -> Result:
    res = Result("upstream instance killed")
    victim = 1
    with background_load(cluster, timing, res, post_every=4) as load:
        time.sleep(2)
        t_kill = time.monotonic()
        cluster.kill_upstream(victim)
        opened = poll_until(lambda: healthy_instances(cluster.node(1), "echo") == 2,
                            15.0, every=0.1)  # fmt: skip
        time.sleep(max(0.0, timing.upstream_down - (time.monotonic() - t_kill)))
        t_back = time.monotonic()
        cluster.start_upstream(victim)

        def served_again() -> bool:
            return any(r.instance == f"up{victim}" for r in load.between(t_back, 1e12))

        back = poll_until(served_again, 45.0, every=0.2)
        time.sleep(1)
        recs = load.between(t_kill - 0.5, time.monotonic())
    gets = [r for r in recs if r.method == "GET"]
    posts = [r for r in recs if r.method == "POST"]
    failed_gets = [r for r in gets if r.status != 200]
    failed_posts = [r for r in posts if r.status != 200]
    res.check("idempotent calls failed", f"{len(failed_gets)} of {len(gets)} GETs"
              + (f" ({fmt_statuses(failed_gets)} at {at(failed_gets, t_kill)} s "
                 f"after the kill; back at {t_back - t_kill:.1f} s)" if failed_gets
                 else ""),
              "0", not failed_gets)  # fmt: skip
    res.check("POSTs failed", f"{len(failed_posts)} of {len(posts)} "
              f"({fmt_statuses(failed_posts)})" if failed_posts else f"0 of {len(posts)}",
              "only 502 bad_gateway", all(r.status == 502 and r.code == "bad_gateway"
                                          and r.body_ok for r in failed_posts))  # fmt: skip
    res.check("circuit opened", ms(opened) + " after the kill (seen on node B)",
              "opens", opened is not None)  # fmt: skip
    res.check("traffic back after restart", (f"{back:.1f} s after the restart "
              f"(circuit opened for 30 s at the kill)") if back is not None else "never",
              "at the first trial (≤ 30 s open + 3 s)", back is not None and
              back <= max(0.0, 33.0 - (t_back - t_kill)) + 3.0)  # fmt: skip
    return res


# --- 3. Redis unavailable ------------------------------------------------------------


def audit_count(cluster: Cluster) -> int:
    return cluster.query("SELECT count(*) FROM accounts_auditevent")[0][0]


def redis_outage(cluster: Cluster, timing: Timing) -> Result:
    res = Result("Redis unavailable")
    a, b = cluster.node(0), cluster.node(1)
    seed = cluster.seed
    user = seed["login"]
    with background_load(cluster, timing, res) as load:
        # Made before the outage, must survive it: a login, a logout, audit events.
        st, doc, _, _ = call(a, "POST", "/api/auth/login",
                             body={"email": user["email"], "password": PASSWORD})  # fmt: skip
        login_token = (doc or {}).get("access", "")
        revoked = seed["revoked"]
        st2, _, _, _ = call(b, "POST", "/api/auth/logout", token=revoked["access"],
                            body={"refresh": revoked["refresh"]})  # fmt: skip
        audits = audit_count(cluster)
        res.check("before: login, logout", f"{st}, {st2}", "200, 204",
                  st == 200 and st2 == 204)  # fmt: skip
        time.sleep(1)
        threads_before = max(s["threads"] for s in sample_workers(cluster).values())
        with Sampler(cluster, 0.5) as sampler:
            # First half: Redis stalls (SIGSTOP: connections hang); second half: it is
            # gone (SIGKILL: connections refused), then restarted from its AOF.
            t0 = time.monotonic()
            cluster.redis_signal(signal.SIGSTOP)
            half = timing.redis_down / 2
            probes = probe(cluster, t0 + half - 0.5, redis_probes(cluster))
            time.sleep(max(0.0, t0 + half - time.monotonic()))
            cluster.kill_redis()
            probes += probe(
                cluster, t0 + timing.redis_down - 1.0, redis_probes(cluster)
            )
            time.sleep(max(0.0, t0 + timing.redis_down - time.monotonic()))
            t_end = time.monotonic()
            cluster.start_redis()
            t1 = time.monotonic()  # it accepts connections again
            time.sleep(4)
        recs = load.between(t0, t_end)
    bad = [r for r in recs if not (r.status == 503 and r.code == "service_unavailable"
                                   and r.body_ok)]  # fmt: skip
    slow = max((r.latency for r in recs), default=0.0)
    res.check("proxied calls during the outage", f"{len(recs) - len(bad)} of "
              f"{len(recs)} were 503 service_unavailable" + (f"; others: "
              f"{fmt_statuses(bad)} at {at(bad, t0)} s" if bad else ""),
              "all 503 with the error body", recs and not bad)  # fmt: skip
    slowest = max(recs, key=lambda r: r.latency, default=None)
    res.check("slowest answer during the outage", f"{slow * 1000:.0f} ms" + (
              f" (started {slowest.t0 - t0:+.2f} s, {slowest.status} {slowest.code})"
              if slowest else ""), "≤ 3000 ms (Redis timeouts 1 s)",
              slow <= 3.0)  # fmt: skip
    wrong = [p for p in probes if not p[1]]
    res.check("token API, login, /health/ready during it",
              f"{len(probes) - len(wrong)} of {len(probes)} as required"
              + (f"; wrong: {sorted(set(p[2] for p in wrong))}" if wrong else "")
              + f"; slowest {max((p[3] for p in probes), default=0) * 1000:.0f} ms",
              "503 service_unavailable (ready: 503)", probes and not wrong)  # fmt: skip
    peak = sampler.max_threads(t0, t1 + 0.5)
    res.check("threads per worker", f"max {peak} during (before {threads_before})",
              f"≤ {THREAD_CAP} (8 request threads, main, heartbeat, health checks + 3 probes)",
              peak <= THREAD_CAP)  # fmt: skip
    per_node = []
    for node in (0, 1):
        after = [r for r in load.between(t1, t1 + 4) if r.node == node]
        fails = [r for r in after if r.status != 200]
        last = max((r.t1 for r in fails), default=t1) - t1
        per_node.append((last, len(fails), len(after)))
    res.check("back to normal after Redis returns", "; ".join(
        f"node {'AB'[n]}: last failure {last * 1000:.0f} ms after ({f} of {c})"
        for n, (last, f, c) in enumerate(per_node)), "≤ 2000 ms, no restart",
        all(last <= 2.0 for last, _, _ in per_node))  # fmt: skip
    st_login = call(b, "GET", "/api/echo/x", token=login_token)[0]
    st_revoked = call(a, "GET", "/api/echo/x", token=revoked["access"])
    audits_after = audit_count(cluster)
    res.check("state made before the outage", f"login token {st_login}, logged-out "
              f"token {st_revoked[0]} {code_of(st_revoked[1])}, audit events "
              f"{audits} → {audits_after}", "200, 401 token_revoked, none lost",
              st_login == 200 and st_revoked[0] == 401
              and code_of(st_revoked[1]) == "token_revoked"
              and audits_after >= audits)  # fmt: skip
    # Redis restarted empty (its data lost): all revocation state comes back from
    # PostgreSQL (deactivation, role, logout-all; logout and ended sessions from
    # accounts.RevokedToken, rebuilt by the first reader of the empty cache).
    deact = seed["deactivate"]
    call(
        a, "POST", f"/api/users/{deact['id']}/deactivate", token=seed["admin"]["access"]
    )
    cluster.kill_redis()
    cluster.wipe_redis()
    cluster.start_redis()
    time.sleep(1.5)  # memo and fail-fast windows
    st_login = call(b, "GET", "/api/echo/x", token=login_token)[0]
    st_deact = call(b, "GET", "/api/echo/x", token=deact["access"])[0]
    st_logged_out = call(b, "GET", "/api/echo/x", token=revoked["access"])[0]
    res.check("Redis restarted empty", f"login token {st_login}, deactivated user "
              f"{st_deact}", "200, 401 (from PostgreSQL)",
              st_login == 200 and st_deact == 401)  # fmt: skip
    res.check("  logged-out access token after that", st_logged_out,
              "401 (rebuilt from PostgreSQL)", st_logged_out == 401)  # fmt: skip
    return res


def probe(cluster: Cluster, until: float, calls) -> list[tuple[str, bool, str, float]]:
    """Calls other than the load's during an outage, on both nodes in turn until
    ``until``: each must answer 503 within 5 s, with the error body and the code
    ``service_unavailable`` (``/health/ready``: its own report). Returns (what, as
    required, what came back, seconds) per call."""
    out = []
    while True:
        for node in (0, 1):
            for what, method, path, kwargs in calls():
                st, doc, _, took = call(cluster.node(node), method, path, **kwargs)
                ok = st == 503 and took <= 5.0 and (path.startswith("/health") or (
                    body_ok(doc) and code_of(doc) == "service_unavailable"))  # fmt: skip
                out.append((what, ok, f"{what} {st} {code_of(doc)}", took))
        if time.monotonic() >= until:
            return out
        time.sleep(0.3)


def login_call(cluster: Cluster):
    body = {"email": cluster.seed["login"]["email"], "password": PASSWORD}
    return ("login", "POST", "/api/auth/login", {"body": body})


def redis_probes(cluster: Cluster):
    """The token API, a login and readiness, while Redis is down."""
    return lambda: [
        ("me", "GET", "/api/auth/me", {"token": cluster.tokens[3]}),
        login_call(cluster),
        ("ready", "GET", "/health/ready", {}),
    ]


def written_rows(cluster: Cluster) -> tuple[int, int, int]:
    """Rows a service creation writes (service, its instances, the audit event)."""
    return cluster.query(
        "SELECT (SELECT count(*) FROM gateway_service),"
        " (SELECT count(*) FROM gateway_serviceinstance),"
        " (SELECT count(*) FROM accounts_auditevent)"
    )[0]


def pg_probes(cluster: Cluster):
    """A login and a write (a service created through the API), while PostgreSQL is
    down."""
    names = itertools.count()
    admin = cluster.seed["admin"]["access"]
    return lambda: [
        login_call(cluster),
        ("service create", "POST", "/api/services", {"token": admin, "body": {
            "name": f"during-{next(names)}",
            "instances": [{"url": "http://127.0.0.1:9/"}]}}),
    ]  # fmt: skip


# --- 4. PostgreSQL unavailable -------------------------------------------------------


def pg_outage(cluster: Cluster, timing: Timing) -> Result:
    res = Result("PostgreSQL unavailable")
    a = cluster.node(0)
    seed = cluster.seed
    proxy = cluster.pg_proxy
    with background_load(cluster, timing, res) as load:
        # The policy covers users whose state is cached (10 minutes): every load user
        # makes a call first (after "Redis restarted empty" nothing is cached).
        for token in cluster.tokens:
            call(a, "GET", "/api/echo/warm", token=token)
        time.sleep(1)
        rows_before = written_rows(cluster)
        t0 = time.monotonic()
        # First half: connections refused and live ones cut; second half: new
        # connections accepted but never answered (a hung server or network).
        proxy.set_mode(faultproxy.REFUSE)
        proxy.cut()
        half = timing.pg_down / 2
        probes = probe(cluster, t0 + half - 0.5, pg_probes(cluster))
        time.sleep(max(0.0, t0 + half - time.monotonic()))
        proxy.set_mode(faultproxy.STALL)
        probes += probe(cluster, t0 + timing.pg_down - 1.5, pg_probes(cluster))
        time.sleep(max(0.0, t0 + timing.pg_down - time.monotonic()))
        proxy.set_mode(faultproxy.PASS)
        proxy.cut()  # the stalled connections die with the "network"
        t1 = time.monotonic()
        rows_after = written_rows(cluster)  # before the login below writes its event

        def login_works() -> bool:
            return call(a, "POST", "/api/auth/login", body={
                "email": seed["login"]["email"], "password": PASSWORD})[0] == 200  # fmt: skip

        back = poll_until(login_works, 30.0, every=0.2)
        time.sleep(2)
        recs = load.between(t0, t1)
        after = load.between(t1 + (back or 0) + 0.5, time.monotonic())
    bad = [r for r in recs if r.status != 200]
    res.check("proxied calls of cached users during it",
              f"{len(recs) - len(bad)} of {len(recs)} answered 200"
              + (f"; others: {fmt_statuses(bad)}" if bad else ""), "all 200",
              recs and not bad)  # fmt: skip
    wrong = [p for p in probes if not p[1]]
    res.check("login and writes during it", f"{len(probes) - len(wrong)} of "
              f"{len(probes)} were 503 service_unavailable" + (
                  f"; wrong: {sorted(set(p[2] for p in wrong))}" if wrong else "")
              + f"; slowest {max((p[3] for p in probes), default=0) * 1000:.0f} ms",
              "503 with the error body, ≤ 5 s", probes and not wrong)  # fmt: skip
    res.check("no partial write", "services, instances, audit events: "
              f"{rows_before} → {rows_after}", "unchanged",
              rows_before == rows_after)  # fmt: skip
    bad_after = [r for r in after if r.status != 200]
    res.check("recovery without restart", f"login works {ms(back)} after; "
              f"{len(bad_after)} failed calls after", "recovers", back is not None
              and not bad_after)  # fmt: skip
    return res


# --- 5. gunicorn worker killed -------------------------------------------------------


def worker_killed(cluster: Cluster, timing: Timing) -> Result:
    res = Result("gunicorn worker killed")
    a = cluster.node(0)
    seed = cluster.seed
    # Revoked before the kill: a deactivated user and a logged-out token.
    admin = seed["admin"]["access"]
    deact, gone = seed["deactivate"], seed["worker"]
    st1 = call(a, "POST", f"/api/users/{deact['id']}/deactivate", token=admin)[0]
    st2 = call(a, "POST", "/api/auth/logout", token=gone["access"],
               body={"refresh": gone["refresh"]})[0]  # fmt: skip
    res.check("before: deactivate, logout", f"{st1}, {st2}", "200, 204",
              st1 == 200 and st2 == 204)  # fmt: skip
    with background_load(cluster, timing, res) as load:
        time.sleep(2)
        before = cluster.workers(0)
        victim = before[0]
        t_kill = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        replaced = poll_until(lambda: len(set(cluster.workers(0)) - set(before)) == 1
                              and len(cluster.workers(0)) == 2, 30.0)  # fmt: skip
        t_new = time.monotonic()
        t_replaced = t_kill + (replaced or 0)
        # The new worker (and the old one) answer with the shared state at once.
        answers = []
        for _ in range(20):
            for token, want in ((cluster.tokens[5], 200), (deact["access"], 401),
                                (gone["access"], 401)):  # fmt: skip
                answers.append(call(a, "GET", "/api/echo/x", token=token)[0] == want)
        time.sleep(2)
        recs = load.between(t_kill - 12, time.monotonic())
    failed = [r for r in recs if r.status != 200]
    # A failure is a request in flight on the dead worker, or the first use of a
    # keep-alive connection it held: both on a connection opened before the kill, and
    # at most one per connection.
    per_conn: dict[int, int] = {}
    for r in failed:
        per_conn[r.conn] = per_conn.get(r.conn, 0) + 1
    legit = all(r.conn_t0 < t_kill and r.node == 0 for r in failed) and all(
        n == 1 for n in per_conn.values()
    )
    inflight = sum(r.t0 < t_kill for r in failed)
    res.check("failed requests", f"{len(failed)} of {len(recs)} ({inflight} in flight, "
              f"{len(failed) - inflight} on its idle keep-alive connections)"
              + (f": {fmt_statuses(failed)}" if failed else ""),
              "only those the dead worker held", legit)  # fmt: skip
    res.check("worker replaced", ms(replaced), "by the master", replaced is not None)
    res.check("new worker's state", f"{sum(answers)} of {len(answers)} correct "
              f"(valid 200, deactivated 401, logged out 401), the first "
              f"{(t_new - t_replaced) * 1000:.0f} ms after the replacement",
              "all correct at once",
              all(answers))  # fmt: skip
    return res


# --- 6. soak ---------------------------------------------------------------------------


def soak(cluster: Cluster, timing: Timing) -> Result:
    res = Result("soak")
    warmup = min(60.0, max(10.0, timing.soak / 5))
    with background_load(cluster, timing, res) as load, Sampler(cluster, 2.0) as s:
        t0 = time.monotonic()
        time.sleep(warmup + timing.soak)
        t1 = time.monotonic()
    steady = [(t, d) for t, d in s.samples if t >= t0 + warmup]
    first, last = steady[0][1], steady[-1][1]
    pids = [p for p in first if p in last]
    growth = {p: last[p]["rss_kib"] / first[p]["rss_kib"] - 1 for p in pids}
    res.check(
        "RSS of every worker after warm-up",
        ", ".join(
            f"{first[p]['rss_kib'] // 1024}→{last[p]['rss_kib'] // 1024} MiB"
            for p in pids
        ),
        "growth ≤ 10 %",
        pids and max(growth.values()) <= 0.10,
    )
    for what in ("threads", "sockets"):
        a = sum(first[p][what] for p in pids)
        z = sum(last[p][what] for p in pids)
        peak = max(sum(d[p][what] for p in pids if p in d) for _, d in steady)
        res.check(f"open {what} (all workers)", f"{a} → {z} (peak {peak})",
                  "no growth", z <= a + 2 * len(pids))  # fmt: skip
    recs = load.between(t0 + warmup, t1)
    # p99 of the first and the last third of the steady run (each thousands of calls,
    # so one scheduling hiccup of the shared machine does not decide it).
    third = (t1 - t0 - warmup) / 3
    p99s = []
    for k in range(3):
        start = t0 + warmup + k * third
        lat = sorted(r.latency for r in recs if start <= r.t0 < start + third)
        p99s.append(pct(lat, 99) * 1000)
    res.check("p99 by thirds of the run", " / ".join(f"{v:.0f} ms" for v in p99s),
              "last ≤ 2 × first + 20 ms", recs and p99s[2] <= 2 * p99s[0] + 20)  # fmt: skip
    failed = [r for r in recs if r.status != 200]
    res.check("failed calls", f"{len(failed)} of {len(recs)}", "0", not failed)
    return res


SCENARIOS: dict[str, Callable[[Cluster, Timing], Result]] = {
    "shared": shared_state,
    "instance": instance_killed,
    "worker": worker_killed,
    "redis": redis_outage,
    "postgres": pg_outage,
    "soak": soak,
}


def run(name: str, cluster: Cluster, timing: Timing) -> Result:
    """One scenario; an exception becomes a failed result, never a crash of the run."""
    t0 = time.monotonic()
    try:
        result = SCENARIOS[name](cluster, timing)
    except Exception as exc:  # noqa: BLE001 - reported in the table
        import traceback

        result = Result(SCENARIOS[name].__name__.replace("_", " "))
        result.error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-1500:]}"
    result.seconds = time.monotonic() - t0
    return result
