"""``X-XenX-Identity``: a signed identity assertion for services with ``sign_identity``
(README "Gateway"), so an upstream can trust who is calling without trusting the network.

A JWT of ``ASSERTION_SECONDS`` (60 s) signed with the keys of ``/.well-known/jwks.json``
(``accounts.signing``): ``iss`` (``XENX_JWT_ISSUER``), ``aud`` (the service name), ``sub``
(user id), ``email``, ``role``, ``org``, ``mfa``, ``iat``, ``exp``, ``request_id``,
``token_type: "identity"`` (so XenX never takes one for an access token, and an upstream
never takes an access token for one: access tokens have no ``aud``).

Signing costs tens of microseconds (EdDSA) to a millisecond (RS256), so a process reuses
an assertion for the same identity and service while more than half its life is left:
``request_id`` is then the id of the request it was made for (the current one is in
``X-Request-ID``).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.exceptions import ValidationError

from accounts import signing
from accounts.keys import ASSERTION_SECONDS, is_asymmetric
from core.errors import ServiceUnavailable
from core.memo import Memo

HEADER = "X-XenX-Identity"
# (alg, service, user id, email, role, org, mfa) of a user, (alg, service, client id,
# role) of a machine client (gateway.machines) → (assertion, renew at)
signed_assertions = Memo(10_000, name="identity assertions")


def validate_sign_identity(value) -> None:
    """A field validator: HS256 keys cannot be published, so nothing could verify."""
    if value and not is_asymmetric():
        raise ValidationError(
            "Signed identity needs XENX_JWT_ALGORITHM EdDSA or RS256 (an HS256 "
            "secret cannot be published for services to verify with).",
            code="sign_identity_unavailable",
        )


def clear() -> None:
    signed_assertions.clear()


def assertion_for(identity, service: str, request_id: str) -> str:
    """The assertion for ``identity`` calling ``service``: a cached one while more
    than half its life is left, else a fresh one."""
    key = (
        settings.XENX_JWT_ALGORITHM,
        service,
        identity.user_id,
        identity.email,
        identity.role,
        identity.org_id,
        identity.mfa,
    )
    subject = {
        "sub": str(identity.user_id),
        "email": identity.email,
        "role": identity.role,
        "org": identity.org_id,
        "mfa": bool(identity.mfa),
    }
    return signed(
        signed_assertions, key, service=service, request_id=request_id, subject=subject
    )


def signed(
    memo: Memo, key: tuple, *, service: str, request_id: str, subject: dict
) -> str:
    """The identity assertion for ``subject`` (its claims) to ``service``, kept in
    ``memo`` under ``key`` (which starts with the algorithm) and reused while more than
    half its life is left; users' (``assertion_for``) and machine clients'
    (``gateway.machines``) alike."""
    alg = key[0]
    if not is_asymmetric(alg):
        raise ServiceUnavailable(
            f"Service {service!r} needs a signed identity, and XENX_JWT_ALGORITHM is "
            f"{alg}: set EdDSA or RS256."
        )
    now = time.time()
    hit = memo.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    iat = int(now)
    token = signing.encode(
        {
            "iss": settings.XENX_JWT_ISSUER,
            "aud": service,
            **subject,
            "iat": iat,
            "exp": iat + ASSERTION_SECONDS,
            "request_id": request_id,
            "token_type": "identity",
        }
    )
    memo.set(key, (token, iat + ASSERTION_SECONDS / 2))
    return token
