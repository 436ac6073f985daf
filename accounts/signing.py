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
    """The verified payload (signature and ``exp``); ``jwt.InvalidTokenError`` else,
    whatever ``raw`` holds: the hostile inputs PyJWT lets through as other exceptions
    are turned into ``jwt.DecodeError`` here, so a caller names that family alone."""
    if not isinstance(raw, str) or not raw.isascii():
        # A compact JWS is base64url and dots. PyJWT encodes a str as UTF-8, so a lone
        # surrogate (JSON "\ud800" in a request body) would be a UnicodeEncodeError.
        raise jwt.DecodeError("not a compact JWS")
    try:
        return _verify(raw, audience)
    except RecursionError as exc:
        # PyJWT json.loads the header before any signature check: "[[[[..." nested
        # past the interpreter's limit (a few kilobytes of token) is a RecursionError.
        raise jwt.DecodeError("JSON nested too deeply") from exc


def _verify(raw: str, audience: str | None) -> dict:
    alg = settings.XENX_JWT_ALGORITHM
    options = {"verify_aud": audience is not None}
    if not is_asymmetric(alg):
        return _checked(raw, _hs_key(), alg="HS256", audience=audience, options=options)
    header = jwt.get_unverified_header(raw)
    kid = header.get("kid")
    if header.get("alg") != alg or not isinstance(kid, str):
        raise jwt.InvalidAlgorithmError("unexpected alg or no kid")
    key = keyring.verification_key(kid)
    if key is None:
        # Not jwt.InvalidKeyError: that one is no InvalidTokenError (a bad key of ours).
        raise jwt.InvalidTokenError("unknown or retired kid")
    return _checked(raw, key.public, alg=alg, audience=audience, options=options)


def _checked(raw: str, key, *, alg: str, audience, options: dict) -> dict:
    try:
        return jwt.decode(
            raw, key, algorithms=[alg], audience=audience, options=options
        )
    except (TypeError, OverflowError) as exc:
        # Once the signature holds, PyJWT checks iat/nbf/exp with int(), catching only
        # ValueError: a list or an object there is a TypeError, 1e999 an OverflowError.
        # (The key is ours, a str secret or a key-ring key read_key_file checked.)
        raise jwt.DecodeError(f"malformed claim: {exc}") from exc


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
