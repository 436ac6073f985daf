"""The identity flows of SPEC §4: login (two steps with MFA), token refresh with
rotation and reuse detection, logout, password change and reset, registration and email
verification. Each function writes its audit event itself; views stay thin.

Failures that must be remembered (failed login, reuse detected, failed MFA code) are
recorded outside any transaction that the error would roll back.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import (
    PasswordResetTokenGenerator,
    default_token_generator,
)
from django.core.cache import cache
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.token_blacklist.models import (
    BlacklistedToken,
    OutstandingToken,
)
from rest_framework_simplejwt.utils import datetime_from_epoch

from xenx.errors import (
    Forbidden,
    InvalidCredentials,
    InvalidMfaCode,
    InvalidToken,
    TokenRevoked,
    ValidationFailed,
)
from xenx.roles import Role

from . import audit, mfa, revocation, sessions, throttling, tokens

logger = logging.getLogger("xenx.auth")

MFA_METHODS = ["totp", "backup_code"]
MFA_TOKEN_MAX_FAILURES = 5


# --- emails -------------------------------------------------------------------------


def send_templated_email(*, template: str, to: str, context: dict) -> None:
    """Render ``templates/emails/{template}_subject.txt``, ``.txt`` and ``.html`` and
    send them through Django's email backend."""
    context = {"public_url": settings.XENX_PUBLIC_URL.rstrip("/"), **context}
    subject = " ".join(
        render_to_string(f"emails/{template}_subject.txt", context).split()
    )
    body = render_to_string(f"emails/{template}.txt", context)
    html = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
    message.attach_alternative(html, "text/html")
    message.send()


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    """Like the password reset tokens, but void once the email is verified (single use)
    or changed."""

    key_salt = "xenx.accounts.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.email}{user.email_verified}{timestamp}"


email_verification_tokens = EmailVerificationTokenGenerator()


def _uid(user) -> str:
    return urlsafe_base64_encode(force_bytes(user.pk))


def _user_from_uid(uid):
    if not isinstance(uid, str):
        return None
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (TypeError, ValueError, OverflowError, UnicodeDecodeError):
        return None
    return get_user_model().objects.filter(pk=pk).first()


def email_verification_send(*, user) -> None:
    token = f"{_uid(user)}.{email_verification_tokens.make_token(user)}"
    send_templated_email(
        template="verify_email", to=user.email, context={"user": user, "token": token}
    )


# --- login --------------------------------------------------------------------------


def _token_response(user, issued: dict) -> dict:
    return {
        "access": issued["access"],
        "refresh": issued["refresh"],
        "token_type": "Bearer",
        "expires_in": issued["expires_in"],
        "user": user,
    }


def _touch_last_login(user) -> None:
    user.last_login = timezone.now()
    # A queryset update: no post_save, so the cached revocation state stays warm.
    get_user_model().objects.filter(pk=user.pk).update(last_login=user.last_login)


def login_password_step(*, request, email, password) -> dict:
    """Step one. Returns tokens, or ``{"mfa_required", "mfa_token", "methods"}`` when
    the user has a confirmed TOTP device. Unknown email, wrong password, inactive user
    or organization: the same ``invalid_credentials``."""
    email = throttling.account_key(email)
    throttling.hit(request, "login_ip", throttling.ip_of(request))
    throttling.check(request, "login_account", email)
    user = authenticate(request, email=email, password=password)
    if user is None:
        throttling.fail(request, "login_account", email)
        known = get_user_model().objects.filter(email__iexact=email).first()
        audit.record(
            audit.Action.LOGIN_FAILED,
            target=known,
            organization=getattr(known, "organization", None),
            request=request,
            data={"email": email[:254], "reason": "invalid_credentials"},
        )
        raise InvalidCredentials()
    if mfa.user_has_confirmed_totp(user):
        return {
            "mfa_required": True,
            "mfa_token": tokens.issue_mfa_token(user),
            "methods": list(MFA_METHODS),
        }
    with transaction.atomic():
        issued = tokens.issue_tokens(user, mfa=False, request=request)
        _touch_last_login(user)
        audit.record(
            audit.Action.LOGIN_SUCCEEDED,
            actor=user,
            target=user,
            request=request,
            data={"mfa": False},
        )
    return _token_response(user, issued)


def _login_user_from_mfa_payload(payload):
    """The user an MFA token speaks for, if it may still log in."""
    user = (
        get_user_model()
        .objects.select_related("organization")
        .filter(pk=int(payload["user_id"]))
        .first()
    )
    if user is None or not user.is_active:
        return None
    if user.organization is not None and not user.organization.is_active:
        return None
    if revocation.issued_before(payload, user.tokens_revoked_before):
        return None
    return user


def login_mfa_step(*, request, mfa_token, code) -> dict:
    """Step two: the ``mfa_token`` of step one and a TOTP or backup code → tokens.

    The ``mfa_token`` is single use: it is claimed in the shared cache before the code is
    checked (so concurrent attempts with one token cannot both pass), released after a
    wrong code, and burnt after ``MFA_TOKEN_MAX_FAILURES`` wrong codes or a success."""
    throttling.hit(request, "mfa_verify_ip", throttling.ip_of(request))
    payload = tokens.decode_mfa_token(mfa_token)
    jti = str(payload["jti"])
    user = _login_user_from_mfa_payload(payload)
    if user is None:
        raise InvalidToken()
    account = str(user.pk)
    throttling.check(request, "mfa_account", account)
    ttl = max(1, int(float(payload["exp"]) - time.time()) + 5)
    used_key, fail_key = f"mfa-used:{jti}", f"mfa-fail:{jti}"
    if not cache.add(used_key, 1, ttl):
        raise InvalidToken()
    if not mfa.verify_second_factor(user=user, code=code):
        throttling.fail(request, "mfa_account", account)
        cache.add(fail_key, 0, ttl)
        failures = cache.incr(fail_key)
        if failures < MFA_TOKEN_MAX_FAILURES:
            cache.delete(used_key)
        audit.record(
            audit.Action.MFA_FAILED,
            actor=user,
            target=user,
            request=request,
            data={"step": "login", "failures": failures},
        )
        raise InvalidMfaCode()
    with transaction.atomic():
        issued = tokens.issue_tokens(
            user,
            mfa=True,
            session_started=float(payload.get("sst") or 0) or None,
            request=request,
        )
        _touch_last_login(user)
        audit.record(audit.Action.MFA_USED, actor=user, target=user, request=request)
        audit.record(
            audit.Action.LOGIN_SUCCEEDED,
            actor=user,
            target=user,
            request=request,
            data={"mfa": True},
        )
    return _token_response(user, issued)


# --- refresh, logout --------------------------------------------------------------------


def _blacklist_all(user_id) -> int:
    """Blacklist every outstanding, not yet blacklisted refresh token of a user."""
    pending = OutstandingToken.objects.filter(
        user_id=user_id, blacklistedtoken__isnull=True
    ).values_list("pk", flat=True)
    rows = [BlacklistedToken(token_id=pk) for pk in pending]
    BlacklistedToken.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def _revoke_everything(user) -> None:
    revocation.revoke_user_tokens(user)
    _blacklist_all(user.pk)


def _reuse_detected(*, user_id, jti, request) -> None:
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return
    with transaction.atomic():
        _revoke_everything(user)
        audit.record(
            audit.Action.TOKEN_REUSE_DETECTED,
            target=user,
            request=request,
            data={"jti": jti},
        )
    logger.warning("refresh token reuse detected", extra={"user_id": user.pk})


def token_refresh(*, request, refresh) -> dict:
    """Rotate: the presented refresh token is blacklisted and a new pair issued.

    Order of checks: signature/expiry/type (401 invalid_token) → user and organization
    active and token issued after the last wholesale revocation (401 token_revoked) →
    absolute session lifetime (401 invalid_token) → blacklisted? Then it is a reuse: 401
    token_revoked and every token of the user revoked. The outstanding row is locked, so
    of two concurrent refreshes of one token exactly one succeeds; the other is a reuse.
    """
    payload = tokens.decode_refresh_token(refresh)
    jti, user_id = str(payload["jti"]), int(payload["user_id"])
    reuse = False
    with transaction.atomic():
        outstanding = (
            OutstandingToken.objects.select_for_update()
            .order_by("pk")  # the model orders by user: an outer join, not lockable
            .filter(jti=jti)
            .first()
        )
        if outstanding is None or outstanding.user_id != user_id:
            raise InvalidToken()
        user = (
            get_user_model()
            .objects.select_related("organization")
            .filter(pk=user_id)
            .first()
        )
        if user is None or not user.is_active:
            raise TokenRevoked()
        if user.organization is not None and not user.organization.is_active:
            raise TokenRevoked()
        if revocation.issued_before(payload, user.tokens_revoked_before):
            raise TokenRevoked()
        sst = float(payload.get("sst") or revocation.issued_at(payload))
        if sst + tokens.session_max_seconds() <= time.time():
            raise InvalidToken("The session has expired; log in again.")
        if sessions.family_is_ended(payload.get(sessions.FAMILY_CLAIM)):
            raise TokenRevoked()  # ended by its user: not a reuse
        if BlacklistedToken.objects.filter(token=outstanding).exists():
            reuse = True
        else:
            try:
                with transaction.atomic():
                    BlacklistedToken.objects.create(token=outstanding)
            except IntegrityError:  # a concurrent rotation won (no row lock: SQLite)
                reuse = True
        if not reuse:
            issued = tokens.issue_tokens(
                user,
                mfa=bool(payload.get("mfa")),
                session_started=sst,
                family=payload.get(sessions.FAMILY_CLAIM),
                request=request,
            )
    if reuse:
        _reuse_detected(user_id=user_id, jti=jti, request=request)
        raise TokenRevoked()
    return issued


def logout(*, request, user, identity, refresh) -> None:
    """Revoke the given refresh token and the access token of this request."""
    try:
        payload = tokens.decode_refresh_token(refresh)
    except InvalidToken:
        raise ValidationFailed(
            details={"refresh": ["This refresh token is invalid or expired."]}
        ) from None
    if int(payload["user_id"]) != user.pk:
        raise ValidationFailed(
            details={"refresh": ["This refresh token belongs to another session."]}
        )
    with transaction.atomic():
        outstanding, _ = OutstandingToken.objects.get_or_create(
            jti=str(payload["jti"]),
            defaults={
                "user": user,
                "token": refresh,
                "created_at": timezone.now(),
                "expires_at": datetime_from_epoch(int(payload["exp"])),
            },
        )
        BlacklistedToken.objects.get_or_create(token=outstanding)
        audit.record(audit.Action.LOGOUT, actor=user, target=user, request=request)
    access = identity.payload
    revocation.deny_access_token(str(access["jti"]), float(access["exp"]))


def logout_all(*, request, user) -> None:
    """Revoke every refresh and access token of the user issued until now."""
    with transaction.atomic():
        _revoke_everything(user)
        audit.record(audit.Action.LOGOUT_ALL, actor=user, target=user, request=request)


# --- passwords ------------------------------------------------------------------------


def _validate_new_password(password, user, field: str) -> None:
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ValidationFailed(details={field: list(exc.messages)}) from None


def password_change(
    *, user, old_password, new_password, request=None, mfa: bool = False
) -> dict:
    """Change the password (the old one is required) and revoke every token the user
    held; returns a fresh token pair for the caller. Failed old passwords are throttled
    per account like logins."""
    account = str(user.pk)
    throttling.check(request, "password_change_account", account)
    if not user.check_password(old_password or ""):
        throttling.fail(request, "password_change_account", account)
        raise ValidationFailed(
            details={"old_password": ["The current password is not correct."]}
        )
    _validate_new_password(new_password, user, "new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        _revoke_everything(user)
        issued = tokens.issue_tokens(user, mfa=mfa, request=request)
        audit.record(
            audit.Action.PASSWORD_CHANGED, actor=user, target=user, request=request
        )
    return issued


def password_reset_request(*, request, email) -> None:
    """Send a reset email if an active account with a usable password has this email.
    The caller answers 202 either way."""
    email = throttling.account_key(email)
    throttling.hit(request, "password_reset_ip", throttling.ip_of(request))
    throttling.hit(request, "password_reset_account", email)
    user = (
        get_user_model()
        .objects.select_related("organization")
        .filter(email__iexact=email, is_active=True)
        .first()
    )
    if user is None or not user.has_usable_password():
        return
    if user.organization is not None and not user.organization.is_active:
        return
    token = default_token_generator.make_token(user)
    audit.record(audit.Action.PASSWORD_RESET_REQUESTED, target=user, request=request)
    send_templated_email(
        template="password_reset",
        to=user.email,
        context={"user": user, "uid": _uid(user), "token": token},
    )


def password_reset_confirm(*, request, uid, token, new_password) -> None:
    """Set a new password with a reset token (single use: the token is bound to the
    password hash) and revoke every token of the user."""
    bad = ValidationFailed(
        details={"token": ["This reset link is invalid or has already been used."]}
    )
    user = _user_from_uid(uid)
    if user is None or not user.is_active or not isinstance(token, str):
        raise bad
    if not default_token_generator.check_token(user, token):
        raise bad
    _validate_new_password(new_password, user, "new_password")
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        _revoke_everything(user)
        audit.record(audit.Action.PASSWORD_RESET, target=user, request=request)


# --- registration ---------------------------------------------------------------------


def _invitation_for(token: str, email: str):
    """The usable invitation for ``token`` and ``email``; 400 ``validation_error`` on
    ``invitation`` when it is unknown, used, expired or bound to another email."""
    from organizations.selectors import invitation_get_valid

    return invitation_get_valid(token=token, email=email)


def _invitation_accept(*, invitation, token: str, user, request) -> None:
    from organizations.services import invitation_accept

    invitation_accept(invitation=invitation, user=user, request=request)


def _django_errors(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "message_dict"):
        return {k: list(v) for k, v in exc.message_dict.items()}
    return {"non_field_errors": list(exc.messages)}


def register(*, request, email, password, first_name="", last_name="", invitation=None):
    """Create an account: with an invitation, in its organization with its role;
    without, a ``client`` with no organization when self-registration is on. Sends the
    verification email (not needed after an invitation, which came by email)."""
    from .services import user_create

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
                _invitation_accept(
                    invitation=invite, token=invitation, user=user, request=request
                )
    except DjangoValidationError as exc:
        raise ValidationFailed(details=_django_errors(exc)) from None
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
    user = _user_from_uid(uid)
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
