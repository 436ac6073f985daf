"""The provider's access tokens: XenX JWTs, signed like a login's (``accounts.signing``)
so the gateway and every other door verify them in process and judge them by the same
cached revocation records (README "Sign in with XenX", "Machine clients").

django-oauth-toolkit calls ``access_token`` (its ``ACCESS_TOKEN_GENERATOR``) and stores
only the token's checksum; the token itself is the credential.

- A user's token is a login's access token (``token_type: access``, ``user_id``,
  ``email``, ``role``, ``org``, ``mfa``, ``jti``, ``ist``) plus ``client_id``, ``scope``,
  ``fam`` (the application session, ``ApplicationSession.family``: ending it refuses
  the token) and ``sst`` (when the user signed in).
- A machine's token (client credentials) has no user: ``sub`` is ``app:<client_id>``,
  ``fam`` is the application's ``token_family``, ``svc`` the services it may call,
  and ``role`` its role (may be empty).
"""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from rest_framework_simplejwt.settings import api_settings

from .. import signing
from ..tokens import issue_time

MACHINE_PREFIX = "app:"


def lifetime() -> int:
    return int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds())


def access_token(request) -> str:
    """django-oauth-toolkit's ``ACCESS_TOKEN_GENERATOR``: the JWT for the token request
    the validator has already judged (``request.client``, ``request.user``, and
    ``request.xenx_session`` for a user's sign-in)."""
    app = request.client
    scope = " ".join(request.scopes or ())
    if request.grant_type == "client_credentials":
        payload = machine_claims(app, scope=scope)
    else:
        payload = user_claims(request.user, app, request.xenx_session, scope=scope)
    request.xenx_access_claims = payload
    return signing.encode(payload)


def _common(now: float, app, scope: str) -> dict:
    return {
        "token_type": "access",
        "iss": settings.XENX_JWT_ISSUER,
        "iat": int(now),
        "ist": now,
        "exp": int(now) + lifetime(),
        api_settings.JTI_CLAIM: uuid.uuid4().hex,
        "client_id": app.client_id,
        "scope": scope,
    }


def user_claims(user, app, session, *, scope: str) -> dict:
    now = issue_time(user)
    return {
        **_common(now, app, scope),
        api_settings.USER_ID_CLAIM: str(user.pk),
        "email": user.email,
        "role": user.role,
        "org": user.organization_id,
        "mfa": "otp" in (session.amr or ()),
        "fam": str(session.family),
        "sst": float(session.auth_time),
    }


def machine_claims(app, *, scope: str) -> dict:
    now = time.time_ns() // 1000 / 1_000_000
    return {
        **_common(now, app, scope),
        "sub": f"{MACHINE_PREFIX}{app.client_id}",
        "fam": str(app.token_family),
        "svc": list(app.allowed_services or ()),
        "role": app.role or "",
    }
