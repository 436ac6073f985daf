"""Applications in Django admin (README "Sign in with XenX"): scoped like every admin
list (admins all, staff their organization's), and saved through the same services
as ``/api/apps`` and ``register_app`` (audit, tokens ended when narrowed, the secret
shown once). django-oauth-toolkit's own application admin is replaced."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from core.errors import Forbidden
from core.roles import Role
from organizations.admin import OrgRelatedFilter, ScopedAdminMixin

from ..models import Application
from . import services

FIELDS = [
    "name",
    "client_type",
    "authorization_grant_type",
    "redirect_uris",
    "post_logout_redirect_uris",
    "skip_authorization",
    "organization",
    "allowed_services",
    "role",
    "enabled",
]


class ApplicationForm(forms.ModelForm):
    authorization_grant_type = forms.ChoiceField(
        choices=[
            (Application.GRANT_AUTHORIZATION_CODE, "Sign-in (authorization code)"),
            (Application.GRANT_CLIENT_CREDENTIALS, "Machine (client credentials)"),
        ]
    )

    class Meta:
        model = Application
        fields = FIELDS

    request = None  # set by ApplicationAdmin.get_form

    def clean(self):
        data = super().clean()
        org = data.get("organization")
        try:
            services.check_manage(
                self.request.user, organization_id=getattr(org, "pk", None)
            )
        except Forbidden as exc:
            self.add_error("organization", exc.message)
            return data
        probe = Application(
            **{f: data[f] for f in FIELDS if f in data and f != "organization"},
            organization=org,
        )
        if probe.allowed_services is None:
            probe.allowed_services = []
        try:
            services.validate(probe)
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    self.add_error(field if field in self.fields else None, error)
        return data


def _may_manage(request) -> bool:
    return getattr(request.user, "role", None) in (Role.ADMIN, Role.STAFF)


class ApplicationAdmin(ScopedAdminMixin, admin.ModelAdmin):
    form = ApplicationForm
    list_display = ["name", "client_id", "organization", "client_type", "enabled"]
    list_filter = ["enabled", "client_type", ("organization", OrgRelatedFilter)]
    search_fields = ["name", "client_id"]
    readonly_fields = ["client_id"]
    view_on_site = False
    fields = ["client_id", *FIELDS]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"request": request})

    def has_module_permission(self, request):
        return _may_manage(request)

    def has_view_permission(self, request, obj=None):
        return _may_manage(request)

    has_add_permission = has_view_permission

    def has_change_permission(self, request, obj=None):
        return _may_manage(request)

    has_delete_permission = has_change_permission

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in FIELDS if f in form.cleaned_data}
        grant = data.pop("authorization_grant_type")
        grants = (
            ["client_credentials"]
            if grant == Application.GRANT_CLIENT_CREDENTIALS
            else ["authorization_code"]
        )
        fields = {
            "name": data["name"],
            "client_type": data["client_type"],
            "grant_types": grants,
            "redirect_uris": data["redirect_uris"].split(),
            "post_logout_redirect_uris": data["post_logout_redirect_uris"].split(),
            "skip_consent": data["skip_authorization"],
            "organization": data["organization"],
            "allowed_services": data["allowed_services"] or [],
            "role": data["role"],
        }
        try:
            if change:
                current = Application.objects.get(pk=obj.pk)
                services.application_update(
                    actor=request.user,
                    app=current,
                    request=request,
                    enabled=data["enabled"],
                    **fields,
                )
                obj.pk = current.pk
            else:
                app, secret = services.application_create(
                    actor=request.user, request=request, **fields
                )
                obj.pk, obj.client_id = app.pk, app.client_id
                if secret:
                    messages.warning(
                        request,
                        f"Client secret of {app.name} (shown only now, store it "
                        f"safely): {secret}",
                    )
        except ValidationError as exc:  # the form ran the same checks: a race
            messages.error(request, "; ".join(exc.messages))

    def delete_model(self, request, obj):
        services.application_delete(actor=request.user, app=obj, request=request)

    def delete_queryset(self, request, queryset):
        for app in queryset:
            services.application_delete(actor=request.user, app=app, request=request)
