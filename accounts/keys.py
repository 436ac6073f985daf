"""Signing keys for EdDSA (Ed25519) and RS256: files under ``XENX_SIGNING_KEYS_DIR``,
shared by every node, never in the database.

One file per key, ``<kid>.json`` (mode 0600, written to a temporary name and renamed, so
a reader never sees half a key): ``{kid, alg, created_at, signs_from, private_key}``
with the private key as PKCS#8 PEM. ``kid`` is the key's RFC 7638 thumbprint.

A key's life, all derived from the files and the clock (nothing to keep in sync):
- **published** from the moment its file exists (``/.well-known/jwks.json``), so caches
  of the JWKS learn it before any token uses it;
- **signing** from ``signs_from`` (creation + the grace period of
  ``rotate_signing_key``) until the next key's ``signs_from``;
- **retired** once the next key has been signing for longer than the longest token
  lifetime (every token it signed has expired): no longer published nor accepted, and
  ``rotate_signing_key`` deletes its file.

Each process rescans the directory at most once a second (a listing and a ``stat`` per
file), so a rotation on one node is served by every node within a second.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import stat
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.conf import settings
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm
from rest_framework_simplejwt.settings import api_settings

logger = logging.getLogger("xenx.keys")

ASYMMETRIC = ("EdDSA", "RS256")
ID_TOKEN_ALG = "RS256"  # OpenID Connect's mandatory algorithm
RSA_BITS = 2048
DEFAULT_GRACE_SECONDS = 600  # twice the JWKS Cache-Control max-age
JWKS_MAX_AGE = 300
ASSERTION_SECONDS = 60
RESCAN_SECONDS = 1.0
# What "now" is for a key's life (``now``): the epoch clock, replaceable (a test moves
# it past a grace period instead of waiting).
clock = time.time


def now() -> float:
    return clock()


class UnusableKey(Exception):
    """A key file that cannot be used (named in ``manage.py check``)."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    created_at: float
    signs_from: float
    private: object  # Ed25519PrivateKey | RSAPrivateKey
    public: object
    path: str

    def jwk(self) -> dict:
        algo = OKPAlgorithm if self.alg == "EdDSA" else RSAAlgorithm
        jwk = algo.to_jwk(self.public, as_dict=True)
        jwk.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return jwk


def algorithm() -> str:
    return settings.XENX_JWT_ALGORITHM


def is_asymmetric(alg: str | None = None) -> bool:
    return (alg or algorithm()) in ASYMMETRIC


def keys_dir() -> Path | None:
    raw = settings.XENX_SIGNING_KEYS_DIR
    return Path(raw) if raw else None


def max_token_seconds() -> float:
    """The longest any token signed by a key can live: the key stays published and
    accepted this long after it stopped signing."""

    return max(
        api_settings.ACCESS_TOKEN_LIFETIME.total_seconds(),
        api_settings.REFRESH_TOKEN_LIFETIME.total_seconds(),
        float(settings.XENX_MFA_TOKEN_SECONDS),
        float(ASSERTION_SECONDS),
    )


# --- key material ---------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def thumbprint(public, alg: str) -> str:
    """RFC 7638 JWK thumbprint (SHA-256), the key's ``kid``."""
    algo = OKPAlgorithm if alg == "EdDSA" else RSAAlgorithm
    jwk = algo.to_jwk(public, as_dict=True)
    members = ("crv", "kty", "x") if alg == "EdDSA" else ("e", "kty", "n")
    canonical = json.dumps(
        {m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True
    )
    return _b64(hashlib.sha256(canonical.encode()).digest())


def generate_private_key(alg: str):
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    raise ValueError(f"No key pair for algorithm {alg!r}.")


def _matches(alg: str, private) -> bool:
    if alg == "EdDSA":
        return isinstance(private, ed25519.Ed25519PrivateKey)
    return isinstance(private, rsa.RSAPrivateKey) and private.key_size >= RSA_BITS


def unsafe(path: Path) -> str | None:
    """Why the key directory or a key file at ``path`` must not be trusted, or None.

    Whoever can write there can plant a key that XenX would publish and sign with:
    only this process's user (or root) may own it and nobody else may write to it. A
    symbolic link is refused too (its target's directory is not the one checked)."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        return f"{path}: {exc.strerror or type(exc).__name__}"
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link"
    if info.st_uid not in (os.geteuid(), 0):
        return f"{path} is owned by another user (uid {info.st_uid})"
    if info.st_mode & 0o022:
        return f"{path} is writable by its group or by everyone (mode {info.st_mode & 0o777:o})"
    return None


def read_key_file(path: Path) -> SigningKey:
    problem = unsafe(path)
    if problem is not None:
        raise UnusableKey(problem)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("private_key"), str):
            raise UnusableKey(f"{path.name}: not an object with a PEM private_key")
        alg = data["alg"]
        private = serialization.load_pem_private_key(
            data["private_key"].encode(), password=None
        )
        if alg not in ASYMMETRIC or not _matches(alg, private):
            raise UnusableKey(f"{path.name}: not an {alg} key of an accepted size")
        public = private.public_key()
        kid = thumbprint(public, alg)
        if data.get("kid") != kid:
            raise UnusableKey(f"{path.name}: kid does not match the key")
        return SigningKey(
            kid=kid,
            alg=alg,
            created_at=float(data["created_at"]),
            signs_from=float(data["signs_from"]),
            private=private,
            public=public,
            path=str(path),
        )
    except UnusableKey:
        raise
    except (
        OSError,  # unreadable: gone since the listing, a directory, permissions
        ValueError,  # not UTF-8, not JSON, not a PEM private key, a date not a number
        KeyError,  # a field missing
        TypeError,  # a date of the wrong JSON type, a password-protected PEM
        OverflowError,  # a date float() cannot hold (10**400)
        UnsupportedAlgorithm,  # a PEM key type this OpenSSL cannot load
    ) as exc:
        # Named in `manage.py check` and the log (KeyRing.load), never a crash of
        # every token check; a bug in this code is not one of these and still raises.
        raise UnusableKey(f"{path.name}: {type(exc).__name__}: {exc}") from None


def write_key(directory: Path, alg: str, *, signs_from: float) -> SigningKey:
    """Generate a key pair and store it atomically as ``<kid>.json`` (mode 0600)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private = generate_private_key(alg)
    public = private.public_key()
    kid = thumbprint(public, alg)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    created = now()
    body = json.dumps(
        {
            "kid": kid,
            "alg": alg,
            "created_at": created,
            "signs_from": signs_from,
            "private_key": pem,
        },
        indent=1,
    )
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".new-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        final = directory / f"{kid}.json"
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    keyring.invalidate()
    return SigningKey(kid, alg, created, signs_from, private, public, str(final))


# --- the key ring: what a process signs and verifies with -----------------------------


@dataclass(frozen=True)
class KeyStates:
    signing: SigningKey | None
    published: tuple  # pending + signing + not yet retired, newest first
    retired: tuple


def classify(keys, now: float, lifetime: float) -> KeyStates:
    """Which key signs now, which are published (and accepted), which are retired."""
    ordered = sorted(keys, key=lambda k: (k.signs_from, k.created_at))
    active = [k for k in ordered if k.signs_from <= now]
    signing = active[-1] if active else None
    published, retired = [], []
    for index, key in enumerate(ordered):
        successor = ordered[index + 1] if index + 1 < len(ordered) else None
        stopped = successor.signs_from if successor else None
        if stopped is not None and stopped <= now and stopped + lifetime <= now:
            retired.append(key)
        else:
            published.append(key)
    return KeyStates(signing, tuple(reversed(published)), tuple(retired))


class KeyRing:
    """The keys of ``XENX_SIGNING_KEYS_DIR`` for the configured algorithm, rescanned at
    most once a second (and at once when the directory setting changes)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._dir: Path | None = None
        self._raw: str | None = None
        self._signature: tuple = ()
        self._checked = 0.0
        self._keys: tuple = ()
        self._errors: tuple = ()
        self._states: dict = {}

    def invalidate(self) -> None:
        self._checked = 0.0

    def _scan(self, directory: Path) -> tuple:
        try:
            entries = sorted(
                (e.name, e.stat().st_mtime_ns, e.stat().st_size)
                for e in os.scandir(directory)
                if e.name.endswith(".json") and not e.name.startswith(".")
            )
        except FileNotFoundError:
            entries = []
        return tuple(entries)

    def load(self, *, force: bool = False) -> tuple:
        now = time.monotonic()
        raw = settings.XENX_SIGNING_KEYS_DIR
        if not force and raw == self._raw and now - self._checked < RESCAN_SECONDS:
            return self._keys
        with self._lock:
            directory = Path(raw) if raw else None
            signature = self._scan(directory) if directory is not None else ()
            problem = unsafe(directory) if signature else None
            if problem is not None:  # nothing in it is trusted, whatever it holds
                signature = (("", problem, 0),)
            if directory != self._dir or signature != self._signature:
                keys, errors = [], [problem] if problem else []
                for name, _, _ in signature if problem is None else ():
                    try:
                        keys.append(read_key_file(directory / name))
                    except UnusableKey as exc:
                        errors.append(str(exc))
                if errors:
                    logger.warning("unusable signing key files: %s", "; ".join(errors))
                self._dir, self._signature = directory, signature
                self._keys, self._errors = tuple(keys), tuple(errors)
            self._raw, self._checked = raw, now
            return self._keys

    def errors(self) -> tuple:
        self.load(force=True)
        return self._errors

    def states(self, alg: str | None = None, *, force: bool = False) -> KeyStates:
        """The keys' states now; recomputed only when the files changed or a key's
        life crossed a boundary (starts signing, is retired) since the last call."""
        alg = alg or algorithm()
        loaded = self.load(force=force)
        lifetime = max_token_seconds()
        t = now()
        hit = self._states.get(alg)
        if hit is not None:
            was_loaded, was_lifetime, since, until, states = hit
            if was_loaded is loaded and was_lifetime == lifetime and since <= t < until:
                return states
        keys = [k for k in loaded if k.alg == alg]
        states = classify(keys, t, lifetime)
        bounds = [k.signs_from for k in keys] + [k.signs_from + lifetime for k in keys]
        until = min((b for b in bounds if b > t), default=float("inf"))
        self._states[alg] = (loaded, lifetime, t, until, states)
        return states

    def signing_key(self) -> SigningKey | None:
        return self.states().signing

    def verification_key(self, kid: str) -> SigningKey | None:
        """The published key ``kid`` of the configured algorithm, or None (unknown,
        retired or of another algorithm). The ring is at most a second old, so a key
        made on another node is known here within a second."""
        for key in self.states().published:
            if key.kid == kid:
                return key
        return None

    def jwks(self) -> dict:
        """The configured algorithm's published keys and, whatever it is, the RS256
        keys that sign the OpenID provider's ID tokens (README "Sign in with XenX")."""
        algs = [algorithm()] if is_asymmetric() else []
        if ID_TOKEN_ALG not in algs:
            algs.append(ID_TOKEN_ALG)
        return {"keys": [k.jwk() for a in algs for k in self.states(a).published]}


keyring = KeyRing()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
