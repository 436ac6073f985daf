"""Token sessions of the API: refresh with rotation and reuse detection, logout (one
session), logout-all, and the wholesale revocation other writes (password change and
reset) use. Each writes its audit event."""

from __future__ import annotations

import logging
import time

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import (
    BlacklistedToken,
    OutstandingToken,
)
from rest_framework_simplejwt.utils import datetime_from_epoch

from auditlog import audit
from core.errors import InvalidToken, TokenRevoked, ValidationFailed

from . import metrics, revocation, sessions, tokens

logger = logging.getLogger("xenx.auth")


def _blacklist_all(user_id) -> int:
    """Blacklist every outstanding, not yet blacklisted refresh token of a user."""
    pending = OutstandingToken.objects.filter(
        user_id=user_id, blacklistedtoken__isnull=True
    ).values_list("pk", flat=True)
    rows = [BlacklistedToken(token_id=pk) for pk in pending]
    BlacklistedToken.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def revoke_everything(user, *, spare_session: float | None = None) -> None:
    """Every token of the user issued until now, and its browser sessions, but the
    session ``spare_session`` (the one making the change, when it keeps working)."""
    revocation.revoke_user_tokens(user, spare_session=spare_session)
    if spare_session is None:
        _blacklist_all(user.pk)


def _reuse_detected(*, user_id, jti, request) -> None:
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        return
    with transaction.atomic():
        revoke_everything(user)
        audit.record(
            audit.Action.TOKEN_REUSE_DETECTED,
            target=user,
            request=request,
            data={"jti": jti},
        )
    metrics.count("refresh_reuse")
    logger.warning("refresh token reuse detected", extra={"user_id": user.pk})


@metrics.counted("refresh")
def token_refresh(*, request, refresh) -> dict:
    """Rotate: the presented refresh token is blacklisted and a new pair issued.

    Order of checks: signature/expiry/type (401 invalid_token) → user and organization
    active and token issued after the last wholesale revocation (401 token_revoked) →
    absolute session lifetime (401 invalid_token) → blacklisted? Then it is a reuse: 401
    token_revoked and every token of the user revoked. The outstanding row is locked, so
    of two concurrent refreshes of one token exactly one succeeds; the other is a reuse.
    """
    payload = tokens.decode_refresh_token(refresh)
    jti, user_id = str(payload["jti"]), int(payload["user_id"])
    reuse = False
    with transaction.atomic():
        outstanding = (
            OutstandingToken.objects.select_for_update()
            .order_by("pk")  # the model orders by user: an outer join, not lockable
            .filter(jti=jti)
            .first()
        )
        if outstanding is None or outstanding.user_id != user_id:
            raise InvalidToken()
        user = (
            get_user_model()
            .objects.select_related("organization")
            .filter(pk=user_id)
            .first()
        )
        if user is None or not user.is_active:
            raise TokenRevoked()
        if user.organization is not None and not user.organization.is_active:
            raise TokenRevoked()
        if revocation.is_revoked(
            payload, user.tokens_revoked_before, user.tokens_spared_session
        ):
            raise TokenRevoked()
        sst = float(payload.get("sst") or revocation.issued_at(payload))
        if sst + tokens.session_max_seconds() <= time.time():
            raise InvalidToken("The session has expired; log in again.")
        if sessions.family_is_ended(payload.get(sessions.FAMILY_CLAIM)):
            raise TokenRevoked()  # ended by its user: not a reuse
        if BlacklistedToken.objects.filter(token=outstanding).exists():
            reuse = True
        else:
            try:
                with transaction.atomic():
                    BlacklistedToken.objects.create(token=outstanding)
            except IntegrityError:  # a concurrent rotation won (no row lock: SQLite)
                reuse = True
        if not reuse:
            issued = tokens.issue_tokens(
                user,
                mfa=bool(payload.get("mfa")),
                session_started=sst,
                family=payload.get(sessions.FAMILY_CLAIM),
                request=request,
            )
    if reuse:
        _reuse_detected(user_id=user_id, jti=jti, request=request)
        raise TokenRevoked()
    return issued


def logout(*, request, user, identity, refresh) -> None:
    """End the session of ``refresh`` (its whole refresh family: its refresh token and
    every access token it issued are refused everywhere within the memo window, as
    ``sessions.session_end`` does for a session ended by id) and denylist the access
    token of this request. The user's other sessions live."""
    try:
        payload = tokens.decode_refresh_token(refresh)
    except InvalidToken:
        raise ValidationFailed(
            details={"refresh": ["This refresh token is invalid or expired."]}
        ) from None
    if int(payload["user_id"]) != user.pk:
        raise ValidationFailed(
            details={"refresh": ["This refresh token belongs to another session."]}
        )
    family = sessions.family_id(payload.get(sessions.FAMILY_CLAIM))
    with transaction.atomic():
        outstanding, _ = OutstandingToken.objects.get_or_create(
            jti=str(payload["jti"]),
            defaults={
                "user": user,
                "token": refresh,
                "created_at": timezone.now(),
                "expires_at": datetime_from_epoch(int(payload["exp"])),
            },
        )
        BlacklistedToken.objects.get_or_create(token=outstanding)
        if family is not None:
            sessions.session_end_family(user=user, family=family)
        audit.record(audit.Action.LOGOUT, actor=user, target=user, request=request)
    access = identity.payload
    revocation.deny_access_token(str(access["jti"]), float(access["exp"]))


def logout_all(*, request, user) -> None:
    """Revoke every refresh and access token of the user issued until now."""
    with transaction.atomic():
        revoke_everything(user)
        audit.record(audit.Action.LOGOUT_ALL, actor=user, target=user, request=request)
