import logging

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from core.errors import NotFound, ValidationFailed
from core.roles import Role

from . import permissions, services, uploads
from .bases import ScopedViewSet
from .filters import DocumentFilter, OrganizationFilter
from .models import Document, Invitation, Organization
from .scoping import visible
from .selectors import invitations_pending
from .serializers import (
    DocumentSerializer,
    DocumentUploadSerializer,
    InvitationCreatedSerializer,
    InvitationCreateSerializer,
    InvitationSerializer,
    OrganizationCreateSerializer,
    OrganizationSerializer,
    OrganizationUpdateSerializer,
)

logger = logging.getLogger(__name__)

SEARCH = OpenApiParameter("search", str, description="Case-insensitive substring.")


def _bool_param(name, description):
    return OpenApiParameter(name, bool, description=description)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            _bool_param("is_active", "Only active (true) or deactivated (false)."),
            _bool_param("mfa_required", "Filter on the MFA requirement."),
            SEARCH,
        ]
    ),
    create=extend_schema(
        request=OrganizationCreateSerializer, responses={201: OrganizationSerializer}
    ),
    partial_update=extend_schema(
        request=OrganizationUpdateSerializer, responses=OrganizationSerializer
    ),
    destroy=extend_schema(
        description="Deactivates (soft delete): members can no longer log in and "
        "their tokens are refused at once."
    ),
)
class OrganizationViewSet(ScopedViewSet):
    """Admins see and manage every organization; members see their own."""

    scoped_model = Organization
    filterset_class = OrganizationFilter
    serializer_class = OrganizationSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def create(self, request):
        permissions.check_organization_write(request.user)
        serializer = OrganizationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        org = services.organization_create(
            **serializer.validated_data, actor=request.user, request=request
        )
        return Response(
            OrganizationSerializer(org).data, status=status.HTTP_201_CREATED
        )

    def partial_update(self, request, pk=None):
        org = self.get_object()
        permissions.check_organization_write(request.user)
        serializer = OrganizationUpdateSerializer(org, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        org = services.organization_update(
            organization=org,
            actor=request.user,
            request=request,
            **serializer.validated_data,
        )
        return Response(OrganizationSerializer(org).data)

    def destroy(self, request, pk=None):
        services.organization_deactivate(
            organization=self.get_object(), actor=request.user, request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        methods=["GET"],
        responses=InvitationSerializer(many=True),
        description="Invitations of this organization visible to the caller "
        "(tokens are never shown again).",
    )
    @extend_schema(
        methods=["POST"],
        request=InvitationCreateSerializer,
        responses={201: InvitationCreatedSerializer},
        description="Invite an email address with a role (admin; staff of the "
        "organization; a CPA of it, role client only). The token is emailed and "
        "returned once.",
    )
    @action(detail=True, methods=["get", "post"])
    def invitations(self, request, pk=None):
        org = self.get_object()
        if request.method == "GET":
            qs = invitations_pending(
                visible(request.user, Invitation).filter(organization=org)
            )
            page = self.paginate_queryset(qs)
            data = InvitationSerializer(page, many=True).data
            return self.get_paginated_response(data)
        permissions.check_invitation_create(request.user, organization=org, role=None)
        serializer = InvitationCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        invitation, token = services.invitation_create(
            organization=org,
            actor=request.user,
            request=request,
            **serializer.validated_data,
        )
        data = InvitationCreatedSerializer(invitation, context={"token": token}).data
        return Response(data, status=status.HTTP_201_CREATED)

    def _invitation(self, request, pk, inv) -> Invitation:
        """The organization (404 outside the caller's scope), then one of its
        invitations the caller can see (404 otherwise)."""
        org = self.get_object()
        invitation = (
            visible(request.user, Invitation).filter(organization=org, pk=inv).first()
        )
        if invitation is None:
            raise NotFound("No such invitation.")
        return invitation

    @extend_schema(
        request=None,
        responses={200: InvitationCreatedSerializer},
        description="Mail a pending (or expired) invitation again with a new token "
        "and expiry; the old link stops working. Same roles as inviting.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"invitations/(?P<inv>[0-9]{1,18})/resend",
    )
    def invitation_resend(self, request, pk=None, inv=None):
        invitation, token = services.invitation_resend(
            invitation=self._invitation(request, pk, inv),
            actor=request.user,
            request=request,
        )
        data = InvitationCreatedSerializer(invitation, context={"token": token}).data
        return Response(data)

    @extend_schema(
        request=None,
        responses={204: None},
        description="Withdraw a pending invitation: its link then says it is no "
        "longer valid. Same roles as inviting.",
    )
    @action(
        detail=True,
        methods=["delete"],
        url_path=r"invitations/(?P<inv>[0-9]{1,18})",
    )
    def invitation_revoke(self, request, pk=None, inv=None):
        services.invitation_revoke(
            invitation=self._invitation(request, pk, inv),
            actor=request.user,
            request=request,
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class AnyRenderer(BaseRenderer):
    """Lets a download answer whatever the client's Accept header asks for."""

    media_type = "*/*"
    format = "bin"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("owner", int, description="The owner's user id."),
            SEARCH,
        ]
    ),
    create=extend_schema(
        request={"multipart/form-data": DocumentUploadSerializer},
        responses={201: DocumentSerializer},
        description="Upload a file (PDF, PNG, JPEG, UTF-8 text/CSV, XLSX, DOCX, "
        "judged by its bytes). 413 over XENX_MAX_UPLOAD_BYTES, 415 otherwise.",
    ),
)
class DocumentViewSet(ScopedViewSet):
    """Clients' documents: a client its own; cpa and staff their organization's
    clients'; admins all."""

    scoped_model = Document
    serializer_class = DocumentSerializer
    filterset_class = DocumentFilter
    http_method_names = ["get", "post", "delete", "head", "options"]
    parser_classes = [MultiPartParser, FormParser]  # uploads are multipart

    def create(self, request):
        uploads.guard_upload(request._request)  # before the body is parsed
        serializer = DocumentUploadSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        owner = self._owner(request.user, data.get("owner"))
        document = services.document_create(
            owner=owner,
            upload=data["file"],
            title=data.get("title", ""),
            actor=request.user,
            request=request,
        )
        return Response(
            DocumentSerializer(document).data, status=status.HTTP_201_CREATED
        )

    @staticmethod
    def _owner(user, owner_id):
        if owner_id is None:
            if user.role == Role.CLIENT:
                return user
            raise ValidationFailed(
                details={"owner": ["Name the client this document belongs to."]}
            )
        owner = visible(user, type(user)).filter(pk=owner_id).first()
        if owner is None:
            raise ValidationFailed(details={"owner": ["Unknown user."]})
        return owner

    def destroy(self, request, pk=None):
        services.document_delete(
            document=self.get_object(), actor=request.user, request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(
                OpenApiTypes.BINARY,
                description="The file, with its stored content type, as an attachment.",
            )
        }
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, AnyRenderer])
    def download(self, request, pk=None):
        return uploads.document_file_response(self.get_object())
