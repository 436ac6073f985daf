"""README "Settings (environment)" and the system checks."""

import os
import secrets
import socket
import subprocess
import sys

import pytest
from django.core.checks import run_checks

from xenx.checks import check_rate_limits, check_shared_cache

LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
REDIS = {
    "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://x"}
}


def test_process_local_cache_warns_in_production(settings):
    settings.CACHES = LOCMEM
    settings.XENX_WORKERS = 1
    settings.XENX_ENVIRONMENT = "production"
    assert [m.id for m in check_shared_cache(None)] == ["xenx.W001"]


def test_process_local_cache_is_fine_for_one_development_process(settings):
    settings.CACHES = LOCMEM
    settings.XENX_WORKERS = 1
    settings.XENX_ENVIRONMENT = "development"
    assert check_shared_cache(None) == []


@pytest.mark.parametrize("environment", ["development", "production"])
def test_process_local_cache_with_several_workers_is_an_error(settings, environment):
    settings.XENX_ENVIRONMENT = environment
    settings.CACHES = LOCMEM
    settings.XENX_WORKERS = 4
    assert [m.id for m in check_shared_cache(None)] == ["xenx.E001"]


def test_shared_cache_passes(settings):
    settings.CACHES = REDIS
    settings.XENX_WORKERS = 4
    assert check_shared_cache(None) == []


@pytest.mark.parametrize("rate", ["abc", "10/x", "", "/m", "10/", "-1/m", "10/mm"])
def test_bad_rate_strings_are_errors(settings, rate):
    settings.XENX_RATE_LIMITS = {"client": rate}
    assert [m.id for m in check_rate_limits(None)] == ["xenx.E002"]


def test_good_rate_strings_pass(settings):
    settings.XENX_RATE_LIMITS = {
        "client": "60/m",
        "cpa": "10/15m",
        "staff": "5/s",
        "anonymous": "1000/d",
    }
    assert check_rate_limits(None) == []


def test_checks_clean_in_test_settings():
    assert [m for m in run_checks() if m.is_serious()] == []


def _run(args, extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], env=env, capture_output=True, text=True
    )


@pytest.mark.slow
def test_production_refuses_to_start_without_secret_key():
    proc = _run(
        ["check"],
        {"DJANGO_SETTINGS_MODULE": "xenx.settings.production", "SECRET_KEY": ""},
    )
    assert proc.returncode != 0
    assert "SECRET_KEY" in proc.stderr


@pytest.mark.slow
def test_check_deploy_is_clean_with_production_settings():
    proc = _run(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "DJANGO_SETTINGS_MODULE": "xenx.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "xenx.example.com",
            "REDIS_URL": "redis://127.0.0.1:6379/15",
        },
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


@pytest.mark.slow
def test_database_url_and_redis_url_select_postgres_and_django_redis():
    """The settings themselves (not dj-database-url) pick the backends from the env."""
    code = (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CACHES['default']['BACKEND'])"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "xenx.settings.development",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/xenx",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
    }
    proc = _run(["shell", "-c", code], env)
    assert "django.db.backends.postgresql django_redis.cache.RedisCache" in proc.stdout
    # Outages cost seconds, not hung threads: libpq's connect timeout, and a Redis
    # client that fails fast after a failure (bench/faults, README "Failure policy").
    timeouts = (
        "from django.conf import settings as s; "
        "print(s.DATABASES['default']['OPTIONS']['connect_timeout'], "
        "s.CACHES['default']['OPTIONS']['CLIENT_CLASS'])"
    )
    proc = _run(["shell", "-c", timeouts], {**env, "DB_CONNECT_TIMEOUT": "4"})
    assert proc.stdout.split()[-2:] == ["4", "core.cache.FailFastClient"], proc.stderr
    env.pop("DATABASE_URL"), env.pop("REDIS_URL")
    proc = _run(["shell", "-c", code], {**env, "DATABASE_URL": "", "REDIS_URL": ""})
    assert "django.db.backends.sqlite3 " in proc.stdout
    assert "locmem.LocMemCache" in proc.stdout


@pytest.mark.slow
def test_production_without_redis_warns_on_plain_check():
    proc = _run(
        ["check"],
        {
            "DJANGO_SETTINGS_MODULE": "xenx.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "xenx.example.com",
            "REDIS_URL": "",
        },
    )
    assert "xenx.W001" in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "http://127.0.0.1:8000"),
        ({"XENX_ADDR": "127.0.0.1:9123"}, "http://127.0.0.1:9123"),
        ({"XENX_ADDR": "[::1]:9123"}, "http://[::1]:9123"),
        ({"XENX_ADDR": "0.0.0.0:80"}, f"http://{socket.gethostname()}:80"),
        (
            {"XENX_ADDR": "0.0.0.0:80", "XENX_PUBLIC_URL": "https://id.example"},
            "https://id.example",
        ),
    ],
)
def test_the_public_url_defaults_to_the_address_served(monkeypatch, env, expected):
    from xenx.settings.env import public_url

    monkeypatch.delenv("XENX_ADDR", raising=False)
    monkeypatch.delenv("XENX_PUBLIC_URL", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert public_url() == expected


def test_every_xenx_setting_the_code_reads_is_declared_in_the_settings():
    """Declared once in xenx/settings/base.py, so a reader needs no default of its own."""
    import re

    from tests.xenx.servers import ROOT

    declared = set(
        re.findall(
            r"^(XENX_[A-Z0-9_]+) =", (ROOT / "xenx/settings/base.py").read_text(), re.M
        )
    )
    read = {}
    for app in ("accounts", "auditlog", "core", "gateway", "organizations", "portal"):
        for path in (ROOT / app).rglob("*.py"):
            text = path.read_text()
            for name in re.findall(r"""settings,\s*["'](XENX_[A-Z0-9_]+)""", text):
                read.setdefault(name, path.name)
            for name in re.findall(r"settings\.(XENX_[A-Z0-9_]+)", text):
                read.setdefault(name, path.name)
    assert len(read) > 20
    undeclared = sorted(
        f"{name} ({where})" for name, where in read.items() if name not in declared
    )
    assert not undeclared, f"read but declared nowhere: {undeclared}"
