"""Templated emails: ``templates/emails/{template}_subject.txt``, ``.txt`` and ``.html``
through Django's email backend. Every mail of the platform (email verification,
password reset, invitations) is sent here.

A mail that cannot go out is ``EmailNotSent`` (the outage: the mail server, or the
file backend's directory); a template that cannot render is a bug and raises as
itself."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.db import connections, transaction
from django.template.loader import render_to_string

logger = logging.getLogger("xenx.email")
_pending: list[threading.Thread] = []


def render_templated_email(*, template: str, to: str, context: dict):
    context = {"public_url": settings.XENX_PUBLIC_URL.rstrip("/"), **context}
    subject = " ".join(
        render_to_string(f"emails/{template}_subject.txt", context).split()
    )
    body = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    return message


class EmailNotSent(Exception):
    """The email backend could not take a rendered mail."""


# What Django's backends raise when a mail cannot go out:
DELIVERY_FAILURES = (
    # SMTP: the server down, refusing, timing out, TLS (smtplib.SMTPException and
    # ssl.SSLError are OSErrors); the file backend (core.mail_backends): the file.
    OSError,
    # The file backend's directory cannot be created or written (checked each time a
    # connection opens, so at send time, not only at startup).
    ImproperlyConfigured,
    # An address or a header the backend cannot put on the wire (sanitize_address,
    # BadHeaderError): that mail cannot go out.
    ValueError,
)


def deliver_message(message: EmailMessage) -> None:
    """Send a rendered mail; ``EmailNotSent`` when the backend cannot take it."""
    try:
        message.send()
    except DELIVERY_FAILURES as exc:
        raise EmailNotSent(f"{type(exc).__name__}: {exc}") from exc


def send_templated_email(*, template: str, to: str, context: dict) -> None:
    """Render (a template error raises as itself) and send (``EmailNotSent``)."""
    deliver_message(render_templated_email(template=template, to=to, context=context))


def _render_and_send(template: str, to: str, context: dict, deliver: bool) -> None:
    """Render, then send when ``deliver``. A delivery failure is logged ("email not
    sent") and goes no further: nobody waits for this mail. A template error is a bug
    and is not caught: at once, the request that sends the mail fails with it (for
    both values of ``deliver``, so it tells nothing about an account); in the
    background, ``_in_thread`` lets it end the thread (``threading.excepthook``
    writes it to stderr, pytest warns of it), not logged as an outage."""
    message = render_templated_email(template=template, to=to, context=context)
    if not deliver:
        return
    try:
        deliver_message(message)
    except EmailNotSent:
        logger.exception("email not sent")


def _in_thread(*args) -> None:
    try:
        _render_and_send(*args)
    finally:
        connections.close_all()  # this thread's own, if a template used one


def send_templated_email_later(
    *, template: str, to: str, context: dict, deliver: bool = True
) -> None:
    """Render and send after the transaction commits, off the request's thread when
    ``XENX_EMAIL_IN_BACKGROUND`` is on (default): the answer does not wait for the
    templates or the mail server, so its timing does not tell whether a mail was sent
    (password reset). ``context`` must not need the database. ``deliver=False`` does
    the same work and sends nothing (a request that must not look different)."""
    args = (template, to, context, deliver)
    if not settings.XENX_EMAIL_IN_BACKGROUND:  # tests: at once, in this thread
        _render_and_send(*args)
        return

    def start():
        thread = threading.Thread(target=_in_thread, args=args, daemon=True)
        _pending[:] = [t for t in _pending if t.is_alive()]
        _pending.append(thread)
        thread.start()

    transaction.on_commit(start)


def wait_for_background_emails(timeout: float = 10.0) -> None:
    """Join the mails still being sent (tests, orderly shutdown)."""
    while _pending:
        _pending.pop().join(timeout)
