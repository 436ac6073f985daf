"""Counters of identity traffic, served by ``/metrics`` with the gateway's (README
"Gateway", metrics table). The login, MFA and refresh services count through
``count()``; the counters live here, below the gateway, and prometheus_client's
registry (or, with several workers, its multiprocess files) carries them to the view.
Every outcome starts at 0, so a dashboard's query finds its series before the first
event."""

from __future__ import annotations

import functools

from prometheus_client import Counter

from core.errors import ApiError

LOGINS = Counter(
    "xenx_logins_total",
    "Password logins (API and portal) by outcome: success (finished, second factor "
    "included), failure (wrong credentials), lockout (refused by a login throttle).",
    ["outcome"],
)
MFA = Counter(
    "xenx_mfa_verifications_total",
    "Second-factor codes at login by outcome: success, failure, lockout.",
    ["outcome"],
)
REFRESHES = Counter(
    "xenx_token_refreshes_total",
    "Refresh-token rotations by outcome: success, refused (invalid, revoked, expired "
    "or reused).",
    ["outcome"],
)
REUSES = Counter(
    "xenx_refresh_token_reuse_total",
    "Refresh tokens presented again after their rotation (every token of the user "
    "is then revoked).",
)

_OUTCOMES = {
    "login": (LOGINS, ("success", "failure", "lockout")),
    "mfa": (MFA, ("success", "failure", "lockout")),
    "refresh": (REFRESHES, ("success", "refused")),
}
_children = {
    (event, outcome): counter.labels(outcome)
    for event, (counter, outcomes) in _OUTCOMES.items()
    for outcome in outcomes
}
_children["refresh_reuse", ""] = REUSES


# The throttles whose refusal is a lockout of a login step (accounts/throttling.py).
LOCKOUT_OF = {
    "login_ip": "login",
    "login_account": "login",
    "mfa_verify_ip": "mfa",
    "mfa_account": "mfa",
}


def counted(event: str):
    """Decorator: count a service's call as ``event`` ``success`` when it returns,
    ``refused`` when it raises one of the API's errors."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                result = function(*args, **kwargs)
            except ApiError:
                count(event, "refused")
                raise
            count(event, "success")
            return result

        return wrapper

    return decorate


def count(event: str, outcome: str = "") -> None:
    """One identity event: ``login``, ``mfa`` (outcome ``success``, ``failure`` or
    ``lockout``), ``refresh`` (``success`` or ``refused``), ``refresh_reuse``."""
    _children[event, outcome].inc()
