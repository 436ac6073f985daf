from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError

from core.errors import Forbidden
from core.roles import Role

from . import selectors, services
from .models import Service, ServiceInstance
from .validators import RATE_KEYS, parse_rate

# The service form's rate-limit fields: one per role, then anonymous callers, then
# machine clients ("app"): every key a service's rate_limits may hold, so that saving
# the form never drops one it did not show.
RATE_FIELDS = {
    f"rate_limit_{key}": key
    for key in [
        *Role.values,
        "anonymous",
        *sorted(RATE_KEYS - {*Role.values, "anonymous"}),
    ]
}
# The form's other fields, as its sections show them.
ACCESS_FIELDS = ("name", "description", "enabled", "public", "allowed_roles")
UPSTREAM_FIELDS = (
    "health_check_path",
    "timeout_seconds",
    "retries",
    "max_body_bytes",
    "allowed_content_types",
    "forward_authorization",
    "sign_identity",
    "ca_bundle",
)


class _ServiceFormBase(forms.ModelForm):
    """Roles as checkboxes and one rate field per role (each with its own error),
    instead of the model's JSON fields."""

    allowed_roles = forms.MultipleChoiceField(
        choices=Role.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Roles allowed to call, exact (an admin is not implied); none "
        "ticked: every authenticated role.",
    )

    class Meta:
        model = Service
        # the sections' fields; rate_limits is made from the rate fields below
        fields = (*ACCESS_FIELDS, *UPSTREAM_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limits = self.instance.rate_limits or {}
        for field, key in RATE_FIELDS.items():
            self.fields[field].initial = limits.get(key, "")

    def clean(self):
        cleaned = super().clean()
        limits = {}
        for field, key in RATE_FIELDS.items():
            rate = (cleaned.get(field) or "").strip()
            if not rate:
                continue
            try:
                parse_rate(rate)
            except ValidationError as exc:
                self.add_error(field, exc)
                continue
            limits[key] = rate
        # One value for the service: save_model hands it to services.service_update.
        cleaned["rate_limits"] = limits
        self.instance.rate_limits = limits
        return cleaned


def _rate_field(key: str) -> forms.CharField:
    who = {
        "anonymous": "anonymous callers (per address)",
        "app": "machine clients (per application)",
    }.get(key, f"role {key}")
    return forms.CharField(
        required=False,
        max_length=32,
        label=f"Rate limit: {key}",
        help_text=f"Calls of {who}, e.g. 60/m or 10/15m; empty: the "
        "XENX_RATE_LIMITS default.",
    )


ServiceAdminForm = type(
    "ServiceAdminForm",
    (_ServiceFormBase,),
    {field: _rate_field(key) for field, key in RATE_FIELDS.items()},
)


class ServiceInstanceInline(admin.TabularInline):
    model = ServiceInstance
    extra = 1
    fields = ("url", "weight", "enabled", "live_health")
    readonly_fields = ("live_health",)

    @admin.display(description="health (live)")
    def live_health(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        if not obj.enabled:
            return "disabled"
        healthy = selectors.instance_health([obj]).get(obj.pk)
        return "healthy" if healthy else "UNHEALTHY"


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("name", "enabled", "public", "roles", "health")
    list_filter = ("enabled", "public")
    search_fields = ("name", "description")
    inlines = [ServiceInstanceInline]
    readonly_fields = ("created_at", "updated_at")
    form = ServiceAdminForm
    fieldsets = (
        (None, {"fields": ACCESS_FIELDS}),
        ("Rate limits", {"fields": tuple(RATE_FIELDS)}),
        ("Upstream calls", {"fields": UPSTREAM_FIELDS}),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("instances")

    @admin.display(description="roles")
    def roles(self, obj):
        return ", ".join(obj.allowed_roles) or "any"

    @admin.display(description="health (live)")
    def health(self, obj):
        summary = selectors.service_health(obj)
        return (
            f"{summary['status']} ({summary['healthy_instances']}/"
            f"{summary['total_instances']})"
        )

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def save_model(self, request, obj, form, change):
        """Through ``services`` (its actor check and audit event), like the API; the
        instances follow in the inline formset. The form validated the fields."""
        changed = set(form.changed_data)
        if changed & set(RATE_FIELDS):  # the per-role fields are one model field
            changed.add("rate_limits")
        fields = {
            f: form.cleaned_data[f] for f in changed if f in services.SERVICE_FIELDS
        }
        try:
            if change:
                services.service_update(
                    service=Service.objects.get(pk=obj.pk),
                    actor=request.user,
                    request=request,
                    **fields,
                )
                return
            created = services.service_create(
                name=obj.name, actor=request.user, request=request, **fields
            )
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc
        obj.pk, obj._state.adding = created.pk, False

    def delete_model(self, request, obj):
        try:
            services.service_delete(service=obj, actor=request.user, request=request)
        except Forbidden as exc:
            raise PermissionDenied(exc.message) from exc
