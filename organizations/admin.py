"""Django admin for organizations, and the scoping every XenX ModelAdmin shares.

Admins see everything; staff see only what ``organizations.scoping.visible`` gives them
(querysets, foreign-key choices, and therefore actions and object pages: a row outside
it is "not found" and the admin redirects to its index).
"""

from django.contrib import admin
from django.core.exceptions import PermissionDenied

from core.errors import ApiError, Forbidden
from core.roles import Role

from . import scoping, services
from .models import Document, Invitation, Organization


def is_scoped_model(model) -> bool:
    """Models whose visibility rule lives in organizations.scoping."""
    return scoping.has_rule(model)


def is_platform_admin(user) -> bool:
    return user.is_authenticated and user.is_active and user.role == Role.ADMIN


class ScopedAdminMixin:
    """Every queryset and foreign-key choice of this admin starts from ``visible``."""

    def get_queryset(self, request):
        qs = scoping.visible(request.user, self.model)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and is_scoped_model(db_field.related_model):
            kwargs["queryset"] = scoping.visible(request.user, db_field.related_model)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if "queryset" not in kwargs and is_scoped_model(db_field.related_model):
            kwargs["queryset"] = scoping.visible(request.user, db_field.related_model)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class ViewOnlyAdminMixin:
    """Rows made and changed only through an audited service elsewhere (or never): the
    admin may look at them, never add, change or delete them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrgRelatedFilter(admin.RelatedOnlyFieldListFilter):
    """The organization filter lists only organizations present in the (scoped) list,
    so staff never see other organizations' names."""


@admin.register(Organization)
class OrganizationAdmin(ScopedAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "is_active", "mfa_required", "created_at"]
    list_filter = ["is_active", "mfa_required"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def save_model(self, request, obj, form, change):
        """Through the audited services (token state follows is_active/mfa_required)."""

        try:
            if change:
                original = Organization.objects.get(pk=obj.pk)
                changes = {
                    f: form.cleaned_data[f]
                    for f in form.changed_data
                    if f in services.ORGANIZATION_FIELDS
                }
                services.organization_update(
                    organization=original,
                    actor=request.user,
                    request=request,
                    **changes,
                )
                obj.refresh_from_db()
            else:
                created = services.organization_create(
                    name=obj.name,
                    slug=obj.slug,
                    mfa_required=obj.mfa_required,
                    actor=request.user,
                    request=request,
                )
                if not obj.is_active:
                    services.organization_deactivate(
                        organization=created, actor=request.user, request=request
                    )
                obj.pk = created.pk
                obj.refresh_from_db()
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc

    # Staff may look at their own organization; only admins create or change them.
    def has_add_permission(self, request):
        return is_platform_admin(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return is_platform_admin(request.user) and super().has_change_permission(
            request, obj
        )

    def has_delete_permission(self, request, obj=None):
        # Organizations are deactivated (is_active), never deleted: users PROTECT them.
        return False


@admin.register(Invitation)
class InvitationAdmin(ViewOnlyAdminMixin, ScopedAdminMixin, admin.ModelAdmin):
    list_display = [
        "email",
        "organization",
        "role",
        "created_at",
        "expires_at",
        "accepted_at",
        "revoked_at",
    ]
    list_filter = ["role", ("organization", OrgRelatedFilter)]
    search_fields = ["email"]
    readonly_fields = [
        "created_by",
        "created_at",
        "accepted_at",
        "accepted_by",
        "revoked_at",
    ]
    actions = ["revoke_invitations"]

    # Invitations are made through the audited service (API, portal), which also
    # creates the token and sends the email; here they can be looked at and revoked
    # (the same audited service), never deleted: the audit trail keeps them
    # (ViewOnlyAdminMixin).

    @admin.action(description="Revoke selected invitations", permissions=["view"])
    def revoke_invitations(self, request, queryset):
        done, refused = 0, []
        for invitation in queryset:  # already scoped by get_queryset
            try:
                services.invitation_revoke(
                    invitation=invitation, actor=request.user, request=request
                )
            except Forbidden as exc:
                refused.append(f"{invitation.email} ({exc.message})")
            except ApiError:
                refused.append(f"{invitation.email} ({invitation.status})")
            else:
                done += 1
        if done:
            self.message_user(request, f"Revoked: {done} invitation(s).")
        if refused:
            self.message_user(
                request, f"Not revoked: {', '.join(refused)}.", level="error"
            )


@admin.register(Document)
class DocumentAdmin(ScopedAdminMixin, admin.ModelAdmin):
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
        "owner",
        "file",
        "original_filename",
        "content_type",
        "size",
        "sha256",
        "uploaded_by",
        "created_at",
    ]

    # Uploads go through the service that sniffs the bytes (API, portal).
    def has_add_permission(self, request):
        return False

    def delete_model(self, request, obj):
        try:
            services.document_delete(document=obj, actor=request.user, request=request)
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc

    def delete_queryset(self, request, queryset):
        for document in queryset:  # one audited delete each
            self.delete_model(request, document)
