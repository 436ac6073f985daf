"""Admin registrations made by other packages, limited. ``portal`` comes last in
INSTALLED_APPS, so this module runs after their ``admin.py`` (admin autodiscovery)."""

from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin
from django.contrib.auth.models import Group

# Models that other packages register in admin without any organization scoping:
# TOTP secrets, backup codes and refresh tokens are never shown (the audited actions on
# users reset MFA and revoke tokens); role Groups only to admins (superusers).
HIDDEN_MODELS = (
    "otp_totp.TOTPDevice",
    "otp_static.StaticDevice",
    "token_blacklist.OutstandingToken",
    "token_blacklist.BlacklistedToken",
)


class SuperuserOnlyGroupAdmin(GroupAdmin):
    """Role Groups (what each role may do): admins only."""

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


def limit_third_party_models(site) -> None:
    for label in HIDDEN_MODELS:
        model = apps.get_model(label)
        if site.is_registered(model):
            site.unregister(model)
    if site.is_registered(Group):
        site.unregister(Group)
    site.register(Group, SuperuserOnlyGroupAdmin)


limit_third_party_models(admin.site)
