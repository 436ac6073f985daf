"""Production serving in one step: ``scripts/run`` under production settings migrates,
runs collectstatic and serves with gunicorn; WhiteNoise then serves every stylesheet
and script of ``/admin/``, ``/portal/`` and ``/api/docs/`` (compressed, content-hashed
names cached for good). SQLite file and local-memory cache: one worker."""

import os
import re
import secrets
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.xenx.servers import (
    ROOT,
    free_port,
    http_get,
    start_scripts_run,
    static_assets,
    stop_session,
    wait_until_serving,
)

pytestmark = [pytest.mark.slow]
HASHED = re.compile(r"\.[0-9a-f]{12}\.(css|js)$")


def _cookies(headers) -> dict:
    jar = {}
    for raw in headers.get_all("Set-Cookie") or []:
        name, _, rest = raw.partition("=")
        jar[name.strip()] = rest.split(";", 1)[0]
    return jar


def _cookie_header(jar):
    return {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}


def _admin_page(base, email, password) -> str:
    """Log in through the portal form (as a browser would) and GET /admin/."""
    status, headers, page = http_get(f"{base}/portal/login?next=/admin/")
    assert status == 200
    jar = _cookies(headers)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode(
        {"email": email, "password": password, "csrfmiddlewaretoken": token.decode()}
    ).encode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(
        f"{base}/portal/login?next=/admin/",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **_cookie_header(jar),
        },
        method="POST",
    )
    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=30)
        raise AssertionError("the login did not redirect")
    except urllib.error.HTTPError as exc:
        assert exc.code == 302, exc.read()
        jar |= _cookies(exc.headers)
    status, _, page = http_get(f"{base}/admin/", headers=_cookie_header(jar))
    assert status == 200
    return page.decode()


def test_production_settings_serve_complete_admin_portal_and_docs(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"REDIS_URL", "PROMETHEUS_MULTIPROC_DIR"}
        and not key.startswith(("XENX_", "PYTEST_"))
    }
    env |= {
        "DJANGO_SETTINGS_MODULE": "xenx.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
        "XENX_ADDR": f"127.0.0.1:{port}",
        "REQ_FILE": "requirements-dev.txt",  # the installed .venv's, not a reinstall
    }
    log = tmp_path / "run.log"
    proc = start_scripts_run(ROOT, env, log)
    try:
        wait_until_serving(f"{base}/health/live", proc, log)
        assert (tmp_path / "static" / "staticfiles.json").exists()  # collectstatic ran
        password = secrets.token_urlsafe(16)
        subprocess.run(
            [sys.executable, "manage.py", "create_user", "ops@example.com"]
            + ["--role", "admin", f"--password={password}"],  # may start with "-"
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        pages = {
            "/portal/login": http_get(f"{base}/portal/login")[2].decode(),
            "/api/docs/": http_get(f"{base}/api/docs/")[2].decode(),
            "/admin/": _admin_page(base, "ops@example.com", password),
        }
        for page, html in pages.items():
            assets = static_assets(html)
            assert any(a.endswith(".css") for a in assets), (page, html[:500])
            for asset in assets:
                status, headers, _ = http_get(
                    base + asset, headers={"Accept-Encoding": "gzip"}
                )
                assert status == 200, (page, asset)
                if HASHED.search(asset):  # content-hashed: cached for good
                    assert "immutable" in headers["Cache-Control"], asset
                if asset.endswith((".css", ".js")):
                    assert headers["Content-Encoding"] == "gzip", asset
        assert "/static/admin/css/base." in pages["/admin/"]
        assert "/static/portal/portal." in pages["/portal/login"]
    finally:
        left = stop_session(proc)
    assert not left, f"processes left running: {left}"
