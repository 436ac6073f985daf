"""Every operator command the README lists runs as written on a fresh clone: the
``scripts/manage`` lines of its shell blocks and each row of "Operator commands" (with
example values for the placeholders), in the mode of this test run: the embedded
defaults, or PostgreSQL and Redis when the run has them (CI runs both). Duplicates and
bad input are refused with one line and a non-zero exit.

The commands run as ``python manage.py …`` with the test run's interpreter: what
``scripts/manage`` runs once ``scripts/_venv.sh`` has made the virtualenv (which a
test must not reinstall)."""

from __future__ import annotations

import os
import re
import uuid

import pytest
from django.conf import settings
from django.db import connection

from tests.xenx.servers import clone_head, manage
from tests.xenx.test_readme import _readme_commands, section, table_rows

pytestmark = [pytest.mark.slow]

# Example values for the placeholders of the "Operator commands" table, per command.
EXAMPLES = {
    "migrate": [["migrate", "--noinput"]],
    "createsuperuser": [["createsuperuser", "--noinput"]],
    "collectstatic": [["collectstatic", "--noinput", "--verbosity", "0"]],
    "check": [["check"]],
    "seed_demo": [["seed_demo"], ["seed_demo", "--reset-passwords"]],
    "create_organization": [["create_organization", "Acme Tax", "--mfa-required"]],
    "create_user": [
        ["create_user", "ada@acme.test", "--role", "cpa", "--org", "acme-tax"],
        [
            "create_user",
            "bob@acme.test",
            "--role",
            "client",
            "--password",
            "p4ss-W0rd!x",
        ],
    ],
    "register_service": [["register_service", "files", "http://127.0.0.1:9"]],
    "list_services": [["list_services"]],
    "remove_service": [["remove_service", "files"]],
    "check_services": [["check_services", "--once"]],
    "flushexpiredtokens": [["flushexpiredtokens"]],
    "register_app": [
        [
            "register_app",
            "Tax planner",
            "--redirect-uri",
            "https://tax.acme.test/callback",
            "--org",
            "acme-tax",
        ],
        ["register_app", "Nightly job", "--client-credentials", "--services", "files"],
    ],
    "rotate_signing_key": [
        ["rotate_signing_key", "--algorithm", "EdDSA", "--grace", "0"],
        ["rotate_signing_key", "--prune-only"],
    ],
}
# Commands that end non-zero by design when run as above.
EXPECTED_STATUS = {("check_services", "--once"): 1}  # its instances are down
# Refused, with one line (Django's "CommandError: …") and exit status 1.
REFUSED = [
    ["create_organization", "Acme Tax"],  # the name is taken
    ["create_organization", "Other", "--slug", "acme-tax"],  # the slug is taken
    ["create_user", "ada@acme.test", "--role", "cpa", "--org", "acme-tax"],
    ["create_user", "eve@acme.test", "--role", "cpa"],  # no organization
    ["register_service", "auth", "http://127.0.0.1:9"],  # a reserved name
    ["register_service", "files", "ftp://127.0.0.1:9"],
    ["remove_service", "no-such-service"],
]


def _table_commands() -> list[str]:
    names = []
    for cells in table_rows(section("Operator commands")):
        for syntax in re.findall(r"`([a-z_]+)[^`]*`", cells[0]):
            names.append(syntax)
    return names


def test_every_command_of_the_table_has_an_example():
    missing = sorted(set(_table_commands()) - set(EXAMPLES))
    assert not missing, f"add EXAMPLES for the README's operator commands {missing}"


def _sequence() -> list[list[str]]:
    """migrate first, the table's examples, then the shell blocks' lines as written."""
    sequence = [["migrate", "--noinput"]]
    for name in dict.fromkeys(_table_commands()):
        sequence += [args for args in EXAMPLES[name] if args[0] != "migrate"]
    for command in _readme_commands():
        if command[0] == "scripts/manage" and command[1:] not in sequence:
            sequence.append(command[1:])
    return sequence


def _postgres_and_redis() -> dict | None:
    db = connection.settings_dict
    if "postgresql" not in db["ENGINE"] or not settings.REDIS_URL:
        return None
    return {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/",
        "REDIS_URL": settings.REDIS_URL,
    }


@pytest.fixture
def clone_env(tmp_path, django_db_setup, django_db_blocker):
    """(clone, environment) of a fresh clone, in this run's mode."""
    clone = clone_head(tmp_path)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
        and not key.startswith(("XENX_", "PYTEST_", "PROMETHEUS_"))
    }
    env |= {
        "DJANGO_SUPERUSER_EMAIL": "root@acme.test",
        "DJANGO_SUPERUSER_PASSWORD": "a-long-Passw0rd-for-root",
        "XENX_SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "HOME": str(tmp_path),
    }
    shared = _postgres_and_redis()
    if shared is None:  # the embedded defaults: the clone's own db.sqlite3
        yield clone, env
        return
    name = f"xenx_readme_{uuid.uuid4().hex[:8]}"  # a database of its own
    with django_db_blocker.unblock(), connection.cursor() as cursor:  # autocommit
        cursor.execute(f'CREATE DATABASE "{name}"')
    env |= {
        "DATABASE_URL": shared["DATABASE_URL"] + name,
        "REDIS_URL": shared["REDIS_URL"],
        "XENX_CACHE_PREFIX": name,
    }
    try:
        yield clone, env
    finally:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_every_readme_command_runs_as_written(clone_env):
    clone, env = clone_env
    for args in _sequence():
        done = manage(env, *args, cwd=clone, timeout=180)
        expected = EXPECTED_STATUS.get(tuple(args), 0)
        assert done.returncode == expected, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr, (args, done.stderr)
    for args in REFUSED:
        done = manage(env, *args, cwd=clone, timeout=180)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("CommandError: "), (
            args,
            done.stderr,
        )
