"""Day one, as the README tells it: clone, ``scripts/run``, log in with a printed
password, call the demo service through the gateway, read the API docs; then stop and
leave nothing running.

The clone is of the committed HEAD (what a newcomer gets), served with the embedded
defaults (SQLite, local-memory cache) on free ports. It reuses the virtualenv running
the tests (a symlinked ``.venv``: ``scripts/_venv.sh`` installs only what changed).
"""

import json
import os
import re
import urllib.request

import pytest

from tests.xenx.servers import (
    READABLE_LOG_LINE,
    clone_head,
    free_port,
    http_get,
    start_scripts_run,
    static_assets,
    stop_session,
    wait_until_serving,
)

pytestmark = [pytest.mark.slow]
PASSWORD_LINE = re.compile(r"^\s*(\w+)\s+(\S+@\S+)\s+password: (\S+)\s*$", re.M)


def _post_json(url, payload):
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return response.status, json.loads(response.read())


def test_clone_run_login_call_the_demo_service_read_the_docs(tmp_path):
    clone = clone_head(tmp_path)
    port = free_port()
    demo_port = free_port()
    while demo_port == port:
        demo_port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
        and not key.startswith(("XENX_", "PYTEST_"))
    }
    env |= {"XENX_ADDR": f"127.0.0.1:{port}", "XENX_DEMO_PORT": str(demo_port)}
    log = tmp_path / "run.log"
    proc = start_scripts_run(clone, env, log)
    try:
        wait_until_serving(f"{base}/health/live", proc, log)
        output = log.read_text()
        users = {role: (email, pw) for role, email, pw in PASSWORD_LINE.findall(output)}
        assert set(users) == {"admin", "staff", "cpa", "client"}, output

        # the README's first gateway call
        email, password = users["client"]
        status, tokens = _post_json(
            f"{base}/api/auth/login", {"email": email, "password": password}
        )
        assert status == 200
        bearer = {"Authorization": f"Bearer {tokens['access']}"}
        status, headers, body = http_get(
            f"{base}/api/demo/hello?name=ada", headers=bearer
        )
        assert status == 200, body
        echoed = json.loads(body)
        assert echoed["service"] == "demo"  # the real demo upstream answered
        assert echoed["path"] == "/hello"
        assert echoed["query"] == {"name": ["ada"]}
        assert echoed["headers"]["X-User-Email"] == email
        assert echoed["headers"]["X-Request-ID"] == headers["X-Request-ID"]
        assert http_get(f"{base}/api/demo/hello")[0] == 401  # no token

        # the API docs, and every static file the page needs
        status, headers, _ = http_get(f"{base}/api/docs")
        assert status in (301, 302) and headers["Location"] == "/api/docs/"
        status, _, page = http_get(f"{base}/api/docs/")
        assert status == 200
        assets = static_assets(page.decode())
        assert any(a.endswith(".css") for a in assets), assets
        assert any(a.endswith(".js") for a in assets), assets
        for asset in assets:
            url = asset if asset.startswith("http") else base + asset
            assert http_get(url)[0] == 200, asset
        assert http_get(f"{base}/api/schema/")[0] == 200

        # /health sees the demo instance as healthy
        status, _, body = http_get(f"{base}/health")
        assert json.loads(body)["checks"]["services"]["demo"]["status"] == "ok"
    finally:
        left = stop_session(proc)
    assert not left, f"processes left running: {left}"
    # one readable line per event (development): after the demo data, everything
    # logged is a line of XenX's format
    served = log.read_text().split("Demo data ready.", 1)[1]
    for line in served.splitlines():
        if line.strip() and not line.startswith("demo upstream:"):
            assert READABLE_LOG_LINE.match(line), line
    for closed in (port, demo_port):  # the server and the demo upstream are gone
        with pytest.raises(OSError):
            http_get(f"http://127.0.0.1:{closed}/health", timeout=2)
