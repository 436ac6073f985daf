"""Sessions a user can see and end (README "Tokens, keys and sessions" (Sessions)).

An API session is one refresh-token family: the password login creates it (a new
``fam`` claim, copied into every refresh and access token of the family), each refresh
updates it (last use, address, user agent, current refresh ``jti``). A portal session
is a Django session, recorded at login.

Ending an API session, in one transaction: mark it ended, blacklist its current refresh
token, audit ``session.ended``; and, at once, a ``fam:{id}`` record in the shared cache,
one of the records ``accounts.revocation.keys_for`` names, read with the other
revocation records (no database query on the hot path), so every access token of the
family is refused within the memo window (0.5 s) on every node. A refresh of an ended
family is refused (401 ``token_revoked``) without raising the reuse alarm.

Selectors (``session_list``, ``session_get``) read; services (``session_record_*``,
``session_end``) write.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from importlib import import_module

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.dispatch import receiver
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import (
    BlacklistedToken,
    OutstandingToken,
)

from auditlog import audit
from core.errors import NotFound
from core.net import client_ip
from core.roles import Role
from organizations.scoping import register

from . import revocation
from .models import UserSession

FAMILY_CLAIM = "fam"
OTP_SESSION_KEY = "otp_device_id"  # django_otp's mark of a verified session


def _meta(request) -> tuple[str | None, str]:
    if request is None:
        return None, ""
    return (
        client_ip(request) or None,
        request.META.get("HTTP_USER_AGENT", "")[:512],
    )


def _at(epoch: float) -> datetime:
    return datetime.fromtimestamp(float(epoch), UTC)


# --- API sessions (refresh families) ------------------------------------------------


def new_family() -> str:
    return uuid.uuid4().hex


def session_record_refresh(
    *,
    user,
    family: str,
    refresh_jti: str,
    issued_at: float,
    expires_at: float,
    mfa: bool,
    request=None,
    created: bool,
    session_started: float | None = None,
) -> None:
    """Called by ``accounts.tokens.issue_tokens`` for each new refresh token: a new
    family starts a session, a rotation updates it."""
    ip, agent = _meta(request)
    now, expires = _at(issued_at), _at(expires_at)
    if created:
        UserSession.objects.create(
            user=user,
            kind=UserSession.Kind.API,
            family=uuid.UUID(family),
            refresh_jti=refresh_jti,
            session_started=session_started,
            created_at=now,
            last_used_at=now,
            expires_at=expires,
            login_ip=ip,
            login_user_agent=agent,
            last_ip=ip,
            last_user_agent=agent,
            mfa=mfa,
        )
        return
    UserSession.objects.filter(family=uuid.UUID(family), user=user).update(
        refresh_jti=refresh_jti,
        last_used_at=now,
        expires_at=expires,
        last_ip=ip,
        last_user_agent=agent,
    )


def family_id(family) -> uuid.UUID | None:
    """A ``fam`` claim as a session id (None when absent or malformed)."""
    try:
        return uuid.UUID(str(family)) if family else None
    except ValueError:
        return None


def session_end_family(*, user, family: uuid.UUID) -> None:
    """Logout: end the API session ``family`` of ``user`` (call in the logout's
    transaction, which audits it as ``logout``). Its access tokens are refused like
    those of a session ended by id, even when its row is missing or already hidden
    from the list (a rotated refresh token was presented)."""
    UserSession.objects.filter(user=user, family=family, ended_at__isnull=True).update(
        ended_at=timezone.now()
    )
    revocation.end_family(family.hex)


def family_is_ended(family) -> bool:
    """For the refresh path (a database query is fine there). A token from before
    sessions were tracked has no family: not ended."""
    if not family:
        return False
    try:
        family_id = uuid.UUID(str(family))
    except ValueError:
        return True
    return UserSession.objects.filter(family=family_id, ended_at__isnull=False).exists()


def open_sessions(qs):
    """Not ended and not expired (what the admin's "Not ended" filter shows)."""
    return qs.filter(ended_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    )


def _live(qs, user):
    """Open, not revoked wholesale (logout-all, password change...), and (API) its
    current refresh token not blacklisted (logout)."""
    qs = open_sessions(qs.filter(user=user))
    if user.tokens_revoked_before is not None:
        revoked = Q(
            kind=UserSession.Kind.API, created_at__lte=user.tokens_revoked_before
        )
        spared = getattr(user, "tokens_spared_session", None)
        if spared is not None:  # the session the revocation kept (accounts.policy)
            revoked &= ~Q(session_started=spared)
        qs = qs.exclude(revoked)
    blacklisted = BlacklistedToken.objects.filter(token__jti=OuterRef("refresh_jti"))
    return qs.exclude(Q(kind=UserSession.Kind.API) & Exists(blacklisted))


def session_list(*, user, kind: str | None = UserSession.Kind.API):
    qs = UserSession.objects.all()
    if kind is not None:
        qs = qs.filter(kind=kind)
    return _live(qs, user)


def session_get(*, user, pk, kind: str | None = None) -> UserSession:
    """One live session of ``user``; anyone else's (or an ended one) is 404."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NotFound() from None
    found = session_list(user=user, kind=kind).filter(pk=pk).first()
    if found is None:
        raise NotFound("No such session.")
    return found


def is_current(session: UserSession, *, identity=None, request=None) -> bool:
    if session.kind == UserSession.Kind.API:
        payload = getattr(identity, "payload", None) or {}
        return str(payload.get(FAMILY_CLAIM, "")) == (
            session.family.hex if session.family else None
        )
    django_session = getattr(request, "session", None)
    return bool(django_session) and django_session.session_key == session.session_key


@transaction.atomic
def session_end(*, session: UserSession, actor, request=None, via: str = "api") -> None:
    """End one session: its tokens (API) or its Django session (portal) stop working
    everywhere within a second. Audited as ``session.ended``."""
    if session.ended_at is not None:
        return
    session.ended_at = timezone.now()
    session.save(update_fields=["ended_at"])
    if session.kind == UserSession.Kind.API:
        outstanding = OutstandingToken.objects.filter(jti=session.refresh_jti).first()
        if outstanding is not None:
            BlacklistedToken.objects.get_or_create(token=outstanding)
        revocation.end_family(session.family.hex)
    elif session.session_key:
        _django_session(session.session_key).delete()
    audit.record(
        audit.Action.SESSION_ENDED,
        actor=actor,
        target=session.user,
        request=request,
        data={"session": session.pk, "kind": session.kind, "via": via},
    )


@register("accounts.usersession")
def _visible_sessions(user, model):
    """Admins: every session; staff: those of the users of their organization (not of
    other admins); everyone else: their own."""
    qs = model._default_manager.select_related("user")
    if user.role == Role.ADMIN:
        return qs.all()
    if user.role == Role.STAFF and user.organization_id:
        return qs.filter(
            Q(user__organization_id=user.organization_id) & ~Q(user__role=Role.ADMIN)
            | Q(user=user)
        )
    return qs.filter(user=user)


# --- portal sessions ----------------------------------------------------------------


def _django_session(key: str) -> SessionBase:
    return import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)


def session_record_portal(*, request, user) -> None:
    """The portal (and admin) session of ``request`` as a session of ``user``: at
    login, and again when Django gave the session a new key (password change)."""
    key = getattr(getattr(request, "session", None), "session_key", None)
    if not key:
        return
    ip, agent = _meta(request)
    now = timezone.now()
    UserSession.objects.update_or_create(
        session_key=key,
        defaults={
            "user": user,
            "kind": UserSession.Kind.PORTAL,
            "last_used_at": now,
            "last_ip": ip,
            "last_user_agent": agent,
        },
        create_defaults={
            "user": user,
            "kind": UserSession.Kind.PORTAL,
            "created_at": now,
            "last_used_at": now,
            "login_ip": ip,
            "login_user_agent": agent,
            "last_ip": ip,
            "last_user_agent": agent,
        },
    )


def portal_sessions(*, request, user) -> list[UserSession]:
    """The live portal sessions of ``user`` (their Django session still exists and
    has not expired), the current one included (its last use and address updated:
    recorded anew when Django gave it a new key); ``mfa`` read from the session."""
    if request is not None and getattr(request.user, "pk", None) == user.pk:
        session_record_portal(request=request, user=user)
    live = []
    for row in session_list(user=user, kind=UserSession.Kind.PORTAL):
        store = _django_session(row.session_key)
        data = store.load()  # forgets the key when the session is gone or expired
        if store.session_key is None:
            continue
        row.mfa = bool(data.get(OTP_SESSION_KEY))
        live.append(row)
    return live


@receiver(user_logged_in)
def _record_portal_login(sender, request=None, user=None, **kwargs):
    """Every Django login (portal, admin) is a portal session of its user."""
    if request is not None and getattr(request, "session", None) is not None:
        session_record_portal(request=request, user=user)
