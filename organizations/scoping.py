"""Who may see what (404): the one place that knows which rows a role sees (README
"Organizations, users and documents"). What a role may change (403) is
``permissions``'.

``visible(user, Model)`` returns the queryset of ``Model`` rows that ``user`` may see.
API views, Django admin, foreign-key choices and portal pages all start from it; a row
outside it answers 404.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Model, Q, QuerySet

from core.roles import Role

from .models import Organization


def _none(model) -> QuerySet:
    return model._default_manager.none()


def visible(user, model: type[Model]) -> QuerySet:
    """Rows of ``model`` that ``user`` may see. Unknown models: nothing (fail closed)."""
    if (
        user is None
        or not getattr(user, "is_authenticated", False)
        or not user.is_active
    ):
        return _none(model)
    role, org_id = user.role, user.organization_id
    User = get_user_model()
    if model is User:
        qs = User._default_manager.select_related("organization")
        if role == Role.ADMIN:
            return qs.all()
        if role == Role.STAFF and org_id:
            return qs.filter(Q(organization_id=org_id) | Q(pk=user.pk))
        if role == Role.CPA and org_id:
            return qs.filter(
                Q(organization_id=org_id, role=Role.CLIENT) | Q(pk=user.pk)
            )
        return qs.filter(pk=user.pk)
    if model is Organization:
        qs = Organization._default_manager.all()
        if role == Role.ADMIN:
            return qs
        return qs.filter(pk=org_id) if org_id else qs.none()
    handler = _HANDLERS.get(model._meta.label_lower)
    if handler is None:
        return _none(model)
    return handler(user, model)


_HANDLERS: dict = {}


def register(label: str):
    """Register the visibility rule of another model: ``@register("app.model")``."""

    def wrap(fn):
        _HANDLERS[label.lower()] = fn
        return fn

    return wrap


def has_rule(model: type[Model]) -> bool:
    """Whether ``visible`` has a rule for ``model`` (every other model: nothing)."""
    return (
        model is Organization
        or model is get_user_model()
        or model._meta.label_lower in _HANDLERS
    )


@register("organizations.invitation")
def _visible_invitations(user, model) -> QuerySet:
    """Admins: all; staff: its organization's; cpa: the client invitations of its
    organization; clients: none."""
    qs = model._default_manager.select_related("organization")
    role, org_id = user.role, user.organization_id
    if role == Role.ADMIN:
        return qs.all()
    if role == Role.STAFF and org_id:
        return qs.filter(organization_id=org_id)
    if role == Role.CPA and org_id:
        return qs.filter(organization_id=org_id, role=Role.CLIENT)
    return qs.none()


@register("organizations.document")
def _visible_documents(user, model) -> QuerySet:
    """Follows the owner: admins all; staff its organization's users' documents; cpa
    its organization's clients' documents; a client its own."""
    qs = model._default_manager.select_related("owner", "owner__organization")
    role, org_id = user.role, user.organization_id
    if role == Role.ADMIN:
        return qs.all()
    if role == Role.STAFF and org_id:
        return qs.filter(owner__organization_id=org_id)
    if role == Role.CPA and org_id:
        return qs.filter(owner__organization_id=org_id, owner__role=Role.CLIENT)
    return qs.filter(owner_id=user.pk)


@register("auditlog.auditevent")
def _visible_audit_events(user, model) -> QuerySet:
    """Admins: every event; staff: their organization's (an event belongs to its
    target's organization, or to none: then only admins see it); others: none."""
    qs = model._default_manager.select_related("actor", "organization")
    if user.role == Role.ADMIN:
        return qs.all()
    if user.role == Role.STAFF and user.organization_id:
        return qs.filter(organization_id=user.organization_id)
    return qs.none()
