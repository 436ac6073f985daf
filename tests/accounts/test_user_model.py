"""The custom user model's invariants (README "Organizations, users and documents")."""

import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import User
from core.roles import Role

pytestmark = pytest.mark.django_db


def test_role_groups_exist_one_per_role():
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.values)


@pytest.mark.parametrize("role", Role.values)
def test_user_is_in_exactly_its_role_group(make_user, role):
    user = make_user(role)
    assert list(user.groups.values_list("name", flat=True)) == [role]


def test_role_change_moves_the_group(make_user):
    user = make_user(Role.CLIENT)
    user.role = Role.CPA
    user.save()
    assert list(user.groups.values_list("name", flat=True)) == ["cpa"]


@pytest.mark.parametrize(
    ("role", "is_staff", "is_superuser"),
    [
        ("admin", True, True),
        ("staff", True, False),
        ("cpa", False, False),
        ("client", False, False),
    ],
)
def test_admin_flags_follow_the_role(make_user, role, is_staff, is_superuser):
    user = make_user(role)
    assert (user.is_staff, user.is_superuser) == (is_staff, is_superuser)


def test_email_is_unique_case_insensitively(make_user):
    make_user(email="Jane@Example.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="jane@example.com", role=Role.CLIENT)


def test_email_stored_lowercase_and_login_case_insensitive(make_user):
    user = make_user(email="MiXeD@Example.COM")
    assert user.email == "mixed@example.com"
    from tests.conftest import DEFAULT_PASSWORD

    assert authenticate(email="MIXED@example.com", password=DEFAULT_PASSWORD) == user


@pytest.mark.parametrize("role", [Role.STAFF, Role.CPA])
def test_staff_and_cpa_need_an_organization_in_the_database(role):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email=f"{role}@x.com", role=role, organization=None)


@pytest.mark.parametrize("role", [Role.STAFF, Role.CPA])
def test_staff_and_cpa_need_an_organization_in_validation(role):
    with pytest.raises(ValidationError) as info:
        User.objects.create_user(email=f"{role}@x.com", password="x", role=role)
    assert "organization" in info.value.message_dict


@pytest.mark.parametrize("role", [Role.ADMIN, Role.CLIENT])
def test_admin_and_client_may_have_no_organization(make_user, role):
    assert make_user(role, organization=None).organization is None


def test_unknown_role_is_refused_by_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="x@x.com", role="root")


def test_create_superuser_is_admin():
    user = User.objects.create_superuser("root@example.com", "pw-Long-enough-123")
    assert user.role == Role.ADMIN and user.is_superuser and user.is_staff


def test_passwords_hashed_with_argon2_in_production_settings():
    from xenx.settings import base

    assert base.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")


def test_inactive_user_and_inactive_org_cannot_authenticate(make_user, org):
    from tests.conftest import DEFAULT_PASSWORD

    user = make_user(Role.CPA)
    assert authenticate(email=user.email, password=DEFAULT_PASSWORD) == user
    org.is_active = False
    org.save()
    assert authenticate(email=user.email, password=DEFAULT_PASSWORD) is None
    org.is_active = True
    org.save()
    user.is_active = False
    user.save()
    assert authenticate(email=user.email, password=DEFAULT_PASSWORD) is None
