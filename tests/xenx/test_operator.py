"""An operator's day in the default mode (no ``REDIS_URL``: SQLite, the local-memory
cache, one gunicorn worker), against a server started as ``scripts/run`` starts it
(``migrate``, then ``gunicorn --config gunicorn.conf.py``) with the test's virtualenv:
commands run beside the server reach it without a restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.xenx.servers import (
    ROOT,
    free_port,
    http_get,
    manage,
    start_in_session,
    stop_session,
    wait_until_serving,
)

pytestmark = [pytest.mark.slow]


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def plain_upstream():
    """An upstream answering 200 to every GET: its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


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


@pytest.fixture
def default_server(tmp_path):
    """(base URL, environment) of a default-mode server like ``scripts/run``'s."""
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
