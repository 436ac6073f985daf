from django.contrib import admin
from django.contrib.auth import get_user_model

from xenx.roles import Role

from .models import Document, Invitation, Organization
from .scoping import visible


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "mfa_required", "created_at"]
    list_filter = ["is_active", "mfa_required"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = [
        "email",
        "organization",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
    ]
    list_filter = ["role", "organization"]
    search_fields = ["email"]
    readonly_fields = [
        "organization",
        "email",
        "role",
        "created_by",
        "created_at",
        "expires_at",
        "accepted_at",
        "accepted_by",
    ]

    def get_queryset(self, request):
        return visible(request.user, Invitation)

    def has_add_permission(self, request):
        # Created through the API or the portal, which email the token.
        return False


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "owner",
        "original_filename",
        "content_type",
        "size",
        "created_at",
    ]
    list_filter = ["content_type"]
    search_fields = ["title", "original_filename", "owner__email"]
    readonly_fields = [
        "file",
        "original_filename",
        "content_type",
        "size",
        "sha256",
        "uploaded_by",
        "created_at",
    ]

    def get_queryset(self, request):
        return visible(request.user, Document)

    def has_add_permission(self, request):
        # Uploads go through organizations.services.document_create (type checks).
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "owner":
            kwargs["queryset"] = visible(request.user, get_user_model()).filter(
                role=Role.CLIENT
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
