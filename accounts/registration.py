"""Registration (with or without an invitation) and email verification."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.db import IntegrityError, transaction

from auditlog import audit
from core.emails import send_templated_email_later
from core.errors import Forbidden, ValidationFailed
from core.roles import Role
from organizations.selectors import invitation_get_valid
from organizations.services import account_exists_notice

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
    """The verification link, mailed after the transaction commits (off the request's
    thread: the answer's timing must not differ from a registration of a taken
    address, whose owner gets ``account_exists_notice`` the same way)."""
    token = f"{user_uid(user)}.{email_verification_tokens.make_token(user)}"
    send_templated_email_later(
        template="verify_email",
        to=user.email,
        context={
            "user": {"get_short_name": user.get_short_name(), "email": user.email},
            "token": token,
        },
    )


def _invitation_for(token: str, email: str):
    """The usable invitation for ``token`` and ``email``; 400 ``validation_error`` on
    ``invitation`` when it is unknown, used, revoked, expired or bound to another
    email."""

    return invitation_get_valid(token=token, email=email)


def _create(*, request, email, password, first_name, last_name, invite):
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
    return user


def _stand_in(*, request, owner, email, password, first_name, last_name, invite):
    """The answer for an address that already has an account: the same work as a new
    account (password validation and hashing, an insert) rolled back, and an unsaved
    user shaped like a new one; the owner is mailed instead (README "Lifecycle").
    On PostgreSQL the id is one the sequence really handed out and never reuses."""
    with transaction.atomic():  # one commit, as for a new account
        audit.record(
            audit.Action.REGISTRATION_EXISTING,
            target=owner,
            request=request,
            data={"invitation": invite.pk if invite else None},
        )
        with transaction.atomic():  # a savepoint, rolled back
            placeholder = _create(
                request=request,
                email=f"{uuid.uuid4().hex}@stand-in.invalid",
                password=password,
                first_name=first_name,
                last_name=last_name,
                invite=None,
            )
            transaction.set_rollback(True)
    User = get_user_model()
    stand_in = User(
        pk=placeholder.pk,
        email=User.objects.normalize_email(email).lower(),
        first_name=first_name or "",
        last_name=last_name or "",
        role=invite.role if invite else Role.CLIENT,
        organization=invite.organization if invite else None,
        email_verified=invite is not None,
        date_joined=placeholder.date_joined,
    )
    # One mail after the answer, like a new account's verification mail.
    account_exists_notice(
        user=owner,
        reason="Someone tried to create a XenX account with this address.",
        organization=invite.organization.name if invite else "",
    )
    return stand_in


def register(*, request, email, password, first_name="", last_name="", invitation=None):
    """Create an account: with an invitation, in its organization with its role;
    without, a ``client`` with no organization when self-registration is on. Sends the
    verification email (not needed after an invitation, which came by email). An
    address that already has an account gets the same answer and no account: its
    owner is mailed instead."""

    throttling.hit(request, "register_ip", throttling.ip_of(request))
    email = (email or "").strip()
    # Every attempt per email: slows probing which addresses have an account.
    throttling.hit(request, "register_account", throttling.account_key(email))
    invite = None
    if invitation:
        invite = _invitation_for(invitation, email)
    elif not settings.XENX_SELF_REGISTRATION:
        raise Forbidden("Self-registration is disabled; an invitation is required.")
    fields = {
        "request": request,
        "email": email,
        "password": password,
        "first_name": first_name,
        "last_name": last_name,
        "invite": invite,
    }
    owner = get_user_model().objects.filter(email__iexact=email).first()
    try:
        if owner is not None:
            return _stand_in(owner=owner, **fields)
        user = _create(**fields)
    except IntegrityError:  # a concurrent registration of the same email won
        owner = get_user_model().objects.filter(email__iexact=email).first()
        if owner is None:
            raise
        return _stand_in(owner=owner, **fields)
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
