"""List filters on django-filter, shared by the API and the portal: one ``FilterSet``
per list, applied with ``apply_filters``. Client input is judged here, never by the
database: integers must fit in 64 bits, booleans must be spelt as one, a search is at
most ``SEARCH_MAX_LENGTH`` characters; anything else is 400 ``validation_error``."""

from __future__ import annotations

import re
from datetime import UTC

import django_filters
from django import forms
from django.db.models import Q, QuerySet
from django.utils.dateparse import parse_datetime

from core.errors import ValidationFailed

SEARCH_MAX_LENGTH = 200
INT64 = 2**63 - 1
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class StrictBooleanField(forms.Field):
    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise forms.ValidationError("Expected true or false.")


class BooleanFilter(django_filters.Filter):
    """``true``/``false`` (also 1/0, yes/no); anything else is refused, not ignored."""

    field_class = StrictBooleanField


class IdField(forms.IntegerField):
    """ASCII digits only (``int()`` would take other scripts' digits and ``1_0``)."""

    default_error_messages = {"invalid": "Expected an integer."}

    def to_python(self, value):
        if value not in self.empty_values and not _INTEGER.fullmatch(str(value)):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)


class IdFilter(django_filters.Filter):
    """An id: an integer that fits the database's 64-bit keys."""

    field_class = IdField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", -INT64)
        kwargs.setdefault("max_value", INT64)
        super().__init__(*args, **kwargs)


class DateTimeField(forms.Field):
    """ISO 8601; a ``+`` of the offset that arrived as a space is put back; naive
    values are UTC."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        try:
            parsed = parse_datetime(str(value).replace(" ", "+"))
        except ValueError:
            parsed = None
        if parsed is None:
            raise forms.ValidationError("Expected an ISO 8601 date-time.")
        if not parsed.tzinfo:
            return parsed.replace(tzinfo=UTC)
        # In UTC: databases refuse offsets Python accepts (PostgreSQL: +21:45 is a
        # DataError), and a year-1 value with an offset has no UTC time at all.
        try:
            return parsed.astimezone(UTC)
        except OverflowError:
            raise forms.ValidationError("The date-time is out of range.") from None


class DateTimeFilter(django_filters.Filter):
    field_class = DateTimeField


class SearchFilter(django_filters.CharFilter):
    """Case-insensitive substring of any of ``fields``, at most SEARCH_MAX_LENGTH."""

    def __init__(self, *, fields, **kwargs):
        self.search_fields = fields
        kwargs.setdefault("max_length", SEARCH_MAX_LENGTH)
        super().__init__(**kwargs)

    def filter(self, qs, value):
        value = (value or "").strip()
        if not value:
            return qs
        condition = Q()
        for field in self.search_fields:
            condition |= Q(**{f"{field}__icontains": value})
        return qs.filter(condition)


class CommaChoiceFilter(django_filters.CharFilter):
    """One value or several separated by commas, each one of ``choices``."""

    def __init__(self, *, choices, **kwargs):
        self.allowed = frozenset(choices)
        kwargs.setdefault("max_length", 2000)
        super().__init__(**kwargs)

    def filter(self, qs, value):
        wanted = [v.strip() for v in (value or "").split(",") if v.strip()]
        if not wanted:
            return qs
        unknown = sorted(set(wanted) - self.allowed)
        if unknown:
            raise ValidationFailed(
                details={self.field_name: [f"Unknown value: {', '.join(unknown)}."]}
            )
        return qs.filter(**{f"{self.field_name}__in": wanted})


def apply_filters(filterset_class, params, queryset: QuerySet) -> QuerySet:
    """``queryset`` narrowed by ``params`` (a QueryDict or dict); 400
    ``validation_error`` with the per-parameter messages when one is invalid."""
    filterset = filterset_class(params, queryset=queryset)
    if not filterset.is_valid():
        raise ValidationFailed(
            details={name: list(errors) for name, errors in filterset.errors.items()}
        )
    return filterset.qs
