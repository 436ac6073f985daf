"""Replay under concurrency: one TOTP code or backup code, presented by several
requests at once, is accepted once (row locks on real PostgreSQL)."""

import threading

import pyotp
import pytest
from django.db import connection, connections

from accounts import mfa

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _race(n, fn):
    barrier = threading.Barrier(n)
    results = []

    def worker():
        try:
            barrier.wait()
            results.append(fn())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")


def test_one_totp_code_concurrently(postgres_only, make_user, enrol_totp, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    user = make_user()
    secret, _ = enrol_totp(user)
    code = pyotp.TOTP(secret).now()
    results = _race(4, lambda: mfa.verify_second_factor(user=user, code=code))
    assert sorted(results) == [False, False, False, True]


def test_one_backup_code_concurrently(postgres_only, make_user, enrol_totp, settings):
    settings.OTP_STATIC_THROTTLE_FACTOR = 0
    user = make_user()
    _, codes = enrol_totp(user)
    results = _race(4, lambda: mfa.verify_second_factor(user=user, code=codes[0]))
    assert sorted(results) == [False, False, False, True]
    assert mfa.backup_codes_remaining(user) == 9
