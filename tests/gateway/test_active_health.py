"""Active health checks inside the gateway (gateway/prober.py): the prober's verdicts
reach list_services, /health and the breaker; with a shared cache one process per
interval probes each instance; the thread starts only in serving processes."""

import os
import subprocess
import sys
import threading
import time
import tracemalloc
from io import StringIO
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection

from core.roles import Role
from gateway import breaker, prober, probes
from gateway.models import Service
from tests.gateway.conftest import closed_port_url
from tests.support.upstream import FakeUpstream, header_fields
from tests.xenx.servers import ROOT


@pytest.fixture
def shared_cache(monkeypatch):
    monkeypatch.setattr(prober, "cache_is_shared", lambda: True)


def _health_probes(upstream):
    return [r for r in upstream.requests if r.path == "/healthz"]


def test_a_probe_round_is_seen_by_list_services_admin_health_and_the_breaker(
    db, make_service, make_user, upstream, client, shared_cache
):
    svc = make_service(
        "billing", [upstream.url, closed_port_url()], health_check_path="/healthz"
    )
    good, bad = svc.instances.all()
    results = prober.probe_round(10)
    assert sorted(ok for *_, ok, _detail in results) == [False, True]
    assert len(_health_probes(upstream)) == 1

    out = StringIO()
    call_command("list_services", stdout=out)
    assert out.getvalue().splitlines()[1].split() == ["billing", "2", "1", "no", "any"]
    body = client.get("/health").json()
    assert body["status"] == "degraded"
    assert body["checks"]["services"]["billing"] == {
        "status": "degraded",
        "healthy_instances": 1,
        "total_instances": 2,
    }
    client.force_login(make_user(Role.ADMIN))
    assert b"degraded (1/2)" in client.get("/admin/gateway/service/").content
    found = breaker.get_health([good.id, bad.id])
    assert breaker.is_healthy(found[good.id][0])
    assert not breaker.is_healthy(found[bad.id][0])


def test_a_claimed_probe_is_not_repeated_within_the_interval(
    db, make_service, upstream
):
    make_service("billing", [upstream.url], health_check_path="/healthz")
    assert len(prober.probe_round(30)) == 1
    assert prober.probe_round(30) == []  # claimed for 30 s (by this process)
    assert len(_health_probes(upstream)) == 1


def test_a_recovered_instance_is_healthy_again_after_the_next_probe(
    db, make_service, upstream
):
    svc = make_service("billing", [upstream.url], health_check_path="/healthz")
    instance = svc.instances.get()
    breaker.mark_down(instance.id, 30)
    prober.probe_round(10)
    assert breaker.is_healthy(breaker.get_health([instance.id])[instance.id][0])


def test_start_is_off_with_interval_0_and_starts_one_thread_per_process(
    settings, monkeypatch
):
    started = []
    monkeypatch.setattr(prober, "run", lambda interval: started.append(interval))
    settings.XENX_HEALTH_CHECK_INTERVAL = 0
    assert prober.start() is False
    settings.XENX_HEALTH_CHECK_INTERVAL = 7
    assert prober.start() is True
    assert prober.start() is True
    time.sleep(0.1)
    assert started == [7]


def test_tests_and_commands_do_not_probe_by_default():
    assert django_settings.XENX_HEALTH_CHECK_INTERVAL == 0


def test_the_first_request_starts_the_prober_once(db, client, monkeypatch):
    calls = []
    monkeypatch.setattr(prober, "start", lambda: calls.append(1))
    prober.connect_lazy_start()
    client.get("/health/live")
    client.get("/health/live")
    assert calls == [1]


PROBER = """
import sys, time
import django
django.setup()
from gateway import prober
assert prober.start()
print("started", flush=True)
time.sleep(float(sys.argv[1]))
"""


@pytest.mark.slow
def test_two_processes_sharing_redis_probe_once_per_interval(
    transactional_db, make_service, upstream
):
    if connection.vendor != "postgresql" or not django_settings.REDIS_URL:
        pytest.skip("two processes share state through PostgreSQL and Redis")
    make_service("billing", [upstream.url], health_check_path="/healthz")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "xenx.settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "XENX_HEALTH_CHECK_INTERVAL": "1",
    }
    seconds = 6.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROBER, str(seconds)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "started" in out
    probes = len(_health_probes(upstream))
    print("probes", probes)
    # Each process alone would probe about 6 times: together they share the probes.
    assert 3 <= probes <= 8, probes


def test_the_loop_survives_outages_and_logs_verdict_changes(monkeypatch, caplog):
    sleeps = []
    rounds = iter(
        [
            ConnectionError("cache down"),
            [("billing", "http://a", True, "HTTP 200")],
            [("billing", "http://a", True, "HTTP 200")],
            [("billing", "http://a", False, "HTTP 503")],
        ]
    )

    def probe_round(interval):
        outcome = next(rounds)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(prober.time, "sleep", sleeps.append)
    monkeypatch.setattr(prober, "probe_round", probe_round)
    # this test's thread is no prober: its database connection is the test's own
    monkeypatch.setattr(prober, "close_old_connections", lambda: None)
    with caplog.at_level("INFO", logger="xenx.gateway.prober"):
        prober.run(3, rounds=4)
    assert sleeps == [3] * 4
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("WARNING", "health checks skipped: cache down"),
        ("INFO", "instance healthy"),  # logged on change only
        ("WARNING", f"instance {prober.UNHEALTHY}"),
    ]
    assert "--health-path" in prober.UNHEALTHY  # says what to change


def test_a_lone_check_runs_inline_and_several_in_parallel(monkeypatch):
    """A lone check runs on the prober's own thread (no pool started for it); several
    run at once on threads of that round."""
    ran_on = []

    def check_instance(instance, service, *, down_seconds):
        ran_on.append(threading.current_thread())
        time.sleep(0.01)  # overlap, so that the pool runs both at once
        return True, "HTTP 200"

    class Instance:
        enabled, url = True, "http://a"

    class FakeService:
        name = "billing"

        def __init__(self, n):
            self.instances = mock.Mock(all=lambda: [Instance()] * n)

    def services(n):
        return mock.Mock(
            filter=lambda **kw: mock.Mock(prefetch_related=lambda *a: [FakeService(n)])
        )

    monkeypatch.setattr(probes, "check_instance", check_instance)
    monkeypatch.setattr(probes.Service, "objects", services(2))
    assert len(probes.check_all(down_seconds=30)) == 2
    assert len(ran_on) == 2
    assert all(t.name.startswith("xenx-health-check") for t in ran_on)

    ran_on.clear()
    monkeypatch.setattr(probes.Service, "objects", services(1))
    assert len(probes.check_all(down_seconds=30)) == 1
    assert ran_on == [threading.current_thread()]


def test_the_prober_keeps_its_database_connection_between_rounds(
    transactional_db, monkeypatch
):
    """As a request thread does (DB_CONN_MAX_AGE): not a new connection every round."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("an in-memory SQLite connection is never closed: nothing to tell")

    used = []

    def probe_round(interval):
        assert Service.objects.count() == 0  # a query on this thread's connection
        used.append(connection.connection)
        return []

    def run():
        try:
            prober.run(10, rounds=3)
        finally:
            connection.close()

    monkeypatch.setattr(prober.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(prober, "probe_round", probe_round)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    assert len(used) == 3
    assert used[0] is used[1] is used[2]


# --- the probe reads the status, never the body (issue 24) ---------------------------


def _gzip_bomb(inflated: int) -> bytes:
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = b"\0" * (1024 * 1024)
    body = b"".join(packer.compress(zeros) for _ in range(inflated // len(zeros)))
    return body + packer.flush()


@pytest.fixture
def probed(make_service, test_servers):
    def make(answer):
        up = test_servers(FakeUpstream, answer)
        service = make_service("svc", [up.url], health_check_path="/health")
        return up, service, service.instances.get()

    return make


def test_a_gzip_bomb_is_never_inflated(probed):
    """A /health answer of ~30 KB that inflates to 30 MB: the probe neither decodes
    nor reads it (before the fix urllib3 read and inflated it whole)."""
    bomb = _gzip_bomb(30 * 1024 * 1024)
    up, service, instance = probed(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Type: text/plain\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(bomb), bomb)
    )
    tracemalloc.start()
    try:
        ok, detail = probes.check_instance(instance, service, down_seconds=30)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (ok, detail) == (True, "HTTP 200")
    assert peak < 1024 * 1024, f"the probe allocated {peak // 1024} KiB"
    ((head, _),) = up.requests
    assert header_fields(head)["accept-encoding"] == "identity"


def test_an_endless_body_does_not_hold_the_probe(probed):
    """The answer's head says 1 GB and 64 KiB arrive, then nothing: the verdict is
    the status, at once (before the fix the probe waited for the rest until its
    timeout and called a healthy instance down)."""
    up, service, instance = probed(
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n" + b"x" * 65536
    )
    service.timeout_seconds = 3
    started = time.monotonic()
    ok, detail = probes.check_instance(instance, service, down_seconds=30)
    assert (ok, detail) == (True, "HTTP 200")
    assert time.monotonic() - started < 2.5
