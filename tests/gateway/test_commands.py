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
from gateway import state
from gateway.models import Service
from tests.gateway.conftest import closed_port_url

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
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_usage_error_exit_status_without_traceback():
    proc = _manage("register_service")
    assert proc.returncode == 2
    assert "the following arguments are required" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_services(db, make_service):
    assert "No services" in run("list_services")
    svc = make_service(
        "billing",
        ["http://127.0.0.1:9001", "http://127.0.0.1:9002"],
        allowed_roles=["cpa"],
    )
    make_service("open", ["http://127.0.0.1:9003"], public=True)
    state.mark_down(svc.instances.first().id, 30)
    lines = run("list_services").splitlines()
    assert lines[0].split() == ["NAME", "INSTANCES", "HEALTHY", "PUBLIC", "ROLES"]
    assert lines[1].split() == ["billing", "2", "1", "no", "cpa"]
    assert lines[2].split() == ["open", "1", "1", "yes", "any"]


def test_remove_service(db, make_service):
    make_service("billing", ["http://127.0.0.1:9001"])
    assert "Removed service billing" in run("remove_service", "billing")
    assert not Service.objects.exists()
    assert AuditEvent.objects.filter(action="service.deleted").count() == 1
    with pytest.raises(CommandError, match="No service named 'billing'"):
        run("remove_service", "billing")


def test_check_services_once(db, make_service, upstream):
    svc = make_service(
        "svc", [upstream.url, closed_port_url()], health_check_path="/healthz"
    )
    good, bad = svc.instances.all()
    out = run("check_services", "--once")
    assert f"svc  {upstream.url}  healthy" in out
    assert "UNHEALTHY" in out
    assert upstream.requests[-1]["path"] == "/healthz"
    health = state.get_health([good.id, bad.id])
    assert health[good.id][0] is None
    assert health[bad.id][0] is not None
    # the proxy follows the verdict at once
    assert {state.is_healthy(health[i][0]) for i in (good.id, bad.id)} == {True, False}


def test_check_services_bad_interval(db):
    with pytest.raises(CommandError, match="interval"):
        run("check_services", "--once", "--interval", "0")


def test_seed_demo_service_idempotent(db):
    run("seed_demo")
    run("seed_demo")
    assert Service.objects.filter(name="demo").count() == 1
