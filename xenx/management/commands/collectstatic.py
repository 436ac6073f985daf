"""Django's ``collectstatic``, one run at a time per ``STATIC_ROOT``.

Several nodes started at once from one checkout (``scripts/run`` runs it on each) would
otherwise write and post-process the same files together, and one dies with
``FileNotFoundError`` when another replaces a file under it. A run waits for the one
before it (an exclusive ``flock`` on ``STATIC_ROOT``'s sibling ``.lock`` file), then
finds the files already collected and only checks them.
"""

import fcntl
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.management.commands import collectstatic


class Command(collectstatic.Command):
    def handle(self, **options):
        if not settings.STATIC_ROOT:  # Django's own error says what is missing
            return super().handle(**options)
        root = Path(settings.STATIC_ROOT)
        root.parent.mkdir(parents=True, exist_ok=True)
        with (root.parent / f"{root.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            return super().handle(**options)
