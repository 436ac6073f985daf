"""Factories and fixtures shared by every test module.

Factories (factory_boy) build real rows; fixtures expose them so a test states only what
matters to it. ``api`` is an APIClient; ``auth_client(user)`` returns one carrying a
Bearer access token for ``user``.
"""

import factory
import pytest
from rest_framework.test import APIClient

from accounts import mfa
from accounts.models import User
from core.roles import Role
from organizations.models import Organization
from tests.support.login import DEFAULT_PASSWORD, api_login
from tests.support.reset import forget_memos, fresh_process
from tests.support.totp import TotpClock

__all__ = ["DEFAULT_PASSWORD"]  # imported from here by the test modules


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Firm {n}")
    slug = factory.Sequence(lambda n: f"firm-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = "Test"
    last_name = factory.Sequence(lambda n: f"User{n}")
    role = Role.CLIENT
    organization = factory.SubFactory(OrganizationFactory)
    email_verified = True
    password = factory.PostGenerationMethodCall("set_password", DEFAULT_PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


@pytest.fixture(autouse=True)
def _fresh_process(settings):
    """Every test starts with an empty cache and no per-process memo (the one reset
    hook: tests/support/reset.py)."""
    fresh_process()
    yield
    forget_memos()


@pytest.fixture
def totp_clock(monkeypatch):
    """The TOTP verifier's clock frozen mid-step (tests/support/totp.py)."""
    clock = TotpClock()
    monkeypatch.setattr(mfa, "now", clock)
    return clock


@pytest.fixture
def org_factory(db):
    return OrganizationFactory


@pytest.fixture
def user_factory(db):
    return UserFactory


@pytest.fixture
def org(db):
    return OrganizationFactory()


@pytest.fixture
def other_org(db):
    return OrganizationFactory()


@pytest.fixture
def make_user(db, org):
    """make_user(role, organization=<the `org` fixture>, **fields) → saved User."""

    def make(role=Role.CLIENT, organization=..., **fields):
        if organization is ...:
            organization = None if role == Role.ADMIN else org
        return UserFactory(role=role, organization=organization, **fields)

    return make


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def auth_client():
    """auth_client(user, mfa=False) → APIClient with a Bearer access token."""
    from accounts.tokens import issue_tokens

    def make(user, *, mfa=False):
        client = APIClient()
        tokens = issue_tokens(user, mfa=mfa)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
        client.tokens = tokens
        client.user = user
        return client

    return make


def assert_error(response, status, code):
    """The one error body (README "Conventions") with the given status and code."""
    assert response.status_code == status, (
        response.status_code,
        response.content[:500],
    )
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    assert error["request_id"] == response["X-Request-ID"]
    return error


# --- identity (issue 3): MFA helpers ---------------------------------------------------


@pytest.fixture
def enrol_totp(totp_clock):
    """enrol_totp(user) → (secret, backup_codes): a confirmed TOTP device made through
    the service functions, with the code computed by pyotp (an independent RFC 6238),
    on the frozen clock."""

    def enrol(user):
        started = mfa.totp_begin_enrolment(user=user, password=DEFAULT_PASSWORD)
        secret = started["secret"]
        # A code of the previous step keeps the current one free for the test.
        code = totp_clock.code(secret, steps=-1)
        codes = mfa.totp_confirm(user=user, code=code)
        user.refresh_from_db()
        return secret, codes

    return enrol


@pytest.fixture
def login(api):
    """login(email, password=DEFAULT_PASSWORD, **extra) → the response of /login."""

    def post(email, password=DEFAULT_PASSWORD, **extra):
        return api_login(email, password, client=api, **extra)

    return post


# --- organizations / users / documents (issue 4) ----------------------------------------


class DocumentFactory(factory.django.DjangoModelFactory):
    """A stored text document of a client."""

    class Meta:
        model = "organizations.Document"

    owner = factory.SubFactory(UserFactory, role=Role.CLIENT)
    title = factory.Sequence(lambda n: f"Document {n}")
    file = factory.django.FileField(filename="notes.txt", data=b"tax notes\n")
    original_filename = "notes.txt"
    content_type = "text/plain; charset=utf-8"
    size = 10
    sha256 = "0" * 64


@pytest.fixture
def document_factory(db):
    return DocumentFactory


class World:
    """Two organizations with one user of each role (and a second client) and a
    document per client; admins belong to none. ``own`` is ``org``, ``foreign`` is
    ``other_org``."""

    def __init__(self, org, other_org):
        self.orgs = {"own": org, "foreign": other_org}
        self.admin = UserFactory(role=Role.ADMIN, organization=None)
        self.users = {}
        self.documents = {}
        for scope, organization in self.orgs.items():
            for role in (Role.STAFF, Role.CPA, Role.CLIENT):
                self.users[scope, role] = UserFactory(
                    role=role, organization=organization
                )
            target = UserFactory(role=Role.CLIENT, organization=organization)
            self.users[scope, "target"] = target
            self.documents[scope, "target"] = DocumentFactory(owner=target)
            self.documents[scope, Role.CLIENT] = DocumentFactory(
                owner=self.users[scope, Role.CLIENT]
            )

    def actor(self, role):
        return self.admin if role == Role.ADMIN else self.users["own", role]


@pytest.fixture
def world(db, org, other_org):
    return World(org, other_org)
