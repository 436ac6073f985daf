"""Writing audit events. Call ``record`` inside the same transaction as the action."""

from __future__ import annotations

from typing import Any

from organizations.scoping import register
from xenx.net import client_ip
from xenx.roles import Role

from .models import AuditEvent

Action = AuditEvent.Action


def record(
    action: str,
    *,
    actor=None,
    target=None,
    organization=None,
    request=None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event. ``target`` is any model instance (or None)."""
    if organization is None:
        organization = getattr(target, "organization", None)
        if organization is None and actor is not None:
            organization = getattr(actor, "organization", None)
        # The target may itself be an organization.
        if organization is None and target.__class__.__name__ == "Organization":
            organization = target
    ip, user_agent, request_id = None, "", ""
    if request is not None:
        ip = client_ip(request) or None
        user_agent = request.META.get("HTTP_USER_AGENT", "")[:512]
        request_id = getattr(request, "request_id", "") or ""
    actor_obj = actor if getattr(actor, "pk", None) else None
    return AuditEvent.objects.create(
        action=action,
        actor=actor_obj,
        actor_email=getattr(actor_obj, "email", "") or "",
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_repr=str(target)[:254] if target is not None else "",
        organization=organization,
        ip=ip,
        user_agent=user_agent,
        request_id=request_id,
        data=data or {},
    )


@register("accounts.auditevent")
def _visible_audit_events(user, model):
    """Admins: every event; staff: their organization's; everyone else: none."""
    qs = model._default_manager.select_related("actor", "organization")
    if user.role == Role.ADMIN:
        return qs.all()
    if user.role == Role.STAFF and user.organization_id:
        return qs.filter(organization_id=user.organization_id)
    return qs.none()
