from django.contrib import admin
from django.core.exceptions import PermissionDenied

from core.errors import Forbidden

from . import selectors, services
from .models import Service, ServiceInstance


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
        fields = {
            f: form.cleaned_data[f]
            for f in form.changed_data
            if f in services.SERVICE_FIELDS
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
