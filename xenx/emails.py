"""Templated emails: ``templates/emails/{template}_subject.txt``, ``.txt`` and ``.html``
through Django's email backend. Every app sends its mails here."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
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


def send_templated_email(*, template: str, to: str, context: dict) -> None:
    render_templated_email(template=template, to=to, context=context).send()


def _send_logged(template: str, to: str, context: dict) -> None:
    try:
        send_templated_email(template=template, to=to, context=context)
    except Exception:
        logger.exception("email not sent")
    finally:
        if threading.current_thread() is not threading.main_thread():
            connections.close_all()  # this thread's own, if a template used one


def send_templated_email_later(*, template: str, to: str, context: dict) -> None:
    """Render and send after the transaction commits, off the request's thread when
    ``XENX_EMAIL_IN_BACKGROUND`` is on (default): the answer does not wait for the
    templates or the mail server, so its timing does not tell whether a mail was sent
    (password reset). ``context`` must not need the database."""
    args = (template, to, context)
    if not settings.XENX_EMAIL_IN_BACKGROUND:  # tests: at once, in this thread
        send_templated_email(template=template, to=to, context=context)
        return

    def start():
        thread = threading.Thread(target=_send_logged, args=args, daemon=True)
        _pending.append(thread)
        thread.start()

    transaction.on_commit(start)


def wait_for_background_emails(timeout: float = 10.0) -> None:
    """Join the mails still being sent (tests, orderly shutdown)."""
    while _pending:
        _pending.pop().join(timeout)
