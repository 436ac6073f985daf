"""The XenX admin site: Django admin behind the portal's two-step login.

- Who may enter is ``accounts.policy.session_verdict(door=ADMIN)``, the portal's rule
  plus a staff role: a user with a confirmed TOTP device only from a session that
  passed it, a member of an ``mfa_required`` organization only after enrolling (sent to
  the portal's enrolment page, like the portal does), active user and organization,
  session not revoked.
- ``/admin/login/`` is the portal login (password, then TOTP or a backup code, throttled
  like the API), so there is one login page and one throttle, not two.
"""

from django.contrib import admin, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import logout as auth_logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.policy import Door, Verdict, session_verdict

from .decorators import to_enrolment, to_login


class XenxAdminSite(admin.AdminSite):
    site_header = "XenX administration"
    site_title = "XenX admin"
    index_title = "Administration"
    site_url = "/portal/"

    def has_permission(self, request):
        return session_verdict(request, door=Door.ADMIN) == Verdict.ALLOW

    def login(self, request, extra_context=None):
        next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=False
        ) or not next_url.startswith("/admin/"):
            next_url = reverse("admin:index", current_app=self.name)
        verdict = session_verdict(request, door=Door.ADMIN)
        if verdict == Verdict.ALLOW:
            return redirect(next_url)
        if verdict == Verdict.ENROL:
            return to_enrolment(request)
        if verdict == Verdict.DENY:
            messages.error(request, "Your account cannot use the admin site.")
            return redirect("portal:dashboard")
        if verdict == Verdict.SIGN_OUT:
            auth_logout(request)
        return to_login(request, next_url)
