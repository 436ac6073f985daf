"""The two-step portal login and the account page's MFA and password forms."""

import re

import pytest
from django.test import Client
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from auditlog.models import AuditEvent
from core.roles import Role
from tests.conftest import DEFAULT_PASSWORD, assert_error
from tests.portal.conftest import totp_code

VERIFY = "/portal/login/verify"


@pytest.fixture(autouse=True)
def _no_device_throttle(settings):
    # django-otp delays a device after a wrong code; these tests send a right code
    # right after a wrong one on purpose.
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def _password_step(web, user, **extra):
    return web.post(
        reverse("portal:login"),
        {"email": user.email, "password": DEFAULT_PASSWORD, **extra},
    )


def test_password_then_totp(mfa_user):
    user, _ = mfa_user(Role.CPA)
    web = Client()
    response = _password_step(web, user, next="/portal/clients")
    assert response.status_code == 302 and response["Location"] == VERIFY
    assert "_auth_user_id" not in web.session  # not logged in after the password
    assert web.get("/portal/").status_code == 302

    page = web.get(VERIFY)
    assert page.status_code == 200 and user.email.encode() in page.content
    response = web.post(VERIFY, {"code": totp_code(user, offset_steps=1)})
    assert response.status_code == 302
    assert response["Location"] == "/portal/clients"
    assert web.session["_auth_user_id"] == str(user.pk)
    assert web.session[DEVICE_ID_SESSION_KEY]  # the session passed the device
    assert web.get("/portal/").status_code == 200
    actions = set(
        AuditEvent.objects.filter(actor=user).values_list("action", flat=True)
    )
    assert {"mfa.used", "login.succeeded"} <= actions


def test_password_then_backup_code_once(mfa_user):
    user, codes = mfa_user(Role.CLIENT)
    web = Client()
    _password_step(web, user)
    response = web.post(VERIFY, {"code": codes[0].upper()})  # case and dash tolerant
    assert response.status_code == 302 and response["Location"] == "/portal/"
    assert StaticToken.objects.filter(device__user=user).count() == len(codes) - 1
    # The same backup code does not work twice.
    again = Client()
    _password_step(again, user)
    response = again.post(VERIFY, {"code": codes[0]})
    assert response.status_code == 200
    assert "_auth_user_id" not in again.session


@pytest.mark.parametrize("code", ["000000", "12345", "not-a-code", ""])
def test_wrong_code_is_refused_beside_the_field(mfa_user, code):
    user, _ = mfa_user(Role.CPA)
    web = Client()
    _password_step(web, user)
    response = web.post(VERIFY, {"code": code})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="id_code_errors"' in html
    assert "_auth_user_id" not in web.session
    if code:
        assert AuditEvent.objects.filter(
            action=AuditEvent.Action.MFA_FAILED, actor=user
        ).exists()


def test_reused_totp_code_is_refused(mfa_user):
    user, _ = mfa_user(Role.CPA)
    code = totp_code(user, offset_steps=1)
    first = Client()
    _password_step(first, user)
    assert first.post(VERIFY, {"code": code}).status_code == 302
    second = Client()
    _password_step(second, user)
    assert second.post(VERIFY, {"code": code}).status_code == 200
    assert "_auth_user_id" not in second.session


def test_too_many_wrong_codes_restart_the_login(mfa_user):
    user, _ = mfa_user(Role.CPA)
    web = Client()
    _password_step(web, user)
    for _ in range(4):
        assert web.post(VERIFY, {"code": "000000"}).status_code == 200
    response = web.post(VERIFY, {"code": "000000"})
    assert response.status_code == 302 and response["Location"] == "/portal/login"
    # The pending login is gone: even a right code needs the password again.
    assert web.post(VERIFY, {"code": totp_code(user, offset_steps=1)})["Location"] == (
        "/portal/login"
    )


def test_verify_is_throttled_per_account(mfa_user, settings):
    settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMITS, "mfa_account": "2/15m"}
    user, _ = mfa_user(Role.CPA)
    web = Client()
    _password_step(web, user)
    web.post(VERIFY, {"code": "000000"})
    web.post(VERIFY, {"code": "000000"})
    response = web.post(VERIFY, {"code": totp_code(user, offset_steps=1)})
    assert response.status_code == 429
    assert "Retry-After" in response


def test_verify_without_password_step_goes_back(db):
    response = Client().get(VERIFY)
    assert response.status_code == 302 and response["Location"] == "/portal/login"


def test_pending_login_expires(mfa_user, settings):
    settings.XENX_PORTAL_MFA_SECONDS = 0
    user, _ = mfa_user(Role.CPA)
    web = Client()
    _password_step(web, user)
    response = web.post(VERIFY, {"code": totp_code(user, offset_steps=1)})
    assert response.status_code == 302 and response["Location"] == "/portal/login"
    assert "_auth_user_id" not in web.session


def test_session_of_a_user_who_enrolled_elsewhere_must_sign_in_again(
    signed_in, mfa_user
):
    user, _ = mfa_user(Role.CPA)
    browser, _ = signed_in(user)  # a session that never passed the device
    response = browser.get("/portal/")
    assert response.status_code == 302
    assert response["Location"].startswith("/portal/login")
    assert "_auth_user_id" not in browser.session


# --- Account: enrol, backup codes, disable ---------------------------------------------


def test_enrol_totp_from_the_account_page(signed_in):
    browser, user = signed_in(Role.CPA)
    response = browser.post(
        reverse("portal:totp-begin"), {"password": DEFAULT_PASSWORD}
    )
    assert response.status_code == 302
    page = browser.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "<svg" in html and "<?xml" not in html  # inline SVG, no image request
    assert "<img" not in html
    secret = page.context["enrolment"]["secret"]
    assert secret in html

    wrong = browser.post(reverse("portal:totp-confirm"), {"code": "000000"})
    assert wrong.status_code == 400
    assert 'id="id_code_errors"' in wrong.content.decode()
    assert not TOTPDevice.objects.filter(user=user, confirmed=True).exists()

    done = browser.post(reverse("portal:totp-confirm"), {"code": totp_code(user)})
    assert done.status_code == 200
    assert "no-store" in done["Cache-Control"]
    codes = done.context["codes"]
    assert len(codes) == 10
    for code in codes:
        assert code in done.content.decode()
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()
    # Shown once: the account page does not show them again.
    account = browser.get(reverse("portal:account"))
    assert account.status_code == 200  # this session counts as verified
    assert codes[0] not in account.content.decode()
    assert browser.get(reverse("portal:totp-confirm")).status_code == 302


def test_regenerate_backup_codes(mfa_user):
    user, old_codes = mfa_user(Role.CLIENT)
    web = Client()
    _password_step(web, user)
    web.post(VERIFY, {"code": old_codes[0]})
    bad = web.post(reverse("portal:backup-codes"), {"regen-code": "000000"})
    assert bad.status_code == 400
    assert 'id="id_regen-code_errors"' in bad.content.decode()
    response = web.post(reverse("portal:backup-codes"), {"regen-code": old_codes[1]})
    assert response.status_code == 200
    new_codes = response.context["codes"]
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)


def test_disable_mfa_needs_a_code(mfa_user):
    user, codes = mfa_user(Role.CLIENT)
    web = Client()
    _password_step(web, user)
    web.post(VERIFY, {"code": codes[0]})
    bad = web.post(reverse("portal:mfa-disable"), {"disable-code": "000000"})
    assert bad.status_code == 400
    assert 'id="id_disable-code_errors"' in bad.content.decode()
    assert TOTPDevice.objects.filter(user=user).exists()
    response = web.post(reverse("portal:mfa-disable"), {"disable-code": codes[1]})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert web.get(reverse("portal:account")).status_code == 200
    # The next login needs the password only.
    fresh = Client()
    assert _password_step(fresh, user)["Location"] == "/portal/"


def test_mfa_required_org_cannot_disable(mfa_user, org):
    user, codes = mfa_user(Role.CPA)
    org.mfa_required = True
    org.save()
    web = Client()
    _password_step(web, user)
    web.post(VERIFY, {"code": codes[0]})
    response = web.post(reverse("portal:mfa-disable"), {"disable-code": codes[1]})
    assert response.status_code == 400
    assert b"requires two-factor" in response.content
    assert TOTPDevice.objects.filter(user=user).exists()


# --- Password ----------------------------------------------------------------------------


def test_change_password_revokes_api_tokens_and_keeps_session(signed_in, auth_client):
    browser, user = signed_in(Role.CPA)
    api = auth_client(user)
    assert api.get("/api/auth/me").status_code == 200
    new = "a-brand-new-passphrase-77"
    response = browser.post(
        reverse("portal:password-change"),
        {
            "old_password": DEFAULT_PASSWORD,
            "new_password": new,
            "new_password_confirm": new,
        },
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    assert_error(api.get("/api/auth/me"), 401, "token_revoked")
    assert browser.get(reverse("portal:account")).status_code == 200  # still signed in
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.PASSWORD_CHANGED, actor=user
    ).exists()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (
            {
                "old_password": "wrong",
                "new_password": "x-long-new-pass-1",
                "new_password_confirm": "x-long-new-pass-1",
            },
            "old_password",
        ),
        (
            {
                "old_password": DEFAULT_PASSWORD,
                "new_password": "x-long-new-pass-1",
                "new_password_confirm": "different-pass-2",
            },
            "new_password_confirm",
        ),
        (
            {
                "old_password": DEFAULT_PASSWORD,
                "new_password": "123",
                "new_password_confirm": "123",
            },
            "new_password",
        ),
    ],
)
def test_change_password_errors_beside_fields(signed_in, data, field):
    browser, user = signed_in(Role.CLIENT)
    response = browser.post(reverse("portal:password-change"), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(rf'id="id_{field}_errors"', html), html[:3000]
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
