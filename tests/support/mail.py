"""A mail server that is down: ``settings.EMAIL_BACKEND = BROKEN_BACKEND``."""

from django.core.mail.backends.base import BaseEmailBackend

BROKEN_BACKEND = "tests.support.mail.BrokenBackend"


class BrokenBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("smtp down")
