"""A person's lifecycle in a real browser (Debian's Chromium through Playwright, as
tests/portal/test_browser.py), at desktop and 375 px widths, mails read from the test
outbox, TOTP codes computed with pyotp (no waiting for the wall clock):

invitation mail → sign-up → TOTP enrolment (asking for the password) → sign-out →
"Forgot password?" → mailed link → new password → sign-in with TOTP; on the way every
form's bad input (mismatched passwords, weak password, wrong password, wrong code, a
used link, a 12 MB upload) shows its error beside the field, or a clear page.
Screenshots: artifacts/screenshots/lifecycle-*.png (kept out of git).
"""

import re
import time

import pyotp
from django.core import mail

from core.roles import Role
from organizations.services import invitation_create
from tests.portal.test_browser import (  # noqa: F401  the fixtures and marks
    SHOTS,
    _shoot,
    browser,
    pytestmark,
    server,
)

PASSWORD = "nora-passphrase-for-2026"
NEW_PASSWORD = "nora-new-passphrase-2027"


def _shot(page, name):
    _shoot(page, f"lifecycle-{name}")


def _error_beside(page, field_id: str) -> str:
    """The error list rendered beside the field ``id_<field_id>``."""
    locator = page.locator(f"#id_{field_id}_errors")
    locator.wait_for()
    return locator.inner_text()


def _code(secret: str, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def test_invitation_to_sign_in_with_totp_after_a_reset(
    server,  # noqa: F811  the imported fixture
    browser,  # noqa: F811  the imported fixture
    make_user,
    org,
    settings,
    tmp_path,
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # a right code right after a wrong one
    cpa = make_user(Role.CPA, first_name="Casey", last_name="Accountant")
    mail.outbox.clear()
    invitation_create(
        organization=org, email="nora@example.com", role=Role.CLIENT, actor=cpa
    )
    link = re.search(r"(http\S+/portal/signup/\S+)", mail.outbox[-1].body).group(1)
    link = server.url + link[link.index("/portal/") :]  # XENX_PUBLIC_URL → this server

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    # Sign-up from the invitation mail; bad input first.
    page.goto(link)
    assert page.inner_text("h1") == "Create your account"
    _shot(page, "signup")
    page.fill("input[name=first_name]", "Nora")
    page.fill("input[name=last_name]", "Client")
    page.fill("input[name=new_password]", PASSWORD)
    page.fill("input[name=new_password_confirm]", PASSWORD + "x")
    page.click("main button[type=submit]")
    assert "differ" in _error_beside(page, "new_password_confirm")
    _shot(page, "signup-mismatch")
    page.fill("input[name=new_password]", "short")
    page.fill("input[name=new_password_confirm]", "short")
    page.click("main button[type=submit]")
    assert "too short" in _error_beside(page, "new_password")
    page.fill("input[name=new_password]", PASSWORD)
    page.fill("input[name=new_password_confirm]", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{server.url}/portal/")
    assert "Welcome, Nora" in page.inner_text(".messages")

    # TOTP enrolment asks for the current password; then a wrong and a right code.
    page.goto(f"{server.url}/portal/account")
    page.fill("#mfa input[name=password]", "not-my-password-1")
    page.click("button:has-text('Set up two-factor')")
    assert "not correct" in _error_beside(page, "password")
    _shot(page, "enrol-wrong-password")
    page.fill("#mfa input[name=password]", PASSWORD)
    page.click("button:has-text('Set up two-factor')")
    page.wait_for_url("**/portal/account/mfa/totp/confirm")
    secret = page.inner_text("code.secret").strip()
    _shot(page, "enrol-qr")
    page.fill("input[name=code]", "000000")
    page.click("main button[type=submit]")
    assert _error_beside(page, "code")
    page.fill("input[name=code]", _code(secret))
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Your backup codes")
    _shot(page, "backup-codes")
    subjects = [m.subject for m in mail.outbox if m.to == ["nora@example.com"]]
    assert "Two-factor authentication is on" in subjects

    # Sign out, then "Forgot password?" from the sign-in page.
    page.click("nav button:has-text('Sign out')")
    page.wait_for_url("**/portal/login")
    page.click("text=Forgot password?")
    page.wait_for_url("**/portal/password-reset")
    _shot(page, "forgot")
    mail.outbox.clear()
    page.fill("input[name=email]", "nora@example.com")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Check your email")
    _shot(page, "forgot-sent")
    reset = re.search(r"(/portal/password-reset/\S+)", mail.outbox[-1].body).group(1)

    # The mailed link: bad input, then the new password.
    page.goto(server.url + reset)
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=new_password_confirm]", "something-else-9")
    page.click("main button[type=submit]")
    assert "differ" in _error_beside(page, "new_password_confirm")
    _shot(page, "reset-mismatch")
    page.fill("input[name=new_password]", NEW_PASSWORD)
    page.fill("input[name=new_password_confirm]", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/portal/login")
    assert "Sign in with it" in page.inner_text(".messages")

    # The used link is a clear page, not a 404.
    page.goto(server.url + reset)
    assert "cannot be used" in page.inner_text("h1")
    _shot(page, "reset-used")

    # Sign in with the new password and a TOTP code (the next step: the code of
    # the enrolment's step is spent).
    page.goto(f"{server.url}/portal/login")
    page.fill("input[name=email]", "nora@example.com")
    page.fill("input[name=password]", NEW_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url("**/portal/login/verify")
    page.fill(
        "input[name=code]", "123456" if _code(secret, 1) != "123456" else "654321"
    )
    page.click("main button[type=submit]")
    assert "not valid" in _error_beside(page, "code")
    page.fill("input[name=code]", _code(secret, 1))
    page.click("main button[type=submit]")
    page.wait_for_url(f"{server.url}/portal/")
    _shot(page, "signed-in")

    # A 12 MB upload comes back as the form with the error beside the file field
    # (the body is read before the answer: no ERR_CONNECTION_RESET).
    big = tmp_path / "scan.pdf"
    big.write_bytes(b"%PDF-1.4\n" + b"x" * 12_000_000)
    page.goto(f"{server.url}/portal/documents")
    page.set_input_files("input[name=file]", str(big))
    page.click("form[enctype] button[type=submit]")
    assert "larger than" in _error_beside(page, "file")
    _shot(page, "upload-too-large")

    assert problems == []
    context.close()
    assert list(SHOTS.glob("lifecycle-*-phone.png"))
