"""The default email backend: each mail in a file, one log line per mail.

Django's console backend printed whole mails (sign-in and reset links included) into
the log stream, between its JSON lines. This one keeps Django's file backend (every
mail under ``EMAIL_FILE_PATH``, default ``sent-emails/``) and logs who got what, never
a body. Real delivery: ``EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend``.
"""

import logging

from django.core.mail.backends import filebased

logger = logging.getLogger("xenx.email")


class EmailBackend(filebased.EmailBackend):
    def send_messages(self, email_messages):
        sent = super().send_messages(email_messages)
        for message in email_messages or ():
            logger.info(
                "mail to %s: %s (in %s)",
                ", ".join(message.recipients()),
                message.subject,
                self._fname,
            )
        return sent
