"""The platform's roles: shared vocabulary for every app (no app owns it)."""

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Administrator"
    STAFF = "staff", "Staff"
    CPA = "cpa", "CPA / Tax Professional"
    CLIENT = "client", "Client"


# Roles whose users must belong to an organization.
ORG_REQUIRED_ROLES = frozenset({Role.STAFF, Role.CPA})
# Roles that may use Django admin.
ADMIN_SITE_ROLES = frozenset({Role.ADMIN, Role.STAFF})
