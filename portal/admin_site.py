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
from django.contrib.admin import helpers
from django.contrib.auth import REDIRECT_FIELD_NAME, update_session_auth_hash
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.forms import PasswordChangeForm
from django.contrib.auth.views import PasswordChangeView
from django.core.exceptions import ValidationError
from django.db import connection
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.passwords import password_change
from accounts.policy import Door, Verdict, current_session, session_verdict
from core.errors import RateLimited, ValidationFailed
from core.forms import add_api_error

from .decorators import signed_in_user, to_enrolment, to_login


class OwnPasswordForm(PasswordChangeForm):
    """Django's form, minus its own (unthrottled) old-password check: the service
    checks it."""

    def clean_old_password(self):
        return self.cleaned_data["old_password"]


class OwnPasswordChangeView(PasswordChangeView):
    form_class = OwnPasswordForm
    template_name = "registration/password_change_form.html"

    def form_valid(self, form):
        try:
            password_change(
                user=signed_in_user(self.request),
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password2"],
                request=self.request,
                spare_session=current_session(self.request),
            )
        except RateLimited as exc:
            add_api_error(form, exc)
            response = self.form_invalid(form)
            response.status_code = 429
            response["Retry-After"] = exc.headers.get("Retry-After", "60")
            return response
        except ValidationFailed as exc:
            add_api_error(form, exc, aliases={"new_password": "new_password2"})
            return self.form_invalid(form)
        update_session_auth_hash(self.request, signed_in_user(self.request))
        return HttpResponseRedirect(self.get_success_url())


class SelectionCheckMixin:
    """A ModelAdmin whose actions run only on a selection of well-formed primary keys.

    Django filters the changelist with ``pk__in`` the posted ``_selected_action``
    values as they come: one that is not a key of the model's type (``abc`` for an
    integer) raised ``ValueError``, one out of the column's range ``OverflowError``:
    a 500. Such a selection selects nothing: the
    admin's own "Items must be selected" message and a redirect back.
    """

    def response_action(self, request, queryset):
        pk = self.model._meta.pk
        low, high = connection.ops.integer_field_ranges.get(
            pk.get_internal_type(), (None, None)
        )
        for value in request.POST.getlist(helpers.ACTION_CHECKBOX_NAME):
            try:
                key = pk.to_python(value)
            except ValidationError:
                key = None
            if key is None or (
                isinstance(key, int)
                and not ((low is None or key >= low) and (high is None or key <= high))
            ):
                self.message_user(
                    request,
                    "Items must be selected in order to perform actions on them. No "
                    "items have been changed.",
                    messages.WARNING,
                )
                return None  # Django's changelist redirects back
        return super().response_action(request, queryset)


class XenxAdminSite(admin.AdminSite):
    site_header = "XenX administration"
    site_title = "XenX admin"
    index_title = "Administration"
    site_url = "/portal/"

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every ModelAdmin, XenX's and the libraries' alike, checks its selection."""
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, SelectionCheckMixin):
            admin_class = type(
                admin_class.__name__, (SelectionCheckMixin, admin_class), {}
            )
        return super().register(model_or_iterable, admin_class, **options)

    def password_change(self, request, extra_context=None):
        """The admin's own password page: the old password is required and checked by
        ``passwords.password_change`` (throttled with ``password_change_account``,
        every other token and session revoked, audited), like the API and the portal."""
        request.current_app = self.name
        return OwnPasswordChangeView.as_view(
            success_url=reverse("admin:password_change_done", current_app=self.name),
            extra_context={**self.each_context(request), **(extra_context or {})},
        )(request)

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
