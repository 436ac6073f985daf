"""The list filters of organizations and documents (API and portal alike)."""

import django_filters

from core.filters import BooleanFilter, IdFilter, SearchFilter

from .models import Document, Organization


class OrganizationFilter(django_filters.FilterSet):
    is_active = BooleanFilter()
    mfa_required = BooleanFilter()
    search = SearchFilter(fields=("name", "slug"))

    class Meta:
        model = Organization
        fields: list = []


class DocumentFilter(django_filters.FilterSet):
    owner = IdFilter(field_name="owner_id")
    search = SearchFilter(fields=("title", "original_filename", "owner__email"))

    class Meta:
        model = Document
        fields: list = []
