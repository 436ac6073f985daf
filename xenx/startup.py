"""The start gate: a server refuses to start on a bad setting, in one line.

``refusal()`` loads the settings and the apps and runs every system check (not only
the ``XENX_*`` ones: a signing key that cannot be used is an error of the security
checks) and returns the one line that says why the server must not start, or None.
A malformed value refused while the settings load (``ImproperlyConfigured``) is that
line too, never a traceback. gunicorn.conf.py asks once, in gunicorn's master, before
any worker starts (a refused worker would be restarted forever), in a forked child so
that gunicorn's master never loads Django; xenx/wsgi.py asks in any other WSGI server,
and skips what this process, or the gunicorn master that forked it, has passed.
"""

from __future__ import annotations

import os

import django
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured

DEFAULT_SETTINGS = "xenx.settings.development"
# Set by gunicorn.conf.py to its master's pid once the checks passed there: a worker
# (a child of that master) need not run them again.
CHECKED_BY = "XENX_STARTUP_CHECKED_BY"
_passed = False


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def refusal() -> str | None:
    """None when every check passes; else the one line that refuses to start."""
    global _passed
    if _passed or os.environ.get(CHECKED_BY) == str(os.getppid()):
        return None
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", DEFAULT_SETTINGS)
    try:
        django.setup()
        errors = [m for m in run_checks() if m.is_serious() and not m.is_silenced()]
    except ImproperlyConfigured as exc:
        return f"XenX refuses to start: {one_line(exc)}"
    if errors:
        found = "; ".join(f"{m.id}: {one_line(m.msg)}" for m in errors)
        return f"XenX refuses to start: {found}"
    _passed = True
    return None
