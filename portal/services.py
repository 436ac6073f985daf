"""Portal-only writes: the session login in two steps. Password checks, second factors,
invitations and documents belong to the accounts and organizations services."""

from __future__ import annotations

import time

import django_otp
from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.db import transaction

from accounts import audit

PENDING_KEY = "portal_mfa_pending"
BACKEND = "accounts.backends.EmailBackend"
# Wrong codes one password login may try before it must start again (as the API's
# mfa_token allows).
MAX_CODE_FAILURES = 5


def pending_login_start(*, request, user, next_url: str) -> None:
    """The password was right and the user has a second factor: remember who is
    half-way through, for ``XENX_PORTAL_MFA_SECONDS``. Not a login yet."""
    request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "user_id": user.pk,
        "started": time.time(),
        "next": next_url,
        "failures": 0,
    }


def pending_login(request):
    """(user, next_url) of the half-finished login in this session, or (None, None)."""
    from django.contrib.auth import get_user_model

    state = request.session.get(PENDING_KEY)
    if not isinstance(state, dict):
        return None, None
    if time.time() - state.get("started", 0) > settings.XENX_PORTAL_MFA_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None, None
    user = (
        get_user_model()
        ._default_manager.select_related("organization")
        .filter(pk=state.get("user_id"), is_active=True)
        .first()
    )
    if user is None or (user.organization and not user.organization.is_active):
        request.session.pop(PENDING_KEY, None)
        return None, None
    return user, state.get("next") or settings.LOGIN_REDIRECT_URL


def pending_login_failed(*, request, user) -> bool:
    """Record a wrong code; True when this login has had too many and was dropped."""
    state = request.session.get(PENDING_KEY) or {}
    failures = int(state.get("failures", 0)) + 1
    audit.record(
        audit.Action.MFA_FAILED,
        actor=user,
        target=user,
        request=request,
        data={"step": "login", "channel": "portal", "failures": failures},
    )
    if failures >= MAX_CODE_FAILURES:
        request.session.pop(PENDING_KEY, None)
        return True
    state["failures"] = failures
    request.session[PENDING_KEY] = state
    return False


@transaction.atomic
def session_login(*, request, user, device=None) -> None:
    """Log ``user`` in to this session (and mark it verified by ``device``)."""
    request.session.pop(PENDING_KEY, None)
    auth_login(request, user, backend=BACKEND)
    if device is not None:
        django_otp.login(request, device)
        audit.record(
            audit.Action.MFA_USED,
            actor=user,
            target=user,
            request=request,
            data={"channel": "portal"},
        )
    audit.record(
        audit.Action.LOGIN_SUCCEEDED,
        actor=user,
        target=user,
        request=request,
        data={"channel": "portal", "mfa": device is not None},
    )


def login_failed(*, request, email: str) -> None:
    """The same audit event as a failed API login."""
    from django.contrib.auth import get_user_model

    known = get_user_model()._default_manager.filter(email__iexact=email).first()
    audit.record(
        audit.Action.LOGIN_FAILED,
        target=known,
        organization=getattr(known, "organization", None),
        request=request,
        data={
            "channel": "portal",
            "email": email[:254],
            "reason": "invalid_credentials",
        },
    )


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
