"""Helpers shared by the portal's pages."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme

from core.errors import ApiError, RateLimited
from core.forms import add_api_error
from core.roles import Role

from ..forms import SearchForm

PAGE_SIZE = 20
STAFF_ROLES = (Role.ADMIN, Role.STAFF, Role.CPA)
ENROLMENT_KEY = "portal_totp_enrolment"


def safe_next(request) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return settings.LOGIN_REDIRECT_URL


def page_of(request, queryset):
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def searched_page(request, select) -> dict:
    """The search form, its query and the page of ``select(user, search=q)``: the
    context every searchable portal list starts from."""
    search = SearchForm(request.GET or None)
    q = search.cleaned_data["q"] if search.is_valid() else ""
    page = page_of(request, select(request.user, search=q))
    return {"search": search, "q": q, "page": page}


def add_service_errors(form, exc: ApiError, field: str) -> None:
    """Put a service's error beside the form field it names (else beside ``field``)."""
    add_api_error(form, exc, field=field)


def rate_limited_page(request, template, context, exc: RateLimited):
    context["rate_limited"] = True
    response = render(request, template, context, status=429)
    response["Retry-After"] = exc.headers.get("Retry-After", "60")
    return response
