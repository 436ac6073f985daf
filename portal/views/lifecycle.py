"""The pages of a person's lifecycle reached from a mail or a visible link, none
needing the API (README "Lifecycle"): invitation sign-up, self-registration and email
verification, "Forgot password?" and the mailed reset link, the email change
confirmation. The writes are the API's services (accounts.registration, .passwords,
.email_change): the same rules, throttles, audit events and mails.

A link that cannot be used (unknown, expired, used, revoked) shows one clear page
(``link_invalid``, 410), never a 404 or a 500. Pages that change something on a mailed
link (verification, email change) ask for one click (POST): mail scanners that open
links must not spend them."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import logout as auth_logout
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods

from accounts import login, passwords, registration
from accounts.email_change import email_change_confirm
from core.errors import ApiError, RateLimited
from core.forms import add_api_error
from organizations.selectors import invitation_by_token, invitation_problem

from ..forms import (
    NewPasswordForm,
    PasswordResetRequestForm,
    RegisterForm,
    SignUpForm,
)
from .common import add_service_errors, rate_limited_page

INVALID_INVITATION = "This invitation is no longer valid."


def link_invalid(request, *, title: str, reason: str, status: int = 410):
    """The one page for a mailed link that cannot be used, with what to do next."""
    return render(
        request,
        "portal/link_invalid.html",
        {"title": title, "reason": reason},
        status=status,
    )


def _check_email_page(request, *, email: str, what: str):
    return render(
        request, "portal/check_email.html", {"email": email, "what": what}, status=200
    )


def _form_page(request, template, context, *, status=None):
    form = context.get("form")
    bound_invalid = form is not None and form.is_bound and form.errors
    return render(
        request, template, context, status=status or (400 if bound_invalid else 200)
    )


# --- invitation sign-up ---------------------------------------------------------------


@sensitive_post_parameters("new_password", "new_password_confirm")
@never_cache
@require_http_methods(["GET", "POST"])
def signup_view(request, token):
    invitation = invitation_by_token(token)
    problem = (
        "This invitation is unknown."
        if invitation is None
        else invitation_problem(invitation, email=invitation.email)
    )
    if problem:
        return link_invalid(
            request,
            title=INVALID_INVITATION,
            reason=f"{problem} Ask the person who invited you to send a new one.",
        )
    User = get_user_model()
    form = SignUpForm(User(email=invitation.email), data=request.POST or None)
    context = {"form": form, "invitation": invitation}
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, "portal/signup.html", context)
    try:
        user = registration.register(
            request=request,
            email=invitation.email,
            password=form.cleaned_data["new_password"],
            first_name=form.cleaned_data["first_name"],
            last_name=form.cleaned_data["last_name"],
            invitation=token,
        )
    except RateLimited as exc:
        return rate_limited_page(request, "portal/signup.html", context, exc)
    except ApiError as exc:
        details = getattr(exc, "details", None) or {}
        if "invitation" in details:  # used or revoked meanwhile
            return link_invalid(
                request, title=INVALID_INVITATION, reason=details["invitation"][0]
            )
        add_api_error(form, exc, field="new_password", aliases=_PASSWORD_FIELD)
        return _form_page(request, "portal/signup.html", context)
    if user._state.adding:  # the address already had an account: it was mailed
        return _check_email_page(request, email=invitation.email, what="account")
    login.session_login(request=request, user=user)
    messages.success(
        request, f"Welcome, {user.get_short_name()}: your account is ready."
    )
    return redirect(settings.LOGIN_REDIRECT_URL)


# The services name the password ``password``; the forms ``new_password``.
_PASSWORD_FIELD = {"password": "new_password"}


# --- self-registration and email verification ----------------------------------------


@sensitive_post_parameters("new_password", "new_password_confirm")
@never_cache
@require_http_methods(["GET", "POST"])
def register_view(request):
    if not settings.XENX_SELF_REGISTRATION:
        raise Http404  # the page does not exist when registration is off
    form = RegisterForm(get_user_model()(), data=request.POST or None)
    context = {"form": form}
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, "portal/register.html", context)
    email = form.cleaned_data["email"]
    try:
        registration.register(
            request=request,
            email=email,
            password=form.cleaned_data["new_password"],
            first_name=form.cleaned_data["first_name"],
            last_name=form.cleaned_data["last_name"],
        )
    except RateLimited as exc:
        return rate_limited_page(request, "portal/register.html", context, exc)
    except ApiError as exc:
        add_api_error(form, exc, field="new_password", aliases=_PASSWORD_FIELD)
        return _form_page(request, "portal/register.html", context)
    # The same page whether the address was new or already had an account.
    return _check_email_page(request, email=email, what="verify")


@never_cache
@require_http_methods(["GET", "POST"])
def verify_email_view(request):
    token = request.POST.get("token") or request.GET.get("token") or ""
    if request.method == "GET":
        if not token:
            return link_invalid(
                request,
                title="This verification link is incomplete.",
                reason="Open the link from the mail again, in one piece.",
            )
        return render(request, "portal/verify_email.html", {"token": token})
    try:
        registration.verify_email(request=request, token=token[:512])
    except ApiError:
        return link_invalid(
            request,
            title="This verification link cannot be used.",
            reason="It is invalid or was already used. If your address is "
            "verified, simply sign in.",
        )
    messages.success(request, "Your email address is verified. You can sign in.")
    return redirect("portal:login")


# --- forgotten password ---------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def password_reset_view(request):
    form = PasswordResetRequestForm(request.POST or None)
    context = {"form": form}
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, "portal/password_reset.html", context)
    try:
        passwords.password_reset_request(
            request=request, email=form.cleaned_data["email"]
        )
    except RateLimited as exc:
        return rate_limited_page(request, "portal/password_reset.html", context, exc)
    # The same answer for every address (no account enumeration).
    return _check_email_page(request, email=form.cleaned_data["email"], what="reset")


@sensitive_post_parameters("new_password", "new_password_confirm")
@never_cache
@require_http_methods(["GET", "POST"])
def password_reset_confirm_view(request, uid, token):
    user = passwords.password_reset_link_user(uid=uid, token=token)
    if user is None:
        return link_invalid(
            request,
            title="This password reset link cannot be used.",
            reason="It is invalid, expired or was already used. Ask for a new one.",
        )
    form = NewPasswordForm(user, request.POST or None)
    context = {"form": form, "reset_user": user}
    if request.method != "POST" or not form.is_valid():
        return _form_page(request, "portal/password_reset_confirm.html", context)
    try:
        passwords.password_reset_confirm(
            request=request,
            uid=uid,
            token=token,
            new_password=form.cleaned_data["new_password"],
        )
    except ApiError as exc:
        add_service_errors(form, exc, "new_password")
        return _form_page(request, "portal/password_reset_confirm.html", context)
    if request.user.is_authenticated:
        auth_logout(request)  # every session of the account ended, this one too
    messages.success(request, "Your password is changed. Sign in with it.")
    return redirect("portal:login")


# --- email change ---------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def email_confirm_view(request):
    token = request.POST.get("token") or request.GET.get("token") or ""
    if request.method == "GET":
        return render(request, "portal/email_confirm.html", {"token": token})
    try:
        user = email_change_confirm(token=token[:512], request=request)
    except ApiError as exc:
        reason = (exc.details or {}).get("token", [exc.message])[0]
        return link_invalid(
            request, title="This confirmation link cannot be used.", reason=reason
        )
    if request.user.is_authenticated:
        auth_logout(request)  # every session of the account was signed out
    messages.success(
        request, f"Your email address is now {user.email}. Sign in with it."
    )
    return redirect("portal:login")
