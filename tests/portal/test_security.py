"""Headers, CSRF and the absence of inline scripts on portal and admin pages."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from core.roles import Role
from tests.conftest import DEFAULT_PASSWORD


@pytest.mark.parametrize(
    "path", ["/portal/login", "/portal/", "/portal/documents", "/portal/account"]
)
def test_security_headers_on_portal_pages(signed_in, path):
    browser = Client() if path == "/portal/login" else signed_in(Role.STAFF)[0]
    response = browser.get(path)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    # No inline script, no third-party asset.
    html = response.content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "http://" not in html and "https://" not in html


def test_admin_pages_have_csp_without_inline_scripts(signed_in):
    browser, _ = signed_in(Role.ADMIN)
    response = browser.get("/admin/")
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    )
    assert response["X-Frame-Options"] == "DENY"


def test_api_is_left_without_csp(db):
    response = Client().get("/health/live")
    assert "Content-Security-Policy" not in response


def _csrf_client():
    return Client(enforce_csrf_checks=True)


def test_login_without_csrf_token_is_refused(make_user):
    user = make_user(Role.CPA)
    browser = _csrf_client()
    browser.get("/portal/login")  # sets the CSRF cookie, but we do not send the token
    response = browser.post(
        "/portal/login", {"email": user.email, "password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 403
    assert "_auth_user_id" not in browser.session


def test_login_with_csrf_token_works(make_user):
    user = make_user(Role.CPA)
    browser = _csrf_client()
    page = browser.get("/portal/login")
    token = re.search(
        r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()
    ).group(1)
    response = browser.post(
        "/portal/login",
        {
            "email": user.email,
            "password": DEFAULT_PASSWORD,
            "csrfmiddlewaretoken": token,
        },
    )
    assert response.status_code == 302
    assert browser.session["_auth_user_id"] == str(user.pk)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/portal/account", {"first_name": "Mallory"}),
        ("/portal/logout", {}),
        ("/portal/clients/invite", {"email": "x@example.com"}),
        ("/portal/account/password", {"old_password": "x", "new_password": "y"}),
        ("/portal/account/mfa/totp", {}),
        ("/portal/documents/upload", {"title": "x"}),
    ],
)
def test_every_form_refuses_a_post_without_csrf_token(make_user, path, data):
    user = make_user(Role.CPA, first_name="Original")
    browser = _csrf_client()
    browser.force_login(user, backend="accounts.backends.EmailBackend")
    response = browser.post(path, data)
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.first_name == "Original"


def test_every_portal_form_carries_a_csrf_token(signed_in, make_user):
    make_user(Role.CLIENT)
    browser, _ = signed_in(Role.CPA)
    for path in ["/portal/", "/portal/clients", "/portal/documents", "/portal/account"]:
        html = browser.get(path).content.decode()
        for form in re.findall(r"<form[^>]*>.*?</form>", html, flags=re.S):
            if 'method="post"' in form:
                assert "csrfmiddlewaretoken" in form, (path, form[:200])


def test_logout_needs_post(signed_in):
    browser, _ = signed_in(Role.CPA)
    assert browser.get(reverse("portal:logout")).status_code == 405
    response = browser.post(reverse("portal:logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in browser.session


def test_production_cookies_are_secure_and_httponly():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO")}
    env.update(
        DJANGO_SETTINGS_MODULE="xenx.settings.production",
        SECRET_KEY="s" * 64,
        ALLOWED_HOSTS="example.com",
    )
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.CSRF_COOKIE_SECURE, s.X_FRAME_OPTIONS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    )
    assert out.stdout.split() == ["True", "True", "True", "DENY"], out.stderr
