"""core.emails: a mail that cannot go out is ``EmailNotSent`` (logged "email not sent"
when nobody waits for it); a template error is a bug and raises as itself."""

import logging
import smtplib

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.mail.backends.base import BaseEmailBackend
from django.template import TemplateSyntaxError

from core import emails

CONTEXT = {"name": "Ada", "email": "ada@example.com", "reason": "r", "organization": ""}


class FailingBackend(BaseEmailBackend):
    """A mail server failing with ``FailingBackend.error``."""

    error: Exception = smtplib.SMTPServerDisconnected("gone")

    def send_messages(self, email_messages):
        raise FailingBackend.error


OUTAGES = {
    "smtp_disconnected": smtplib.SMTPServerDisconnected(
        "Connection unexpectedly closed"
    ),
    "smtp_recipients_refused": smtplib.SMTPRecipientsRefused(
        {"ada@example.com": (550, b"no such user")}
    ),
    "connection_refused": ConnectionRefusedError(111, "Connection refused"),
    "timeout": TimeoutError("timed out"),
    "disk_full": OSError(28, "No space left on device"),
    "bad_address": ValueError('Invalid address "ada@"'),
}


@pytest.fixture
def failing(settings, monkeypatch):
    settings.EMAIL_BACKEND = f"{__name__}.FailingBackend"

    def fail_with(error):
        monkeypatch.setattr(FailingBackend, "error", error)

    return fail_with


def _send_later(**kwargs):
    emails.send_templated_email_later(
        template="account_exists", to="ada@example.com", context=CONTEXT, **kwargs
    )


@pytest.mark.parametrize("outage", OUTAGES)
def test_a_delivery_failure_is_email_not_sent(outage, failing, caplog):
    failing(OUTAGES[outage])
    with pytest.raises(emails.EmailNotSent) as raised:
        emails.send_templated_email(
            template="account_exists", to="ada@example.com", context=CONTEXT
        )
    assert raised.value.__cause__ is OUTAGES[outage]
    # Sent later (nobody waits for it): logged, and the caller goes on.
    with caplog.at_level(logging.ERROR, logger="xenx.email"):
        _send_later()
    assert [r.getMessage() for r in caplog.records] == ["email not sent"]


def test_the_file_backend_that_cannot_write_is_email_not_sent(settings, tmp_path):
    """The default backend (core.mail_backends) checks its directory each time it
    opens: a path that is a file is ImproperlyConfigured at send time."""
    settings.EMAIL_BACKEND = "core.mail_backends.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path / "a-file")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(emails.EmailNotSent) as raised:
        emails.send_templated_email(
            template="account_exists", to="ada@example.com", context=CONTEXT
        )
    assert isinstance(raised.value.__cause__, ImproperlyConfigured)


def test_the_file_backend_writes_the_mail(settings, tmp_path):
    settings.EMAIL_BACKEND = "core.mail_backends.EmailBackend"
    settings.EMAIL_FILE_PATH = str(tmp_path)
    emails.send_templated_email(
        template="account_exists", to="ada@example.com", context=CONTEXT
    )
    [written] = tmp_path.iterdir()
    assert b"ada@example.com" in written.read_bytes()


@pytest.fixture
def broken_template(monkeypatch):
    def render(name, context=None):
        raise TemplateSyntaxError(f"a bug in {name}")

    monkeypatch.setattr(emails, "render_to_string", render)


@pytest.mark.parametrize("deliver", [True, False])
def test_a_template_error_is_raised_not_logged_as_an_outage(
    deliver, broken_template, caplog
):
    """At once (XENX_EMAIL_IN_BACKGROUND off), and for both values of ``deliver`` (a
    request that must not look different fails the same way)."""
    with caplog.at_level(logging.ERROR, logger="xenx.email"):
        with pytest.raises(TemplateSyntaxError):
            _send_later(deliver=deliver)
        with pytest.raises(TemplateSyntaxError):
            emails.send_templated_email(
                template="account_exists", to="ada@example.com", context=CONTEXT
            )
    assert caplog.records == []
    assert mail.outbox == []


def test_in_the_background_a_template_error_ends_the_thread(broken_template, caplog):
    """What the mail thread runs: the error reaches threading.excepthook, it is not
    logged as "email not sent"."""
    with (
        caplog.at_level(logging.ERROR, logger="xenx.email"),
        pytest.raises(TemplateSyntaxError),
    ):
        emails._in_thread("account_exists", "ada@example.com", CONTEXT, True)
    assert caplog.records == []


def test_deliver_false_renders_and_sends_nothing():
    _send_later(deliver=False)
    assert mail.outbox == []
    _send_later()
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
