"""Encoding and verifying every JWT XenX makes, with the configured algorithm.

- ``HS256`` (default): exactly SimpleJWT's behaviour, the ``SIMPLE_JWT["SIGNING_KEY"]``
  secret, no ``kid``.
- ``EdDSA`` / ``RS256``: signed with the key ring's current key (``accounts.keys``),
  its ``kid`` in the header. A token is verified only when its header's ``alg`` is the
  configured algorithm and its ``kid`` names a published key of that algorithm: ``alg:
  none``, HS256 signed with a public key, unknown or retired ``kid`` and EdDSA/RS256
  mix-ups are all refused before any signature check.

``TokenBackend`` plugs this into SimpleJWT's token classes (``accounts.tokens``).
"""

from __future__ import annotations

import jwt
from django.conf import settings
from rest_framework_simplejwt.backends import TokenBackend as SimpleJwtBackend
from rest_framework_simplejwt.exceptions import TokenBackendError

from core.errors import ServiceUnavailable

from .keys import is_asymmetric, keyring


class SigningUnavailable(ServiceUnavailable):
    def __init__(self):
        super().__init__(
            "No usable signing key: run 'python manage.py rotate_signing_key'."
        )


def _hs_key() -> str:
    return settings.SIMPLE_JWT["SIGNING_KEY"]


def encode(payload: dict, *, headers: dict | None = None) -> str:
    alg = settings.XENX_JWT_ALGORITHM
    if not is_asymmetric(alg):
        return jwt.encode(payload, _hs_key(), algorithm="HS256", headers=headers)
    key = keyring.signing_key()
    if key is None:
        raise SigningUnavailable()
    return jwt.encode(
        payload,
        key.private,
        algorithm=alg,
        headers={**(headers or {}), "kid": key.kid},
    )


def key_generation():
    """An object that stays the same (``is``) while the keys that verify tokens do:
    None with HS256, else the key ring's current states."""
    if not is_asymmetric(settings.XENX_JWT_ALGORITHM):
        return None
    return keyring.states()


def decode(raw: str, *, audience: str | None = None) -> dict:
    """The verified payload (signature and ``exp``); ``jwt.InvalidTokenError`` else."""
    alg = settings.XENX_JWT_ALGORITHM
    options = {"verify_aud": audience is not None}
    if not is_asymmetric(alg):
        return jwt.decode(
            raw, _hs_key(), algorithms=["HS256"], audience=audience, options=options
        )
    header = jwt.get_unverified_header(raw)
    kid = header.get("kid")
    if header.get("alg") != alg or not isinstance(kid, str):
        raise jwt.InvalidAlgorithmError("unexpected alg or no kid")
    key = keyring.verification_key(kid)
    if key is None:
        raise jwt.InvalidKeyError("unknown or retired kid")
    return jwt.decode(
        raw, key.public, algorithms=[alg], audience=audience, options=options
    )


class TokenBackend(SimpleJwtBackend):
    """SimpleJWT's backend API over ``encode``/``decode`` (what ``str(token)`` and
    ``Token(raw)`` call)."""

    def __init__(self):
        super().__init__("HS256")

    def encode(self, payload):
        return encode(payload)

    def decode(self, token, verify=True):
        if not verify:
            return jwt.decode(token, options={"verify_signature": False})
        try:
            return decode(token)
        except jwt.InvalidTokenError as exc:
            raise TokenBackendError("Token is invalid") from exc


token_backend = TokenBackend()
