"""The one adapter from the error family to a Django form: the portal's pages and the
Django admin show a service's ``ValidationFailed`` beside the field it names."""

from __future__ import annotations

from .errors import ApiError, RateLimited

TOO_MANY_ATTEMPTS = "Too many attempts. Wait a minute and try again."


def add_api_error(
    form, exc: ApiError, *, field: str | None = None, aliases: dict | None = None
) -> None:
    """Put each of ``exc``'s details beside the form field it names (``aliases``: the
    service's field name → the form's), ``non_field_errors`` above the form; when no
    detail names a field of the form, its message goes beside ``field`` (None: above)."""
    if isinstance(exc, RateLimited):
        form.add_error(None, TOO_MANY_ATTEMPTS)
        return
    placed = False
    for name, errors in (exc.details or {}).items():
        name = (aliases or {}).get(name, name)
        target = name if name in form.fields else None
        if name == "non_field_errors" or target is not None:
            for message in errors if isinstance(errors, list) else [errors]:
                form.add_error(target, str(message))
            placed = True
    if not placed:
        form.add_error(field, exc.message)
