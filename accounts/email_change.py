"""Changing one's email address: asked for with the current password, confirmed from a
link mailed to the new address, while the old address gets a notice. Confirming signs
every session out (tokens carry the email: README "Lifecycle")."""

from __future__ import annotations

import hashlib

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import transaction

from auditlog import audit
from core.emails import send_templated_email_later
from core.errors import ValidationFailed
from organizations.services import account_exists_notice

from .notices import Notice, security_notice
from .passwords import check_current_password
from .services import user_update

EMAIL_CHANGE_DAYS = 3
_SALT = "xenx.accounts.email-change"


def _fingerprint(email: str) -> str:
    return hashlib.sha256(email.lower().encode()).hexdigest()[:20]


def _normalized(email) -> str:
    return get_user_model().objects.normalize_email((email or "").strip()).lower()


def email_change_request(*, user, password, new_email, request=None) -> None:
    """Mail a confirmation link to ``new_email`` and a notice to the current address.
    The current password is required (400 on ``password``, throttled). An address
    that belongs to another account gets the same answer; its owner is told instead
    (no account enumeration)."""
    check_current_password(
        user=user, password=password, request=request, field="password"
    )
    new_email = _normalized(new_email)
    if new_email == user.email.lower():
        raise ValidationFailed(details={"new_email": ["This is already your address."]})
    taken = get_user_model().objects.filter(email__iexact=new_email).first()
    token = signing.dumps(
        {"u": user.pk, "e": new_email, "o": _fingerprint(user.email)},
        salt=_SALT,
        compress=True,
    )
    with transaction.atomic():
        audit.record(
            audit.Action.EMAIL_CHANGE_REQUESTED,
            actor=user,
            target=user,
            request=request,
            data={"to": new_email},
        )
        security_notice(
            user=user,
            notice=Notice.EMAIL_CHANGE_REQUESTED,
            request=request,
            extra=f"The new address asked for: {new_email}.",
        )
        if taken is not None:
            account_exists_notice(
                user=taken,
                reason="Someone asked to move another XenX account to this address.",
            )
            return
        send_templated_email_later(
            template="email_change",
            to=new_email,
            context={
                "name": user.get_short_name(),
                "old_email": user.email,
                "new_email": new_email,
                "token": token,
                "days": EMAIL_CHANGE_DAYS,
            },
        )


def email_change_confirm(*, token, request=None):
    """Switch to the address the link was sent to; every token and session of the
    user is revoked (user_update). A bad, expired or used link (the address changed
    since) is 400 on ``token``."""
    bad = ValidationFailed(
        details={"token": ["This confirmation link is invalid, expired or used."]}
    )
    if not isinstance(token, str) or not token:
        raise bad
    try:
        data = signing.loads(token, salt=_SALT, max_age=EMAIL_CHANGE_DAYS * 86400)
        user_id, new_email, old = int(data["u"]), str(data["e"]), str(data["o"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise bad from None
    with transaction.atomic():
        user = (
            get_user_model()
            .objects.select_for_update()
            .filter(pk=user_id, is_active=True)
            .first()
        )
        if user is None or _fingerprint(user.email) != old:
            raise bad
        if get_user_model().objects.filter(email__iexact=new_email).exists():
            raise ValidationFailed(
                details={"token": ["This address now belongs to another account."]}
            )
        before = user.email
        # The platform applies it (the user may not write its own email directly).
        user = user_update(user=user, request=request, email=new_email)
        if not user.email_verified:
            user = user_update(user=user, request=request, email_verified=True)
        audit.record(
            audit.Action.EMAIL_CHANGED,
            actor=user,
            target=user,
            request=request,
            data={"from": before, "to": new_email},
        )
    return user
