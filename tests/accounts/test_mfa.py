"""TOTP enrolment, confirmation, disabling and backup codes (README "Identity"). Codes are computed
with pyotp, an implementation independent of django-otp."""

from urllib.parse import parse_qs, unquote, urlparse

import pyotp
import pytest
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from accounts import mfa
from accounts.tokens import decode_access_token, issue_tokens
from auditlog.models import AuditEvent
from tests.conftest import DEFAULT_PASSWORD, assert_error

pytestmark = pytest.mark.django_db

STEP = 30


@pytest.fixture
def frozen(totp_clock):
    """The verifier's clock frozen in the middle of a 30 s step; returns that instant."""
    return totp_clock.now


@pytest.fixture
def no_device_backoff(settings):
    """django-otp's per-device back-off (1 s, 2 s, ...) off, for wrong-then-right tests."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


def _begin(client):
    response = client.post(
        "/api/auth/mfa/totp", {"password": DEFAULT_PASSWORD}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def _confirm(client, code):
    return client.post("/api/auth/mfa/totp/confirm", {"code": code}, format="json")


def _enrolled(auth_client, user, frozen):
    client = auth_client(user)
    secret = _begin(client)["secret"]
    response = _confirm(client, pyotp.TOTP(secret).at(frozen - STEP))
    assert response.status_code == 200
    body = response.json()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    return client, secret, body["backup_codes"]


def test_enrolment_returns_secret_uri_and_local_svg(make_user, auth_client):
    user = make_user()
    body = _begin(auth_client(user))
    assert set(body) == {"secret", "otpauth_uri", "qr_svg"}
    uri = urlparse(body["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    params = parse_qs(uri.query)
    assert params["secret"] == [body["secret"]]
    assert params["algorithm"] == ["SHA1"]
    assert params["digits"] == ["6"] and params["period"] == ["30"]
    assert params["issuer"] == ["XenX"]
    assert unquote(uri.path) == f"/XenX:{user.email}"
    assert body["qr_svg"].startswith("<svg")
    assert "<image" not in body["qr_svg"] and "href" not in body["qr_svg"]
    parsed = pyotp.parse_uri(body["otpauth_uri"])
    assert parsed.secret == body["secret"]
    device = TOTPDevice.objects.get(user=user)
    assert device.confirmed is False and device.tolerance == 1


def test_enrolment_again_replaces_the_unconfirmed_device(
    make_user, auth_client, frozen
):
    client = auth_client(make_user())
    first = _begin(client)["secret"]
    second = _begin(client)["secret"]
    assert first != second
    assert TOTPDevice.objects.count() == 1
    assert_error(
        _confirm(client, pyotp.TOTP(first).at(frozen)), 400, "invalid_mfa_code"
    )


def test_confirm_returns_ten_hashed_backup_codes_and_fresh_tokens(
    make_user, auth_client, frozen
):
    user = make_user()
    old = auth_client(user)
    client, secret, codes = _enrolled(auth_client, user, frozen)
    assert len(codes) == 10 and len(set(codes)) == 10
    stored = set(StaticToken.objects.values_list("token", flat=True))
    assert len(stored) == 10
    for code in codes:
        assert code not in stored and code.replace("-", "") not in stored
    me = client.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["mfa_enabled"] is True
    assert decode_access_token(client._credentials["HTTP_AUTHORIZATION"][7:])["mfa"]
    # Every earlier token is revoked.
    assert_error(old.get("/api/auth/me"), 401, "token_revoked")
    assert AuditEvent.objects.filter(action="mfa.enabled", actor=user).exists()
    # From now on the login needs the second step.
    login = APIClient().post(
        "/api/auth/login",
        {"email": user.email, "password": "correct-horse-battery-staple-42"},
        format="json",
    )
    assert login.json()["mfa_required"] is True and "access" not in login.json()


def test_the_fresh_pair_is_issued_in_the_confirming_transaction(
    make_user, auth_client, frozen, monkeypatch
):
    """No confirmed device (and no revocation, no audit event) without its pair."""
    from django.db import OperationalError

    from accounts import tokens

    user = make_user()
    client = auth_client(user)
    secret = _begin(client)["secret"]

    def outage(*args, **kwargs):
        raise OperationalError("the database went away")

    monkeypatch.setattr(tokens, "issue_tokens", outage)
    response = _confirm(client, pyotp.TOTP(secret).at(frozen))
    assert_error(response, 503, "service_unavailable")
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    assert not StaticToken.objects.exists()
    assert not AuditEvent.objects.filter(action="mfa.enabled").exists()
    assert client.get("/api/auth/me").status_code == 200  # not revoked


def test_confirm_with_a_wrong_code(make_user, auth_client, frozen):
    user = make_user()
    client = auth_client(user)
    secret = _begin(client)["secret"]
    wrong = pyotp.TOTP(pyotp.random_base32()).at(frozen)
    assert_error(_confirm(client, wrong), 400, "invalid_mfa_code")
    assert not TOTPDevice.objects.filter(confirmed=True).exists()
    assert AuditEvent.objects.filter(action="mfa.failed", actor=user).exists()
    assert secret


def test_confirm_without_enrolment(make_user, auth_client):
    assert_error(_confirm(auth_client(make_user()), "123456"), 400, "validation_error")


def test_enrolment_refused_while_mfa_is_enabled(make_user, auth_client, frozen):
    client, _, _ = _enrolled(auth_client, make_user(), frozen)
    assert_error(
        client.post(
            "/api/auth/mfa/totp", {"password": DEFAULT_PASSWORD}, format="json"
        ),
        400,
        "validation_error",
    )


# --- RFC 6238 window, replay ----------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "accepted"), [(0, True), (-1, True), (1, True), (-2, False), (2, False)]
)
def test_totp_window_is_plus_minus_one_step(
    offset, accepted, make_user, enrol_totp, frozen
):
    user = make_user()
    secret, _ = enrol_totp(user)
    TOTPDevice.objects.filter(user=user).update(last_t=-1)  # forget enrolment's code
    code = pyotp.TOTP(secret).at(frozen + offset * STEP)
    assert mfa.verify_second_factor(user=user, code=code) is accepted


def test_totp_code_is_accepted_once(make_user, enrol_totp, frozen, no_device_backoff):
    user = make_user()
    secret, _ = enrol_totp(user)
    code = pyotp.TOTP(secret).at(frozen)
    assert mfa.verify_second_factor(user=user, code=code) is True
    assert mfa.verify_second_factor(user=user, code=code) is False


def test_an_older_code_after_a_newer_one_is_refused(
    make_user, enrol_totp, frozen, no_device_backoff
):
    user = make_user()
    secret, _ = enrol_totp(user)
    TOTPDevice.objects.filter(user=user).update(last_t=-1)
    totp = pyotp.TOTP(secret)
    assert mfa.verify_second_factor(user=user, code=totp.at(frozen + STEP)) is True
    assert mfa.verify_second_factor(user=user, code=totp.at(frozen)) is False


def test_drift_is_not_learned(make_user, enrol_totp, frozen, no_device_backoff):
    """Accepting a +1 code must not move the window: +2 stays refused."""
    user = make_user()
    secret, _ = enrol_totp(user)
    TOTPDevice.objects.filter(user=user).update(last_t=-1)
    totp = pyotp.TOTP(secret)
    assert mfa.verify_second_factor(user=user, code=totp.at(frozen + STEP)) is True
    assert mfa.verify_second_factor(user=user, code=totp.at(frozen + 2 * STEP)) is False


def test_replayed_code_at_the_login_verify_endpoint(
    make_user, enrol_totp, frozen, no_device_backoff, login, api
):
    user = make_user()
    secret, _ = enrol_totp(user)
    code = pyotp.TOTP(secret).at(frozen)
    first = login(user.email).json()["mfa_token"]
    ok = api.post(
        "/api/auth/mfa/verify", {"mfa_token": first, "code": code}, format="json"
    )
    assert ok.status_code == 200
    second = login(user.email).json()["mfa_token"]
    replay = api.post(
        "/api/auth/mfa/verify", {"mfa_token": second, "code": code}, format="json"
    )
    assert_error(replay, 401, "invalid_mfa_code")


def test_device_backoff_refuses_a_right_code_right_after_a_wrong_one(
    make_user, enrol_totp, frozen
):
    user = make_user()
    secret, _ = enrol_totp(user)
    assert mfa.verify_second_factor(user=user, code="000000") is False
    assert mfa.verify_second_factor(user=user, code=pyotp.TOTP(secret).at(frozen)) is (
        False
    )


@pytest.mark.parametrize("code", [None, 123456, "", "12_345", " 1234567", "0x1234"])
def test_odd_codes_are_refused(code, make_user, enrol_totp):
    user = make_user()
    enrol_totp(user)
    assert mfa.verify_second_factor(user=user, code=code) is False


# --- backup codes ------------------------------------------------------------------------


def test_backup_codes_accept_formatting_and_are_single_use(
    make_user, enrol_totp, no_device_backoff
):
    user = make_user()
    _, codes = enrol_totp(user)
    assert mfa.verify_second_factor(user=user, code=f" {codes[0].upper()} ") is True
    assert mfa.verify_second_factor(user=user, code=codes[0]) is False
    assert mfa.verify_second_factor(user=user, code=codes[1].replace("-", "")) is True
    assert mfa.backup_codes_remaining(user) == 8


def test_backup_codes_are_bound_to_their_user(make_user, enrol_totp):
    alice, bob = make_user(), make_user()
    _, alice_codes = enrol_totp(alice)
    enrol_totp(bob)
    assert mfa.verify_second_factor(user=bob, code=alice_codes[0]) is False


def test_regenerate_backup_codes(make_user, auth_client, frozen, no_device_backoff):
    user = make_user()
    client, secret, codes = _enrolled(auth_client, user, frozen)
    response = client.post(
        "/api/auth/mfa/backup-codes", {"code": codes[0]}, format="json"
    )
    assert response.status_code == 200
    new = response.json()["backup_codes"]
    assert len(new) == 10 and not set(new) & set(codes)
    assert mfa.verify_second_factor(user=user, code=codes[1]) is False
    assert mfa.verify_second_factor(user=user, code=new[0]) is True
    assert AuditEvent.objects.filter(
        action="mfa.backup_codes_regenerated", actor=user
    ).exists()


def test_regenerate_with_a_wrong_code(make_user, auth_client, frozen):
    client, _, codes = _enrolled(auth_client, make_user(), frozen)
    response = client.post(
        "/api/auth/mfa/backup-codes", {"code": "000000"}, format="json"
    )
    assert_error(response, 400, "invalid_mfa_code")
    assert mfa.backup_codes_remaining(client.user) == 10


def test_regenerate_without_mfa(make_user, auth_client):
    response = auth_client(make_user()).post(
        "/api/auth/mfa/backup-codes", {"code": "000000"}, format="json"
    )
    assert_error(response, 400, "validation_error")


# --- disable ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_backup_code", [False, True])
def test_disable_mfa(with_backup_code, make_user, auth_client, frozen, login):
    user = make_user()
    client, secret, codes = _enrolled(auth_client, user, frozen)
    code = codes[3] if with_backup_code else pyotp.TOTP(secret).at(frozen)
    response = client.delete("/api/auth/mfa/totp", {"code": code}, format="json")
    assert response.status_code == 204
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not StaticToken.objects.filter(device__user=user).exists()
    assert "access" in login(user.email).json()
    assert AuditEvent.objects.filter(action="mfa.disabled", actor=user).exists()


def test_disable_with_a_wrong_code(make_user, auth_client, frozen):
    user = make_user()
    client, _, _ = _enrolled(auth_client, user, frozen)
    response = client.delete("/api/auth/mfa/totp", {"code": "000000"}, format="json")
    assert_error(response, 400, "invalid_mfa_code")
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def test_disable_without_mfa(make_user, auth_client):
    response = auth_client(make_user()).delete(
        "/api/auth/mfa/totp", {"code": "123456"}, format="json"
    )
    assert_error(response, 400, "validation_error")


def test_disable_refused_when_the_organization_requires_mfa(
    make_user, auth_client, frozen, org
):
    user = make_user()
    client, secret, _ = _enrolled(auth_client, user, frozen)
    org.mfa_required = True
    org.save()
    response = client.delete(
        "/api/auth/mfa/totp",
        {"code": pyotp.TOTP(secret).at(frozen)},
        format="json",
    )
    assert_error(response, 403, "permission_denied")


def test_disable_needs_the_code_field(make_user, auth_client, frozen):
    client, _, _ = _enrolled(auth_client, make_user(), frozen)
    assert_error(client.delete("/api/auth/mfa/totp"), 400, "validation_error")


# --- organizations that require MFA ------------------------------------------------------


def test_mfa_required_org_limits_a_token_without_second_factor(
    make_user, auth_client, org, frozen
):
    org.mfa_required = True
    org.save()
    user = make_user("staff")
    client = auth_client(user)
    assert client.get("/api/auth/me").status_code == 200
    assert_error(client.get("/api/audit-events"), 403, "mfa_required")
    assert_error(
        client.post(
            "/api/auth/password/change",
            {"old_password": "x", "new_password": "y"},
            format="json",
        ),
        403,
        "mfa_required",
    )
    # Enrolling is allowed, and the fresh tokens carry mfa=true.
    secret = _begin(client)["secret"]
    body = _confirm(client, pyotp.TOTP(secret).at(frozen)).json()
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert fresh.get("/api/audit-events").status_code == 200


def test_authenticated_mfa_endpoints_need_a_token(db):
    client = APIClient()
    for method, path in [
        ("post", "/api/auth/mfa/totp"),
        ("delete", "/api/auth/mfa/totp"),
        ("post", "/api/auth/mfa/totp/confirm"),
        ("post", "/api/auth/mfa/backup-codes"),
    ]:
        assert_error(getattr(client, method)(path), 401, "not_authenticated")


def test_service_functions_for_the_portal(make_user, frozen, no_device_backoff):
    """The names and return shapes the portal relies on."""
    user = make_user()
    started = mfa.totp_begin_enrolment(user=user, password=DEFAULT_PASSWORD)
    codes = mfa.totp_confirm(user=user, code=pyotp.TOTP(started["secret"]).at(frozen))
    assert len(codes) == 10
    assert mfa.user_has_confirmed_totp(user)
    new = mfa.backup_codes_regenerate(user=user, code=codes[0])
    assert len(new) == 10
    mfa.mfa_disable(user=user, code=new[0])
    assert not mfa.user_has_confirmed_totp(user)
    assert issue_tokens(user, mfa=False)["access"]
