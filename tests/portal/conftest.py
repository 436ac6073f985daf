"""Fixtures for the portal and admin tests."""

import hashlib

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from core.roles import Role
from organizations.models import Document
from tests.conftest import DEFAULT_PASSWORD

PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture
def web():
    """A Django test client for HTML pages."""
    return Client()


@pytest.fixture
def signed_in(make_user):
    """signed_in(role_or_user) → (Client with a session for that user, user)."""

    def make(who=Role.CPA, **fields):
        user = make_user(who, **fields) if isinstance(who, str) else who
        client = Client()
        client.force_login(user, backend="accounts.backends.EmailBackend")
        return client, user

    return make


@pytest.fixture
def make_document(db):
    def make(owner, *, title="Tax return 2025", content=PDF_BYTES, name="return.pdf"):
        doc = Document(
            owner=owner,
            title=title,
            original_filename=name,
            content_type="application/pdf",
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            uploaded_by=owner,
        )
        doc.file.save(name, ContentFile(content), save=False)
        doc.save()
        return doc

    return make


def totp_code(user, *, offset_steps=0):
    """The current (or a neighbouring) RFC 6238 code of the user's TOTP device, at the
    verifier's clock (frozen by ``totp_clock``)."""
    import base64

    import pyotp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts import mfa

    device = TOTPDevice.objects.filter(user=user).order_by("-id").first()
    totp = pyotp.TOTP(base64.b32encode(device.bin_key).decode())
    return totp.at(mfa.now() + 30 * offset_steps)


@pytest.fixture
def mfa_user(make_user, totp_clock):
    """mfa_user(role) → (user, backup codes): TOTP confirmed through accounts.mfa."""
    from accounts import mfa

    def make(role=Role.CPA, **fields):
        user = make_user(role, **fields)
        mfa.totp_begin_enrolment(user=user, password=DEFAULT_PASSWORD)
        codes = mfa.totp_confirm(user=user, code=totp_code(user))
        return user, codes

    return make
