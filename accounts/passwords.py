"""Passwords, for every door: change (the old password required, throttled; API,
portal and Django admin's own password page), set by an administrator (Django admin's
set-password page, never for oneself), and reset by email. Each revokes and audits."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction

from auditlog import audit
from core.emails import send_templated_email_later
from core.errors import Forbidden, ValidationFailed
from organizations import permissions

from . import throttling, tokens
from .notices import Notice, security_notice
from .selectors import user_from_uid, user_uid
from .token_services import revoke_everything


def _validate_new_password(password, user, field: str) -> None:
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(details={field: list(exc.messages)}) from None


def check_current_password(*, user, password, request=None, field: str) -> None:
    """The one check of "your current password" before a sensitive action (password
    change, TOTP enrolment, email change): failures are throttled per account with
    ``password_change_account`` (429 once reached, right password or not) and answer
    400 ``validation_error`` on ``field``."""
    account = str(user.pk)
    throttling.check(request, "password_change_account", account)
    if not isinstance(password, str) or not user.check_password(password):
        throttling.fail(request, "password_change_account", account)
        raise ValidationFailed(
            details={field: ["The current password is not correct."]}
        )


def password_change(
    *,
    user,
    old_password,
    new_password,
    request=None,
    mfa: bool = False,
    spare_session: float | None = None,
) -> dict:
    """Change the password (the old one is required) and revoke every other token and
    session of the user. An API caller gets a fresh token pair (its old tokens are
    revoked too); a browser session passes ``spare_session``, keeps working and gets
    None. Failed old passwords are throttled per account like logins. Every door (API,
    portal, Django admin's password page) calls this."""
    check_current_password(
        user=user, password=old_password, request=request, field="old_password"
    )
    _validate_new_password(new_password, user, "new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        revoke_everything(user, spare_session=spare_session)
        issued = (
            None
            if spare_session
            else tokens.issue_tokens(user, mfa=mfa, request=request)
        )
        audit.record(
            audit.Action.PASSWORD_CHANGED, actor=user, target=user, request=request
        )
        security_notice(user=user, notice=Notice.PASSWORD_CHANGED, request=request)
    return issued


def password_set(*, user, password, actor, request=None) -> None:
    """An administrator sets (``password``) or disables (None) another user's password:
    Django admin's set-password page. Nobody sets its own password this way (that is
    ``password_change``, with the old password). Revokes every token and session of the
    user and is audited as a reset."""

    if actor is not None and actor.pk == user.pk:
        raise Forbidden("Change your own password with your current password.")
    permissions.check_user_update(actor, user, changes={"password": None})
    if password is not None:
        _validate_new_password(password, user, "password")
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        revoke_everything(user)
        audit.record(
            audit.Action.PASSWORD_RESET,
            actor=actor,
            target=user,
            request=request,
            data={"channel": "admin"},
        )
        if password is not None:
            security_notice(user=user, notice=Notice.PASSWORD_RESET, request=request)


def password_reset_request(*, request, email) -> None:
    """Send a reset email if an active account with a usable password has this email.
    The caller answers 202 either way, in the same time: both paths do the same work
    (a token, an audit event, a mail rendered after the answer on a thread), and only
    the mail of a real account is handed to the mail server."""
    email = throttling.account_key(email)
    throttling.hit(request, "password_reset_ip", throttling.ip_of(request))
    throttling.hit(request, "password_reset_account", email)
    user = (
        get_user_model()
        .objects.select_related("organization")
        .filter(email__iexact=email, is_active=True)
        .first()
    )
    deliver = (
        user is not None
        and user.has_usable_password()
        and (user.organization is None or user.organization.is_active)
    )
    subject = user if deliver else get_user_model()(email=email[:254])  # stand-in
    token = default_token_generator.make_token(subject)
    audit.record(
        audit.Action.PASSWORD_RESET_REQUESTED,
        target=user if deliver else None,
        request=request,
        data={} if deliver else {"email": email[:254], "sent": False},
    )
    send_templated_email_later(
        template="password_reset",
        to=subject.email,
        context={"user": subject, "uid": user_uid(subject), "token": token},
        deliver=deliver,
    )


def password_reset_link_user(*, uid, token):
    """The user a reset link is for while it can still be used, else None (the
    portal shows the form only for a usable link; nothing is spent)."""
    user = user_from_uid(uid)
    if user is None or not user.is_active or not isinstance(token, str):
        return None
    return user if default_token_generator.check_token(user, token) else None


def password_reset_confirm(*, request, uid, token, new_password) -> None:
    """Set a new password with a reset token (single use: the token is bound to the
    password hash), revoke every token of the user and lift a login lockout (the
    mailed link proved the address)."""
    user = password_reset_link_user(uid=uid, token=token)
    if user is None:
        raise ValidationFailed(
            details={"token": ["This reset link is invalid or has already been used."]}
        )
    _validate_new_password(new_password, user, "new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        revoke_everything(user)
        audit.record(audit.Action.PASSWORD_RESET, target=user, request=request)
        throttling.reset_account_lock(user)
        security_notice(user=user, notice=Notice.PASSWORD_RESET, request=request)
