"""Django admin: users' sessions (``accounts.sessions``), for admins (everyone's) and
staff (their organization's users, not admins), with the audited action "End selected
sessions"."""

from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from core.roles import Role
from organizations.admin import ViewOnlyAdminMixin
from organizations.scoping import visible

from . import sessions
from .models import UserSession


class LiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("live", "Not ended"), ("ended", "Ended")]

    def queryset(self, request, queryset):
        if self.value() == "live":
            return sessions.open_sessions(queryset)
        if self.value() == "ended":
            return queryset.filter(ended_at__isnull=False)
        return queryset


@admin.register(UserSession)
class UserSessionAdmin(ViewOnlyAdminMixin, admin.ModelAdmin):
    # Three columns of short lines (who, when, from where) rather than eight: the
    # list reads on a phone (375 px) without its columns cut.
    list_display = ["who", "when", "where"]
    list_filter = [LiveFilter, "kind", "mfa"]
    search_fields = ["user__email"]
    ordering = ["-last_used_at"]
    actions = ["end_sessions"]
    readonly_fields = [
        "user",
        "kind",
        "created_at",
        "last_used_at",
        "expires_at",
        "login_ip",
        "login_user_agent",
        "last_ip",
        "last_user_agent",
        "mfa",
        "ended_at",
    ]
    fields = readonly_fields

    def get_queryset(self, request):
        return visible(request.user, UserSession).select_related("user")

    def lookup_allowed(self, lookup, value, request=None):
        # /admin/accounts/usersession/?user__id__exact=N: one user's sessions (the
        # queryset is scoped already).
        if lookup == "user__id__exact":
            return True
        return super().lookup_allowed(lookup, value, request)

    @admin.display(description="session", ordering="user__email")
    def who(self, obj):
        return format_html(
            "<strong>{}</strong><br>{} · second factor {}",
            obj.user.email,
            obj.get_kind_display(),
            "yes" if obj.mfa else "no",
        )

    @admin.display(description="used", ordering="-last_used_at")
    def when(self, obj):
        def at(moment):
            return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")

        ended = f"ended {at(obj.ended_at)}" if obj.ended_at else "not ended"
        return format_html(
            "since {}<br>last {}<br>{}", at(obj.created_at), at(obj.last_used_at), ended
        )

    @admin.display(description="from")
    def where(self, obj):
        return format_html(
            '{}<br><span class="xenx-agent">{}</span>',
            obj.last_ip or "unknown address",
            (obj.last_user_agent or "unknown browser")[:60],
        )

    class Media:
        css = {"all": ["admin-xenx/changelist.css"]}

    def has_view_permission(self, request, obj=None):
        user = request.user
        return user.is_active and user.role in (Role.ADMIN, Role.STAFF)

    def has_end_permission(self, request):
        return self.has_view_permission(request)

    @admin.action(description="End selected sessions", permissions=["end"])
    def end_sessions(self, request, queryset):
        ended = 0
        for session in queryset.filter(ended_at__isnull=True):
            sessions.session_end(
                session=session, actor=request.user, request=request, via="admin"
            )
            ended += 1
        self.message_user(request, f"{ended} session(s) ended.", messages.SUCCESS)
