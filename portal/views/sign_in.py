"""Sign in (password, then a second factor when the user has one) and sign out; the checks are ``accounts.login``'s."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from accounts import login
from accounts.policy import Door, Verdict, session_verdict
from accounts.selectors import user_has_confirmed_totp
from accounts.throttling import AccountLocked, wait_in_words
from core.errors import (
    InvalidCredentials,
    RateLimited,
)

from .. import services
from ..forms import (
    CodeForm,
    LoginForm,
)
from .common import (
    rate_limited_page,
    safe_next,
)


@sensitive_post_parameters("password")
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request):
    next_url = safe_next(request)
    verdict = session_verdict(request, door=Door.PORTAL, allow_mfa_pending=True)
    if verdict == Verdict.ALLOW:
        return redirect(next_url)
    form = LoginForm(data=request.POST or None)
    context = {
        "form": form,
        "next": next_url,
        "self_registration": settings.XENX_SELF_REGISTRATION,
    }
    if request.method != "POST" or not form.is_valid():
        return render(request, "portal/login.html", context)
    # The API login's checks, throttles (login_ip, login_account) and audit events.
    try:
        user = login.login_check_password(
            request=request,
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password"],
            channel="portal",
        )
    except AccountLocked as exc:
        return locked_page(request, exc)
    except RateLimited as exc:
        return rate_limited_page(request, "portal/login.html", context, exc)
    except InvalidCredentials:
        form.add_error(None, LoginForm.error_message)
        return render(request, "portal/login.html", context)
    if user_has_confirmed_totp(user):
        services.pending_login_start(request=request, user=user, next_url=next_url)
        return redirect("portal:login-verify")
    login.session_login(request=request, user=user)
    return redirect(next_url)


@sensitive_post_parameters("code")
@never_cache
@require_http_methods(["GET", "POST"])
def login_verify_view(request):
    user, next_url = services.pending_login(request)
    if user is None:
        messages.error(request, "Your sign-in expired. Please sign in again.")
        return redirect("portal:login")
    form = CodeForm(request.POST or None)
    context = {"form": form, "pending_user": user}
    if request.method == "POST":
        try:  # the API's MFA counters
            login.login_check_code_throttle(request=request, user=user)
        except RateLimited as exc:
            return rate_limited_page(request, "portal/login_verify.html", context, exc)
        if form.is_valid():
            device = login.session_second_factor(
                user=user, code=form.cleaned_data["code"]
            )
            if device is not None:
                services.pending_login_end(request)
                login.session_login(request=request, user=user, device=device)
                return redirect(next_url)
            failures = services.pending_login_failed(request)
            login.login_code_failed(
                request=request, user=user, failures=failures, channel="portal"
            )
            if failures >= login.MFA_MAX_FAILURES:
                messages.error(request, "Too many wrong codes. Please sign in again.")
                return redirect("portal:login")
            form.add_error("code", "That code is not valid. Try the next one.")
    return render(request, "portal/login_verify.html", context)


def locked_page(request, exc: AccountLocked):
    """The lockout page: how long to wait in words, and the ways out."""
    response = render(
        request, "portal/locked.html", {"wait": wait_in_words(exc.wait)}, status=429
    )
    response["Retry-After"] = str(exc.wait)
    return response


@require_POST
def logout_view(request):
    login.session_logout(request=request)
    messages.success(request, "You are signed out.")
    return redirect("portal:login")
