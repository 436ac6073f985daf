"""May this session act now? The one answer for every door (README "Identity: login,
MFA, tokens, audit log" (One policy, every door)).

Doors: the JSON API (DRF), the gateway (proxied calls, ``/metrics``), the portal and
Django admin. Tokens (API, gateway) and browser sessions (portal, admin) are judged by
the same rules, in this order:

1. the credential itself: a token's signature, expiry and type; a session's login;
2. the user and its organization are active;
3. it was not revoked: issued after the user's last wholesale revocation (unless it is
   the session that revocation spared, see ``revocation.revoke_user_tokens``), and a
   token's ``jti`` is not denylisted (logout);
4. the second factor: a session of a user with a confirmed TOTP device must have passed
   it (tokens: a token issued without it is revoked when the device is confirmed, bar
   the confirming session);
5. organization ``mfa_required``: a member whose session did not pass a second factor
   may only reach the enrolment pages (API: ``MFA_EXEMPT_PREFIXES``; portal and admin:
   the account page).

Tokens are judged from their claims and the cached revocation record alone: no database
query in the steady state (the gateway's hot path depends on it).
"""

from __future__ import annotations

import enum
import time

from core.errors import BEARER_CHALLENGE as CHALLENGE
from core.errors import (
    Forbidden,
    InvalidToken,
    MfaRequired,
    NotAuthenticated,
    TokenRevoked,
)

from . import revocation
from .selectors import user_has_confirmed_totp
from .tokens import Identity, decode_access_token, is_machine_payload

# Paths a member of an mfa_required organization may use before enrolling TOTP.
MFA_EXEMPT_PREFIXES = ("/api/auth/me", "/api/auth/mfa/", "/api/auth/logout")
# The session key holding when a browser session logged in (epoch seconds, µs): the
# session's ``sst``, like a token family's.
SESSION_STARTED_KEY = "xenx_session_started"
PROVIDER_TOKEN_MESSAGE = (
    "An application's access token is for the firm's services (through the "
    "gateway), not for XenX's own API."
)
BEARER_FORMAT_MESSAGE = "The Authorization header must be 'Bearer <token>'."
_CHALLENGE_HEADERS = {"WWW-Authenticate": CHALLENGE}


class Door(enum.StrEnum):
    API = "api"
    GATEWAY = "gateway"
    METRICS = "metrics"  # /metrics: the platform's, not a firm service
    PORTAL = "portal"
    ADMIN = "admin"


class Verdict(enum.StrEnum):
    """What a browser door does with a session."""

    ALLOW = "allow"
    SIGN_IN = "sign_in"  # anonymous: to the login page
    SIGN_OUT = "sign_out"  # the session is no longer valid: end it, then sign in
    ENROL = "enrol"  # mfa_required organization, no second factor yet: enrolment
    DENY = "deny"  # valid session, but this door is not for this user


# --- tokens (API, gateway) ---------------------------------------------------------


def bearer_token(header, *, other_schemes: bool = False) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (str or bytes).

    None when there is no header, or (``other_schemes=True``) when it names another
    scheme that someone else may handle. Anything else malformed is 401
    ``invalid_token``."""
    if not header:
        return None
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    scheme, _, raw = header.strip().partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer":
        if other_schemes:
            return None
        raise InvalidToken(BEARER_FORMAT_MESSAGE, headers=_CHALLENGE_HEADERS)
    if (
        not raw or " " in raw or not raw.isascii()
    ):  # a JWT is ASCII: anything else is 401
        raise InvalidToken(BEARER_FORMAT_MESSAGE, headers=_CHALLENGE_HEADERS)
    return raw


def token_identity(raw: str, *, door: Door, path: str = "") -> Identity:
    """Verify an access token and its revocation state; raise an ApiError if refused
    (401 codes first, then 403). The API door lets a member of an ``mfa_required``
    organization reach the enrolment endpoints; no other door does."""
    claims = decode_access_token(raw)
    return judge(claims, revocation.records(claims), door=door, path=path)


class TokenCheck:
    """A gateway call's Bearer token, its signature and expiry verified
    (``gateway_token``), with what its verdict still needs: ``unread``, the keys of
    ``revocation.keys_for(claims)`` this process has not memoised, for the caller to
    read in its own round trip to the cache; then ``verdict`` (the continuation)."""

    __slots__ = ("claims", "unread")

    def __init__(self, claims: dict, unread: tuple[str, ...]):
        self.claims = claims
        self.unread = unread

    def verdict(self, read) -> Identity:
        """``judge`` at the gateway door on the token's records: memoised, ``read``
        (the values present among ``unread``, as the caller's round trip read them), or
        read by the store itself when ``read`` is None (the cache was not read)."""
        claims = self.claims
        fetched = (self.unread, read) if self.unread and read is not None else None
        return judge(claims, revocation.records(claims, fetched), door=Door.GATEWAY)


def gateway_token(header) -> TokenCheck:
    """The gateway's one call into accounts for a call's token: the Bearer token of
    ``header`` (none: 401 with the challenge; malformed: 401 ``invalid_token``), its
    signature and expiry (``decode_access_token``), and the revocation keys to read."""
    raw = bearer_token(header)
    if raw is None:
        raise NotAuthenticated()  # answered with the Bearer challenge
    claims = decode_access_token(raw)
    return TokenCheck(claims, revocation.unread(claims))


def judge(
    claims: dict, records: revocation.TokenRecords, *, door: Door, path: str = ""
) -> Identity:
    """The verdict on verified ``claims`` (``decode_access_token``) from the records
    ``revocation.records`` gathered for them: no I/O. Every door's token check ends
    here; the gateway hands it the records read in its own round trip."""
    client_id = claims.get("client_id")
    if client_id is not None and door != Door.GATEWAY:
        # An application's token (accounts.oidc) speaks for the user to the firm's
        # services, not to XenX's own API (it could change the password, enrol MFA...).
        raise Forbidden(PROVIDER_TOKEN_MESSAGE)
    if is_machine_payload(claims):
        return _machine_identity(claims, records)
    user = records.user
    if user is None or not user.is_active:
        raise TokenRevoked()
    org = records.org
    if org is not None and not org.is_active:
        raise TokenRevoked()
    if records.denied or revocation.is_revoked(
        claims, user.revoked_before, user.spared_session
    ):
        raise TokenRevoked()
    mfa = bool(claims.get("mfa"))
    mfa_pending = bool(org and org.mfa_required and not mfa)
    if mfa_pending and not (door == Door.API and path.startswith(MFA_EXEMPT_PREFIXES)):
        raise MfaRequired()
    return Identity(
        user_id=user.user_id,
        email=str(claims.get("email", "")),
        role=user.role,
        org_id=user.org_id,
        mfa=mfa,
        mfa_pending=mfa_pending,
        payload=claims,
        client_id=client_id,
    )


def _machine_identity(claims: dict, records: revocation.TokenRecords) -> Identity:
    """A machine client's token (client credentials, README "Machine clients"): no
    user; refused when its ``jti`` is denylisted or its application's token family
    ended (the application was disabled, deleted or narrowed:
    ``accounts.oidc.services``)."""
    if not claims.get("fam"):  # disabling its application could not reach it
        raise InvalidToken()
    if records.denied:
        raise TokenRevoked()
    try:
        services = tuple(str(s) for s in claims.get("svc") or ())
        role = str(claims.get("role") or "")
    except (TypeError, ValueError) as exc:
        raise InvalidToken() from exc
    return Identity(
        user_id=None,
        email="",
        role=role,
        org_id=None,
        mfa=False,
        mfa_pending=False,
        payload=claims,
        client_id=str(claims["client_id"]),
        services=services,
    )


# --- browser sessions (portal, admin) ----------------------------------------------


def session_started(request) -> float | None:
    session = getattr(request, "session", None)
    value = session.get(SESSION_STARTED_KEY) if session is not None else None
    return float(value) if isinstance(value, int | float) else None


def mark_session_started(request) -> float:
    """Stamp a fresh login on the session (called by the login services)."""
    now = time.time_ns() // 1000 / 1_000_000
    request.session[SESSION_STARTED_KEY] = now
    return now


def session_passed_second_factor(request) -> bool:
    """True unless the user has a confirmed TOTP device this session did not pass
    (django-otp's ``is_verified``)."""
    user = request.user
    verified = getattr(user, "is_verified", None)
    if verified is not None and verified():
        return True
    return not user_has_confirmed_totp(user)


def session_verdict(request, *, door: Door, allow_mfa_pending: bool = False) -> Verdict:
    """May this browser session act now at ``door``? ``allow_mfa_pending``: the page is
    part of enrolment (the account page), reachable before the second factor is set up.
    The admin door also needs a staff role."""
    user = request.user
    if not user.is_authenticated:
        return Verdict.SIGN_IN
    org = user.organization
    if not user.is_active or (org is not None and not org.is_active):
        return Verdict.SIGN_OUT
    started = session_started(request) or 0.0
    if revocation.is_revoked(
        {"ist": started, "sst": started},
        user.tokens_revoked_before,
        user.tokens_spared_session,
    ):
        return Verdict.SIGN_OUT
    if not session_passed_second_factor(request):
        return Verdict.SIGN_OUT
    if (
        org is not None
        and org.mfa_required
        and not allow_mfa_pending
        and not user_has_confirmed_totp(user)
    ):
        return Verdict.ENROL
    if door == Door.ADMIN and not user.is_staff:
        return Verdict.DENY
    return Verdict.ALLOW


def current_session(request) -> float | None:
    """The session a write is made from (a token family's ``sst`` for an API request,
    the login time of a browser session), to spare it from the revocation the write
    causes when the contract says it keeps working."""
    identity = getattr(request, "auth", None)
    if isinstance(identity, Identity):
        sst = identity.payload.get("sst")
        return float(sst) if isinstance(sst, int | float) else None
    return session_started(request)
