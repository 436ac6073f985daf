"""What the server itself does around the application: the docs' slash redirects,
static files through WhiteNoise, and gunicorn.conf.py's choices."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

from tests.xenx.servers import ROOT


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/api/docs", "/api/docs/"),
        ("/api/schema", "/api/schema/"),
        ("/api/schema?format=json", "/api/schema/?format=json"),
    ],
)
def test_docs_and_schema_redirect_to_their_slashed_form(client, path, target):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == target


def test_the_slashed_docs_and_schema_are_served(client):
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/schema/").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/portal/portal.css",
        "/static/admin/css/base.css",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
    ],
)
def test_static_files_are_served_by_the_application(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")


def test_static_files_are_served_after_the_gateway_and_security_middleware():
    """Proxied calls never pass through WhiteNoise; static files get the security
    middleware's redirect and headers."""
    order = settings.MIDDLEWARE
    whitenoise = order.index("whitenoise.middleware.WhiteNoiseMiddleware")
    assert order.index("gateway.middleware.GatewayMiddleware") < whitenoise
    assert order.index("django.middleware.security.SecurityMiddleware") < whitenoise


def _gunicorn_conf(**env):
    code = (
        "import runpy, os; c = runpy.run_path('gunicorn.conf.py'); "
        "print(c['workers'], c['threads'], c['bind'][0], c['reuse_port'], "
        "os.environ.get('PROMETHEUS_MULTIPROC_DIR') or '-', os.environ['WEB_CONCURRENCY'])"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "REDIS_URL",
            "WEB_CONCURRENCY",
            "GUNICORN_THREADS",
            "XENX_ADDR",
            "PROMETHEUS_MULTIPROC_DIR",
        }
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_gunicorn_conf_defaults_to_one_worker_without_redis():
    proc = _gunicorn_conf()
    # reuse_port off: a second server on the address is refused (on_starting)
    assert proc.stdout.split() == ["1", "8", "127.0.0.1:8000", "False", "-", "1"]


def test_gunicorn_conf_refuses_workers_without_redis():
    proc = _gunicorn_conf(WEB_CONCURRENCY="3")
    assert proc.returncode == 1
    assert "WEB_CONCURRENCY=3 needs REDIS_URL" in proc.stderr


def test_gunicorn_conf_with_redis_sets_up_multiprocess_metrics(tmp_path):
    proc = _gunicorn_conf(
        REDIS_URL="redis://127.0.0.1:6379/3",
        WEB_CONCURRENCY="4",
        GUNICORN_THREADS="2",
        XENX_ADDR="0.0.0.0:9999",
    )
    workers, threads, bind, reuse, metrics_dir, concurrency = proc.stdout.split()
    assert (workers, threads, bind, reuse, concurrency) == (
        "4",
        "2",
        "0.0.0.0:9999",
        "True",
        "4",
    )
    assert os.path.basename(metrics_dir).startswith("xenx-metrics-")
    os.rmdir(metrics_dir)


def test_one_log_line_per_request_even_under_runserver():
    """runserver's ``django.server`` lines repeat the access log: they go nowhere
    (not to Python's last-resort text handler either)."""
    import logging

    server = logging.getLogger("django.server")
    assert server.propagate is False
    assert server.handlers
    assert all(isinstance(h, logging.NullHandler) for h in server.handlers)


def test_gunicorn_conf_serves_xenx_worker_without_sendfile():
    """The client deadline (xenx/worker.py) holds for file downloads too only without
    sendfile: Python's socket.sendfile waits out a kernel send timeout unbounded."""
    code = (
        "import runpy; c = runpy.run_path('gunicorn.conf.py'); "
        "print(c['worker_class'], c['sendfile'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stdout.split() == ["xenx.worker.ThreadWorker", "False"], proc.stderr
