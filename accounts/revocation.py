"""Token revocation state in the shared cache, so that checking a token costs no
database query in the steady state and one cache round trip at most.

Three kinds of records, fetched together with one ``get_many``:
- ``ustate:{user_id}`` → (is_active, role, org_id, revoked_before, spared_session)
  rebuilt from the DB on a miss; every ``User`` save calls ``invalidate_user`` through
  the post_save signal (``accounts.signals``), and this module after its own queryset
  updates;
- ``ostate:{org_id}`` → (is_active, mfa_required), likewise ``invalidate_org``;
- ``jti:{jti}`` → present while a single access token is denylisted (logout);
- ``fam:{family}`` → present while a session's tokens are refused (session ended);
- ``denials:loaded`` → present once the two kinds above were loaded from the database
  (``RevokedToken``, their durable copy). A cache that comes back empty (a restart, a
  flush) lacks it: the first reader then rebuilds every unexpired denial from the
  database before answering, so a logout survives the loss of the cache.

A process may memoise what it read for ``XENX_REVOCATION_MEMO_SECONDS`` (default 0.5 s;
the contract allows a second); writes made in this process clear the memo at once.

Coherence across processes: a writer deletes the shared record at once and, when its
transaction commits, writes the fresh record (``set``); a reader that missed rebuilds
the record from the database and stores it with ``add`` (only if still absent). So a
reader that loaded the old row just before the writer committed can never overwrite the
writer's fresh record, and every process sees a change within the memo window.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings

from core.errors import ServiceUnavailable
from organizations.models import Organization

from .models import RevokedToken

logger = logging.getLogger("xenx.revocation")
# Bounds how long a record can stay stale if a writer dies between its commit and its
# on-commit refresh; a miss costs one indexed query per user per process-cluster.
STATE_TTL = 600
_memo: dict[str, tuple[float, object]] = {}
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


def _ukey(user_id) -> str:
    return f"ustate:{user_id}"


def _okey(org_id) -> str:
    return f"ostate:{org_id}"


def _jkey(jti) -> str:
    return f"jti:{jti}"


def _fkey(family) -> str:
    return f"fam:{family}"


LOADED_KEY = "denials:loaded"


def memo_seconds() -> float:
    return getattr(settings, "XENX_REVOCATION_MEMO_SECONDS", 0.5)


def clear_memo() -> None:
    _memo.clear()


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


def fetch_states(
    user_id, org_id, jti, family=None
) -> tuple[UserState | None, OrgState | None, bool]:
    """User state, organization state and whether ``jti`` is denylisted or its
    session (refresh ``family``) ended: one cache round trip (none within the memo
    window), DB only on a cache miss."""
    keys = state_keys(user_id, jti, org_id, family)
    found = _fetch(keys, user_id, org_id)
    if found is None:  # fail open without the cache: the database decides
        return _states_from_db(user_id, org_id, jti, family)
    user_state = found[_ukey(user_id)]
    org_state = found.get(_okey(org_id)) if org_id is not None else None
    # The user's organization may have changed since the token was issued.
    if user_state is not None and user_state.org_id != org_id:
        org_state = get_org_state(user_state.org_id) if user_state.org_id else None
    ended = bool(found.get(_fkey(family))) if family else False
    return user_state, org_state, bool(found[_jkey(jti)]) or ended


def fetch_denied(jti, family) -> bool:
    """Whether a token with no user (a machine client's) is denylisted or its
    ``family`` ended: the same records, memo and round trip as ``fetch_states``."""
    found = _fetch(denial_keys(jti, family), None, None)
    if found is None:
        return _denied_in_db(jti, family)
    return bool(found[_jkey(jti)]) or bool(found[_fkey(family)])


def _fetch(keys, user_id, org_id) -> dict | None:
    """The records ``keys`` from the memo, else the cache (rebuilt from the database
    on a miss); None when the cache is down and XENX_FAIL_OPEN_WITHOUT_CACHE is on."""
    now = time.monotonic()
    found: dict[str, object] = {}
    wanted = []
    for key in keys:
        hit = _memo.get(key)
        if hit is not None and hit[0] > now:
            found[key] = hit[1]
        else:
            wanted.append(key)
    if wanted:
        try:
            fetched = _read(wanted)
        except Exception as exc:  # the cache is down: fail closed (README)
            if not getattr(settings, "XENX_FAIL_OPEN_WITHOUT_CACHE", False):
                raise ServiceUnavailable(
                    "Token revocation state is unavailable."
                ) from exc
            return None
        if LOADED_KEY in wanted and LOADED_KEY not in fetched:
            fetched = {**fetched, **_reload_denials(wanted)}
        ttl = memo_seconds()
        for key in wanted:
            value = fetched.get(key, _MISSING)
            if value is _MISSING:
                if key.startswith(("jti:", "fam:")):
                    value = False
                elif key.startswith("ustate:"):
                    value = _load_user_state(user_id)
                    cache.add(key, value, STATE_TTL)
                else:
                    value = _load_org_state(org_id)
                    cache.add(key, value, STATE_TTL)
            found[key] = value
            if ttl > 0:
                _memo[key] = (now + ttl, value)
    return found


_prefetch = threading.local()


@contextlib.contextmanager
def prefetched(keys, found: dict):
    """Within the block, ``fetch_states`` takes the records of ``keys`` from ``found``
    (the values present among them) instead of reading the cache: the gateway reads
    them in the one round trip it makes per call anyway (``gateway.state``)."""
    _prefetch.values = (frozenset(keys), found)
    try:
        yield
    finally:
        _prefetch.values = None


def _read(keys) -> dict:
    pre = getattr(_prefetch, "values", None)
    if pre is not None and pre[0].issuperset(keys):
        return {k: pre[1][k] for k in keys if k in pre[1]}
    return cache.get_many(keys)


def _states_from_db(user_id, org_id, jti, family):
    user_state = _load_user_state(user_id)
    current_org = user_state.org_id if user_state is not None else org_id
    org_state = _load_org_state(current_org) if current_org is not None else None
    return user_state, org_state, _denied_in_db(jti, family)


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
    _memo.pop(_ukey(user_id), None)


def _refresh_org(org_id) -> None:
    cache.set(_okey(org_id), _load_org_state(org_id), STATE_TTL)
    _memo.pop(_okey(org_id), None)


def _cache_write(fn, *args) -> None:
    """A write to the shared state. With the cache down the change could not reach other
    processes (and a stale record could outlive the outage), so the write fails with 503
    and the surrounding transaction rolls back; unless XENX_FAIL_OPEN_WITHOUT_CACHE."""
    try:
        fn(*args)
    except Exception as exc:
        if getattr(settings, "XENX_FAIL_OPEN_WITHOUT_CACHE", False):
            logger.warning("revocation state not written: cache unavailable")
            return
        raise ServiceUnavailable("Token revocation state is unavailable.") from exc


def _on_commit(fn, *args) -> None:
    transaction.on_commit(lambda: _cache_write(fn, *args))


def invalidate_user(user_id) -> None:
    """Call after any change to a user's activity, role, organization or revocation.

    Deletes the shared record now and writes the committed state when the transaction
    commits (see the module docstring for why both)."""
    _memo.pop(_ukey(user_id), None)
    _cache_write(cache.delete, _ukey(user_id))
    _on_commit(_refresh_user, user_id)


def invalidate_org(org_id) -> None:
    _memo.pop(_okey(org_id), None)
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


def memo_entry(key: str):
    """The memoised (deadline, value) pair of a state key, or None: lets a caller that
    derived something from these records (the gateway's identity memo) reuse it exactly
    as long as the records themselves are memoised."""
    return _memo.get(key)


def state_keys(user_id, jti, org_id, family=None) -> list[str]:
    """The cache keys ``fetch_states`` reads for a token (``family``: its ``fam``
    claim, the session, ended by ``end_family``)."""
    keys = [_ukey(user_id), _jkey(jti), LOADED_KEY]
    if org_id is not None:
        keys.append(_okey(org_id))
    if family:
        keys.append(_fkey(family))
    return keys


def denial_keys(jti, family) -> list[str]:
    """The records a token with no user (a machine client's) needs."""
    return [_jkey(jti), LOADED_KEY, _fkey(family)]


def token_keys(payload: dict) -> list[str]:
    """The records a verified access token's payload needs: ``state_keys`` for a
    user's token, ``denial_keys`` for a machine client's (no ``user_id``)."""
    if api_settings.USER_ID_CLAIM not in payload:
        return denial_keys(str(payload["jti"]), str(payload.get("fam", "")))
    return state_keys(
        int(payload[api_settings.USER_ID_CLAIM]),
        str(payload["jti"]),
        payload.get("org"),
        payload.get("fam"),  # the session (accounts.sessions, accounts.oidc)
    )


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
    _memo.pop(key, None)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _rewrite_denial(key, ttl))


def _rewrite_denial(key: str, ttl: int) -> None:
    _memo.pop(key, None)
    try:
        cache.set(key, True, ttl)
    except Exception:  # noqa: BLE001 - any cache failure: the commit stands
        # Make the next reader rebuild every denial from the committed rows (this one
        # included); if even that fails, a cache that comes back empty rebuilds anyway.
        logger.error("denial not rewritten after commit", exc_info=True)
        with contextlib.suppress(Exception):
            cache.delete(LOADED_KEY)


def is_denied(jti: str) -> bool:
    return bool(cache.get(_jkey(jti)))


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
