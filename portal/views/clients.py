"""The dashboard and the client pages (admin, staff, cpa)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.http import require_GET, require_POST

from core.errors import (
    ApiError,
)
from core.roles import Role
from organizations import services as org_services

from .. import selectors
from ..decorators import portal_login_required, roles_required, signed_in_user
from ..forms import (
    InviteClientForm,
    SearchForm,
)
from .common import (
    STAFF_ROLES,
    add_service_errors,
    page_of,
    searched_page,
)
from .documents import upload_form


@require_GET
@portal_login_required
def dashboard_view(request):
    return render(request, "portal/dashboard.html", selectors.dashboard(request.user))


@require_GET
@portal_login_required
@roles_required(*STAFF_ROLES)
def client_list_view(request):
    return render(
        request,
        "portal/clients.html",
        {
            **searched_page(request, selectors.clients_of),
            "invite_form": InviteClientForm(),
            "can_invite": request.user.organization_id is not None,
            "invitations": selectors.pending_invitations(request.user),
        },
    )


@require_POST
@portal_login_required
@roles_required(*STAFF_ROLES)
def client_invite_view(request):
    form = InviteClientForm(request.POST)
    organization = request.user.organization
    if organization is not None and form.is_valid():
        try:
            invitation, _token = org_services.invitation_create(
                organization=organization,
                email=form.cleaned_data["email"],
                role=Role.CLIENT,
                actor=signed_in_user(request),
                request=request,
            )
        except ApiError as exc:
            add_service_errors(form, exc, "email")
        else:
            messages.success(request, f"Invitation sent to {invitation.email}.")
            return redirect("portal:clients")
    elif organization is None:
        form.add_error(None, "Only members of an organization can invite clients.")
    page = page_of(request, selectors.clients_of(request.user))
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
    documents = page_of(request, selectors.documents_of(request.user, owner=client))
    return render(
        request,
        "portal/client_detail.html",
        {
            "client": client,
            "page": documents,
            "upload_form": upload_form(request, initial={"owner": client.pk}),
            "max_upload": filesizeformat(settings.XENX_MAX_UPLOAD_BYTES),
        },
    )


def _invitation_write(request, pk, service, done: str):
    """Resend or revoke a pending invitation the caller can see (404 otherwise, like
    every object) through its organizations service; back to the clients page."""
    invitation = get_object_or_404(selectors.invitations_of(request.user), pk=pk)
    try:
        service(invitation=invitation, actor=signed_in_user(request), request=request)
    except ApiError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done.format(email=invitation.email))
    return redirect("portal:clients")


@require_POST
@portal_login_required
@roles_required(*STAFF_ROLES)
def invitation_resend_view(request, pk):
    return _invitation_write(
        request,
        pk,
        org_services.invitation_resend,
        "Invitation sent again to {email}; the earlier link no longer works.",
    )


@require_POST
@portal_login_required
@roles_required(*STAFF_ROLES)
def invitation_revoke_view(request, pk):
    return _invitation_write(
        request,
        pk,
        org_services.invitation_revoke,
        "Invitation to {email} withdrawn.",
    )
