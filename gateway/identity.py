"""The gateway's authentication step: the Bearer token of a proxied call checked by
the one policy (``accounts.policy.token_identity``), then its identity memoised for as
long as the revocation records it rests on."""

from __future__ import annotations

import time

from django.conf import settings

from accounts import revocation
from accounts.policy import Door, bearer_token, token_identity
from accounts.tokens import Identity, decode_access_token
from core.errors import ApiError, Forbidden, NotAuthenticated

from . import machines, state


def bearer(auth: str | None) -> str:
    raw = bearer_token(auth)
    if raw is None:
        raise NotAuthenticated()  # answered with the Bearer challenge
    return raw


def verify(raw: str) -> Identity:
    try:
        identity = token_identity(raw, door=Door.GATEWAY)
    except state.CACHE_ERRORS:
        if not settings.XENX_FAIL_OPEN_WITHOUT_CACHE:
            raise ApiError(
                "The gateway's shared state is unavailable.",
                status=503,
                code="service_unavailable",
                headers={"Retry-After": "5"},
            ) from None
        identity = identity_from_claims(decode_access_token(raw))
    _remember_identity(raw, identity)
    return identity


def admit(request, svc, identity: Identity) -> None:
    request.xenx_user_id = identity.user_id
    if identity.is_machine:  # an application's token (README "Machine clients")
        return machines.admit(svc, identity)
    if svc.allowed_roles and identity.role not in svc.allowed_roles:
        raise Forbidden(f"Your role may not call service {svc.name!r}.")


# Identities of tokens checked in the last moments, valid exactly as long as the
# revocation records they were built from are memoised by ``accounts.revocation`` (the
# same entries, not expired, not dropped by an invalidation in this process): reusing
# them adds no staleness and saves the JWT signature check on repeated calls.
_identity_memo: dict[str, tuple[Identity, tuple]] = {}
_IDENTITY_MEMO_MAX = 10_000


def _revocation_entries(identity: Identity):
    keys = revocation.token_keys(identity.payload)
    entries = tuple(revocation.memo_entry(k) for k in keys)
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


def memoised_identity(raw: str) -> Identity | None:
    hit = _identity_memo.get(raw)
    if hit is None:
        return None
    identity, entries = hit
    now = time.monotonic()
    try:
        for key, entry in entries:
            if revocation.memo_entry(key) is not entry or entry[0] <= now:
                _identity_memo.pop(raw, None)
                return None
    except (TypeError, IndexError, KeyError):  # accounts.revocation changed shape
        _identity_memo.clear()
        return None
    if identity.payload.get("exp", 0) <= time.time():
        _identity_memo.pop(raw, None)
        return None
    return identity


def identity_from_claims(payload: dict) -> Identity:
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
