"""Issuing and checking JWTs. ``authenticate_access_token`` is the one check every
entry point uses (DRF views and the gateway); it costs no database query when the
revocation state is cached."""

from __future__ import annotations

import time
from dataclasses import dataclass

from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from xenx.errors import InvalidToken, MfaRequired, TokenRevoked

from . import revocation

# Paths a member of an mfa_required organization may use before enrolling TOTP.
MFA_EXEMPT_PREFIXES = ("/api/auth/me", "/api/auth/mfa/", "/api/auth/logout")


@dataclass(frozen=True)
class Identity:
    """Who a valid access token speaks for, from the token and the fresh cached state."""

    user_id: int
    email: str
    role: str
    org_id: int | None
    mfa: bool
    mfa_pending: bool  # org requires MFA and this login had no second factor
    payload: dict


def _user_claims(user, *, mfa: bool) -> dict:
    return {
        "email": user.email,
        "role": user.role,
        "org": user.organization_id,
        "permissions": sorted(user.get_all_permissions()),
        "mfa": bool(mfa),
    }


def issue_tokens(user, *, mfa: bool, session_started: float | None = None) -> dict:
    """A fresh refresh/access pair for ``user``. ``session_started`` is the time of the
    password login that began this refresh family (absolute lifetime)."""
    now = time.time()
    refresh = RefreshToken.for_user(user)
    for claim, value in _user_claims(user, mfa=mfa).items():
        refresh[claim] = value
    refresh["ist"] = now
    refresh["sst"] = session_started or now
    access = refresh.access_token
    access["ist"] = now
    return {"access": str(access), "refresh": str(refresh), "access_token": access}


def decode_access_token(raw: str) -> dict:
    """Signature, expiry and token_type=access (refresh and MFA tokens are refused)."""
    try:
        return AccessToken(raw).payload
    except TokenError as exc:
        raise InvalidToken() from exc


def authenticate_access_token(raw: str, *, path: str = "") -> Identity:
    """Verify a raw access token and its revocation state; raise an ApiError if refused."""
    payload = decode_access_token(raw)
    try:
        user_id = int(payload["user_id"])
        jti = str(payload["jti"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidToken() from exc
    user_state, org_state, denied = revocation.fetch_states(
        user_id, payload.get("org"), jti
    )
    if user_state is None or not user_state.is_active:
        raise TokenRevoked()
    if org_state is not None and not org_state.is_active:
        raise TokenRevoked()
    if denied or revocation.issued_at(payload) <= user_state.revoked_before:
        raise TokenRevoked()
    mfa = bool(payload.get("mfa"))
    mfa_pending = bool(org_state and org_state.mfa_required and not mfa)
    identity = Identity(
        user_id=user_id,
        email=str(payload.get("email", "")),
        role=user_state.role,
        org_id=user_state.org_id,
        mfa=mfa,
        mfa_pending=mfa_pending,
        payload=payload,
    )
    if mfa_pending and path and not path.startswith(MFA_EXEMPT_PREFIXES):
        raise MfaRequired()
    return identity
