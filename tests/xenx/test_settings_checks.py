"""Invalid XENX_* settings fail ``manage.py check`` (not only ``--deploy``) and keep the
server from starting: nothing is ever silently unlimited (issue 10 item 7)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ports import free_port
from xenx.checks import check_rate_limits, check_settings

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra):
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(DJANGO_SETTINGS_MODULE="xenx.settings.test", **extra)
    return env


@pytest.mark.parametrize(
    "limits",
    [
        {"client": "100/min"},
        {"client": "100"},
        {"client": 100},
        {"anonymous": "x/m"},
        {"clinet": "100/m"},  # a typo: the intended limit would never apply
    ],
)
def test_bad_rate_limits_are_errors(settings, limits):
    settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMIT_DEFAULTS, **limits}
    assert [m.id for m in check_rate_limits(None)][:1] in (["xenx.E002"], ["xenx.E003"])


def test_default_settings_pass(settings):
    assert check_rate_limits(None) == [] and check_settings(None) == []


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("XENX_GATEWAY_MAX_BODY_BYTES", 0, "xenx.E004"),
        ("XENX_MAX_UPLOAD_BYTES", -1, "xenx.E004"),
        ("XENX_GATEWAY_POOL_SIZE", 0, "xenx.E004"),
        ("XENX_GATEWAY_CONNECT_TIMEOUT", 0, "xenx.E004"),
        ("XENX_CLIENT_TIMEOUT", 0, "xenx.E004"),
        ("XENX_CLIENT_TIMEOUT", float("nan"), "xenx.E004"),
        ("XENX_CLIENT_TIMEOUT", float("inf"), "xenx.E004"),
        ("XENX_CLIENT_REQUEST_TIMEOUT", 0, "xenx.E004"),
        ("XENX_CLIENT_REQUEST_TIMEOUT", -5, "xenx.E004"),
        ("XENX_CLIENT_REQUEST_TIMEOUT", 3601, "xenx.E004"),
        ("XENX_CLIENT_REQUEST_TIMEOUT", float("nan"), "xenx.E004"),
        ("XENX_TRUSTED_PROXIES", ["10.0.0.0/8", "not-an-ip"], "xenx.E005"),
        ("XENX_METRICS_TOKEN", "caf\u00e9", "xenx.E006"),
        ("XENX_PUBLIC_URL", "ftp://x", "xenx.E007"),
    ],
)
def test_bad_settings_are_errors(settings, name, value, code):
    setattr(settings, name, value)
    assert [m.id for m in check_settings(None)] == [code]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("XENX_RATE_LIMITS", '{"client": "100/min"}'),
        ("XENX_TRUSTED_PROXIES", "10.0.0.1,nope"),
        ("XENX_GATEWAY_MAX_BODY_BYTES", "0"),
    ],
)
def test_manage_py_check_fails(variable, value):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=_env(**{variable: value}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert variable in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [
        ["-m", "gunicorn", "xenx.wsgi", "-w", "1", "-b"],
        ["manage.py", "runserver", "--noreload"],
    ],
)
def test_server_refuses_to_start(command):
    address = f"127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, *command, address],
        cwd=ROOT,
        env=_env(XENX_RATE_LIMITS='{"client": "100/min"}'),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "XENX_RATE_LIMITS" in result.stderr + result.stdout
