"""The list filters of users and audit events (API and portal alike)."""

import django_filters
from django.contrib.auth import get_user_model

from auditlog.models import AuditEvent
from core.filters import (
    BooleanFilter,
    CommaChoiceFilter,
    DateTimeFilter,
    IdFilter,
    SearchFilter,
)
from core.roles import Role


class UserFilter(django_filters.FilterSet):
    role = django_filters.ChoiceFilter(
        choices=Role.choices,
        error_messages={"invalid_choice": f"Expected one of {', '.join(Role.values)}."},
    )
    is_active = BooleanFilter()
    organization = IdFilter(field_name="organization_id")
    search = SearchFilter(fields=("email", "first_name", "last_name"))

    class Meta:
        model = get_user_model()
        fields: list = []


class AuditEventFilter(django_filters.FilterSet):
    action = CommaChoiceFilter(choices=AuditEvent.Action.values)
    actor = IdFilter(field_name="actor_id")
    since = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = DateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields: list = []
