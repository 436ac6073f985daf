"""Reads about organizations and invitations. List filters are the FilterSets of
``organizations.filters``, applied to ``scoping.visible``."""

from __future__ import annotations

from django.utils import timezone

from core.errors import ValidationFailed

from .models import Invitation, hash_invitation_token


def invitation_problem(invitation: Invitation, *, email: str) -> str | None:
    """Why ``invitation`` cannot be used by ``email`` now, or None."""
    if invitation.accepted_at is not None:
        return "This invitation has already been used."
    if invitation.revoked_at is not None:
        return "This invitation is no longer valid: it was withdrawn."
    if invitation.expires_at <= timezone.now():
        return "This invitation has expired."
    if invitation.email.lower() != (email or "").strip().lower():
        return "This invitation was issued for another email address."
    if not invitation.organization.is_active:
        return "The organization of this invitation is deactivated."
    return None


def invitation_get_valid(*, token: str, email: str) -> Invitation:
    """The usable invitation with ``token`` for ``email``; ValidationFailed with
    details on ``invitation`` when it is unknown, expired, used, revoked or for another
    email."""
    invitation = invitation_by_token(token)
    if invitation is None:
        message = "This invitation is unknown."
        raise ValidationFailed(message, details={"invitation": [message]})
    problem = invitation_problem(invitation, email=email)
    if problem:
        raise ValidationFailed(problem, details={"invitation": [problem]})
    return invitation


def invitation_by_token(token) -> Invitation | None:
    """The invitation whose link carries ``token`` (any state), or None."""
    if not isinstance(token, str) or not token or len(token) > 256:
        return None
    return (
        Invitation.objects.select_related("organization")
        .filter(token_hash=hash_invitation_token(token))
        .first()
    )


def invitations_pending(queryset):
    """Of ``queryset`` (already scoped), those that can still be used."""
    return queryset.filter(
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    )
