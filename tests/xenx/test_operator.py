"""An operator's day in the default mode (no ``REDIS_URL``: SQLite, the local-memory
cache, one gunicorn worker), against a server started as ``scripts/run`` starts it
(``migrate``, then ``gunicorn --config gunicorn.conf.py``) with the test's virtualenv:
commands run beside the server reach it without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.upstream import FakeUpstream, json_response
from tests.xenx.servers import (
    READABLE_LOG_LINE,
    ROOT,
    free_port,
    http_get,
    manage,
    start_in_session,
    static_assets,
    stop_session,
    wait_until_serving,
)

pytestmark = [pytest.mark.slow]


@pytest.fixture
def plain_upstream():
    """An upstream answering 200 to every GET: its URL."""
    upstream = FakeUpstream(json_response(200, {"ok": True}))
    yield upstream.url
    upstream.close()


def default_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no DATABASE_URL/REDIS_URL/XENX_* of the test
    run, a SQLite file of the test's own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
        and not key.startswith(("XENX_", "PYTEST_", "PROMETHEUS_"))
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env["PYTHONUNBUFFERED"] = "1"
    env["HOME"] = str(tmp_path)  # gunicorn's files under ~ are the test's own
    return env | extra


def start_gunicorn(env, log: Path) -> subprocess.Popen:
    """What ``scripts/run`` starts last, in its own session."""
    return start_in_session(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
        ROOT,
        env,
        log,
    )


def served_within(url, expected_status, *, seconds=2.0, headers=None) -> float:
    """Seconds until ``url`` answers ``expected_status``; fails after ``seconds``."""
    start = time.monotonic()
    status = None
    while time.monotonic() - start < seconds:
        status = http_get(url, headers=headers, timeout=5)[0]
        if status == expected_status:
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{url}: {status} after {seconds} s, not {expected_status}")


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    """(base URL, environment, log) of a default-mode server like ``scripts/run``'s,
    one for the module's tests."""
    tmp_path = tmp_path_factory.mktemp("default-server")
    port = free_port()
    env = default_env(tmp_path, XENX_ADDR=f"127.0.0.1:{port}")
    migrated = manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    log = tmp_path / "server.log"
    proc = start_gunicorn(env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(f"{base}/health/live", proc, log, timeout=60)
        yield base, env, log
    finally:
        left = stop_session(proc)
        assert not left, f"processes left running: {left}"


def test_commands_reach_the_running_server_within_two_seconds(
    default_server, plain_upstream
):
    base, env, _ = default_server
    url = f"{base}/api/files/report"
    assert http_get(url)[0] == 404  # not registered yet: the snapshot is built

    done = manage(env, "register_service", "files", plain_upstream, "--public")
    assert done.returncode == 0, done.stderr
    served_within(url, 200)

    # restricted to a role: an anonymous caller is now refused
    done = manage(
        env, "register_service", "files", plain_upstream, "--private", "--roles", "cpa"
    )
    assert done.returncode == 0, done.stderr
    served_within(url, 401)

    # disabled, enabled again
    done = manage(env, "register_service", "files", plain_upstream, "--disable")
    assert done.returncode == 0, done.stderr
    served_within(url, 503)

    done = manage(env, "remove_service", "files")
    assert done.returncode == 0, done.stderr
    assert "Removed service files" in done.stdout
    served_within(url, 404)
    status, _, body = http_get(url)
    assert json.loads(body)["error"]["code"] == "service_not_found"


# --- one server per address without Redis; the log says where it serves ----------------


def test_a_second_server_on_an_address_in_use_is_refused_in_one_line(default_server):
    base, env, log = default_server
    second = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode == 1
    errors = [line for line in second.stderr.splitlines() if " ERROR " in line]
    address = env["XENX_ADDR"]
    assert (
        errors == [errors[0]] and f"{address} is in use (another server?)" in errors[0]
    ), second.stderr
    assert "REDIS_URL" in errors[0]
    assert "Retrying" not in second.stderr and "Traceback" not in second.stderr
    assert http_get(f"{base}/health/live")[0] == 200  # the first one serves on


def test_the_start_up_log_names_the_address_and_the_public_url(default_server):
    base, _, log = default_server
    text = log.read_text()
    assert f"Listening at: {base} (" in text
    assert f"Serving {base} (public URL {base})" in text
    # the issuer and the JWKS URI are the served address's
    status, _, body = http_get(f"{base}/.well-known/openid-configuration")
    assert status == 200
    configuration = json.loads(body)
    assert configuration["issuer"] == base
    assert configuration["jwks_uri"].startswith(f"{base}/")


def test_development_logs_are_readable_lines(default_server):
    base, _, log = default_server
    assert http_get(f"{base}/api/nothing-here")[0] == 404  # logged by django.request
    text = log.read_text()
    assert "Serving" in text
    for line in text.splitlines():
        assert READABLE_LOG_LINE.match(line), line


# --- several nodes from one checkout ---------------------------------------------------


def test_three_nodes_started_at_once_from_one_checkout_all_come_up(tmp_path):
    """As ``scripts/run --no-migrate`` under production settings on each node: they
    collect static files into one STATIC_ROOT at the same moment, then serve; each
    has no gunicorn control socket to take over from another."""
    env = default_env(
        tmp_path,
        DJANGO_SETTINGS_MODULE="xenx.settings.production",
        SECRET_KEY="k" * 64,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    migrated = manage(env, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    node = (
        f"{sys.executable} manage.py collectstatic --noinput --verbosity 0 && "
        f"exec {sys.executable} -m gunicorn --config gunicorn.conf.py"
    )
    nodes = []
    try:
        for n in range(3):
            port = free_port()
            log = tmp_path / f"node{n}.log"
            proc = start_in_session(
                ["bash", "-c", node],
                ROOT,
                env | {"XENX_ADDR": f"127.0.0.1:{port}"},
                log,
            )
            nodes.append((f"http://127.0.0.1:{port}", proc, log))
        for base, proc, log in nodes:
            wait_until_serving(f"{base}/health/live", proc, log, timeout=120)
            status, _, page = http_get(f"{base}/portal/login")
            assert status == 200
            for asset in static_assets(page.decode()):
                assert http_get(base + asset)[0] == 200, asset
            assert "Control socket" not in log.read_text()
        assert not (tmp_path / ".gunicorn").exists()  # HOME is the test's
    finally:
        left = [pid for _, proc, _ in nodes for pid in stop_session(proc)]
    assert not left, f"processes left running: {left}"
