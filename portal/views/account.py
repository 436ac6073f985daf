"""The account page: profile, password, TOTP enrolment, backup codes, disabling MFA."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts import login, mfa
from accounts.email_change import email_change_request
from accounts.passwords import password_change
from accounts.policy import current_session
from accounts.selectors import user_has_confirmed_totp
from accounts.services import user_update
from core.errors import (
    ApiError,
    RateLimited,
)

from ..decorators import portal_login_required, signed_in_user
from ..forms import (
    CodeForm,
    CurrentPasswordForm,
    EmailChangeForm,
    PasswordChangeForm,
    ProfileForm,
)
from .common import (
    ENROLMENT_KEY,
    add_service_errors,
)
from .sessions import account_sessions


def _account_page(
    request,
    *,
    profile_form=None,
    password_form=None,
    disable_form=None,
    regen_form=None,
    totp_form=None,
    email_form=None,
    status=None,
):
    user = request.user
    invalid = (
        profile_form
        or password_form
        or disable_form
        or regen_form
        or totp_form
        or email_form
    )
    return render(
        request,
        "portal/account.html",
        {
            "profile_form": profile_form
            or ProfileForm(
                initial={"first_name": user.first_name, "last_name": user.last_name}
            ),
            "password_form": password_form or PasswordChangeForm(user),
            "disable_form": disable_form or CodeForm(prefix="disable"),
            "regen_form": regen_form or CodeForm(prefix="regen"),
            "totp_form": totp_form or CurrentPasswordForm(),
            "email_form": email_form or EmailChangeForm(prefix="email"),
            "mfa_enabled": user_has_confirmed_totp(user),
            **account_sessions(request, signed_in_user(request)),
        },
        status=status or (400 if invalid else 200),
    )


def _refused(request, form, exc, field: str, **page):
    """The account page with a service's error beside ``field`` (429 with
    ``Retry-After`` when throttled)."""
    add_service_errors(form, exc, field)
    if isinstance(exc, RateLimited):
        response = _account_page(request, status=429, **page)
        response["Retry-After"] = exc.headers.get("Retry-After", "60")
        return response
    return _account_page(request, **page)


@never_cache
@require_http_methods(["GET", "POST"])
@portal_login_required(allow_mfa_pending=True)
def account_view(request):
    if request.method == "GET":
        return _account_page(request)
    form = ProfileForm(request.POST)
    if not form.is_valid():
        return _account_page(request, profile_form=form)
    me = signed_in_user(request)
    user_update(user=me, actor=me, request=request, **form.cleaned_data)
    messages.success(request, "Profile saved.")
    return redirect("portal:account")


@sensitive_post_parameters("old_password", "new_password", "new_password_confirm")
@require_POST
@portal_login_required(allow_mfa_pending=True)
def password_change_view(request):
    form = PasswordChangeForm(request.user, request.POST)
    if form.is_valid():
        try:
            password_change(
                user=signed_in_user(request),
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password"],
                request=request,
                spare_session=current_session(request),
            )
        except ApiError as exc:
            return _refused(request, form, exc, "new_password", password_form=form)
        else:
            update_session_auth_hash(request, request.user)
            messages.success(
                request,
                "Password changed. Apps signed in with your old password must sign in "
                "again.",
            )
            return redirect("portal:account")
    return _account_page(request, password_form=form)


@sensitive_post_parameters("password")
@never_cache
@require_POST
@portal_login_required(allow_mfa_pending=True)
def totp_begin_view(request):
    """Start (or restart) TOTP enrolment, after the current password, and show the
    QR code."""

    if user_has_confirmed_totp(request.user):
        messages.info(request, "Two-factor authentication is already on.")
        return redirect("portal:account")
    form = CurrentPasswordForm(request.POST)
    if not form.is_valid():
        return _account_page(request, totp_form=form)
    try:
        enrolment = mfa.totp_begin_enrolment(
            user=signed_in_user(request),
            password=form.cleaned_data["password"],
            request=request,
        )
    except ApiError as exc:
        return _refused(request, form, exc, "password", totp_form=form)
    request.session[ENROLMENT_KEY] = {
        "secret": enrolment["secret"],
        "otpauth_uri": enrolment["otpauth_uri"],
        "qr_svg": enrolment["qr_svg"],
    }
    return redirect("portal:totp-confirm")


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
@portal_login_required(allow_mfa_pending=True)
def totp_confirm_view(request):
    enrolment = request.session.get(ENROLMENT_KEY)
    if not enrolment:
        return redirect("portal:account")
    form = CodeForm(request.POST or None)
    form.fields["code"].help_text = "The 6-digit code your app shows now."
    if request.method == "POST" and form.is_valid():
        try:
            codes = mfa.totp_confirm(
                user=signed_in_user(request),
                code=form.cleaned_data["code"],
                request=request,
                spare_session=current_session(request),
            )
        except ApiError as exc:
            add_service_errors(form, exc, "code")
        else:
            request.session.pop(ENROLMENT_KEY, None)
            login.session_mark_verified(request=request, user=signed_in_user(request))
            messages.success(request, "Two-factor authentication is on.")
            return _backup_codes_page(request, codes)
    return render(
        request,
        "portal/totp_enrol.html",
        {"form": form, "enrolment": enrolment, "qr_svg": _inline_svg(enrolment)},
        status=400 if form.is_bound else 200,
    )


def _inline_svg(enrolment) -> str:
    """The QR code as inline SVG markup (made by segno from the otpauth URI)."""
    svg = enrolment.get("qr_svg") or ""
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else ""


def _backup_codes_page(request, codes):
    response = render(request, "portal/backup_codes.html", {"codes": codes})
    response["Cache-Control"] = "no-store"
    return response


@sensitive_post_parameters("disable-code")
@require_POST
@portal_login_required(allow_mfa_pending=True)
def mfa_disable_view(request):
    form = CodeForm(request.POST, prefix="disable")
    if form.is_valid():
        try:
            mfa.mfa_disable(
                user=signed_in_user(request),
                code=form.cleaned_data["code"],
                request=request,
            )
        except ApiError as exc:
            add_service_errors(form, exc, "code")
        else:
            messages.success(request, "Two-factor authentication is off.")
            return redirect("portal:account")
    return _account_page(request, disable_form=form)


@sensitive_post_parameters("regen-code")
@never_cache
@require_POST
@portal_login_required(allow_mfa_pending=True)
def backup_codes_view(request):
    form = CodeForm(request.POST, prefix="regen")
    if form.is_valid():
        try:
            codes = mfa.backup_codes_regenerate(
                user=signed_in_user(request),
                code=form.cleaned_data["code"],
                request=request,
            )
        except ApiError as exc:
            add_service_errors(form, exc, "code")
        else:
            messages.success(
                request, "New backup codes made; the old ones stopped working."
            )
            return _backup_codes_page(request, codes)
    return _account_page(request, regen_form=form)


@sensitive_post_parameters("email-password")
@require_POST
@portal_login_required(allow_mfa_pending=True)
def email_change_view(request):
    """Ask for a new address: a confirmation link goes there, a notice to the old."""
    form = EmailChangeForm(request.POST, prefix="email")
    if not form.is_valid():
        return _account_page(request, email_form=form)
    try:
        email_change_request(
            user=signed_in_user(request),
            password=form.cleaned_data["password"],
            new_email=form.cleaned_data["new_email"],
            request=request,
        )
    except ApiError as exc:
        return _refused(request, form, exc, "new_email", email_form=form)
    messages.success(
        request,
        f"We sent a confirmation link to {form.cleaned_data['new_email']}. Your "
        "address changes when you open it.",
    )
    return redirect("portal:account")
