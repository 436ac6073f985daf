"""The portal's session login: password step, throttling, next, logout."""

import pytest
from django.urls import reverse

from auditlog.models import AuditEvent
from core.roles import Role
from tests.conftest import DEFAULT_PASSWORD


def _login(web, email, password=DEFAULT_PASSWORD, **extra):
    return web.post(
        reverse("portal:login"), {"email": email, "password": password, **extra}
    )


def test_login_page_renders(web, db):
    response = web.get(reverse("portal:login"))
    assert response.status_code == 200
    assert b'name="email"' in response.content
    assert b'name="password"' in response.content


def test_password_login_without_mfa(web, make_user):
    user = make_user(Role.CPA, email="Ann@Example.com")
    response = _login(web, "ANN@example.COM")  # case-insensitive
    assert response.status_code == 302
    assert response["Location"] == "/portal/"
    assert web.session["_auth_user_id"] == str(user.pk)
    event = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_SUCCEEDED)
    assert event.actor == user and event.data["channel"] == "portal"


@pytest.mark.parametrize("case", ["wrong_password", "unknown_email", "inactive"])
def test_failed_login_has_one_message(web, make_user, case):
    user = make_user(Role.CPA, is_active=case != "inactive")
    email = "nobody@example.com" if case == "unknown_email" else user.email
    password = "wrong" if case == "wrong_password" else DEFAULT_PASSWORD
    response = _login(web, email, password)
    assert response.status_code == 200
    assert b"Incorrect email or password." in response.content
    assert "_auth_user_id" not in web.session
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED).exists()


def test_login_form_field_errors(web, db):
    response = _login(web, "not-an-email", "")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="id_email_errors"' in html and 'id="id_password_errors"' in html


def test_next_is_followed_only_when_local(web, make_user):
    user = make_user(Role.CPA)
    response = _login(web, user.email, next="/portal/documents")
    assert response["Location"] == "/portal/documents"
    web.post(reverse("portal:logout"))
    response = _login(web, user.email, next="https://evil.example/")
    assert response["Location"] == "/portal/"


def test_login_throttled_per_account(web, make_user, settings):
    settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMITS, "login_account": "3/15m"}
    user = make_user(Role.CPA)
    for _ in range(3):
        assert _login(web, user.email, "wrong").status_code == 200
    # Limited now, even with the right password.
    response = _login(web, user.email)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert b"Too many" in response.content
    assert "_auth_user_id" not in web.session


def test_login_throttled_per_address(web, make_user, settings):
    settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMITS, "login_ip": "2/m"}
    user = make_user(Role.CPA)
    assert _login(web, user.email).status_code == 302
    web.post(reverse("portal:logout"))
    assert _login(web, user.email).status_code == 302
    web.post(reverse("portal:logout"))
    assert _login(web, user.email).status_code == 429


def test_signed_in_user_visiting_login_is_redirected(signed_in):
    browser, _ = signed_in(Role.CLIENT)
    response = browser.get(reverse("portal:login"))
    assert response.status_code == 302


def test_logout_records_audit_event(signed_in):
    browser, user = signed_in(Role.CLIENT)
    browser.post(reverse("portal:logout"))
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.LOGOUT, actor=user
    ).exists()
    assert browser.get(reverse("portal:dashboard")).status_code == 302
