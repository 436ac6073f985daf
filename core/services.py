"""What every write service shares: model validation in the one error family, and the
one field diff of an update.

Services raise ``core.errors`` errors only. A model's own validation (``full_clean``,
field validators) still speaks Django's ``ValidationError``; ``full_clean`` here is the
one place that turns it into ``ValidationFailed`` with field details. Every update
service applies its fields through ``model_update`` and audits what it returns, so every
update event carries ``{"changed": {field: [before, after]}}``.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models

from .errors import ValidationFailed


def details_of(exc: DjangoValidationError, *, prefix: str = "") -> dict:
    """A Django ValidationError as ``ValidationFailed`` details: field → messages."""
    if hasattr(exc, "error_dict"):
        return {
            f"{prefix}{field}": list(msgs) for field, msgs in exc.message_dict.items()
        }
    return {"non_field_errors": list(exc.messages)}


def full_clean(instance: models.Model, **kwargs) -> None:
    """``instance.full_clean(**kwargs)``, refusing with ``ValidationFailed``."""
    try:
        instance.full_clean(**kwargs)
    except DjangoValidationError as exc:
        raise ValidationFailed(details=details_of(exc)) from None


def _value(instance: models.Model, name: str):
    """The stored value of field ``name``: a relation by its key, so it can be
    compared and audited (JSON)."""
    field = instance._meta.get_field(name)
    return getattr(instance, field.attname)


def _new_value(instance: models.Model, name: str, value):
    field = instance._meta.get_field(name)
    if field.is_relation and isinstance(value, models.Model):
        return value.pk
    return value


def field_diff(*, instance: models.Model, data: dict) -> dict[str, list]:
    """The fields of ``data`` whose value differs from ``instance``'s:
    field → [before, after] (relations by their key). Applies nothing."""
    changed = {}
    for name, value in data.items():
        before, after = _value(instance, name), _new_value(instance, name, value)
        if before != after:
            changed[name] = [before, after]
    return changed


def model_update(
    *,
    instance: models.Model,
    data: dict,
    clean_exclude: list[str] | None = None,
    also_save: list[str] | tuple[str, ...] = (),
) -> dict[str, list]:
    """Apply the fields of ``data`` that change, validate (``ValidationFailed``) and save
    only them (and ``also_save``, fields the caller set or the model derives). Returns
    what changed, field → [before, after], for the audit event; ``{}`` saves nothing."""
    changed = field_diff(instance=instance, data=data)
    if not changed:
        return {}
    for name in changed:
        setattr(instance, name, data[name])
    full_clean(instance, exclude=clean_exclude)
    fields = [instance._meta.get_field(name).name for name in changed]
    instance.save(update_fields=[*fields, *also_save])
    return changed
