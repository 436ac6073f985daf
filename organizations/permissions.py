"""What a role may *change* (403), once ``scoping.visible`` has said what it may *see*
(404). Services call these with the acting user; ``actor=None`` means the platform
itself (management commands, registration) and is not checked.

README "Organizations, users and documents": nobody but an admin creates an admin,
changes a role to admin or moves a user to another organization; a CPA manages only the clients of its organization; a client
only itself; staff the non-admin users of its organization. On top of the role rules the
role's Django permissions (its Group) must grant the action, so an admin can narrow what
a role may do in Django admin.
"""

from __future__ import annotations

from core.errors import Forbidden
from core.roles import Role

ASSIGNABLE_ROLES = {
    Role.ADMIN: frozenset(Role.values),
    Role.STAFF: frozenset({Role.STAFF, Role.CPA, Role.CLIENT}),
    Role.CPA: frozenset({Role.CLIENT}),
    Role.CLIENT: frozenset(),
}


def _is_admin(actor) -> bool:
    return actor.role == Role.ADMIN


def require_perm(actor, perm: str) -> None:
    if not actor.has_perm(perm):
        raise Forbidden()


def check_role_assignable(actor, role: str) -> None:
    if role == Role.ADMIN and not _is_admin(actor):
        raise Forbidden("Only an administrator can grant the admin role.")
    if role not in ASSIGNABLE_ROLES.get(actor.role, ()):
        raise Forbidden(f"Your role cannot assign the role {role!r}.")


def check_same_organization(actor, organization_id) -> None:
    if not _is_admin(actor) and organization_id != actor.organization_id:
        raise Forbidden(
            "Only an administrator can place a user in another organization."
        )


def check_user_create(actor, *, role: str, organization_id) -> None:
    if actor is None or _is_admin(actor):
        return
    require_perm(actor, "accounts.add_user")
    check_role_assignable(actor, role)
    check_same_organization(actor, organization_id)


def can_manage_user(actor, target) -> bool:
    """Whether ``actor`` may change ``target`` (another user it can see)."""
    if _is_admin(actor):
        return True
    if target.pk == actor.pk or target.organization_id != actor.organization_id:
        return False
    if actor.role == Role.STAFF:
        return target.role != Role.ADMIN
    if actor.role == Role.CPA:
        return target.role == Role.CLIENT
    return False


def check_user_update(actor, target, *, changes: dict) -> None:
    """``changes``: field → new value, only for fields whose value changes."""
    if actor is None:
        return
    if target.pk == actor.pk:
        if set(changes) - {"first_name", "last_name"}:
            raise Forbidden(
                "You cannot change your own role, organization or active status."
            )
        return
    if not _is_admin(actor):
        require_perm(actor, "accounts.change_user")
    if not can_manage_user(actor, target):
        raise Forbidden("You cannot change this user.")
    if "role" in changes:
        check_role_assignable(actor, changes["role"])
    if "organization_id" in changes:
        check_same_organization(actor, changes["organization_id"])


def check_user_admin_action(actor, target) -> None:
    """deactivate / activate / reset MFA: admins, and staff of the user's organization
    for non-admin users; never on oneself."""
    if actor is None:
        return
    if target.pk == actor.pk:
        raise Forbidden("You cannot do this to your own account.")
    if _is_admin(actor):
        return
    if actor.role != Role.STAFF or not can_manage_user(actor, target):
        raise Forbidden("Only an administrator or staff of the organization can.")
    require_perm(actor, "accounts.change_user")


def check_organization_write(actor) -> None:
    if actor is not None and not _is_admin(actor):
        raise Forbidden("Only an administrator can change organizations.")


def check_service_write(actor) -> None:
    """The gateway's service registry: admins write (README "Gateway")."""
    if actor is not None and not _is_admin(actor):
        raise Forbidden("Only an administrator can change services.")


def check_invitation_create(actor, *, organization, role: str | None) -> None:
    """``role=None``: whether ``actor`` may invite anyone at all (checked before the
    request body, so a forbidden caller learns nothing from validation errors)."""
    if actor is None or _is_admin(actor):
        return
    if actor.organization_id != organization.pk or actor.role not in (
        Role.STAFF,
        Role.CPA,
    ):
        raise Forbidden("You cannot invite people to this organization.")
    require_perm(actor, "organizations.add_invitation")
    if role is not None:
        check_role_assignable(actor, role)


def check_may_create_users(actor) -> None:
    if actor is not None and not _is_admin(actor):
        require_perm(actor, "accounts.add_user")


def check_document_create(actor) -> None:
    if actor is not None and not _is_admin(actor):
        require_perm(actor, "organizations.add_document")


def check_document_delete(actor) -> None:
    if actor is not None and not _is_admin(actor):
        require_perm(actor, "organizations.delete_document")
