from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from organizations.scoping import visible

from . import audit  # noqa: F401  (registers the audit log's visibility rule)
from .models import AuditEvent, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = [
        "email",
        "first_name",
        "last_name",
        "role",
        "organization",
        "is_active",
    ]
    list_filter = ["role", "organization", "is_active"]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["last_login", "date_joined"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Profile", {"fields": ["first_name", "last_name", "email_verified"]}),
        ("Access", {"fields": ["role", "organization", "is_active"]}),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "role", "organization", "password1", "password2"],
            },
        )
    ]
    filter_horizontal = []


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "action",
        "actor_email",
        "target_repr",
        "organization",
        "ip",
    ]
    list_filter = ["action", "organization"]
    search_fields = ["actor_email", "target_repr", "request_id"]
    date_hierarchy = "created_at"

    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def get_queryset(self, request):
        return visible(request.user, AuditEvent)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
