from django.contrib import admin

from .models import Document, Invitation, Organization


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
    readonly_fields = ["created_by", "created_at", "accepted_at", "accepted_by"]

    def get_queryset(self, request):
        from .scoping import visible

        return visible(request.user, Invitation)


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
        from .scoping import visible

        return visible(request.user, Document)
