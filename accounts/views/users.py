"""/api/users: user management within what ``scoping.visible`` lets the caller see;
what it may change is decided by ``organizations.permissions`` inside the services."""

from django.contrib.auth import get_user_model
from django.db import IntegrityError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from core.errors import Forbidden, ValidationFailed
from core.roles import Role
from organizations import permissions
from organizations.bases import ScopedViewSet
from organizations.models import Organization

from .. import services
from ..filters import UserFilter
from ..serializers import UserSerializer


class UserCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        required=False, allow_blank=True, write_only=True, trim_whitespace=False
    )
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices)
    organization = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Organization id; defaults to the caller's. Only an admin may "
        "name another one.",
    )


class UserUpdateSerializer(serializers.Serializer):
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    role = serializers.ChoiceField(choices=Role.choices, required=False)
    organization = serializers.IntegerField(required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)


def _organization(actor, org_id):
    """Resolve an organization id from a request body. Non-admins may only name their
    own (403 otherwise, without telling whether the other one exists)."""
    if org_id is None:
        return None
    if actor.role != Role.ADMIN:
        if org_id != actor.organization_id:
            raise Forbidden(
                "Only an administrator can place a user in another organization."
            )
        return actor.organization
    org = Organization.objects.filter(pk=org_id).first()
    if org is None:
        raise ValidationFailed(details={"organization": ["Unknown organization."]})
    return org


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("role", str, enum=Role.values),
            OpenApiParameter("is_active", bool),
            OpenApiParameter("organization", int, description="Organization id."),
            OpenApiParameter("search", str, description="Substring of email or name."),
        ]
    ),
    create=extend_schema(request=UserCreateSerializer, responses={201: UserSerializer}),
    partial_update=extend_schema(
        request=UserUpdateSerializer, responses=UserSerializer
    ),
    destroy=extend_schema(description="Deactivates the user (soft delete)."),
)
class UserViewSet(ScopedViewSet):
    """Admins: every user; staff: its organization's; a CPA: its organization's
    clients; everyone: itself."""

    scoped_model = get_user_model()
    filterset_class = UserFilter
    serializer_class = UserSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request):
        permissions.check_may_create_users(request.user)
        serializer = UserCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        actor = request.user
        if "organization" in data:
            organization = _organization(actor, data.pop("organization"))
        elif actor.role == Role.ADMIN:
            organization = None
        else:
            organization = actor.organization
        try:
            user = services.user_create(
                **data, organization=organization, actor=actor, request=request
            )
        except IntegrityError:  # lost a race with another creation of this email
            raise ValidationFailed(
                details={"email": ["A user with this email already exists."]}
            ) from None
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        user = self.get_object()
        serializer = UserUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "organization" in changes:
            org_id = changes["organization"]
            if org_id == user.organization_id:
                changes["organization"] = user.organization
            elif request.user.role != Role.ADMIN:
                raise Forbidden(
                    "Only an administrator can move a user to another organization."
                )
            else:
                changes["organization"] = _organization(request.user, org_id)
        user = services.user_update(
            user=user, actor=request.user, request=request, **changes
        )
        return Response(UserSerializer(user).data)

    def destroy(self, request, pk=None):
        services.user_deactivate(
            user=self.get_object(), actor=request.user, request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=UserSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        user = services.user_deactivate(
            user=self.get_object(), actor=request.user, request=request
        )
        return Response(UserSerializer(user).data)

    @extend_schema(request=None, responses=UserSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        user = services.user_activate(
            user=self.get_object(), actor=request.user, request=request
        )
        return Response(UserSerializer(user).data)

    @extend_schema(request=None, responses=UserSerializer)
    @action(detail=True, methods=["post"], url_path="reset-mfa")
    def reset_mfa(self, request, pk=None):
        user = services.user_reset_mfa(
            user=self.get_object(), actor=request.user, request=request
        )
        return Response(UserSerializer(user).data)

    @extend_schema(
        request=None,
        responses=UserSerializer,
        description="Lift a login lockout (failed passwords and codes); audited "
        "`user.unlocked`. Admins; staff of the user's organization.",
    )
    @action(detail=True, methods=["post"])
    def unlock(self, request, pk=None):
        user = services.user_unlock(
            user=self.get_object(), actor=request.user, request=request
        )
        return Response(UserSerializer(user).data)
