"""Reads about organizations, invitations and documents. List filters start from
``scoping.visible`` and only ever narrow it."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from xenx.errors import ValidationFailed

from .models import Invitation, hash_invitation_token

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def parse_bool(params, name: str) -> bool | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    value = str(raw).strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValidationFailed(details={name: ["Expected true or false."]})


def parse_int(params, name: str) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ValidationFailed(details={name: ["Expected an integer."]}) from None


def organization_list(*, qs: QuerySet, params) -> QuerySet:
    """Filters: ``is_active``, ``mfa_required``, ``search`` (name or slug)."""
    for name in ("is_active", "mfa_required"):
        value = parse_bool(params, name)
        if value is not None:
            qs = qs.filter(**{name: value})
    search = (params.get("search") or "").strip()
    if search:
        qs = qs.filter(Q(name__icontains=search) | Q(slug__icontains=search))
    return qs


def document_list(*, qs: QuerySet, params) -> QuerySet:
    """Filters: ``owner`` (user id), ``search`` (title, file name, owner email)."""
    owner = parse_int(params, "owner")
    if owner is not None:
        qs = qs.filter(owner_id=owner)
    search = (params.get("search") or "").strip()
    if search:
        qs = qs.filter(
            Q(title__icontains=search)
            | Q(original_filename__icontains=search)
            | Q(owner__email__icontains=search)
        )
    return qs


def invitation_problem(invitation: Invitation, *, email: str) -> str | None:
    """Why ``invitation`` cannot be used by ``email`` now, or None."""
    if invitation.accepted_at is not None:
        return "This invitation has already been used."
    if invitation.expires_at <= timezone.now():
        return "This invitation has expired."
    if invitation.email.lower() != (email or "").strip().lower():
        return "This invitation was issued for another email address."
    if not invitation.organization.is_active:
        return "The organization of this invitation is deactivated."
    return None


def invitation_get_valid(*, token: str, email: str) -> Invitation:
    """The usable invitation with ``token`` for ``email``; ValidationFailed with
    details on ``invitation`` when it is unknown, expired, used or for another email."""
    invitation = (
        Invitation.objects.select_related("organization")
        .filter(token_hash=hash_invitation_token(token or ""))
        .first()
        if token
        else None
    )
    if invitation is None:
        message = "This invitation is unknown."
        raise ValidationFailed(message, details={"invitation": [message]})
    problem = invitation_problem(invitation, email=email)
    if problem:
        raise ValidationFailed(problem, details={"invitation": [problem]})
    return invitation
