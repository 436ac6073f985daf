"""The XenX admin site: Django admin behind the portal's two-step login.

- Admins and staff (``is_staff``, derived from the role) may enter; a user with a
  confirmed TOTP device only when this session passed it (django-otp's ``is_verified``).
- ``/admin/login/`` is the portal login (password, then TOTP or a backup code, throttled
  like the API), so there is one login page and one throttle, not two.
"""

from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import logout as auth_logout
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.selectors import user_has_confirmed_totp


def passed_second_factor(request) -> bool:
    """True unless the user has a confirmed TOTP device this session did not pass."""
    user = request.user
    verified = getattr(user, "is_verified", None)
    if verified is not None and verified():
        return True
    return not user_has_confirmed_totp(user)


class XenxAdminSite(admin.AdminSite):
    site_header = "XenX administration"
    site_title = "XenX admin"
    index_title = "Administration"
    site_url = "/portal/"

    def has_permission(self, request):
        return super().has_permission(request) and passed_second_factor(request)

    def login(self, request, extra_context=None):
        next_url = request.GET.get(REDIRECT_FIELD_NAME, "")
        if not url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=False
        ) or not next_url.startswith("/admin/"):
            next_url = reverse("admin:index", current_app=self.name)
        user = request.user
        if user.is_authenticated:
            if self.has_permission(request):
                return redirect(next_url)
            if user.is_active and user.is_staff:
                # Staff whose session has not passed its second factor: log in again.
                auth_logout(request)
            else:
                messages.error(request, "Your account cannot use the admin site.")
                return redirect("portal:dashboard")
        return redirect(
            f"{reverse('portal:login')}?{urlencode({'next': next_url}, safe='/')}"
        )
