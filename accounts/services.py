"""Writes about accounts. Each security-relevant write records its audit event in the
same transaction."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from xenx.roles import Role

from . import audit


@transaction.atomic
def user_create(
    *,
    email: str,
    role: str,
    organization=None,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    email_verified: bool = False,
    actor=None,
    request=None,
):
    """Create a user; raises django ValidationError on bad data (email, role, password)."""
    User = get_user_model()
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    user = User(
        email=email,
        role=role,
        organization=organization,
        first_name=first_name,
        last_name=last_name,
        email_verified=email_verified,
    )
    if password:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            raise ValidationError({"password": exc.messages}) from None
    user.set_password(password or None)
    user.full_clean(exclude=["password"])
    user.save()
    audit.record(
        audit.Action.USER_CREATED,
        actor=actor,
        target=user,
        request=request,
        data={"role": role},
    )
    return user
