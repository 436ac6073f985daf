"""Issuing and decoding JWTs. Whether a token may act is ``accounts.policy.judge``'s
verdict, the one every door uses (through ``token_identity``, or the gateway's pipeline
with the records it read itself).

Three token types share the signing key and are told apart by ``token_type``:
``access`` (15 min), ``refresh`` (7 days, rotated, in SimpleJWT's outstanding/blacklist
tables) and ``mfa`` (5 min, only good for ``/api/auth/mfa/verify``). Every decoder
checks the type, so no token can stand in for another.

Claims we add: ``email``, ``role``, ``org``, ``permissions``, ``mfa`` (README "Identity"), ``ist``
(issue time in epoch seconds with microseconds: SimpleJWT's ``iat`` is whole seconds, too
coarse to compare with a revocation made in the same second) and ``sst`` (the time of the
password login that started this refresh family: the absolute session lifetime).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import jwt
from django.conf import settings
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken as SimpleJwtAccessToken
from rest_framework_simplejwt.tokens import RefreshToken as SimpleJwtRefreshToken
from rest_framework_simplejwt.tokens import Token
from rest_framework_simplejwt.utils import datetime_from_epoch

from core.errors import InvalidToken
from core.memo import Memo

from . import revocation, sessions, signing


@dataclass(frozen=True)
class Identity:
    """Who a valid access token speaks for, from the token and the fresh cached state.

    A machine client (README "Machine clients") has no user: ``user_id`` is None,
    ``client_id`` names the application and ``services`` what it may call."""

    user_id: int | None
    email: str
    role: str
    org_id: int | None
    mfa: bool
    mfa_pending: bool  # org requires MFA and this login had no second factor
    payload: dict
    client_id: str | None = None  # the application a provider token was issued to
    services: tuple = ()  # a machine client's allowed services

    @property
    def is_machine(self) -> bool:
        return self.user_id is None


class AccessToken(SimpleJwtAccessToken):
    _token_backend = signing.token_backend  # XENX_JWT_ALGORITHM, kid (accounts.signing)


class RefreshToken(SimpleJwtRefreshToken):
    _token_backend = signing.token_backend
    access_token_class = AccessToken


class MfaToken(Token):
    """The signed proof that step one (password) of a two-step login passed."""

    _token_backend = signing.token_backend
    token_type = "mfa"
    lifetime = timedelta(seconds=settings.XENX_MFA_TOKEN_SECONDS)


def session_max_seconds() -> int:
    return int(settings.XENX_SESSION_MAX_DAYS) * 86400


def _user_claims(user, *, mfa: bool) -> dict:
    return {
        "email": user.email,
        "role": user.role,
        "org": user.organization_id,
        "permissions": sorted(user.get_all_permissions()),
        "mfa": bool(mfa),
    }


def issue_time(user) -> float:
    """Now, but strictly after the user's last wholesale revocation (which this process
    may just have written), in microsecond resolution."""
    now_us = time.time_ns() // 1000
    floor = revocation.to_micros(getattr(user, "tokens_revoked_before", None))
    return max(now_us, floor + 1) / 1_000_000


def issue_tokens(
    user,
    *,
    mfa: bool,
    session_started: float | None = None,
    family: str | None = None,
    request=None,
) -> dict:
    """A fresh refresh/access pair for ``user``, recorded as outstanding.

    ``session_started`` is the time of the password login that began this refresh family;
    neither token outlives it by more than ``XENX_SESSION_MAX_DAYS``. ``family`` (the
    ``fam`` claim of the presented refresh token) continues a session; without it a new
    session starts (``accounts.sessions``), recorded with ``request``'s address."""
    now = issue_time(user)
    sst = float(session_started or now)
    cap = int(sst + session_max_seconds())
    refresh = RefreshToken()
    refresh[api_settings.USER_ID_CLAIM] = str(user.pk)
    for claim, value in _user_claims(user, mfa=mfa).items():
        refresh[claim] = value
    refresh["ist"] = now
    refresh["sst"] = sst
    refresh[sessions.FAMILY_CLAIM] = family or sessions.new_family()
    refresh["exp"] = min(int(refresh["exp"]), cap)
    access = refresh.access_token
    access["ist"] = now
    access["exp"] = min(int(access["exp"]), cap)
    OutstandingToken.objects.create(
        user=user,
        jti=refresh[api_settings.JTI_CLAIM],
        token=str(refresh),
        created_at=refresh.current_time,
        expires_at=datetime_from_epoch(refresh["exp"]),
    )
    sessions.session_record_refresh(
        user=user,
        family=refresh[sessions.FAMILY_CLAIM],
        refresh_jti=refresh[api_settings.JTI_CLAIM],
        issued_at=now,
        expires_at=refresh["exp"],
        mfa=bool(mfa),
        request=request,
        created=family is None,
        session_started=sst,
    )
    return {
        "access": str(access),
        "refresh": str(refresh),
        "token_type": "Bearer",
        "expires_in": max(0, int(access["exp"] - time.time())),
        "access_token": access,
        "refresh_token": refresh,
    }


USER_ID = api_settings.USER_ID_CLAIM


def is_machine_payload(payload: dict) -> bool:
    """A machine client's token: an application's, with no user."""
    return isinstance(payload.get("client_id"), str) and USER_ID not in payload


def _decode(raw, token_type: str) -> dict:
    """Signature (the configured algorithm only, with a published ``kid`` when it is
    asymmetric: ``accounts.signing``), expiry, type and the claims we rely on. Any
    failure is 401 ``invalid_token``."""
    if not isinstance(raw, str) or not raw:
        raise InvalidToken()
    try:
        payload = signing.decode(raw)
    except jwt.InvalidTokenError as exc:
        # Every token that is not a valid one: garbage, bad signature, alg or kid,
        # expired. signing.decode turns the other exceptions hostile bytes cause in
        # PyJWT into this family; anything else is a bug (a 500), not a bad token.
        raise InvalidToken() from exc
    if not isinstance(payload, dict) or payload.get("token_type") != token_type:
        raise InvalidToken()
    # A machine client's access token (accounts.oidc.tokens) has no user.
    machine = token_type == "access" and is_machine_payload(payload)
    for claim in ("exp", "jti") if machine else ("exp", "jti", USER_ID):
        if claim not in payload:
            raise InvalidToken()
    try:
        int(payload[USER_ID]) if not machine else str(payload["client_id"])
        float(payload["exp"])
    except (TypeError, ValueError, OverflowError) as exc:  # 10**400: OverflowError
        raise InvalidToken() from exc
    if float(payload["exp"]) <= time.time():
        raise InvalidToken()
    return payload


def decode_access_token(raw: str) -> dict:
    """Signature, expiry and token_type=access (refresh and MFA tokens are refused).

    An access token whose signature was verified in this process is not verified again
    (the same bytes, the same key: the same verdict) until it expires or the published
    keys change (a key retired or removed: ``signing.key_generation``); its revocation
    state is the caller's, checked on every call."""
    generation = signing.key_generation()
    hit = verified_tokens.get(raw)
    if hit is not None and float(hit[0]["exp"]) > time.time() and hit[1] is generation:
        return dict(hit[0])
    payload = _decode(raw, "access")
    verified_tokens.set(raw, (payload, generation))
    return dict(payload)


# Payloads of access tokens whose signature this process verified, until they expire
# (checked on each read); the oldest go first past the bound. Public for its bound and
# ``clear`` (between tests: tests/support/reset.py).
verified_tokens = Memo(20_000, name="verified access tokens")


def decode_refresh_token(raw: str) -> dict:
    """A refresh token's payload (signature, expiry, type); revocation is the caller's."""
    return _decode(raw, "refresh")


def issue_mfa_token(user, *, session_started: float | None = None) -> str:
    token = MfaToken()
    token[api_settings.USER_ID_CLAIM] = str(user.pk)
    now = issue_time(user)
    token["ist"] = now
    token["sst"] = float(session_started or now)
    return str(token)


def decode_mfa_token(raw: str) -> dict:
    return _decode(raw, "mfa")
