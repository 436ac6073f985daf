"""Logging in and out, for every door: the password step, the second step, failures,
and the browser session's login and logout (portal and Django admin share the portal's
login page). The API issues tokens, the portal a session; the checks, throttles and
audit events are these same functions.

Failures that must be remembered (failed login, failed MFA code) are recorded outside
any transaction that the error would roll back.
"""

from __future__ import annotations

import time

import django_otp
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from auditlog import audit
from core.errors import InvalidCredentials, InvalidMfaCode, InvalidToken

from . import metrics, mfa, revocation, throttling, tokens
from .selectors import user_has_confirmed_totp

MFA_METHODS = ["totp", "backup_code"]
# Wrong codes one password login may try before it must start again (the API's
# mfa_token and the portal's half-done login alike).
MFA_MAX_FAILURES = 5
SESSION_BACKEND = "accounts.backends.EmailBackend"
# Said for every address alike (the counter is per email, known or not).
LOCKED_MESSAGE = (
    "Too many failed sign-ins for this account. It is locked: try again in {wait}, "
    "reset your password, or ask your administrator to unlock it."
)


def _channel(data: dict, channel: str) -> dict:
    return data if channel == "api" else {**data, "channel": channel}


# --- the steps every door shares ----------------------------------------------------


def login_check_password(*, request, email, password, channel: str = "api"):
    """Throttle (``login_ip`` every attempt, ``login_account`` failures), check the
    password, audit a failure. Returns the user; unknown email, wrong password, inactive
    user or organization: the same ``InvalidCredentials``."""
    email = throttling.account_key(email)
    throttling.hit(request, "login_ip", throttling.ip_of(request))
    throttling.check(request, "login_account", email, LOCKED_MESSAGE)
    user = authenticate(request, email=email, password=password)
    if user is None:
        throttling.fail(request, "login_account", email)
        known = get_user_model().objects.filter(email__iexact=email).first()
        audit.record(
            audit.Action.LOGIN_FAILED,
            target=known,
            request=request,
            data=_channel(
                {"email": email[:254], "reason": "invalid_credentials"}, channel
            ),
        )
        metrics.count("login", "failure")
        raise InvalidCredentials()
    return user


def login_check_code_throttle(*, request, user) -> None:
    """The second step's throttles: ``mfa_verify_ip`` every attempt, ``mfa_account``
    failures (429 when reached)."""
    throttling.hit(request, "mfa_verify_ip", throttling.ip_of(request))
    throttling.check(request, "mfa_account", str(user.pk))


def login_code_failed(*, request, user, failures: int, channel: str = "api") -> None:
    throttling.fail(request, "mfa_account", str(user.pk))
    metrics.count("mfa", "failure")
    audit.record(
        audit.Action.MFA_FAILED,
        actor=user,
        target=user,
        request=request,
        data=_channel({"step": "login", "failures": failures}, channel),
    )


def _touch_last_login(user) -> None:
    user.last_login = timezone.now()
    # A queryset update: no post_save, so the cached revocation state stays warm.
    get_user_model().objects.filter(pk=user.pk).update(last_login=user.last_login)


def login_succeeded(*, request, user, mfa_used: bool, channel: str = "api") -> None:
    """``last_login`` and the audit events of a finished login (call in a transaction)."""
    _touch_last_login(user)
    metrics.count("login", "success")
    if mfa_used:
        metrics.count("mfa", "success")
        audit.record(
            audit.Action.MFA_USED,
            actor=user,
            target=user,
            request=request,
            data=_channel({}, channel),
        )
    audit.record(
        audit.Action.LOGIN_SUCCEEDED,
        actor=user,
        target=user,
        request=request,
        data=_channel({"mfa": mfa_used}, channel),
    )


# --- the API: tokens ------------------------------------------------------------------


def _token_response(user, issued: dict) -> dict:
    return {
        "access": issued["access"],
        "refresh": issued["refresh"],
        "token_type": "Bearer",
        "expires_in": issued["expires_in"],
        "user": user,
    }


def login_password_step(*, request, email, password) -> dict:
    """Step one. Returns tokens, or ``{"mfa_required", "mfa_token", "methods"}`` when
    the user has a confirmed TOTP device."""
    user = login_check_password(request=request, email=email, password=password)
    if user_has_confirmed_totp(user):
        return {
            "mfa_required": True,
            "mfa_token": tokens.issue_mfa_token(user),
            "methods": list(MFA_METHODS),
        }
    with transaction.atomic():
        issued = tokens.issue_tokens(user, mfa=False, request=request)
        login_succeeded(request=request, user=user, mfa_used=False)
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
    if revocation.is_revoked(
        payload, user.tokens_revoked_before, user.tokens_spared_session
    ):
        return None
    return user


def login_mfa_step(*, request, mfa_token, code) -> dict:
    """Step two: the ``mfa_token`` of step one and a TOTP or backup code → tokens.

    The ``mfa_token`` is single use: it is claimed in the shared cache before the code is
    checked (so concurrent attempts with one token cannot both pass), released after a
    wrong code, and burnt after ``MFA_MAX_FAILURES`` wrong codes or a success."""
    throttling.hit(request, "mfa_verify_ip", throttling.ip_of(request))
    payload = tokens.decode_mfa_token(mfa_token)
    jti = str(payload["jti"])
    user = _login_user_from_mfa_payload(payload)
    if user is None:
        raise InvalidToken()
    throttling.check(request, "mfa_account", str(user.pk))
    ttl = max(1, int(float(payload["exp"]) - time.time()) + 5)
    used_key, fail_key = f"mfa-used:{jti}", f"mfa-fail:{jti}"
    if not cache.add(used_key, 1, ttl):
        raise InvalidToken()
    if not mfa.verify_second_factor(user=user, code=code):
        cache.add(fail_key, 0, ttl)
        failures = cache.incr(fail_key)
        if failures < MFA_MAX_FAILURES:
            cache.delete(used_key)
        login_code_failed(request=request, user=user, failures=failures)
        raise InvalidMfaCode()
    with transaction.atomic():
        issued = tokens.issue_tokens(
            user,
            mfa=True,
            session_started=float(payload.get("sst") or 0) or None,
            request=request,
        )
        login_succeeded(request=request, user=user, mfa_used=True)
    return _token_response(user, issued)


# --- browser sessions (portal, Django admin) -----------------------------------------


def session_second_factor(*, user, code):
    """The user's TOTP device when ``code`` (TOTP or backup code, each accepted once)
    is right, else None. The device marks the session verified (django-otp)."""
    if not mfa.verify_second_factor(user=user, code=code):
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


@transaction.atomic
def session_login(*, request, user, device=None) -> None:
    """Log ``user`` in to this browser session (verified by ``device`` when given);
    the session is stamped with its start (``policy.SESSION_STARTED_KEY``)."""
    auth_login(request, user, backend=SESSION_BACKEND)
    if device is not None:
        django_otp.login(request, device)
    login_succeeded(
        request=request, user=user, mfa_used=device is not None, channel="portal"
    )


def session_mark_verified(*, request, user) -> None:
    """This browser session confirmed the user's TOTP device: it counts as having passed
    it (django-otp's verified session)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        django_otp.login(request, device)


@transaction.atomic
def session_logout(*, request) -> None:
    user = request.user
    if user.is_authenticated:
        audit.record(
            audit.Action.LOGOUT,
            actor=user,
            target=user,
            request=request,
            data={"channel": "portal"},
        )
    auth_logout(request)
