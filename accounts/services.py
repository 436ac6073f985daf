"""Writes about accounts. Each security-relevant write records its audit event in the
same transaction."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from auditlog import audit
from core.errors import ValidationFailed
from core.roles import Role
from core.services import field_diff, full_clean, model_update
from organizations import permissions
from organizations.services import invitation_accept

from . import revocation, throttling
from .notices import Notice, security_notice


def _check_role(role) -> None:
    if role not in Role.values:
        raise ValidationFailed(details={"role": [f"Unknown role {role!r}."]})


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
    """Create a user; raises ValidationFailed on bad data (email, role, password) and
    Forbidden when ``actor`` may not create this role in this organization."""

    User = get_user_model()
    _check_role(role)
    permissions.check_user_create(
        actor, role=role, organization_id=getattr(organization, "pk", None)
    )
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
        except DjangoValidationError as exc:
            raise ValidationFailed(details={"password": list(exc.messages)}) from None
    user.set_password(password or None)
    full_clean(user, exclude=["password"])
    user.save()
    audit.record(
        audit.Action.USER_CREATED,
        actor=actor,
        target=user,
        request=request,
        data={"role": role},
    )
    return user


# --- User management (README "Organizations, users and documents") ---------------
# Role rules live in organizations.permissions; visibility (404) is the caller's job
# through organizations.scoping.visible.

USER_UPDATE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "email_verified",
    "role",
    "organization",
    "is_active",
)
# The cached token state (accounts.revocation) follows every User save through the
# post_save signal (accounts.signals): services do not invalidate it themselves.


@transaction.atomic
def user_update(*, user, actor=None, request=None, **changes):
    """Change profile fields, role, organization or active status of ``user``: the one
    write path for all of them, whichever door (API ``/users`` and ``/auth/me``, portal
    account page, Django admin, invitation acceptance).

    Only an admin grants the admin role or moves a user to another organization
    (Forbidden otherwise); nobody changes its own role, organization or status. A role
    change or a move revokes the user's tokens (their claims are stale); every change is
    audited; the role Group follows through ``User.save``.
    """

    unknown = set(changes) - set(USER_UPDATE_FIELDS)
    if unknown:
        raise ValueError(f"Not updatable user fields: {sorted(unknown)}")
    if "role" in changes:
        _check_role(changes["role"])
    diff = field_diff(instance=user, data=changes)
    permissions.check_user_update(
        actor,
        user,
        changes={_attname(user, f): after for f, (_, after) in diff.items()},
    )
    if "is_active" in diff:
        # The same checks and audit as the dedicated endpoints.
        (user_activate if changes["is_active"] else user_deactivate)(
            user=user, actor=actor, request=request
        )
    wanted = {field: changes[field] for field in diff if field != "is_active"}
    also_save = ["is_staff", "is_superuser"]  # User.save derives them from the role
    if {"role", "organization", "email"} & set(wanted):
        # Their claims are stale (an address may be given to someone else): refused
        # from now on, saved with the change.
        revocation.revoke_user_tokens(user, save=False)
        also_save.extend(revocation.REVOCATION_FIELDS)
    changed = model_update(
        instance=user, data=wanted, clean_exclude=["password"], also_save=also_save
    )
    # A role change is its own event (what an auditor looks for); the rest one more.
    role_changed = {"role": changed.pop("role")} if "role" in changed else {}
    for action, fields in (
        (audit.Action.USER_ROLE_CHANGED, role_changed),
        (audit.Action.USER_UPDATED, changed),
    ):
        if fields:
            audit.record(
                action,
                actor=actor,
                target=user,
                request=request,
                data={"changed": fields},
            )
    return user


def _attname(user, field: str) -> str:
    """``organization`` → ``organization_id``: the name the permission rules use."""
    return user._meta.get_field(field).attname


@transaction.atomic
def user_deactivate(*, user, actor=None, request=None):
    """Soft delete: the user can no longer log in and every token is refused at once."""

    permissions.check_user_admin_action(actor, user)
    if not user.is_active:
        return user
    user.is_active = False
    revocation.revoke_user_tokens(user, save=False)
    user.save(update_fields=["is_active", *revocation.REVOCATION_FIELDS])
    audit.record(
        audit.Action.USER_DEACTIVATED, actor=actor, target=user, request=request
    )
    return user


@transaction.atomic
def user_activate(*, user, actor=None, request=None):
    """Undo a deactivation. Tokens issued before it stay revoked."""

    permissions.check_user_admin_action(actor, user)
    if user.is_active:
        return user
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit.record(audit.Action.USER_ACTIVATED, actor=actor, target=user, request=request)
    return user


@transaction.atomic
def user_reset_mfa(*, user, actor=None, request=None):
    """Remove the user's TOTP devices and backup codes (lost phone) and revoke its
    tokens; the next login asks for the password only."""

    permissions.check_user_admin_action(actor, user)
    totp, _ = TOTPDevice.objects.filter(user=user).delete()
    static, _ = StaticDevice.objects.filter(user=user).delete()
    revocation.revoke_user_tokens(user)
    user._xenx_mfa_enabled = False
    audit.record(
        audit.Action.MFA_RESET,
        actor=actor,
        target=user,
        request=request,
        data={"totp_devices": totp, "static_devices": static},
    )
    if totp:
        security_notice(user=user, notice=Notice.MFA_DISABLED, request=request)
    return user


@transaction.atomic
def user_unlock(*, user, actor=None, request=None):
    """Lift a login lockout (failed passwords and second-factor codes): admins, and
    staff of the user's organization; audited ``user.unlocked``."""

    permissions.check_user_admin_action(actor, user)
    throttling.reset_account_lock(user)
    audit.record(audit.Action.USER_UNLOCKED, actor=actor, target=user, request=request)
    return user


def user_accept_invitation(*, user, invitation, request=None):
    """Use the invitation (once, under a row lock: ``organizations.services``), then put
    the user in its organization with its role through ``user_update`` (its policy,
    revocation and audit), like any other role or organization change."""

    with transaction.atomic():
        used = invitation_accept(invitation=invitation, user=user, request=request)
        return user_update(
            user=user, role=used.role, organization=used.organization, request=request
        )
