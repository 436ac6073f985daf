"""Writing audit events. Call ``record`` inside the same transaction as the action."""

from __future__ import annotations

from typing import Any

from core.net import client_ip

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
    """Append one audit event. ``target`` is any model instance (or None).

    The event belongs to ``organization`` when given, else to the target's organization
    (the target itself when it is one), else to none: then only admins see it. Never to
    the acting user's organization (README "Identity"): staff of the actor's organization must
    not read events about people outside it."""
    if organization is None and target is not None:
        if target._meta.label_lower == "organizations.organization":
            organization = target
        else:
            organization = getattr(target, "organization", None)
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
