"""README "Operator commands": operator commands, clear errors, non-zero exit, no traceback."""

import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User
from organizations.models import Organization

pytestmark = pytest.mark.django_db


def run(*args):
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_organization_and_user():
    out = run("create_organization", "Acme Tax", "--mfa-required")
    org = Organization.objects.get(slug="acme-tax")
    assert org.mfa_required and "acme-tax" in out
    out = run("create_user", "Pat@Acme.com", "--role", "cpa", "--org", "acme-tax")
    user = User.objects.get(email="pat@acme.com")
    assert user.role == "cpa" and user.organization == org
    assert "Password:" in out and user.has_usable_password()


def test_create_user_with_given_password():
    run("create_user", "a@b.com", "--role", "client", "--password", "a-Strong-pass-99")
    assert User.objects.get(email="a@b.com").check_password("a-Strong-pass-99")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create_user", "x@y.com", "--role", "cpa"], "needs --org"),
        (
            ["create_user", "x@y.com", "--role", "cpa", "--org", "nope"],
            "No organization",
        ),
        (["create_user", "not-an-email", "--role", "client"], "email"),
        (
            ["create_user", "x@y.com", "--role", "client", "--password", "123"],
            "password",
        ),
        (["create_organization", "  "], "must not be empty"),
        (["create_organization", "X", "--slug", "Bad Slug"], "not valid"),
    ],
)
def test_bad_arguments_raise_command_error(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_duplicate_email_is_a_command_error(make_user):
    make_user(email="dup@example.com")
    with pytest.raises(CommandError, match="already exists"):
        run("create_user", "DUP@example.com", "--role", "client")


def test_seed_demo_is_idempotent():
    first = run("seed_demo")
    assert first.count("password:") == 4
    counts = (Organization.objects.count(), User.objects.count())
    second = run("seed_demo")
    assert (Organization.objects.count(), User.objects.count()) == counts
    assert "password:" not in second
    assert set(User.objects.values_list("role", flat=True)) == {
        "admin",
        "staff",
        "cpa",
        "client",
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["create_user", "x@y.com", "--role", "bogus"], 2),
        (["create_user", "x@y.com", "--role", "cpa"], 1),
        (["create_organization"], 2),
    ],
)
def test_exit_status_and_no_traceback_from_the_shell(argv, code, tmp_path):
    env = {
        "DJANGO_SETTINGS_MODULE": "xenx.settings.test",
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, check=True)
    proc = subprocess.run(
        [sys.executable, "manage.py", *argv], env=env, capture_output=True, text=True
    )
    assert proc.returncode == code
    assert "Traceback" not in proc.stderr
