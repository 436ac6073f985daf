"""GET /api/audit-events: admins see every event, staff their organization's."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, serializers
from rest_framework.permissions import BasePermission

from auditlog.models import AuditEvent
from core.filters import apply_filters
from core.roles import Role
from organizations.scoping import visible

from ..auth_serializers import ErrorSerializer
from ..filters import AuditEventFilter


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
        qs = apply_filters(AuditEventFilter, self.request.query_params, qs)
        return qs.order_by("-created_at", "-id")
