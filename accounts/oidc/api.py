"""``/api/apps`` and ``/api/apps/{client_id}`` (README "Sign in with XenX"): admins
manage every application, staff their own organization's; anyone else, and any
application outside the caller's scope, gets 404 (``organizations.scoping.visible``).
Writes go through ``accounts.oidc.services``; the secret is in the 201 answer only."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from core.errors import NotFound, ValidationFailed
from core.roles import Role
from organizations.models import Organization
from organizations.scoping import visible

from ..models import Application
from . import services

GRANTS = {
    Application.GRANT_AUTHORIZATION_CODE: ["authorization_code", "refresh_token"],
    Application.GRANT_CLIENT_CREDENTIALS: ["client_credentials"],
}


# An application never acts as an admin (its own enum in the schema: ApplicationRole).
APPLICATION_ROLES = [r for r in Role.values if r != Role.ADMIN]


class ApplicationSerializer(serializers.Serializer):
    client_id = serializers.CharField(read_only=True)
    name = serializers.CharField(max_length=255)
    client_type = serializers.ChoiceField(choices=["confidential", "public"])
    grant_types = serializers.ListField(
        child=serializers.CharField(max_length=32), max_length=3
    )
    redirect_uris = serializers.ListField(
        child=serializers.CharField(max_length=2000), required=False, max_length=20
    )
    post_logout_redirect_uris = serializers.ListField(
        child=serializers.CharField(max_length=2000), required=False, max_length=20
    )
    skip_consent = serializers.BooleanField(required=False)
    organization = serializers.IntegerField(required=False, allow_null=True)
    allowed_services = serializers.ListField(
        child=serializers.CharField(max_length=63), required=False, max_length=100
    )
    role = serializers.ChoiceField(choices=APPLICATION_ROLES, required=False)
    enabled = serializers.BooleanField(required=False)
    created_at = serializers.DateTimeField(source="created", read_only=True)

    def to_representation(self, app):
        return {
            "client_id": app.client_id,
            "name": app.name,
            "client_type": app.client_type,
            "grant_types": GRANTS.get(app.authorization_grant_type, []),
            "redirect_uris": app.redirect_uris.split(),
            "post_logout_redirect_uris": app.post_logout_redirect_uris.split(),
            "skip_consent": app.skip_authorization,
            "organization": app.organization_id,
            "allowed_services": app.allowed_services,
            "role": app.role or None,
            "enabled": app.enabled,
            "created_at": app.created.isoformat() if app.created else None,
        }


class AdminOrStaff(permissions.BasePermission):
    def has_permission(self, request, view):
        return getattr(request.user, "role", None) in (Role.ADMIN, Role.STAFF)


def _organization(user, data):
    """The organization named in ``data``: one the caller may see, else 400; staff
    register for their own when they name none."""
    if "organization" not in data:
        return user.organization if user.role == Role.STAFF else None
    org_id = data["organization"]
    if org_id is None:
        return None
    org = visible(user, Organization).filter(pk=org_id).first()
    if org is None:
        raise ValidationFailed(details={"organization": ["Unknown organization."]})
    return org


def _invalid(exc: DjangoValidationError):
    if hasattr(exc, "message_dict"):
        return ValidationFailed(
            details={k: list(v) for k, v in exc.message_dict.items()}
        )
    return ValidationFailed(details={"non_field_errors": list(exc.messages)})


class _AppView(GenericAPIView):
    permission_classes = [permissions.IsAuthenticated, AdminOrStaff]
    serializer_class = ApplicationSerializer

    def get_queryset(self):
        return visible(self.request.user, Application).order_by("id")


class ApplicationListView(_AppView):
    @extend_schema(operation_id="apps_list", responses=ApplicationSerializer(many=True))
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(responses={201: ApplicationSerializer})
    def post(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("enabled", None)
        organization = _organization(request.user, data)
        data.pop("organization", None)
        try:
            app, secret = services.application_create(
                actor=request.user, organization=organization, request=request, **data
            )
        except DjangoValidationError as exc:
            raise _invalid(exc) from None
        body = self.get_serializer(app).data
        if secret:
            body["client_secret"] = secret
        return Response(body, status=status.HTTP_201_CREATED)


class ApplicationDetailView(_AppView):
    def _get(self, client_id):
        app = self.get_queryset().filter(client_id=client_id).first()
        if app is None:
            raise NotFound("No such application.")
        return app

    def get(self, request, client_id):
        return Response(self.get_serializer(self._get(client_id)).data)

    def patch(self, request, client_id):
        app = self._get(client_id)
        serializer = self.get_serializer(app, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "organization" in data:
            data["organization"] = _organization(request.user, data)
        try:
            services.application_update(
                actor=request.user, app=app, request=request, **data
            )
        except DjangoValidationError as exc:
            raise _invalid(exc) from None
        app.refresh_from_db()
        return Response(self.get_serializer(app).data)

    def delete(self, request, client_id):
        app = self._get(client_id)
        services.application_delete(actor=request.user, app=app, request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
