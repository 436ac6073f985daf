"""Portal pages. Thin: forms validate, services write, selectors read (all scoped by
``organizations.scoping.visible``); anything outside the caller's scope is 404."""

from __future__ import annotations

import contextlib

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.functional import LazyObject
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import throttling
from accounts.selectors import user_has_confirmed_totp
from xenx.errors import ApiError, PayloadTooLarge, RateLimited
from xenx.roles import Role

from . import selectors, services
from .admin_site import passed_second_factor
from .decorators import portal_login_required, roles_required
from .forms import (
    CodeForm,
    DocumentUploadForm,
    InviteClientForm,
    LoginForm,
    PasswordChangeForm,
    ProfileForm,
    SearchForm,
)
from .session_views import account_sessions

PAGE_SIZE = 20
STAFF_ROLES = (Role.ADMIN, Role.STAFF, Role.CPA)
ENROLMENT_KEY = "portal_totp_enrolment"


def _me(request):
    """The signed-in User itself, not django-otp's lazy wrapper around it: services
    may use ``type(user)``."""
    user = request.user
    while isinstance(user, LazyObject):  # django-otp wraps auth's lazy user
        _ = user.pk  # evaluate it
        user = user._wrapped
    return user


def _safe_next(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return settings.LOGIN_REDIRECT_URL


def _page(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def _add_service_errors(form, exc, field: str) -> None:
    """Put a service's error beside the form field it names (else beside ``field``)."""
    if isinstance(exc, RateLimited):
        form.add_error(None, "Too many attempts. Wait a minute and try again.")
        return
    details = {}
    if isinstance(exc, ApiError):
        details = exc.details or {}
    elif isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        details = exc.message_dict
    placed = False
    for name, errors in details.items():
        target = name if name in form.fields else None
        if name == "non_field_errors" or target is not None:
            for message in errors if isinstance(errors, list) else [errors]:
                form.add_error(target, str(message))
            placed = True
    if not placed:
        messages_ = exc.messages if isinstance(exc, ValidationError) else [exc.message]
        for message in messages_:
            form.add_error(field, message)


def _rate_limited(request, template, context, exc: RateLimited):
    context["rate_limited"] = True
    response = render(request, template, context, status=429)
    response["Retry-After"] = exc.headers.get("Retry-After", "60")
    return response


# --- Login, second step, logout -------------------------------------------------------


@sensitive_post_parameters("password")
@never_cache
@require_http_methods(["GET", "POST"])
def login_view(request):
    next_url = _safe_next(request)
    if request.user.is_authenticated and passed_second_factor(request):
        return redirect(next_url)
    form = LoginForm(request, data=request.POST or None)
    context = {"form": form, "next": next_url}
    if request.method == "POST":
        # The API login's throttles and counters (SPEC §4): per address, every attempt;
        # per account, failures (a right password is refused too once it is reached).
        account = throttling.account_key(request.POST.get("email", "")[:254])
        try:
            throttling.hit(request, "login_ip", throttling.ip_of(request))
            throttling.check(request, "login_account", account)
        except RateLimited as exc:
            return _rate_limited(request, "portal/login.html", context, exc)
        if not form.is_valid():
            if form.user is None and account:
                throttling.fail(request, "login_account", account)
                services.login_failed(request=request, email=account)
            return render(request, "portal/login.html", context, status=200)
        user = form.user
        if user_has_confirmed_totp(user):
            services.pending_login_start(request=request, user=user, next_url=next_url)
            return redirect("portal:login-verify")
        services.session_login(request=request, user=user)
        return redirect(next_url)
    return render(request, "portal/login.html", context)


def _second_factor_device(user, code):
    """The user's TOTP device when ``code`` (TOTP or backup code, each accepted once)
    is right, else None. The device marks the session verified (django-otp)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts import mfa

    if not mfa.verify_second_factor(user=user, code=code):
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


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
        account = str(user.pk)  # the API's MFA counters
        try:
            throttling.hit(request, "mfa_verify_ip", throttling.ip_of(request))
            throttling.check(request, "mfa_account", account)
        except RateLimited as exc:
            return _rate_limited(request, "portal/login_verify.html", context, exc)
        if form.is_valid():
            device = _second_factor_device(user, form.cleaned_data["code"])
            if device is not None:
                services.session_login(request=request, user=user, device=device)
                return redirect(next_url)
            throttling.fail(request, "mfa_account", account)
            if services.pending_login_failed(request=request, user=user):
                messages.error(request, "Too many wrong codes. Please sign in again.")
                return redirect("portal:login")
            form.add_error("code", "That code is not valid. Try the next one.")
    return render(request, "portal/login_verify.html", context)


@require_POST
def logout_view(request):
    services.session_logout(request=request)
    messages.success(request, "You are signed out.")
    return redirect("portal:login")


# --- Dashboard, clients -------------------------------------------------------------------


@require_GET
@portal_login_required
def dashboard_view(request):
    return render(request, "portal/dashboard.html", selectors.dashboard(request.user))


@require_GET
@portal_login_required
@roles_required(*STAFF_ROLES)
def client_list_view(request):
    search = SearchForm(request.GET or None)
    q = search.cleaned_data["q"] if search.is_valid() else ""
    page = _page(request, selectors.clients_of(request.user, search=q))
    return render(
        request,
        "portal/clients.html",
        {
            "search": search,
            "q": q,
            "page": page,
            "invite_form": InviteClientForm(),
            "can_invite": request.user.organization_id is not None,
            "invitations": selectors.pending_invitations(request.user),
        },
    )


@require_POST
@portal_login_required
@roles_required(*STAFF_ROLES)
def client_invite_view(request):
    from organizations import services as org_services

    form = InviteClientForm(request.POST)
    organization = request.user.organization
    if organization is not None and form.is_valid():
        try:
            invitation, _token = org_services.invitation_create(
                organization=organization,
                email=form.cleaned_data["email"],
                role=Role.CLIENT,
                actor=_me(request),
                request=request,
            )
        except (ApiError, ValidationError) as exc:
            _add_service_errors(form, exc, "email")
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("portal:clients")
    elif organization is None:
        form.add_error(None, "Only members of an organization can invite clients.")
    page = _page(request, selectors.clients_of(request.user))
    return render(
        request,
        "portal/clients.html",
        {
            "search": SearchForm(),
            "q": "",
            "page": page,
            "invite_form": form,
            "can_invite": organization is not None,
            "invitations": selectors.pending_invitations(request.user),
        },
        status=400,
    )


@require_GET
@portal_login_required
@roles_required(*STAFF_ROLES)
def client_detail_view(request, pk):
    client = get_object_or_404(selectors.clients_of(request.user), pk=pk)
    documents = _page(request, selectors.documents_of(request.user, owner=client))
    return render(
        request,
        "portal/client_detail.html",
        {
            "client": client,
            "page": documents,
            "upload_form": _upload_form(request, initial={"owner": client.pk}),
            "max_upload": filesizeformat(settings.XENX_MAX_UPLOAD_BYTES),
        },
    )


# --- Documents ----------------------------------------------------------------------------


def _upload_form(request, data=None, files=None, initial=None):
    return DocumentUploadForm(
        request.user,
        selectors.clients_of(request.user),
        data=data,
        files=files,
        initial=initial,
    )


def _documents_page(request, upload_form, status=200):
    search = SearchForm(request.GET or None)
    q = search.cleaned_data["q"] if search.is_valid() else ""
    page = _page(request, selectors.documents_of(request.user, search=q))
    return render(
        request,
        "portal/documents.html",
        {
            "search": search,
            "q": q,
            "page": page,
            "upload_form": upload_form,
            "max_upload": filesizeformat(settings.XENX_MAX_UPLOAD_BYTES),
        },
        status=status,
    )


@require_GET
@portal_login_required
def document_list_view(request):
    return _documents_page(request, _upload_form(request))


def _too_large(request, limit: int):
    messages.error(request, f"The file is larger than {filesizeformat(limit)}.")
    response = redirect("portal:documents")
    response.status_code = 303
    return response


@csrf_exempt  # checked by _document_upload, after the size guard below is installed
@require_POST
def document_upload_view(request):
    """Refuse an oversized body before reading it, and stop reading a file part as
    soon as it passes XENX_MAX_UPLOAD_BYTES (the API's upload handler): the CSRF check
    reads the body, so the guard must be in place first (Django's documented way)."""
    from organizations import services as org_services
    from organizations.views import UploadLimitHandler

    limit = org_services.max_upload_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit + 64 * 1024:
        return _too_large(request, limit)
    request.upload_handlers.insert(0, UploadLimitHandler(limit))
    try:
        return _document_upload(request)
    except PayloadTooLarge:
        return _too_large(request, limit)


@csrf_protect
@portal_login_required
def _document_upload(request):
    from organizations import services as org_services

    form = _upload_form(request, data=request.POST, files=request.FILES)
    if form.is_valid():
        owner = form.cleaned_data.get("owner") or _me(request)
        upload = form.cleaned_data["file"]
        try:
            document = org_services.document_create(
                owner=owner,
                upload=upload,
                title=form.cleaned_data["title"],
                actor=_me(request),
                request=request,
            )
        except (ApiError, ValidationError) as exc:
            _add_service_errors(form, exc, "file")
        else:
            messages.success(request, f"Uploaded “{document.title}”.")
            back = request.POST.get("back")
            if back == "client" and owner.pk != request.user.pk:
                return redirect("portal:client-detail", pk=owner.pk)
            return redirect("portal:documents")
    return _documents_page(request, form, status=400)


@require_GET
@portal_login_required
def document_download_view(request, pk):
    document = get_object_or_404(selectors.documents_of(request.user), pk=pk)
    response = FileResponse(
        document.file.open("rb"),
        as_attachment=True,
        filename=document.original_filename or f"document-{document.pk}",
        content_type=document.content_type,
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


# --- Account: profile, password, MFA -----------------------------------------------------


def _account_page(
    request,
    *,
    profile_form=None,
    password_form=None,
    disable_form=None,
    regen_form=None,
):
    user = request.user
    invalid = profile_form or password_form or disable_form or regen_form
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
            "mfa_enabled": user_has_confirmed_totp(user),
            **account_sessions(request, _me(request)),
        },
        status=400 if invalid else 200,
    )


@never_cache
@require_http_methods(["GET", "POST"])
@portal_login_required(allow_mfa_pending=True)
def account_view(request):
    if request.method == "GET":
        return _account_page(request)
    form = ProfileForm(request.POST)
    if not form.is_valid():
        return _account_page(request, profile_form=form)
    user = request.user
    user.first_name = form.cleaned_data["first_name"]
    user.last_name = form.cleaned_data["last_name"]
    user.save(update_fields=["first_name", "last_name"])
    messages.success(request, "Profile saved.")
    return redirect("portal:account")


@sensitive_post_parameters("old_password", "new_password", "new_password_confirm")
@require_POST
@portal_login_required(allow_mfa_pending=True)
def password_change_view(request):
    from accounts.auth_services import password_change

    form = PasswordChangeForm(request.user, request.POST)
    if form.is_valid():
        try:
            password_change(
                user=_me(request),
                old_password=form.cleaned_data["old_password"],
                new_password=form.cleaned_data["new_password"],
                request=request,
            )
        except (ApiError, ValidationError) as exc:
            _add_service_errors(form, exc, "new_password")
        else:
            update_session_auth_hash(request, request.user)
            messages.success(
                request,
                "Password changed. Apps signed in with your old password must sign in "
                "again.",
            )
            return redirect("portal:account")
    return _account_page(request, password_form=form)


@never_cache
@require_POST
@portal_login_required(allow_mfa_pending=True)
def totp_begin_view(request):
    """Start (or restart) TOTP enrolment and show the QR code."""
    from accounts import mfa

    if user_has_confirmed_totp(request.user):
        messages.info(request, "Two-factor authentication is already on.")
        return redirect("portal:account")
    enrolment = mfa.totp_begin_enrolment(user=_me(request))
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
    from accounts import mfa

    enrolment = request.session.get(ENROLMENT_KEY)
    if not enrolment:
        return redirect("portal:account")
    form = CodeForm(request.POST or None)
    form.fields["code"].help_text = "The 6-digit code your app shows now."
    if request.method == "POST" and form.is_valid():
        try:
            codes = mfa.totp_confirm(
                user=_me(request), code=form.cleaned_data["code"], request=request
            )
        except (ApiError, ValidationError) as exc:
            _add_service_errors(form, exc, "code")
        else:
            request.session.pop(ENROLMENT_KEY, None)
            _verify_session(request)
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


def _verify_session(request):
    """This session enrolled the device: it counts as having passed it."""
    import django_otp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = request.user
    with contextlib.suppress(AttributeError):
        del user._xenx_mfa_enabled  # accounts.selectors memoises it on the user
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is not None:
        django_otp.login(request, device)


def _backup_codes_page(request, codes):
    response = render(request, "portal/backup_codes.html", {"codes": codes})
    response["Cache-Control"] = "no-store"
    return response


@sensitive_post_parameters("disable-code")
@require_POST
@portal_login_required(allow_mfa_pending=True)
def mfa_disable_view(request):
    from accounts import mfa

    form = CodeForm(request.POST, prefix="disable")
    if form.is_valid():
        try:
            mfa.mfa_disable(
                user=_me(request), code=form.cleaned_data["code"], request=request
            )
        except (ApiError, ValidationError) as exc:
            _add_service_errors(form, exc, "code")
        else:
            messages.success(request, "Two-factor authentication is off.")
            return redirect("portal:account")
    return _account_page(request, disable_form=form)


@sensitive_post_parameters("regen-code")
@never_cache
@require_POST
@portal_login_required(allow_mfa_pending=True)
def backup_codes_view(request):
    from accounts import mfa

    form = CodeForm(request.POST, prefix="regen")
    if form.is_valid():
        try:
            codes = mfa.backup_codes_regenerate(
                user=_me(request), code=form.cleaned_data["code"], request=request
            )
        except (ApiError, ValidationError) as exc:
            _add_service_errors(form, exc, "code")
        else:
            messages.success(
                request, "New backup codes made; the old ones stopped working."
            )
            return _backup_codes_page(request, codes)
    return _account_page(request, regen_form=form)
