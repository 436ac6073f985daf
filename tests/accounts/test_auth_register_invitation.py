"""POST /api/auth/register with a real invitation from ``organizations`` (runs once the
invitation API is on the branch; skipped before)."""

import pytest
from django.core import mail
from rest_framework.test import APIClient

from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

services = pytest.importorskip("organizations.services")
if not hasattr(services, "invitation_create"):
    pytest.skip("organizations has no invitations yet", allow_module_level=True)

PASSWORD = "Long-enough-passphrase-1"


def _register(email, token):
    return APIClient().post(
        "/api/auth/register",
        {"email": email, "password": PASSWORD, "invitation": token},
        format="json",
    )


def test_register_with_an_invitation(make_user, org, settings):
    settings.XENX_SELF_REGISTRATION = False  # invitations work regardless
    staff = make_user("staff")
    _, token = services.invitation_create(
        organization=org, email="invited@example.com", role="cpa", actor=staff
    )
    mail.outbox.clear()
    wrong = _register("someone@example.com", token)
    assert "invitation" in assert_error(wrong, 400, "validation_error")["details"]
    response = _register("INVITED@example.com", token)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["role"] == "cpa" and body["organization"]["id"] == org.pk
    assert body["email_verified"] is True
    assert mail.outbox == []  # the invitation email proved the address
    again = _register("invited2@example.com", token)
    assert "invitation" in assert_error(again, 400, "validation_error")["details"]
