"""Security notices: the account's address is told when something about its security
changes (README "Lifecycle"). Each is one mail, ``templates/emails/security_notice``,
rendered and sent after the transaction that made the change commits (nothing is
mailed for a change that rolled back)."""

from __future__ import annotations

import enum

from django.utils import timezone

from core.emails import send_templated_email_later
from core.net import client_ip


class Notice(enum.StrEnum):
    PASSWORD_CHANGED = "password_changed"
    PASSWORD_RESET = "password_reset"
    MFA_ENABLED = "mfa_enabled"
    MFA_DISABLED = "mfa_disabled"
    BACKUP_CODES_REPLACED = "backup_codes_replaced"
    EMAIL_CHANGE_REQUESTED = "email_change_requested"


# subject, what happened (one sentence); the template adds when, from where, and what
# to do if it was not you.
TEXTS = {
    Notice.PASSWORD_CHANGED: (
        "Your XenX password was changed",
        "The password of your XenX account was changed, and every other session "
        "was signed out.",
    ),
    Notice.PASSWORD_RESET: (
        "Your XenX password was reset",
        "The password of your XenX account was reset with a link sent to this "
        "address, and every session was signed out.",
    ),
    Notice.MFA_ENABLED: (
        "Two-factor authentication is on",
        "Two-factor authentication was turned on for your XenX account: signing in "
        "now asks for a code from an authenticator app.",
    ),
    Notice.MFA_DISABLED: (
        "Two-factor authentication is off",
        "Two-factor authentication was turned off for your XenX account: signing in "
        "asks for your password only.",
    ),
    Notice.BACKUP_CODES_REPLACED: (
        "New backup codes for your XenX account",
        "New backup codes were made for your XenX account; the old ones no longer "
        "work.",
    ),
    Notice.EMAIL_CHANGE_REQUESTED: (
        "A change of your XenX email address was requested",
        "Someone signed in to your XenX account asked to change its email address. "
        "The change happens only when the link sent to the new address is opened.",
    ),
}


def security_notice(*, user, notice: Notice, request=None, extra: str = "") -> None:
    """Mail ``user`` (at its current address) that ``notice`` happened, with the time
    and the address it came from; sent once the current transaction commits."""
    subject, text = TEXTS[notice]
    send_templated_email_later(
        template="security_notice",
        to=user.email,
        context={
            "name": user.get_short_name(),
            "email": user.email,
            "subject": subject,
            "text": text,
            "extra": extra,
            "when": timezone.now().strftime("%Y-%m-%d %H:%M UTC"),
            "ip": client_ip(request) if request is not None else "",
        },
    )
