"""Documents: list and search, upload, download."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.forms.utils import ErrorDict
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from core.errors import (
    ApiError,
    NotFound,
    PayloadTooLarge,
)
from organizations import services as org_services
from organizations import uploads

from .. import selectors
from ..decorators import portal_login_required, signed_in_user
from ..forms import (
    DocumentUploadForm,
)
from .common import (
    add_service_errors,
    searched_page,
)


def upload_form(request, data=None, files=None, initial=None):
    return DocumentUploadForm(
        request.user,
        selectors.clients_of(request.user),
        data=data,
        files=files,
        initial=initial,
    )


def _documents_page(request, form, status=200):
    return render(
        request,
        "portal/documents.html",
        {
            **searched_page(request, selectors.documents_of),
            "upload_form": form,
            "max_upload": filesizeformat(settings.XENX_MAX_UPLOAD_BYTES),
        },
        status=status,
    )


@require_GET
@portal_login_required
def document_list_view(request):
    return _documents_page(request, upload_form(request))


@portal_login_required
def _too_large(request):
    """The upload form again, the error beside its file field (413). Nothing was
    parsed (nor written), so there is no CSRF check to make here."""
    limit = filesizeformat(uploads.max_upload_bytes())
    form = upload_form(request)
    # The body was not parsed: the form is unbound, and only this error is shown
    # (add_error needs a bound, cleaned form).
    form._errors = ErrorDict(
        file=form.error_class(
            [f"This file is larger than {limit}: choose a smaller one."]
        )
    )
    response = _documents_page(request, form, status=413)
    if not request.META.get("xenx.upload_drained"):
        response["Connection"] = "close"
    return response


@csrf_exempt  # checked by _document_upload, after the size guard below is installed
@require_POST
def document_upload_view(request):
    """Refuse an oversized body without storing it, and stop parsing a file part as
    soon as it passes XENX_MAX_UPLOAD_BYTES (the API's upload handler): the CSRF check
    reads the body, so the guard must be in place first (Django's documented way).
    The rest of a refused body is read and dropped before the answer (up to a bound):
    a browser that is still sending shows a reset connection, not a page."""

    try:
        uploads.guard_upload(request)
        return _document_upload(request)
    except PayloadTooLarge:
        request.META["xenx.upload_drained"] = uploads.drain_refused_body(request)
        return _too_large(request)


@csrf_protect
@portal_login_required
def _document_upload(request):
    form = upload_form(request, data=request.POST, files=request.FILES)
    if form.is_valid():
        owner = form.cleaned_data.get("owner") or signed_in_user(request)
        upload = form.cleaned_data["file"]
        try:
            document = org_services.document_create(
                owner=owner,
                upload=upload,
                title=form.cleaned_data["title"],
                actor=signed_in_user(request),
                request=request,
            )
        except ApiError as exc:
            add_service_errors(form, exc, "file")
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
    try:
        return uploads.document_file_response(document)
    except NotFound:
        raise Http404 from None
