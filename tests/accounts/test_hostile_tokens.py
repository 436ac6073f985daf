"""Hostile token bytes are 401 ``invalid_token``, never a 500, under every algorithm.

``accounts.tokens._decode`` turns ``jwt.InvalidTokenError`` alone into 401: whatever
else PyJWT raises on hostile input (a lone surrogate, JSON nested past the recursion
limit, a signed claim int() cannot take) ``accounts.signing.decode`` turns into that
family. Each token goes to ``/api/auth/me`` (the Authorization header) and to
``/api/auth/token/refresh`` (a JSON body, where any str can arrive)."""

import base64
import contextlib
import hashlib
import hmac
import json
import time

import jwt
import pytest
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts import keys, signing
from accounts.tokens import decode_access_token, decode_refresh_token
from core.errors import InvalidToken
from tests.conftest import assert_error
from tests.signing_keys import use_signing_keys

pytestmark = pytest.mark.django_db

ALGORITHMS = ["HS256", "EdDSA", "RS256"]


def _b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _me(token):
    return APIClient().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def _refresh(token):
    """JSON with \\u escapes, as any client may send: a lone surrogate arrives."""
    body = json.dumps({"refresh": token})
    return APIClient().post(
        "/api/auth/token/refresh", body, content_type="application/json"
    )


@pytest.fixture(params=ALGORITHMS)
def signer(request, settings, tmp_path):
    """Configure an algorithm; a function signing raw payload bytes with its real key
    (what a leaked key, or a bug in our own signer, would produce)."""
    alg = request.param
    live = use_signing_keys(settings, tmp_path / "keys", alg)

    def sign(payload: bytes, **header) -> str:
        head = {"alg": alg, "typ": "JWT", **header}
        if live is not None:
            head.setdefault("kid", live.kid)
        signing_input = f"{_b64(head)}.{_b64(payload)}".encode()
        if live is None:
            secret = django_settings.SIMPLE_JWT["SIGNING_KEY"].encode()
            sig = hmac.new(secret, signing_input, hashlib.sha256).digest()
        elif alg == "EdDSA":
            sig = live.private.sign(signing_input)
        else:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            sig = live.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input.decode()}.{_b64(sig)}"

    sign.alg = alg
    sign.kid = live.kid if live is not None else None
    yield sign
    keys.keyring.invalidate()


def _claims(token_type="access", **extra) -> bytes:
    body = {
        "token_type": token_type,
        "user_id": "1",
        "jti": "f" * 32,
        "exp": int(time.time()) + 600,
    }
    return json.dumps({**body, **extra}).encode()


def _raw_claims(token_type, exp: str) -> bytes:
    """Claims with ``exp`` written as raw JSON (json.dumps cannot write 1e999)."""
    return b'{"token_type":"%s","user_id":"1","jti":"%s","exp":%s}' % (
        token_type.encode(),
        b"f" * 32,
        exp.encode(),
    )


def _head(header) -> str:
    return _b64(header)


NOT_UTF8 = _b64(b"\xff\xfe{}")
NOT_JSON = _b64(b"{alg: HS256")
ARRAYS_DEEP = _b64(b"[" * 2000)  # past the recursion limit, under REFRESH_MAX
OBJECTS_DEEP = _b64(b'{"a":' * 5000)


# case → builder(sign, token_type) → token
HOSTILE = {
    "empty": lambda s, t: "..",
    "one_segment": lambda s, t: "a" * 40,
    "bad_base64_length": lambda s, t: "abcde.abcde.abcde",
    "header_not_json": lambda s, t: f"{NOT_JSON}.{_b64(_claims(t))}.c2ln",
    "header_not_utf8": lambda s, t: f"{NOT_UTF8}.{_b64(_claims(t))}.c2ln",
    "header_a_list": lambda s, t: f"{_head([s.alg])}.{_b64(_claims(t))}.c2ln",
    "header_nested_deep": lambda s, t: f"{ARRAYS_DEEP}.{_b64(_claims(t))}.c2ln",
    "header_objects_deep": lambda s, t: f"{OBJECTS_DEEP}.{_b64(_claims(t))}.c2ln",
    "alg_a_list": lambda s, t: f"{_head({'alg': [s.alg]})}.{_b64(_claims(t))}.c2ln",
    "alg_an_object": lambda s, t: f"{_head({'alg': {}})}.{_b64(_claims(t))}.c2ln",
    "no_alg": lambda s, t: f"{_head({'kid': s.kid})}.{_b64(_claims(t))}.c2ln",
    "kid_a_number": lambda s,
    t: f"{_head({'alg': s.alg, 'kid': 7})}.{_b64(_claims(t))}.",
    "kid_huge": lambda s,
    t: f"{_head({'alg': s.alg, 'kid': 'k' * 20_000})}.{_b64(_claims(t))}.c2ln",
    "b64_false": lambda s, t: s(_claims(t), b64=False),
    "non_ascii": lambda s, t: "é" + s(_claims(t)),
    "lone_surrogate": lambda s, t: s(_claims(t)) + "\ud800",
    "nul": lambda s, t: "\x00" + s(_claims(t)),
    "huge": lambda s, t: "a" * 200_000 + "." + "b" * 10 + ".c",
    "bad_signature": lambda s, t: s(_claims(t))[:-4] + "AAAA",
    # Signed with the real key: only a leaked key or our own bug could make these.
    "payload_a_list": lambda s, t: s(b"[1, 2]"),
    "payload_a_string": lambda s, t: s(b'"access"'),
    "payload_not_json": lambda s, t: s(b"{token_type"),
    "payload_not_utf8": lambda s, t: s(b"\xff"),
    "payload_nested_deep": lambda s, t: s(b"[" * 2000),
    "exp_a_list": lambda s, t: s(_claims(t, exp=[1])),
    "exp_a_string": lambda s, t: s(_claims(t, exp="soon")),
    "exp_infinite": lambda s, t: s(_raw_claims(t, "1e999")),
    "exp_nan": lambda s, t: s(_raw_claims(t, "NaN")),
    "exp_huge_int": lambda s, t: s(_claims(t, exp=10**400)),
    "exp_too_many_digits": lambda s, t: s(_raw_claims(t, "9" * 4400)),
    "iat_an_object": lambda s, t: s(_claims(t, iat={})),
    "nbf_a_list": lambda s, t: s(_claims(t, nbf=[0])),
    "sub_a_number": lambda s, t: s(_claims(t, sub=1)),
    "user_id_a_list": lambda s, t: s(_claims(t, user_id=[1])),
}


# A WSGI header is latin-1 text: no lone surrogate reaches the Authorization header.
IN_A_HEADER = [case for case in HOSTILE if case != "lone_surrogate"]
REFRESH_MAX = 4096  # the refresh serializer's max_length


def _a_valid_field(token: str) -> bool:
    """Whether the refresh serializer lets ``token`` through to the decoder (else 400)."""
    return (
        len(token) <= REFRESH_MAX
        and bool(token.strip())
        and "\x00" not in token
        and not any("\ud800" <= c <= "\udfff" for c in token)
    )


@pytest.mark.parametrize("case", HOSTILE)
def test_the_decoders_raise_invalid_token_alone(case, signer):
    """Past any serializer: a lone surrogate or 200 kB of token reach the decoder."""
    with pytest.raises(InvalidToken):
        decode_access_token(HOSTILE[case](signer, "access"))
    with pytest.raises(InvalidToken):
        decode_refresh_token(HOSTILE[case](signer, "refresh"))
    with contextlib.suppress(jwt.InvalidTokenError):  # that, or a verified payload
        assert isinstance(signing.decode(HOSTILE[case](signer, "access")), dict)


@pytest.mark.parametrize("case", IN_A_HEADER)
def test_a_hostile_access_token_is_invalid_token(case, signer):
    assert_error(_me(HOSTILE[case](signer, "access")), 401, "invalid_token")


@pytest.mark.parametrize("case", HOSTILE)
def test_a_hostile_refresh_token_is_invalid_token(case, signer):
    token = HOSTILE[case](signer, "refresh")
    if _a_valid_field(token):
        assert_error(_refresh(token), 401, "invalid_token")
    else:
        assert_error(_refresh(token), 400, "validation_error")


def test_the_builders_sign_a_token_the_api_accepts(signer, make_user):
    """The signer above is the real key: what it signs well is accepted (so the
    signed cases are refused for their claims, not their signature)."""
    user = make_user()
    token = signer(
        json.dumps(
            {
                "token_type": "access",
                "user_id": str(user.pk),
                "jti": "e" * 32,
                "exp": int(time.time()) + 600,
                "ist": time.time(),
                "sst": time.time(),
            }
        ).encode()
    )
    assert _me(token).status_code == 200


# Any text in the Authorization header or the refresh body: 401, never a 500.
_text = st.one_of(
    st.text(max_size=300),
    st.lists(
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/"
        ),
        min_size=1,
        max_size=4,
    ).map(".".join),
    st.builds(
        lambda header, rest: f"{_b64(header)}.{rest}",
        st.dictionaries(
            st.sampled_from(["alg", "kid", "typ", "b64", "crit"]),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                lambda inner: st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                max_leaves=8,
            ),
        ),
        st.text(alphabet="ABCDEFabcdef0123456789-_.", max_size=80),
    ),
)


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raw=_text)
def test_any_text_is_refused_as_invalid_token(raw, db):
    if _a_valid_field(raw):
        assert_error(_refresh(raw), 401, "invalid_token")
    if raw.isprintable() and raw.isascii() and " " not in raw:
        assert_error(_me(raw), 401, "invalid_token")
