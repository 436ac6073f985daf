"""Signing algorithms, key files, the JWKS and key rotation (README "Identity" "Signing keys").

The forgery matrix runs every forged or misused token against every configured
algorithm (HS256, EdDSA, RS256): alg none, HS256 signed with the public key or the old
secret, unknown / forged / missing kid, a retired key, expired, EdDSA/RS256 mix-ups."""

import base64
import hashlib
import hmac
import json
import os
import stat
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x448
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts import keys
from accounts.checks import check_signing_keys
from accounts.tokens import decode_access_token, issue_tokens
from tests.conftest import DEFAULT_PASSWORD, assert_error
from tests.signing_keys import DAY, use_signing_keys

pytestmark = pytest.mark.django_db

ALGORITHMS = ["HS256", "EdDSA", "RS256"]
OTHER = {"EdDSA": "RS256", "RS256": "EdDSA", "HS256": "EdDSA"}


def _b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _me(token):
    return APIClient().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {token}")


def _hmac_token(header: dict, payload: dict, secret: bytes) -> str:
    """HS256 by hand: PyJWT refuses a PEM as an HMAC secret, an attacker would not."""
    signing_input = f"{_b64(header)}.{_b64(payload)}"
    sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def _public_pem(key) -> bytes:
    return key.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def keyring_for(settings, tmp_path):
    """Configure ``alg``: for an asymmetric one, a retired key (signed until 8 days
    ago), the live key (signing since then) and a live key of the other algorithm in
    the same directory."""

    def make(alg):
        directory = tmp_path / "keys"
        use_signing_keys(settings, directory, alg)  # settings only for HS256
        if alg == "HS256":
            return {"other": keys.write_key(directory, "EdDSA", signs_from=0)}
        for path in directory.glob("*.json"):
            path.unlink()
        now = keys.now()
        retired = keys.write_key(directory, alg, signs_from=now - 10 * DAY)
        live = keys.write_key(directory, alg, signs_from=now - 8 * DAY)
        other = keys.write_key(directory, OTHER[alg], signs_from=now - DAY)
        return {"retired": retired, "live": live, "other": other}

    return make


# case → (algorithms it applies to, builder(payload, keys, settings) → token)
def _sign(payload, key, *, kid=..., alg=None, **extra):
    headers = {} if kid is None else {"kid": key.kid if kid is ... else kid}
    return jwt.encode(
        payload, key.private, algorithm=alg or key.alg, headers=headers or None
    )


CASES = {
    "alg_none": (
        ALGORITHMS,
        lambda p, k, s: f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(p)}.",
    ),
    "alg_none_with_kid": (
        ["EdDSA", "RS256"],
        lambda p, k, s: f"{_b64({'alg': 'none', 'kid': k['live'].kid})}.{_b64(p)}.",
    ),
    "hs256_signed_with_the_public_key": (
        ["EdDSA", "RS256"],
        lambda p, k, s: _hmac_token(
            {"alg": "HS256", "typ": "JWT", "kid": k["live"].kid},
            p,
            _public_pem(k["live"]),
        ),
    ),
    "hs256_signed_with_the_old_secret": (
        ["EdDSA", "RS256"],
        lambda p, k, s: jwt.encode(p, s.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256"),
    ),
    "hs512_with_the_secret": (
        ALGORITHMS,
        lambda p, k, s: jwt.encode(p, s.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512"),
    ),
    "unknown_kid": (
        ["EdDSA", "RS256"],
        lambda p, k, s: _sign(p, keys.SigningKey(**_fresh(k["live"].alg))),
    ),
    "published_kid_wrong_key": (
        ["EdDSA", "RS256"],
        lambda p, k, s: _sign(
            p,
            keys.SigningKey(**_fresh(k["live"].alg)),
            kid=k["live"].kid,
        ),
    ),
    "no_kid": (["EdDSA", "RS256"], lambda p, k, s: _sign(p, k["live"], kid=None)),
    "retired_key": (["EdDSA", "RS256"], lambda p, k, s: _sign(p, k["retired"])),
    "expired": (
        ["EdDSA", "RS256"],
        lambda p, k, s: _sign({**p, "exp": int(time.time()) - 1}, k["live"]),
    ),
    "other_algorithm_key_in_the_directory": (
        ALGORITHMS,
        lambda p, k, s: _sign(p, k["other"]),
    ),
    "other_alg_header_with_the_live_kid": (
        ["EdDSA", "RS256"],
        lambda p, k, s: _sign(p, k["other"], kid=k["live"].kid),
    ),
    "tampered_payload": (
        ["EdDSA", "RS256"],
        lambda p, k, s: "{}.{}.{}".format(
            _sign(p, k["live"]).split(".")[0],
            _b64({**p, "role": "admin"}),
            _sign(p, k["live"]).split(".")[2],
        ),
    ),
}


def _fresh(alg) -> dict:
    private = keys.generate_private_key(alg)
    public = private.public_key()
    return {
        "kid": keys.thumbprint(public, alg),
        "alg": alg,
        "created_at": 0.0,
        "signs_from": 0.0,
        "private": private,
        "public": public,
        "path": "",
    }


MATRIX = [(alg, case) for case, (algs, _) in CASES.items() for alg in algs]


@pytest.mark.parametrize(("alg", "case"), MATRIX)
def test_forgery_matrix(alg, case, keyring_for, make_user, settings, gateway_service):
    """Every forgery is 401 invalid_token at the API and at the gateway."""
    ring = keyring_for(alg)
    user = make_user()
    issued = issue_tokens(user, mfa=False)
    assert _me(issued["access"]).status_code == 200  # the genuine token works
    payload = decode_access_token(issued["access"])
    forged = CASES[case][1](payload, ring, settings)
    assert_error(_me(forged), 401, "invalid_token")
    gateway = APIClient().get(gateway_service, HTTP_AUTHORIZATION=f"Bearer {forged}")
    assert_error(gateway, 401, "invalid_token")


@pytest.mark.parametrize("alg", ["EdDSA", "RS256"])
def test_every_token_type_carries_the_kid_and_works_end_to_end(
    alg, keyring_for, make_user, api
):
    ring = keyring_for(alg)
    user = make_user()
    response = api.post(
        "/api/auth/login",
        {"email": user.email, "password": DEFAULT_PASSWORD},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    for token in (body["access"], body["refresh"]):
        header = jwt.get_unverified_header(token)
        assert header == {"alg": alg, "kid": ring["live"].kid, "typ": "JWT"}
    assert _me(body["access"]).status_code == 200
    refreshed = api.post(
        "/api/auth/token/refresh", {"refresh": body["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200, refreshed.content
    assert _me(refreshed.json()["access"]).status_code == 200


def test_hs256_tokens_have_no_kid_as_before(make_user):
    issued = issue_tokens(make_user(), mfa=False)
    assert jwt.get_unverified_header(issued["access"]) == {
        "alg": "HS256",
        "typ": "JWT",
    }


# --- JWKS and discovery -----------------------------------------------------------


def test_jwks_is_empty_with_hs256(client):
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json() == {"keys": []}
    assert "max-age=300" in response["Cache-Control"]


@pytest.mark.parametrize("alg", ["EdDSA", "RS256"])
def test_jwks_publishes_live_keys_of_the_algorithm_and_id_token_keys(
    alg, keyring_for, client, make_user
):
    ring = keyring_for(alg)
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert "public" in response["Cache-Control"]
    assert "max-age=300" in response["Cache-Control"]
    published = response.json()["keys"]
    # RS256 keys sign the OpenID provider's ID tokens whatever the algorithm is
    # (README "Sign in with XenX"), so they are published alongside; never EdDSA
    # keys under RS256.
    expected = [ring["live"].kid] + ([ring["other"].kid] if alg == "EdDSA" else [])
    assert [k["kid"] for k in published] == expected
    jwk = published[0]
    assert jwk["alg"] == alg and jwk["use"] == "sig"
    assert "d" not in jwk and "p" not in jwk and "q" not in jwk  # public only
    # A client builds the key from the JWK and verifies a token with it.
    token = issue_tokens(make_user(), mfa=False)["access"]
    key = jwt.PyJWK(jwk).key
    assert jwt.decode(token, key, algorithms=[alg])["token_type"] == "access"


def test_openid_configuration_names_issuer_and_jwks(client, settings):
    settings.XENX_JWT_ISSUER = "https://id.example.org"
    response = client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    body = response.json()
    assert body["issuer"] == "https://id.example.org"
    assert body["jwks_uri"] == "https://id.example.org/.well-known/jwks.json"
    # ID tokens are RS256 (OpenID Connect's); HS256 access tokens are not published.
    assert body["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "max-age=300" in response["Cache-Control"]


def test_well_known_documents_are_in_the_openapi_schema(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "/.well-known/jwks.json" in paths
    assert "/.well-known/openid-configuration" in paths


# --- key files, checks and the command ------------------------------------------------


def _ids(problems):
    return [p.id for p in problems]


def test_check_passes_with_hs256(settings):
    settings.XENX_SIGNING_KEYS_DIR = None
    assert check_signing_keys(None) == []


@pytest.mark.parametrize("alg", ["EdDSA", "RS256"])
def test_check_fails_without_a_directory_or_a_key_and_names_the_command(
    alg, settings, tmp_path
):
    settings.XENX_JWT_ALGORITHM = alg
    settings.XENX_SIGNING_KEYS_DIR = None
    (error,) = check_signing_keys(None)
    assert error.id == "xenx.E010" and "rotate_signing_key" in error.hint
    settings.XENX_SIGNING_KEYS_DIR = str(tmp_path / "missing")
    (error,) = check_signing_keys(None)
    assert error.id == "xenx.E011" and "rotate_signing_key" in error.hint
    # A key of the other algorithm is not usable either.
    keys.write_key(tmp_path / "missing", OTHER[alg], signs_from=0)
    assert _ids(check_signing_keys(None)) == ["xenx.E011"]


def test_check_warns_about_a_broken_key_file(settings, tmp_path):
    use_signing_keys(settings, tmp_path, "EdDSA")
    (tmp_path / "broken.json").write_text("{not json")
    assert _ids(check_signing_keys(None)) == ["xenx.W010"]


def _pem(private, encryption=None) -> str:
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        encryption or serialization.NoEncryption(),
    ).decode()


# What a key file can hold that read_key_file names (UnusableKey) instead of raising.
BROKEN = {
    "not_utf8": lambda d: b"\xff\xfe",
    "not_json": lambda d: b"{not json",
    "a_list": lambda d: b"[1, 2]",
    "no_alg": lambda d: {k: v for k, v in d.items() if k != "alg"},
    "no_private_key": lambda d: {k: v for k, v in d.items() if k != "private_key"},
    "private_key_a_number": lambda d: {**d, "private_key": 7},
    "not_a_pem": lambda d: {**d, "private_key": "-----BEGIN PRIVATE KEY-----\n!!\n"},
    "a_public_key_pem": lambda d: {
        **d,
        "private_key": _public_pem(keys.keyring.states("EdDSA").published[0]).decode(),
    },
    "a_password_protected_pem": lambda d: {
        **d,
        "private_key": _pem(
            keys.generate_private_key("EdDSA"),
            serialization.BestAvailableEncryption(b"secret"),
        ),
    },
    "an_x448_key": lambda d: {**d, "private_key": _pem(x448.X448PrivateKey.generate())},
    "no_created_at": lambda d: {k: v for k, v in d.items() if k != "created_at"},
    "created_at_a_word": lambda d: {**d, "created_at": "yesterday"},
    "signs_from_a_list": lambda d: {**d, "signs_from": [0]},
    "signs_from_too_big": lambda d: {**d, "signs_from": 10**400},
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_key_file_is_named_not_raised(case, settings, tmp_path):
    key = use_signing_keys(settings, tmp_path, "EdDSA")
    data = json.loads(keys.Path(key.path).read_text())
    broken = BROKEN[case](data)
    path = tmp_path / "broken.json"
    path.write_bytes(
        broken if isinstance(broken, bytes) else json.dumps(broken).encode()
    )
    os.chmod(path, 0o600)
    with pytest.raises(keys.UnusableKey, match="^broken.json: "):
        keys.read_key_file(path)
    assert _ids(check_signing_keys(None)) == ["xenx.W010"]
    assert (
        keys.keyring.states("EdDSA", force=True).signing.kid == key.kid
    )  # still signs


def test_a_directory_named_like_a_key_file_is_named_not_raised(settings, tmp_path):
    use_signing_keys(settings, tmp_path, "EdDSA")
    (tmp_path / "odd.json").mkdir(mode=0o700)
    with pytest.raises(keys.UnusableKey, match="IsADirectoryError"):
        keys.read_key_file(tmp_path / "odd.json")
    assert _ids(check_signing_keys(None)) == ["xenx.W010"]


def test_a_bug_reading_a_key_file_is_not_taken_for_a_broken_file(
    settings, tmp_path, monkeypatch
):
    key = use_signing_keys(settings, tmp_path, "EdDSA")

    def broken_thumbprint(public, alg):
        raise AttributeError("a bug, not a key file problem")

    monkeypatch.setattr(keys, "thumbprint", broken_thumbprint)
    with pytest.raises(AttributeError, match="a bug"):
        keys.read_key_file(keys.Path(key.path))


def test_manage_py_check_fails_with_eddsa_and_no_key(settings, tmp_path):
    from django.core.management.base import SystemCheckError

    settings.XENX_JWT_ALGORITHM = "EdDSA"
    settings.XENX_SIGNING_KEYS_DIR = str(tmp_path)
    with pytest.raises(SystemCheckError, match="rotate_signing_key"):
        call_command("check")


def test_key_files_are_private_and_hold_a_matching_kid(settings, tmp_path):
    key = use_signing_keys(settings, tmp_path / "k", "EdDSA")
    path = tmp_path / "k" / f"{key.kid}.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["kid"] == key.kid and data["alg"] == "EdDSA"
    data["kid"] = "someone-elses"
    path.write_text(json.dumps(data))
    with pytest.raises(keys.UnusableKey, match="kid does not match"):
        keys.read_key_file(path)


@pytest.mark.parametrize(
    ("alg", "dir_set", "args", "message"),
    [
        ("HS256", True, [], "HS256"),
        ("EdDSA", False, [], "XENX_SIGNING_KEYS_DIR"),
        ("EdDSA", True, ["--grace", "-1"], "--grace"),
    ],
)
def test_rotate_signing_key_refuses(alg, dir_set, args, message, settings, tmp_path):
    settings.XENX_JWT_ALGORITHM = alg
    settings.XENX_SIGNING_KEYS_DIR = str(tmp_path) if dir_set else None
    with pytest.raises(CommandError, match=message):
        call_command("rotate_signing_key", *args)


def test_rotate_signing_key_with_an_unknown_algorithm_is_a_usage_error(settings):
    with pytest.raises(CommandError):
        call_command("rotate_signing_key", "--algorithm", "HS512")


# --- rotation --------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["EdDSA", "RS256"])
def test_rotation_publishes_at_once_signs_after_grace_retires_after_expiry(
    alg, settings, tmp_path, make_user, client, monkeypatch
):
    settings.XENX_JWT_ALGORITHM = alg
    settings.XENX_SIGNING_KEYS_DIR = str(tmp_path / "keys")
    clock = [time.time()]
    monkeypatch.setattr(keys, "clock", lambda: clock[0])
    user = make_user()

    def jwks_kids():
        keys.keyring.invalidate()
        return [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]]

    def kid_of(token):
        return jwt.get_unverified_header(token)["kid"]

    call_command("rotate_signing_key")  # the first key signs at once
    (first,) = jwks_kids()
    before = issue_tokens(user, mfa=False)
    assert kid_of(before["access"]) == first

    call_command("rotate_signing_key", "--grace", "600")
    kids = jwks_kids()
    assert len(kids) == 2 and kids[1] == first  # the new key is published at once...
    second = kids[0]
    during = issue_tokens(user, mfa=False)
    assert kid_of(during["access"]) == first  # ...but does not sign yet

    clock[0] += 601
    after = issue_tokens(user, mfa=False)
    assert kid_of(after["access"]) == second  # now it signs
    for issued in (before, during, after):  # tokens of both keys are accepted
        assert _me(issued["access"]).status_code == 200
    assert jwks_kids() == [second, first]

    # The old key stays until every token it signed has expired (7-day refresh)...
    clock[0] += 7 * DAY - 10
    assert jwks_kids() == [second, first]
    refresh = APIClient().post(
        "/api/auth/token/refresh", {"refresh": during["refresh"]}, format="json"
    )
    assert refresh.status_code == 200, refresh.content
    assert kid_of(refresh.json()["access"]) == second
    # ...then it is retired: not published, its tokens refused, its file removed.
    clock[0] += 20
    assert jwks_kids() == [second]
    assert_error(_me(before["access"]), 401, "invalid_token")
    assert _me(after["access"]).status_code == 200
    call_command("rotate_signing_key", "--prune-only")
    assert sorted(p.stem for p in (tmp_path / "keys").glob("*.json")) == [second]


def test_a_key_written_by_another_node_is_served_within_a_second(
    settings, tmp_path, client
):
    use_signing_keys(settings, tmp_path, "EdDSA")
    assert len(client.get("/.well-known/jwks.json").json()["keys"]) == 1
    # Another node writes a key file into the shared directory (not through this
    # process's key ring).
    elsewhere = tmp_path / "elsewhere"
    other = keys.write_key(elsewhere, "EdDSA", signs_from=keys.now() + 600)
    os.replace(elsewhere / f"{other.kid}.json", tmp_path / f"{other.kid}.json")
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        kids = [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]]
        if other.kid in kids:
            break
        time.sleep(0.05)
    assert other.kid in kids


# --- a key directory others can write to is not trusted (issue 24) ------------------


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_a_key_planted_in_a_writable_directory_is_never_published(
    mode, settings, tmp_path, client
):
    """Whoever can write to the directory can plant a key: nothing in it is used, the
    JWKS publishes nothing, and the check says why."""
    directory = tmp_path / "keys"
    use_signing_keys(settings, directory, "EdDSA")
    assert client.get("/.well-known/jwks.json").json()["keys"]
    directory.chmod(mode)
    keys.keyring.invalidate()
    assert client.get("/.well-known/jwks.json").json()["keys"] == []
    assert keys.keyring.states("EdDSA", force=True).signing is None
    problems = check_signing_keys(None)
    assert _ids(problems) == ["xenx.E013"]
    assert "writable by its group or by everyone" in problems[0].msg


def test_a_group_writable_key_file_is_not_used(settings, tmp_path):
    key = use_signing_keys(settings, tmp_path, "EdDSA")
    os.chmod(key.path, 0o620)
    keys.keyring.invalidate()
    assert keys.keyring.states("EdDSA", force=True).signing is None
    assert _ids(check_signing_keys(None)) == ["xenx.W010", "xenx.E011"]


def test_a_symlinked_key_file_is_not_used(settings, tmp_path):
    key = use_signing_keys(settings, tmp_path / "real", "EdDSA")
    linked = tmp_path / "linked"
    linked.mkdir(mode=0o700)
    (linked / "k.json").symlink_to(key.path)
    settings.XENX_SIGNING_KEYS_DIR = str(linked)
    keys.keyring.invalidate()
    assert keys.keyring.states("EdDSA", force=True).signing is None
