"""The gateway's authentication step: the Bearer token of a proxied call checked once,
then its identity memoised for as long as the revocation records it rests on."""

from __future__ import annotations

import time

from django.conf import settings

from accounts import revocation
from accounts.tokens import Identity, authenticate_access_token, decode_access_token
from xenx.errors import ApiError, MfaRequired, NotAuthenticated

from . import state


def authenticate(request, auth: str | None) -> Identity:
    if not auth:
        raise NotAuthenticated(headers={"WWW-Authenticate": 'Bearer realm="api"'})
    scheme, _, raw = auth.partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw or " " in raw or not raw.isascii():
        raise NotAuthenticated(
            "The Authorization header must be 'Bearer <token>'.",
            code="invalid_token",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    identity = _memoised_identity(raw)
    if identity is not None:
        return identity
    try:
        identity = authenticate_access_token(raw, path=request.path)
    except state.CACHE_ERRORS:
        if not settings.XENX_FAIL_OPEN_WITHOUT_CACHE:
            raise ApiError(
                "The gateway's shared state is unavailable.",
                status=503,
                code="service_unavailable",
                headers={"Retry-After": "5"},
            ) from None
        identity = _identity_from_claims(decode_access_token(raw))
    if identity.mfa_pending:
        raise MfaRequired()
    _remember_identity(raw, identity)
    return identity


# Identities of tokens checked in the last moments, valid exactly as long as the
# revocation records they were built from are memoised by ``accounts.revocation`` (the
# same entries, not expired, not dropped by an invalidation in this process): reusing
# them adds no staleness and saves the JWT signature check on repeated calls.
_identity_memo: dict[str, tuple[Identity, tuple]] = {}
_IDENTITY_MEMO_MAX = 10_000


def _revocation_entries(identity: Identity):
    memo = getattr(revocation, "_memo", None)
    if not isinstance(memo, dict):
        return None
    keys = [f"ustate:{identity.user_id}", f"jti:{identity.payload.get('jti')}"]
    if identity.org_id is not None:
        keys.append(f"ostate:{identity.org_id}")
    entries = tuple(memo.get(k) for k in keys)
    if any(e is None for e in entries):
        return None
    return tuple(zip(keys, entries, strict=True))


def _remember_identity(raw: str, identity: Identity) -> None:
    entries = _revocation_entries(identity)
    if entries is None:
        return
    if len(_identity_memo) >= _IDENTITY_MEMO_MAX:
        _identity_memo.clear()
    _identity_memo[raw] = (identity, entries)


def _memoised_identity(raw: str) -> Identity | None:
    hit = _identity_memo.get(raw)
    if hit is None:
        return None
    identity, entries = hit
    memo = revocation._memo
    now = time.monotonic()
    try:
        for key, entry in entries:
            if memo.get(key) is not entry or entry[0] <= now:
                _identity_memo.pop(raw, None)
                return None
    except (TypeError, IndexError, KeyError):  # accounts.revocation changed shape
        _identity_memo.clear()
        return None
    if identity.payload.get("exp", 0) <= time.time():
        _identity_memo.pop(raw, None)
        return None
    return identity


def _identity_from_claims(payload: dict) -> Identity:
    """Fail-open mode without the cache: the signed claims alone."""
    return Identity(
        user_id=int(payload["user_id"]),
        email=str(payload.get("email", "")),
        role=str(payload.get("role", "")),
        org_id=payload.get("org"),
        mfa=bool(payload.get("mfa")),
        mfa_pending=False,
        payload=payload,
    )
