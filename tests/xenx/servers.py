"""Helpers for tests that start real servers: free ports, waiting, and making sure every
process a test started is gone afterwards (each server runs in its own session)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.ports import free_port

__all__ = ["free_port"]  # imported from here by the server tests

ROOT = Path(__file__).resolve().parents[2]


def clone_head(tmp_path: Path) -> Path:
    """A fresh clone of the committed HEAD (what a newcomer gets) in ``tmp_path``,
    with the test run's virtualenv as its ``.venv``; skips without git."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout")
    clone = tmp_path / "xenx"
    subprocess.run(
        ["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120
    )
    if sys.prefix != sys.base_prefix:  # running in a virtualenv: reuse it
        (clone / ".venv").symlink_to(sys.prefix)
    return clone


def http_get(url: str, *, headers=None, timeout=10.0):
    """(status, headers, body) without raising on 4xx/5xx or following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout=240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}:\n{log.read_text()}")
        try:
            if http_get(url, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"not serving after {timeout} s:\n{log.read_text()}")


def session_pids(sid: int) -> list[int]:
    """Live processes of session ``sid`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry.name))
    return found


def stop_session(proc: subprocess.Popen, *, timeout=30.0) -> list[int]:
    """SIGTERM the session leader, wait; return the pids of its session still alive
    afterwards (then killed, so nothing outlives the test)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    deadline = time.monotonic() + 5
    left = session_pids(proc.pid)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = session_pids(proc.pid)
    if left:
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    return left


# A development log line (core.logging.TextFormatter): time, level, logger, message.
READABLE_LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} [A-Z]+ +[\w.]+ \S")

ASSET_RE = re.compile(r"""(?:href|src)=["']([^"']+)["']""")


def static_assets(html: str) -> list[str]:
    """The /static/ URLs a page references (stylesheets, scripts, icons)."""
    return sorted({url for url in ASSET_RE.findall(html) if "/static/" in url})


def manage(env, *args: str, timeout=120, cwd=ROOT) -> subprocess.CompletedProcess:
    """``python manage.py ARGS`` in the checkout ``cwd``, with this interpreter and
    ``env``."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_scripts_run(cwd, env, log: Path) -> subprocess.Popen:
    """``scripts/run`` in ``cwd`` in its own session, its output in ``log``."""
    return start_in_session(["scripts/run"], cwd, env, log)


def start_in_session(args, cwd, env, log: Path) -> subprocess.Popen:
    """``args`` in ``cwd`` in its own session (``stop_session`` ends it all), its
    output in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


@contextlib.contextmanager
def xenx_gunicorn(
    tmp: Path,
    *,
    threads: int = 2,
    setup: Callable[[dict], object] | None = None,
    **settings: str,
):
    """XenX served as in production (gunicorn.conf.py: XenX's worker, 1 x ``threads``)
    on a free port, with the test settings, a SQLite file in ``tmp`` and ``settings``
    as extra environment; yields (port, log) and leaves no process behind. The database
    is not migrated (enough for requests that make no query) unless ``setup``, called
    with the server's environment before it starts, does it (``migrate_and_run``)."""
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("REDIS_URL", "WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="xenx.settings.test",
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        XENX_ADDR=f"127.0.0.1:{port}",
        GUNICORN_THREADS=str(threads),
        PYTHONUNBUFFERED="1",
        **settings,
    )
    if setup is not None:
        setup(env)
    log = tmp / "gunicorn.log"
    proc = start_in_session(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], ROOT, env, log
    )
    try:
        wait_until_serving(
            f"http://127.0.0.1:{port}/health/live", proc, log, timeout=60
        )
        yield port, log
    finally:
        assert stop_session(proc) == []


def migrate_and_run(script: str) -> Callable[[dict], None]:
    """A ``setup`` for ``xenx_gunicorn``: migrate its database, then run the Python
    ``script`` in ``manage.py shell`` there (register services, ...)."""

    def setup(env: dict) -> None:
        for args in (("migrate", "-v0"), ("shell", "-c", script)):
            done = manage(env, *args)
            assert done.returncode == 0, done.stdout + done.stderr

    return setup
