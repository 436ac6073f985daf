"""Token revocation: the records a token is judged by (data), and the store that reads
and writes them (all the I/O), so that checking a token costs no database query in the
steady state and one cache round trip at most.

The data. Four kinds of records in the shared cache:
- ``ustate:{user_id}`` → ``UserState`` (is_active, role, org_id, revoked_before,
  spared_session), rebuilt from the DB on a miss; every ``User`` save calls
  ``invalidate_user`` through the post_save signal (``accounts.signals``), and this
  module after its own queryset updates;
- ``ostate:{org_id}`` → ``OrgState`` (is_active, mfa_required), likewise
  ``invalidate_org``;
- ``jti:{jti}`` → present while a single access token is denylisted (logout);
- ``fam:{family}`` → present while a session's tokens are refused (session ended);
- ``denials:loaded`` → present once the two kinds above were loaded from the database
  (``RevokedToken``, their durable copy). A cache that comes back empty (a restart, a
  flush) lacks it: the first reader then rebuilds every unexpired denial from the
  database before answering, so a logout survives the loss of the cache.

``keys_for(claims)`` is the one derivation of the records a token needs; ``records``
gathers them into ``TokenRecords``, which ``accounts.policy.judge`` reads without any
I/O. A caller that reads the cache anyway (the gateway's one round trip per call) asks
``unread(claims)`` for the keys to add to it and hands what it read to ``records``.

The store. A process memoises what it read for ``XENX_REVOCATION_MEMO_SECONDS``
(default 0.5 s; the contract allows a second) in a bounded ``core.memo.Memo``; writes
made in this process clear the memo at once.

Coherence across processes: a writer deletes the shared record at once and, when its
transaction commits, writes the fresh record (``set``); a reader that missed rebuilds
the record from the database and stores it with ``add`` (only if still absent). So a
reader that loaded the old row just before the writer committed can never overwrite the
writer's fresh record, and every process sees a change within the memo window.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings

from core.cache import CACHE_ERRORS, fail_open
from core.memo import Memo
from organizations.models import Organization

from .models import RevokedToken

logger = logging.getLogger("xenx.revocation")
# Bounds how long a record can stay stale if a writer dies between its commit and its
# on-commit refresh; a miss costs one indexed query per user per process-cluster.
STATE_TTL = 600
UNAVAILABLE = "Token revocation state is unavailable."
# This process's memo of the records it read (``records``): key → (monotonic deadline,
# record), the deadline set per write from the setting as it is then. Bounded: every
# token seen adds its ``jti:`` key. A write made here drops its keys at once; another
# process's memo keeps them until their deadline.
memo = Memo(50_000, name="revocation")
_MISSING = object()


@dataclass(frozen=True)
class UserState:
    user_id: int
    is_active: bool
    role: str
    org_id: int | None
    revoked_before: float  # epoch seconds; 0.0 when nothing was revoked wholesale
    spared_session: float | None = None  # the ``sst`` that revocation spared


@dataclass(frozen=True)
class OrgState:
    org_id: int
    is_active: bool
    mfa_required: bool


@dataclass(frozen=True, slots=True)
class TokenRecords:
    """What a token is judged by: its user's record, the record of the organization
    the user is in now, and whether the token or its session was denied."""

    user: UserState | None
    org: OrgState | None
    denied: bool


def _ukey(user_id) -> str:
    return f"ustate:{user_id}"


def _okey(org_id) -> str:
    return f"ostate:{org_id}"


def _jkey(jti) -> str:
    return f"jti:{jti}"


def _fkey(family) -> str:
    return f"fam:{family}"


LOADED_KEY = "denials:loaded"


def keys_for(claims: Mapping) -> tuple[str, ...]:
    """The cache keys of every record an access token's ``claims`` (verified by
    ``accounts.tokens.decode_access_token``) are judged by: its ``jti``'s denial, the
    denials' marker, its user, the organization it names (``org``) and its session
    (``fam``, ended by ``end_family``). A machine client's token (no user: README
    "Machine clients") has only the denials: its ``jti`` and its application's family."""
    if "user_id" not in claims:  # a machine client's token
        keys: tuple[str, ...] = (_jkey(claims["jti"]), LOADED_KEY)
    else:
        keys = (_ukey(int(claims["user_id"])), _jkey(claims["jti"]), LOADED_KEY)
        org_id = claims.get("org")
        if org_id is not None:
            keys += (_okey(org_id),)
    family = claims.get("fam")
    if family:
        keys += (_fkey(family),)
    return keys


def memo_seconds() -> float:
    return settings.XENX_REVOCATION_MEMO_SECONDS


def clear_memo() -> None:
    memo.clear()


def _memoised(key: str, now: float):
    entry = memo.get(key)
    return entry[1] if entry is not None and entry[0] > now else _MISSING


def unread(claims: Mapping) -> tuple[str, ...]:
    """The keys of ``keys_for(claims)`` this process has not memoised: what a caller
    reading the cache anyway adds to its round trip (then ``records(claims,
    fetched=...)``). Empty when ``records(claims)`` needs no I/O."""
    if not len(memo):  # the memo off (a setting of 0) or empty: every key
        return keys_for(claims)
    now = time.monotonic()
    return tuple(k for k in keys_for(claims) if _memoised(k, now) is _MISSING)


def records(
    claims: Mapping, fetched: tuple[tuple[str, ...], Mapping] | None = None
) -> TokenRecords:
    """The records ``claims`` are judged by, doing whatever I/O that takes: this
    process's memo first, then ``fetched`` (``(keys, values)``: the keys a caller read
    in a round trip of its own and the values present among them), else one cache
    ``get_many``; a record the cache lacks is rebuilt from the database (``add``), and a
    cache without its denials' marker gets every denial back first. The cache down: the
    one fail-open rule (``core.cache.fail_open``: 503, or the database alone)."""
    keys = keys_for(claims)
    now = time.monotonic()
    found: dict[str, object] = {}
    wanted = []
    for key in keys:
        value = _memoised(key, now)
        if value is _MISSING:
            wanted.append(key)
        else:
            found[key] = value
    if wanted:
        if fetched is not None and fetched[0] and set(wanted) <= set(fetched[0]):
            values = fetched[1]
            read = {k: values[k] for k in wanted if k in values}
        else:
            try:
                read = cache.get_many(wanted)
            except CACHE_ERRORS as exc:
                fail_open(exc, UNAVAILABLE)
                return _records_from_db(claims)
        if LOADED_KEY in wanted and LOADED_KEY not in read:
            read = {**read, **_reload_denials(wanted)}
        ttl = memo_seconds()
        for key in wanted:
            value = read.get(key, _MISSING)
            if value is _MISSING:
                value = _rebuild(key)
            found[key] = value
            if ttl > 0:
                memo.set(key, (now + ttl, value))
    family = claims.get("fam")
    if "user_id" not in claims:  # a machine client's token: no user
        denied = bool(found[keys[0]]) or bool(family and found[_fkey(family)])
        return TokenRecords(None, None, denied)
    user = found[keys[0]]
    denied = bool(found[keys[1]]) or bool(family and found[_fkey(family)])
    if user is None or user.org_id is None:
        return TokenRecords(user, None, denied)
    # The user's organization may have changed since the token was issued.
    org = found.get(_okey(user.org_id), _MISSING)
    if org is _MISSING:
        org = get_org_state(user.org_id)
    return TokenRecords(user, org, denied)


def _rebuild(key: str):
    """A record the cache lacks: no denial, or the row's state (written back with
    ``add``, so that it never overwrites a writer's fresher record)."""
    if key.startswith(("jti:", "fam:")):
        return False
    if key.startswith("ustate:"):
        value = _load_user_state(key[len("ustate:") :])
    else:
        value = _load_org_state(key[len("ostate:") :])
    cache.add(key, value, STATE_TTL)
    return value


def _load_user_state(user_id) -> UserState | None:
    row = (
        get_user_model()
        .objects.filter(pk=user_id)
        .values_list(
            "is_active",
            "role",
            "organization_id",
            "tokens_revoked_before",
            "tokens_spared_session",
        )
        .first()
    )
    if row is None:
        return None
    is_active, role, org_id, revoked, spared = row
    return UserState(
        user_id=int(user_id),
        is_active=is_active,
        role=role,
        org_id=org_id,
        revoked_before=revoked.timestamp() if revoked else 0.0,
        spared_session=spared,
    )


def _load_org_state(org_id) -> OrgState | None:
    row = (
        Organization.objects.filter(pk=org_id)
        .values_list("is_active", "mfa_required")
        .first()
    )
    if row is None:
        return None
    return OrgState(org_id=int(org_id), is_active=row[0], mfa_required=row[1])


def _records_from_db(claims: Mapping) -> TokenRecords:
    """Fail-open without the cache: the database knows users, organizations and
    denials."""
    denied = _denied_in_db(claims["jti"], claims.get("fam"))
    if "user_id" not in claims:  # a machine client's token
        return TokenRecords(None, None, denied)
    user = _load_user_state(int(claims["user_id"]))
    org_id = user.org_id if user is not None else claims.get("org")
    org = _load_org_state(org_id) if org_id is not None else None
    return TokenRecords(user, org, denied)


def _denied_in_db(jti, family) -> bool:
    wanted = Q(kind=RevokedToken.Kind.ACCESS, value=str(jti))
    if family:
        wanted |= Q(kind=RevokedToken.Kind.FAMILY, value=str(family))
    return RevokedToken.objects.filter(wanted, expires_at__gt=timezone.now()).exists()


def _denial_key(kind: str, value: str) -> str:
    return _jkey(value) if kind == "jti" else _fkey(value)


def _reload_denials(wanted) -> dict:
    """The cache lost its denials (no ``LOADED_KEY``): write every unexpired one back
    from the database, then the marker; returns the ``wanted`` records found. Runs once
    per cache loss (concurrent readers may both run it: it only writes what is true)."""

    rows = RevokedToken.objects.filter(expires_at__gt=timezone.now()).values_list(
        "kind", "value"
    )
    denials = {_denial_key(kind, value): True for kind, value in rows}
    if denials:
        # one timeout for all: a record outliving its tokens refuses nothing
        cache.set_many(denials, _family_ttl())
    cache.set(LOADED_KEY, True, None)
    found = {k: v for k, v in denials.items() if k in wanted}
    found[LOADED_KEY] = True
    return found


def _persist_denial(kind: str, value: str, expires_at: datetime) -> None:
    """The durable copy of a denial (and the expired ones dropped)."""

    now = timezone.now()
    RevokedToken.objects.filter(expires_at__lte=now).delete()
    RevokedToken.objects.update_or_create(
        kind=kind, value=value, defaults={"expires_at": expires_at}
    )


def _family_ttl() -> int:
    return int(api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()) + 60


def get_user_state(user_id) -> UserState | None:
    value = cache.get(_ukey(user_id), _MISSING)
    if value is _MISSING:
        value = _load_user_state(user_id)
        cache.add(_ukey(user_id), value, STATE_TTL)
    return value


def get_org_state(org_id) -> OrgState | None:
    value = cache.get(_okey(org_id), _MISSING)
    if value is _MISSING:
        value = _load_org_state(org_id)
        cache.add(_okey(org_id), value, STATE_TTL)
    return value


def _refresh_user(user_id) -> None:
    cache.set(_ukey(user_id), _load_user_state(user_id), STATE_TTL)
    memo.pop(_ukey(user_id))


def _refresh_org(org_id) -> None:
    cache.set(_okey(org_id), _load_org_state(org_id), STATE_TTL)
    memo.pop(_okey(org_id))


def _cache_write(fn, *args) -> None:
    """A write to the shared state. With the cache down the change could not reach other
    processes (and a stale record could outlive the outage), so the write fails with 503
    and the surrounding transaction rolls back (``core.cache.fail_open``); unless
    XENX_FAIL_OPEN_WITHOUT_CACHE."""
    try:
        fn(*args)
    except CACHE_ERRORS as exc:
        fail_open(exc, UNAVAILABLE)
        logger.warning("revocation state not written: cache unavailable")


def _on_commit(fn, *args) -> None:
    transaction.on_commit(lambda: _cache_write(fn, *args))


def invalidate_user(user_id) -> None:
    """Call after any change to a user's activity, role, organization or revocation.

    Deletes the shared record now and writes the committed state when the transaction
    commits (see the module docstring for why both)."""
    memo.pop(_ukey(user_id))
    _cache_write(cache.delete, _ukey(user_id))
    _on_commit(_refresh_user, user_id)


def invalidate_org(org_id) -> None:
    memo.pop(_okey(org_id))
    _cache_write(cache.delete, _okey(org_id))
    _on_commit(_refresh_org, org_id)


def revoke_user_tokens(
    user, *, save: bool = True, spare_session: float | None = None
) -> None:
    """Refuse every token and browser session of ``user`` issued until now (logout-all,
    password change, deactivation, role change), except the session whose start time
    (``sst``) is ``spare_session``: the one that made the change, when the contract
    says it keeps working (TOTP confirmation, password change). Tokens issued
    afterwards, even within the same second, still work: the comparison uses the
    microsecond ``ist`` claim. With ``save=False`` the caller saves both fields
    (``REVOCATION_FIELDS``) with ``User.save``, whose signal invalidates the cache."""
    user.tokens_revoked_before = timezone.now()
    user.tokens_spared_session = spare_session
    if save:  # a queryset update sends no post_save: invalidate here
        get_user_model().objects.filter(pk=user.pk).update(
            tokens_revoked_before=user.tokens_revoked_before,
            tokens_spared_session=spare_session,
        )
        invalidate_user(user.pk)


REVOCATION_FIELDS = ["tokens_revoked_before", "tokens_spared_session"]


def deny_access_token(jti: str, exp: float) -> None:
    """Denylist one access token until it expires (logout): in the database, then in
    the shared cache."""
    ttl = max(1, int(exp - time.time()) + 1)
    _persist_denial("jti", str(jti), datetime.fromtimestamp(exp, UTC))
    _write_denial(_jkey(jti), ttl)


def end_family(family: str) -> None:
    """Refuse every access token of a session (refresh family): they carry its id as
    the ``fam`` claim and live at most ACCESS_TOKEN_LIFETIME after the last refresh."""
    ttl = _family_ttl()
    _persist_denial("fam", str(family), timezone.now() + timedelta(seconds=ttl))
    _write_denial(_fkey(family), ttl)


def _write_denial(key: str, ttl: int) -> None:
    """A denial into the cache now and, inside a transaction, once more when it
    commits: a cache emptied in between (a restart, a flush) would otherwise lose it,
    because the rebuild that follows reads committed rows only."""
    _cache_write(cache.set, key, True, ttl)
    memo.pop(key)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _rewrite_denial(key, ttl))


def _rewrite_denial(key: str, ttl: int) -> None:
    memo.pop(key)
    try:
        cache.set(key, True, ttl)
    except CACHE_ERRORS:  # the commit stands
        # Make the next reader rebuild every denial from the committed rows (this one
        # included); if even that fails, a cache that comes back empty rebuilds anyway.
        logger.error("denial not rewritten after commit", exc_info=True)
        with contextlib.suppress(*CACHE_ERRORS):
            cache.delete(LOADED_KEY)


def issued_at(payload: dict) -> float:
    """High-resolution issue time: our ``ist`` claim, else SimpleJWT's whole-second iat."""
    return float(payload.get("ist", payload.get("iat", 0)))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(value) -> int:
    """Epoch microseconds of a datetime or of float epoch seconds (exact for both)."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return (value - _EPOCH) // _MICROSECOND
    return round(float(value) * 1_000_000)


def is_revoked(payload: dict, revoked_before, spared_session=None) -> bool:
    """Whether a token (or a browser session, by its start time as ``ist``/``sst``)
    falls under the user's last wholesale revocation and is not the session it spared."""
    if not issued_before(payload, revoked_before):
        return False
    sst = payload.get("sst")
    return (
        spared_session is None
        or sst is None
        or to_micros(sst) != to_micros(spared_session)
    )


def issued_before(payload: dict, revoked_before) -> bool:
    """True when the token was issued at or before ``revoked_before`` (a datetime or
    epoch seconds): compared in whole microseconds, so float rounding cannot let a
    revoked token through nor refuse one issued right after the revocation."""
    revoked = to_micros(revoked_before)
    return revoked > 0 and to_micros(issued_at(payload)) <= revoked
