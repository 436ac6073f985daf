"""Registration (with or without an invitation) and email verification."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import IntegrityError, transaction

from auditlog import audit
from core.emails import send_templated_email
from core.errors import Forbidden, ValidationFailed
from core.roles import Role
from organizations.selectors import invitation_get_valid

from . import throttling
from .selectors import user_from_uid, user_uid
from .services import user_accept_invitation, user_create


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    """Like the password reset tokens, but void once the email is verified (single use)
    or changed."""

    key_salt = "xenx.accounts.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.email}{user.email_verified}{timestamp}"


email_verification_tokens = EmailVerificationTokenGenerator()


def email_verification_send(*, user) -> None:
    token = f"{user_uid(user)}.{email_verification_tokens.make_token(user)}"
    send_templated_email(
        template="verify_email", to=user.email, context={"user": user, "token": token}
    )


def _invitation_for(token: str, email: str):
    """The usable invitation for ``token`` and ``email``; 400 ``validation_error`` on
    ``invitation`` when it is unknown, used, expired or bound to another email."""

    return invitation_get_valid(token=token, email=email)


def register(*, request, email, password, first_name="", last_name="", invitation=None):
    """Create an account: with an invitation, in its organization with its role;
    without, a ``client`` with no organization when self-registration is on. Sends the
    verification email (not needed after an invitation, which came by email)."""

    throttling.hit(request, "register_ip", throttling.ip_of(request))
    email = (email or "").strip()
    # Every attempt per email: slows probing which addresses have an account.
    throttling.hit(request, "register_account", throttling.account_key(email))
    invite = None
    if invitation:
        invite = _invitation_for(invitation, email)
    elif not settings.XENX_SELF_REGISTRATION:
        raise Forbidden("Self-registration is disabled; an invitation is required.")
    try:
        with transaction.atomic():
            user = user_create(
                email=email,
                password=password,
                first_name=first_name or "",
                last_name=last_name or "",
                role=invite.role if invite else Role.CLIENT,
                organization=invite.organization if invite else None,
                # The invitation token came by email: the address is proven.
                email_verified=invite is not None,
                request=request,
            )
            if invite is not None:
                user_accept_invitation(user=user, invitation=invite, request=request)
    except IntegrityError:  # a concurrent registration of the same email
        raise ValidationFailed(
            details={"email": ["A user with this email already exists."]}
        ) from None
    if not user.email_verified:
        email_verification_send(user=user)
    return user


def verify_email(*, request, token) -> None:
    bad = ValidationFailed(
        details={"token": ["This verification link is invalid or already used."]}
    )
    if not isinstance(token, str) or "." not in token:
        raise bad
    uid, _, raw = token.partition(".")
    user = user_from_uid(uid)
    if user is None or user.email_verified:
        raise bad
    if not email_verification_tokens.check_token(user, raw):
        raise bad
    with transaction.atomic():
        get_user_model().objects.filter(pk=user.pk).update(email_verified=True)
        user.email_verified = True
        audit.record(
            audit.Action.EMAIL_VERIFIED, actor=user, target=user, request=request
        )
