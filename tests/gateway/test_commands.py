"""register_service, list_services, remove_service, check_services, seed_demo's service."""

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from auditlog.models import AuditEvent
from gateway import breaker, prober
from gateway.models import Service
from tests.gateway.conftest import closed_port_url
from tests.xenx.servers import manage

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_register_creates_then_updates_only_given_options(db):
    out = run(
        "register_service",
        "billing",
        "http://127.0.0.1:9001",
        "http://127.0.0.1:9002",
        "--public",
        "--roles",
        "cpa,staff",
        "--rate-limit",
        "client=10/m",
        "--rate-limit",
        "anonymous=5/s",
        "--timeout",
        "7.5",
        "--retries",
        "3",
        "--health-path",
        "/ping",
    )
    assert "Created service billing" in out
    svc = Service.objects.get(name="billing")
    assert svc.public and svc.allowed_roles == ["cpa", "staff"]
    assert svc.rate_limits == {"client": "10/m", "anonymous": "5/s"}
    assert (svc.timeout_seconds, svc.retries, svc.health_check_path) == (
        7.5,
        3,
        "/ping",
    )
    out = run("register_service", "billing", "http://127.0.0.1:9003", "--retries", "1")
    assert "Updated service billing" in out
    svc.refresh_from_db()
    assert [i.url for i in svc.instances.all()] == ["http://127.0.0.1:9003"]
    assert svc.retries == 1
    assert (
        svc.public
        and svc.timeout_seconds == 7.5
        and svc.allowed_roles == ["cpa", "staff"]
    )
    assert AuditEvent.objects.filter(action="service.created").count() == 1
    assert AuditEvent.objects.filter(action="service.updated").count() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["auth", "http://127.0.0.1:1"], "reserved"),
        (["Bad_Name", "http://127.0.0.1:1"], "name"),
        (["svc", "ftp://x"], "http"),
        (["svc", "http://127.0.0.1:1", "--roles", "wizard"], "Unknown role"),
        (["svc", "http://127.0.0.1:1", "--rate-limit", "client"], "ROLE=RATE"),
        (["svc", "http://127.0.0.1:1", "--rate-limit", "client=lots"], "rate"),
        (["svc", "http://127.0.0.1:1", "--timeout", "0"], "timeout"),
    ],
)
def test_register_bad_arguments(db, args, message):
    with pytest.raises(CommandError, match=message):
        run("register_service", *args)
    assert not Service.objects.exists()


def _manage(*args):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "xenx.settings.test"}
    return manage(env, *args, timeout=60)


def test_usage_error_exit_status_without_traceback():
    proc = _manage("register_service")
    assert proc.returncode == 2
    assert "the following arguments are required" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture
def shared_cache(monkeypatch):
    """Commands judge the cache as shared (Redis) even on the local-memory one."""
    monkeypatch.setattr(prober, "cache_is_shared", lambda: True)


def test_list_services(db, make_service, shared_cache):
    assert "No services" in run("list_services")
    svc = make_service(
        "billing",
        ["http://127.0.0.1:9001", "http://127.0.0.1:9002"],
        allowed_roles=["cpa"],
    )
    make_service("open", ["http://127.0.0.1:9003"], public=True)
    breaker.mark_down(svc.instances.first().id, 30)
    lines = run("list_services").splitlines()
    assert lines[0].split() == ["NAME", "INSTANCES", "HEALTHY", "PUBLIC", "ROLES"]
    assert lines[1].split() == ["billing", "2", "1", "no", "cpa"]
    assert lines[2].split() == ["open", "1", "1", "yes", "any"]


def test_list_services_says_health_is_unknown_with_a_process_local_cache(
    db, make_service, monkeypatch
):
    monkeypatch.setattr(prober, "cache_is_shared", lambda: False)
    make_service("billing", ["http://127.0.0.1:9001"])
    err = StringIO()
    out = StringIO()
    call_command("list_services", stdout=out, stderr=err)
    assert out.getvalue().splitlines()[1].split() == ["billing", "1", "?", "no", "any"]
    assert "local to each process" in err.getvalue()
    assert "GET /health" in err.getvalue()


def test_remove_service(db, make_service):
    make_service("billing", ["http://127.0.0.1:9001"])
    assert "Removed service billing" in run("remove_service", "billing")
    assert not Service.objects.exists()
    assert AuditEvent.objects.filter(action="service.deleted").count() == 1
    with pytest.raises(CommandError, match="No service named 'billing'"):
        run("remove_service", "billing")


def test_check_services_once(db, make_service, upstream, shared_cache):
    svc = make_service(
        "svc", [upstream.url, closed_port_url()], health_check_path="/healthz"
    )
    good, bad = svc.instances.all()
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 2 instances unhealthy") as exc:
        call_command("check_services", "--once", stdout=out)
    assert exc.value.returncode == 1
    out = out.getvalue()
    assert f"svc  {upstream.url}  healthy" in out
    assert "UNHEALTHY" in out
    assert upstream.requests[-1].path == "/healthz"
    health = breaker.get_health([good.id, bad.id])
    assert health[good.id][0] is None
    assert health[bad.id][0] is not None
    # the proxy follows the verdict at once
    assert {breaker.is_healthy(health[i][0]) for i in (good.id, bad.id)} == {
        True,
        False,
    }


def test_check_services_once_all_healthy_exits_0(db, make_service, upstream):
    make_service("svc", [upstream.url])
    err = StringIO()
    out = StringIO()
    call_command("check_services", "--once", stdout=out, stderr=err)  # no exception
    assert f"svc  {upstream.url}  healthy  (HTTP 200)" in out.getvalue()


@pytest.mark.parametrize("shared", [True, False])
def test_check_services_says_when_its_verdicts_stay_in_its_process(
    db, monkeypatch, shared
):
    monkeypatch.setattr(prober, "cache_is_shared", lambda: shared)
    err = StringIO()
    call_command("check_services", "--once", stdout=StringIO(), stderr=err)
    said = "the running server never sees them" in err.getvalue()
    assert said is not shared


@pytest.mark.slow
def test_check_services_exit_status_in_a_real_process(tmp_path):
    """A real ``manage.py check_services --once`` exits 1 (no traceback) when an
    instance is unhealthy and says its verdicts stay in its process (SQLite file,
    local-memory cache)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "xenx.settings.development",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }
    env.pop("REDIS_URL", None)
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run(
        [*manage, "migrate", "-v0"], env=env, cwd=ROOT, check=True, timeout=120
    )
    subprocess.run(
        [*manage, "register_service", "down", closed_port_url()],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=60,
    )
    proc = subprocess.run(
        [*manage, "check_services", "--once"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    assert "UNHEALTHY" in proc.stdout
    assert "1 of 1 instances unhealthy." in proc.stderr
    assert "the running server never sees them" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_services_bad_interval(db):
    with pytest.raises(CommandError, match="interval"):
        run("check_services", "--once", "--interval", "0")


def test_seed_demo_service_idempotent(db):
    run("seed_demo")
    run("seed_demo")
    assert Service.objects.filter(name="demo").count() == 1
