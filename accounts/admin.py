import contextvars

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef
from django.shortcuts import redirect
from django_otp.plugins.otp_totp.models import TOTPDevice

from auditlog.models import AuditEvent
from core.errors import ApiError, Forbidden
from core.roles import Role
from organizations import permissions
from organizations.admin import (
    OrgRelatedFilter,
    ScopedAdminMixin,
    ViewOnlyAdminMixin,
    is_platform_admin,
)
from organizations.scoping import visible

from . import passwords, services
from .models import Application, User
from .oidc.admin import ApplicationAdmin


class MfaFilter(admin.SimpleListFilter):
    title = "MFA"
    parameter_name = "mfa"

    def lookups(self, request, model_admin):
        return [("yes", "Enabled"), ("no", "Not enabled")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(mfa_enabled=True)
        if self.value() == "no":
            return queryset.filter(mfa_enabled=False)
        return queryset


def role_change_errors(actor, user, cleaned: dict) -> dict:
    """What ``actor`` may not do to ``user`` (README "Organizations, users and
    documents"), as form errors by field: only an admin grants the admin role or puts a
    user in, out of, or into another organization. The service's policy (organizations.permissions) is checked too."""
    if is_platform_admin(actor):
        return {}
    errors = {}
    if cleaned.get("role") == Role.ADMIN or (user.pk and user.role == Role.ADMIN):
        errors["role"] = "Only an administrator can grant or change the admin role."
    if "organization" in cleaned:
        org = cleaned.get("organization")
        if org is None or org.pk != actor.organization_id:
            errors["organization"] = (
                "Only an administrator can move a user to another organization."
            )
    return errors


def _policy_error(actor, original, cleaned: dict) -> str | None:
    """The services' own rule (403 in the API) for this add or change, if refused."""
    try:
        if original is None:
            permissions.check_user_create(
                actor,
                role=cleaned.get("role"),
                organization_id=getattr(cleaned.get("organization"), "pk", None),
            )
        else:
            changes = {}
            if "role" in cleaned and cleaned["role"] != original.role:
                changes["role"] = cleaned["role"]
            new_org = getattr(cleaned.get("organization"), "pk", None)
            if "organization" in cleaned and new_org != original.organization_id:
                changes["organization_id"] = new_org
            other = {"email", "email_verified", "first_name", "last_name"}
            if other & set(cleaned) or changes:
                permissions.check_user_update(
                    actor, original, changes=changes or {"first_name": None}
                )
    except Forbidden as exc:
        return exc.message
    return None


_admin_request: contextvars.ContextVar = contextvars.ContextVar("xenx_admin_request")


class SetPasswordForm(AdminPasswordChangeForm):
    """Django admin's set-password form, saved by ``passwords.password_set``."""

    def save(self, commit=True):
        request = _admin_request.get()
        usable = self.cleaned_data.get("set_usable_password", True)
        try:
            passwords.password_set(
                user=self.user,
                password=self.cleaned_data["password1"] if usable else None,
                actor=request.user,
                request=request,
            )
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc
        return self.user


@admin.register(User)
class UserAdmin(ScopedAdminMixin, DjangoUserAdmin):
    """Users. Staff see and change their own organization only; is_active changes only
    through the audited actions (deactivate, activate), MFA resets and unlocks likewise."""

    ordering = ["email"]
    list_display = [
        "email",
        "first_name",
        "last_name",
        "role",
        "organization",
        "is_active",
        "mfa_status",
    ]
    list_filter = ["role", ("organization", OrgRelatedFilter), "is_active", MfaFilter]
    search_fields = ["email", "first_name", "last_name"]
    readonly_fields = ["is_active", "last_login", "date_joined"]
    actions = ["deactivate_users", "activate_users", "reset_mfa", "unlock_users"]
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
    change_password_form = SetPasswordForm

    def get_queryset(self, request):
        confirmed = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
        return super().get_queryset(request).annotate(mfa_enabled=Exists(confirmed))

    @admin.display(boolean=True, description="MFA", ordering="mfa_enabled")
    def mfa_status(self, obj):
        return obj.mfa_enabled

    def has_change_permission(self, request, obj=None):
        if (
            obj is not None
            and obj.role == Role.ADMIN
            and not is_platform_admin(request.user)
        ):
            return False  # staff may look at an admin in their org, not change it
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False  # users are deactivated (audited), never deleted here

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "role" and not is_platform_admin(request.user):
            kwargs["choices"] = [c for c in Role.choices if c[0] != Role.ADMIN]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "organization" and not is_platform_admin(request.user):
            field.required = True
            field.empty_label = None
            field.initial = request.user.organization_id
        return field

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        actor = request.user

        class ActorCheckedForm(form_class):
            def clean(self):
                cleaned = super().clean()
                errors = role_change_errors(actor, self.instance, cleaned)
                for field, message in errors.items():
                    self.add_error(field if field in self.fields else None, message)
                if not errors:
                    original = (
                        User.objects.get(pk=self.instance.pk)
                        if self.instance.pk
                        else None
                    )
                    message = _policy_error(actor, original, cleaned)
                    if message:
                        self.add_error(None, message)
                return cleaned

        ActorCheckedForm.__name__ = form_class.__name__
        return ActorCheckedForm

    def save_model(self, request, obj, form, change):
        """Writes through the accounts services: their policy checks, token revocation
        on a role or organization change, and audit events."""
        try:
            if not change:
                cleaned = form.cleaned_data
                usable = cleaned.get("usable_password", "true") != "false"
                created = services.user_create(
                    email=obj.email,
                    role=obj.role,
                    organization=obj.organization,
                    password=cleaned.get("password1") if usable else None,
                    first_name=obj.first_name,
                    last_name=obj.last_name,
                    actor=request.user,
                    request=request,
                )
                obj.pk, obj._state.adding = created.pk, False
                return
            updates = {
                f: form.cleaned_data[f]
                for f in form.changed_data
                if f in services.USER_UPDATE_FIELDS
            }
            services.user_update(
                user=User.objects.get(pk=obj.pk),
                actor=request.user,
                request=request,
                **updates,
            )
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc

    def user_change_password(self, request, id, form_url=""):
        """Django's set-password page, written by ``passwords.password_set`` (policy,
        revocation of every token and session, audit). One's own password is changed
        on the admin's password-change page, with the old one."""
        target = self.get_object(request, unquote(id))
        if target is not None and target.pk == request.user.pk:
            return redirect("admin:password_change")
        token = _admin_request.set(request)
        try:
            return super().user_change_password(request, id, form_url)
        finally:
            _admin_request.reset(token)

    def _run_service(self, request, queryset, service_name, done: str):
        service = getattr(services, service_name)
        count, refused = 0, []
        for user in queryset:  # already scoped by get_queryset
            try:
                service(user=user, actor=request.user, request=request)
            except (ApiError, PermissionDenied) as exc:
                refused.append(f"{user.email} ({getattr(exc, 'message', exc)})")
            else:
                count += 1
        if count:
            self.message_user(request, f"{done}: {count} user(s).", messages.SUCCESS)
        if refused:
            self.message_user(
                request, f"Not changed: {', '.join(refused)}.", messages.ERROR
            )

    @admin.action(description="Deactivate selected users", permissions=["change"])
    def deactivate_users(self, request, queryset):
        self._run_service(request, queryset, "user_deactivate", "Deactivated")

    @admin.action(description="Activate selected users", permissions=["change"])
    def activate_users(self, request, queryset):
        self._run_service(request, queryset, "user_activate", "Activated")

    @admin.action(description="Reset MFA of selected users", permissions=["change"])
    def reset_mfa(self, request, queryset):
        self._run_service(request, queryset, "user_reset_mfa", "MFA reset")

    @admin.action(
        description="Unlock selected users (failed sign-ins)", permissions=["change"]
    )
    def unlock_users(self, request, queryset):
        self._run_service(request, queryset, "user_unlock", "Unlocked")


@admin.register(AuditEvent)
class AuditEventAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "action",
        "actor_email",
        "target_repr",
        "organization",
        "ip",
    ]
    list_filter = ["action", ("organization", OrgRelatedFilter)]
    search_fields = ["actor_email", "target_repr", "request_id"]
    date_hierarchy = "created_at"

    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def get_queryset(self, request):
        return visible(request.user, AuditEvent)


from .session_admin import UserSessionAdmin  # noqa: E402,F401  (registers it)

# The OpenID provider's applications: XenX's admin replaces django-oauth-toolkit's.
if admin.site.is_registered(Application):
    admin.site.unregister(Application)
admin.site.register(Application, ApplicationAdmin)
