"""The portal's half-done login: who passed the password step in this browser session
and is asked for a second factor. Only session state: the checks, throttles, audit
events and the login itself are ``accounts.login``'s, shared with the API."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import get_user_model

from accounts.login import MFA_MAX_FAILURES

PENDING_KEY = "portal_mfa_pending"


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


def pending_login_failed(request) -> int:
    """Count a wrong code; returns the count. At ``MFA_MAX_FAILURES`` the half-done
    login is dropped (the password step must be passed again)."""
    state = request.session.get(PENDING_KEY) or {}
    failures = int(state.get("failures", 0)) + 1
    if failures >= MFA_MAX_FAILURES:
        request.session.pop(PENDING_KEY, None)
    else:
        state["failures"] = failures
        request.session[PENDING_KEY] = state
    return failures


def pending_login_end(request) -> None:
    request.session.pop(PENDING_KEY, None)
