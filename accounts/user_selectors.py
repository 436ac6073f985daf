"""Reads for user management: list filters over ``scoping.visible``."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from organizations.selectors import parse_bool, parse_int
from xenx.errors import ValidationFailed
from xenx.roles import Role


def user_list(*, qs: QuerySet, params) -> QuerySet:
    """Filters: ``role``, ``is_active``, ``organization`` (id), ``search`` (email,
    first or last name)."""
    role = params.get("role")
    if role:
        if role not in Role.values:
            raise ValidationFailed(
                details={"role": [f"Expected one of {', '.join(Role.values)}."]}
            )
        qs = qs.filter(role=role)
    is_active = parse_bool(params, "is_active")
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    organization = parse_int(params, "organization")
    if organization is not None:
        qs = qs.filter(organization_id=organization)
    search = (params.get("search") or "").strip()
    if search:
        qs = qs.filter(
            Q(email__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
        )
    return qs
