"""GET /api/audit-events: admins see every event, staff their organization's."""

from datetime import UTC

from django.utils.dateparse import parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import BasePermission

from auditlog.models import AuditEvent
from organizations.scoping import visible
from xenx.errors import ValidationFailed
from xenx.roles import Role

from .auth_serializers import ErrorSerializer


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.IntegerField(source="actor_id", allow_null=True)
    organization = serializers.IntegerField(source="organization_id", allow_null=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "action",
            "actor",
            "actor_email",
            "target_type",
            "target_id",
            "target_repr",
            "organization",
            "ip",
            "user_agent",
            "request_id",
            "data",
        ]
        read_only_fields = fields


class CanReadAuditLog(BasePermission):
    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated) and user.role in (
            Role.ADMIN,
            Role.STAFF,
        )


def _time_param(request, name):
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = parse_datetime(raw.replace(" ", "+"))
    except ValueError:
        value = None
    if value is None:
        raise ValidationFailed(details={name: ["Expected an ISO 8601 date-time."]})
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


@extend_schema(
    tags=["audit"],
    responses={
        200: AuditEventSerializer(many=True),
        **{s: OpenApiResponse(ErrorSerializer) for s in (400, 401, 403)},
    },
    parameters=[
        OpenApiParameter(
            "action",
            OpenApiTypes.STR,
            description="One action, or several separated by commas.",
            enum=None,
        ),
        OpenApiParameter("actor", OpenApiTypes.INT, description="Actor user id."),
        OpenApiParameter("since", OpenApiTypes.DATETIME, description="Inclusive."),
        OpenApiParameter("until", OpenApiTypes.DATETIME, description="Exclusive."),
    ],
)
class AuditEventListView(generics.ListAPIView):
    serializer_class = AuditEventSerializer
    permission_classes = [CanReadAuditLog]

    def get_queryset(self):
        qs = visible(self.request.user, AuditEvent)
        params = self.request.query_params
        if actions := params.get("action"):
            wanted = [a.strip() for a in actions.split(",") if a.strip()]
            unknown = sorted(set(wanted) - set(AuditEvent.Action.values))
            if unknown:
                raise ValidationFailed(
                    details={"action": [f"Unknown action: {', '.join(unknown)}."]}
                )
            qs = qs.filter(action__in=wanted)
        if (actor := params.get("actor")) not in (None, ""):
            if not actor.isdigit():
                raise ValidationFailed(details={"actor": ["Expected a user id."]})
            qs = qs.filter(actor_id=int(actor))
        if since := _time_param(self.request, "since"):
            qs = qs.filter(created_at__gte=since)
        if until := _time_param(self.request, "until"):
            qs = qs.filter(created_at__lt=until)
        return qs.order_by("-created_at", "-id")
