"""Rate limits of the identity endpoints, driven to the 429 (README "Identity"): per client IP
(every attempt) and per account (failures), on the shared cache."""

import pyotp
import pytest
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import ConnectionError as RedisConnectionError
from rest_framework.test import APIClient

from tests.conftest import DEFAULT_PASSWORD, assert_error
from tests.support.login import api_login

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _still_ratelimit_clock(monkeypatch):
    """django-ratelimit counts in fixed windows: a test must not straddle two."""
    import time
    from types import SimpleNamespace

    import django_ratelimit.core

    now = time.time()
    monkeypatch.setattr(
        django_ratelimit.core, "time", SimpleNamespace(time=lambda: now)
    )


@pytest.fixture
def rates(settings):
    def set_rates(**overrides):
        settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMITS, **overrides}

    return set_rates


def _login(email, password=DEFAULT_PASSWORD, ip="203.0.113.7", **extra):
    return api_login(email, password, REMOTE_ADDR=ip, **extra)


def _assert_limited(response):
    assert_error(response, 429, "rate_limited")
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= 15 * 60


def test_login_ip_limit_counts_every_attempt(make_user, rates):
    rates(login_ip="3/m")
    user = make_user()
    assert _login(user.email).status_code == 200
    assert _login(user.email, "wrong").status_code == 401
    assert _login("nobody@example.com").status_code == 401
    # Over the limit: refused whether or not the password is right.
    _assert_limited(_login(user.email))
    _assert_limited(_login(user.email, "wrong"))
    # Another address is not affected.
    assert _login(user.email, ip="198.51.100.1").status_code == 200


def test_spoofed_forwarded_for_does_not_escape_the_ip_limit(make_user, rates):
    rates(login_ip="2/m")
    user = make_user()
    for n in range(2):
        assert _login(user.email, HTTP_X_FORWARDED_FOR=f"10.9.9.{n}").status_code == 200
    _assert_limited(_login(user.email, HTTP_X_FORWARDED_FOR="10.9.9.99"))


def test_ipv6_addresses_are_counted_by_their_64(make_user, rates):
    rates(login_ip="2/m")
    user = make_user()
    for n in range(2):
        assert _login(user.email, ip=f"2001:db8:1:2::{n + 1}").status_code == 200
    _assert_limited(_login(user.email, ip="2001:db8:1:2:ffff::9"))
    assert _login(user.email, ip="2001:db8:1:3::1").status_code == 200


def test_behind_a_trusted_proxy_each_client_has_its_own_count(
    make_user, rates, settings
):
    rates(login_ip="2/m")
    settings.XENX_TRUSTED_PROXIES = ["10.0.0.1"]
    user = make_user()
    for _ in range(2):
        assert (
            _login(user.email, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1")
        ).status_code == 200
    _assert_limited(_login(user.email, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1"))
    assert (
        _login(user.email, ip="10.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.2")
    ).status_code == 200


def test_login_account_limit_counts_failures_from_any_address(make_user, rates):
    rates(login_ip="100/m", login_account="3/15m")
    user = make_user()
    for n in range(3):
        assert _login(user.email, "wrong", ip=f"198.51.100.{n}").status_code == 401
    # Locked: even the right password from a fresh address is refused.
    _assert_limited(_login(user.email.upper(), ip="192.0.2.50"))
    # Another account is not affected.
    other = make_user()
    assert _login(other.email).status_code == 200


def test_successful_logins_do_not_count_against_the_account(make_user, rates):
    rates(login_ip="100/m", login_account="2/15m")
    user = make_user()
    for _ in range(4):
        assert _login(user.email).status_code == 200


def test_unknown_accounts_are_throttled_the_same_way(db, rates):
    """No enumeration through the limiter: unknown emails lock like known ones."""
    rates(login_ip="100/m", login_account="2/15m")
    for _ in range(2):
        assert _login("ghost@example.com", "x").status_code == 401
    _assert_limited(_login("ghost@example.com", "x"))


def test_register_is_throttled_per_ip(db, rates):
    rates(register_ip="2/m")
    client = APIClient()
    for n in range(2):
        response = client.post(
            "/api/auth/register",
            {"email": f"r{n}@example.com", "password": "Long-enough-passphrase-1"},
            format="json",
        )
        assert response.status_code == 201
    _assert_limited(
        client.post(
            "/api/auth/register",
            {"email": "r9@example.com", "password": "Long-enough-passphrase-1"},
            format="json",
        )
    )


def test_register_is_throttled_per_email(make_user, rates):
    """Every attempt on an address counts, taken or not (the answer is the same
    201 either way: README "Lifecycle")."""
    rates(register_ip="100/m", register_account="2/15m")
    make_user(email="taken@example.com")
    body = {"email": "Taken@example.com", "password": "Long-enough-passphrase-1"}
    for n in range(2):
        response = APIClient().post(
            "/api/auth/register", body, format="json", REMOTE_ADDR=f"192.0.2.{n}"
        )
        assert response.status_code == 201
    _assert_limited(
        APIClient().post(
            "/api/auth/register", body, format="json", REMOTE_ADDR="192.0.2.77"
        )
    )


def test_register_falls_back_to_the_login_ip_rate(db, rates):
    rates(login_ip="1/m")
    client = APIClient()
    body = {"email": "a@example.com", "password": "Long-enough-passphrase-1"}
    assert client.post("/api/auth/register", body, format="json").status_code == 201
    _assert_limited(client.post("/api/auth/register", body, format="json"))


def test_password_reset_is_throttled_per_ip_and_per_account(make_user, rates):
    rates(password_reset_ip="3/m", password_reset_account="2/15m")
    user = make_user()
    client = APIClient()

    def reset(email, ip):
        return client.post(
            "/api/auth/password/reset", {"email": email}, format="json", REMOTE_ADDR=ip
        )

    assert reset(user.email, "192.0.2.1").status_code == 202
    assert reset(user.email, "192.0.2.2").status_code == 202
    _assert_limited(reset(user.email, "192.0.2.3"))  # account
    for n in range(3):
        assert reset(f"x{n}@example.com", "192.0.2.9").status_code == 202
    _assert_limited(reset("y@example.com", "192.0.2.9"))  # address


def test_mfa_verify_failed_codes_are_throttled_per_account(
    make_user, enrol_totp, rates, settings
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    rates(login_ip="100/m", mfa_account="3/15m")
    user = make_user()
    secret, codes = enrol_totp(user)
    client = APIClient()

    def verify(code):
        mfa_token = _login(user.email).json()["mfa_token"]
        return client.post(
            "/api/auth/mfa/verify",
            {"mfa_token": mfa_token, "code": code},
            format="json",
        )

    for _ in range(3):
        assert_error(verify("000000"), 401, "invalid_mfa_code")
    _assert_limited(verify(codes[0]))
    # The refused attempt did not spend the backup code.
    from accounts import mfa

    assert mfa.backup_codes_remaining(user) == 10


def test_mfa_verify_is_throttled_per_ip(make_user, enrol_totp, rates):
    rates(login_ip="100/m", mfa_verify_ip="2/m")
    user = make_user()
    enrol_totp(user)
    client = APIClient()
    for _ in range(2):
        mfa_token = _login(user.email).json()["mfa_token"]
        client.post(
            "/api/auth/mfa/verify",
            {"mfa_token": mfa_token, "code": "000000"},
            format="json",
        )
    mfa_token = _login(user.email).json()["mfa_token"]
    _assert_limited(
        client.post(
            "/api/auth/mfa/verify",
            {"mfa_token": mfa_token, "code": "000000"},
            format="json",
        )
    )


def test_authenticated_mfa_endpoints_throttle_failed_codes(
    make_user, auth_client, rates, settings
):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    rates(mfa_account="2/15m")
    client = auth_client(make_user())
    secret = client.post(
        "/api/auth/mfa/totp", {"password": DEFAULT_PASSWORD}, format="json"
    ).json()["secret"]
    for _ in range(2):
        response = client.post(
            "/api/auth/mfa/totp/confirm", {"code": "000000"}, format="json"
        )
        assert_error(response, 400, "invalid_mfa_code")
    response = client.post(
        "/api/auth/mfa/totp/confirm",
        {"code": pyotp.TOTP(secret).now()},
        format="json",
    )
    _assert_limited(response)


def test_password_change_wrong_old_password_is_throttled(make_user, auth_client, rates):
    rates(password_change_account="2/15m")
    client = auth_client(make_user())
    body = {"old_password": "wrong", "new_password": "Brand-new-passphrase-1"}
    for _ in range(2):
        response = client.post("/api/auth/password/change", body, format="json")
        assert_error(response, 400, "validation_error")
    right = {**body, "old_password": DEFAULT_PASSWORD}
    _assert_limited(client.post("/api/auth/password/change", right, format="json"))


def test_rate_limits_can_be_switched_off(make_user, rates, settings):
    settings.RATELIMIT_ENABLE = False
    rates(login_ip="1/m")
    user = make_user()
    for _ in range(3):
        assert _login(user.email).status_code == 200


@pytest.fixture
def cache_down(monkeypatch):
    """cache_down() → from now on every cache call fails."""
    from django.core.cache import cache

    def boom(*args, **kwargs):  # what django-redis raises when Redis is unreachable
        raise ConnectionInterrupted(connection=None) from RedisConnectionError("down")

    def switch_off():
        for name in ("add", "get", "get_many", "incr", "set", "delete"):
            monkeypatch.setattr(cache, name, boom)

    return switch_off


def test_cache_down_fails_closed(make_user, auth_client, cache_down):
    user = make_user()
    client = auth_client(user)
    cache_down()
    assert_error(_login(user.email), 503, "service_unavailable")
    assert_error(client.get("/api/auth/me"), 503, "service_unavailable")


def test_cache_down_refuses_a_deactivation_it_could_not_propagate(
    make_user, cache_down
):
    from accounts.models import User
    from core.errors import ServiceUnavailable

    user = make_user()
    cache_down()
    user.is_active = False
    with pytest.raises(ServiceUnavailable):
        user.save()
    assert User.objects.get(pk=user.pk).is_active is True  # rolled back


def test_cache_down_fails_open_when_configured(make_user, settings, cache_down):
    settings.XENX_FAIL_OPEN_WITHOUT_CACHE = True
    user = make_user()
    cache_down()
    body = _login(user.email).json()
    me = APIClient().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    user.is_active = False
    user.save()
    me = APIClient().get("/api/auth/me", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert_error(me, 401, "token_revoked")


@pytest.mark.parametrize("fail_open", [False, True])
def test_a_bug_in_throttling_is_never_taken_for_an_outage(
    make_user, settings, monkeypatch, fail_open
):
    """Issue 24: any exception counted as "the cache is down", so with
    XENX_FAIL_OPEN_WITHOUT_CACHE a bug switched the login throttle off."""
    settings.XENX_FAIL_OPEN_WITHOUT_CACHE = fail_open

    def bug(*args, **kwargs):
        raise KeyError("a bug, not an outage")

    monkeypatch.setattr("accounts.throttling.get_usage", bug)
    user = make_user()
    assert_error(_login(user.email), 500, "internal_error")
