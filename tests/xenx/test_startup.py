"""The start gate (xenx/startup.py) through the real commands (issue 24): every bad
setting is refused by ``manage.py`` and by gunicorn with one line, no traceback and a
non-zero exit; gunicorn refuses once, in its master, before a worker starts; the
configuration the README documents starts."""

import json
import os
import subprocess
import sys

import pytest

from tests.xenx.servers import (
    ROOT,
    free_port,
    start_in_session,
    stop_session,
    wait_until_serving,
)

pytestmark = pytest.mark.slow


def _env(tmp_path, **extra):
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "WEB_CONCURRENCY")
        and not key.startswith("XENX_")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="xenx.settings.test",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        XENX_ADDR=f"127.0.0.1:{free_port()}",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def _run(args, env) -> tuple[int, list[str]]:
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = (result.stdout + result.stderr).strip()
    return result.returncode, output.splitlines()


def _open_keys_dir(tmp_path):
    directory = tmp_path / "keys"
    directory.mkdir()
    directory.chmod(0o777)
    return str(directory)


BAD = {
    "access token 0 minutes": ({"XENX_ACCESS_TOKEN_MINUTES": "0"}, "XENX_ACCESS_"),
    "negative health interval": ({"XENX_HEALTH_CHECK_INTERVAL": "-5"}, "XENX_HEALTH"),
    "not a number": ({"XENX_ACCESS_TOKEN_MINUTES": "abc"}, "XENX_ACCESS_TOKEN"),
    "fail-fast not a number": ({"XENX_CACHE_FAIL_FAST_SECONDS": "x"}, "FAIL_FAST"),
    "misspelled name": ({"XENX_RATE_LIMIT": '{"client": "1/m"}'}, "XENX_RATE_LIMIT,"),
    "port out of range": ({"XENX_ADDR": "127.0.0.1:99999"}, "XENX_ADDR"),
    "not host:port": ({"XENX_ADDR": "localhost"}, "XENX_ADDR"),
    "count 0": ({"XENX_RATE_LIMITS": '{"client": "0/m"}'}, "XENX_RATE_LIMITS"),
    "period 0": ({"XENX_RATE_LIMITS": '{"client": "10/0m"}'}, "XENX_RATE_LIMITS"),
    "unknown algorithm": ({"XENX_JWT_ALGORITHM": "none"}, "XENX_JWT_ALGORITHM"),
    "no usable key": ({"XENX_JWT_ALGORITHM": "EdDSA"}, "xenx.E011"),
    "writable key directory": ({"XENX_JWT_ALGORITHM": "EdDSA"}, "xenx.E013"),
}


def _bad_env(tmp_path, case):
    extra, _ = BAD[case]
    if case == "no usable key":
        extra = {**extra, "XENX_SIGNING_KEYS_DIR": str(tmp_path)}
    if case == "writable key directory":
        extra = {**extra, "XENX_SIGNING_KEYS_DIR": _open_keys_dir(tmp_path)}
    return _env(tmp_path, **extra)


@pytest.mark.parametrize("case", BAD)
def test_gunicorn_refuses_once_in_one_line(tmp_path, case):
    code, lines = _run(
        ["-m", "gunicorn", "-c", "gunicorn.conf.py"], _bad_env(tmp_path, case)
    )
    assert code != 0
    assert len(lines) == 1, lines  # no worker booted, no traceback
    assert lines[0].startswith("XenX refuses to start: ")
    assert BAD[case][1] in lines[0]


@pytest.mark.parametrize(
    "case", ["not a number", "unknown algorithm", "misspelled name", "period 0"]
)
def test_manage_py_refuses_without_a_traceback(tmp_path, case):
    code, lines = _run(["manage.py", "check"], _bad_env(tmp_path, case))
    assert code != 0
    assert not any("Traceback" in line for line in lines), lines
    assert any(BAD[case][1] in line for line in lines), lines
    if case in ("not a number", "unknown algorithm"):  # refused as settings load
        assert len(lines) == 1, lines


def test_the_documented_configuration_starts(tmp_path):
    """Every name README "Identity" documents for XENX_RATE_LIMITS (the check refused
    the optional ones, so this configuration did not start)."""
    names = [
        "anonymous", "client", "cpa", "staff", "admin", "login_ip", "login_account",
        "register_ip", "register_account", "password_reset_ip",
        "password_reset_account", "mfa_verify_ip", "mfa_account",
        "password_change_account",
    ]  # fmt: skip
    env = _env(tmp_path, XENX_RATE_LIMITS=json.dumps(dict.fromkeys(names, "30/m")))
    log = tmp_path / "gunicorn.log"
    proc = start_in_session(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"], ROOT, env, log
    )
    try:
        wait_until_serving(f"http://{env['XENX_ADDR']}/health/live", proc, log, 60)
    finally:
        assert stop_session(proc) == []
