"""Reads about applications: who sees which (``organizations.scoping.visible``)."""

from __future__ import annotations

from core.roles import Role
from organizations.scoping import register


@register("accounts.application")
def _visible_applications(user, model):
    """Admins: every application; staff: their organization's; others: none."""
    if user.role == Role.ADMIN:
        return model._default_manager.all()
    if user.role == Role.STAFF and user.organization_id:
        return model._default_manager.filter(organization_id=user.organization_id)
    return model._default_manager.none()
