"""/metrics counts identity traffic (README "Gateway", metrics table): logins by
outcome, second-factor codes by outcome, refresh rotations and reuse detections, each
counted by the service every door calls."""

import time

import pyotp
import pytest
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

from accounts.tokens import issue_tokens
from core.roles import Role
from tests.conftest import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db


class Counts:
    """Increments of the identity counters since the fixture started."""

    def __init__(self):
        self.restart()

    def restart(self):
        """Count from now on."""
        self.start = self.read()

    @staticmethod
    def read():
        names = {
            "xenx_logins_total": ("login", ("success", "failure", "lockout")),
            "xenx_mfa_verifications_total": ("mfa", ("success", "failure", "lockout")),
            "xenx_token_refreshes_total": ("refresh", ("success", "refused")),
        }
        found = {
            (event, outcome): REGISTRY.get_sample_value(name, {"outcome": outcome})
            for name, (event, outcomes) in names.items()
            for outcome in outcomes
        }
        found["reuse"] = REGISTRY.get_sample_value("xenx_refresh_token_reuse_total")
        return found

    def since(self):
        now = self.read()
        return {k: now[k] - self.start[k] for k in now if now[k] != self.start[k]}


@pytest.fixture
def counts():
    return Counts()


def _post(path, payload, ip="203.0.113.9"):
    return APIClient().post(path, payload, format="json", REMOTE_ADDR=ip)


def test_logins_by_outcome(make_user, settings, counts):
    settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMITS, "login_account": "2/15m"}
    user = make_user(Role.CLIENT)
    ok = _post("/api/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD})
    assert ok.status_code == 200, ok.content
    for _ in range(2):
        wrong = {"email": user.email, "password": "wrong"}
        assert _post("/api/auth/login", wrong).status_code == 401
    assert _post("/api/auth/login", wrong).status_code == 429  # locked
    assert counts.since() == {
        ("login", "success"): 1,
        ("login", "failure"): 2,
        ("login", "lockout"): 1,
    }


def test_second_factor_outcomes(make_user, enrol_totp, counts):
    user = make_user(Role.CPA)
    secret, _ = enrol_totp(user)
    counts.restart()
    password = {"email": user.email, "password": DEFAULT_PASSWORD}
    token = _post("/api/auth/login", password).json()["mfa_token"]
    code = pyotp.TOTP(secret).at(time.time())
    good = _post("/api/auth/mfa/verify", {"mfa_token": token, "code": code})
    assert good.status_code == 200, good.content
    token = _post("/api/auth/login", password).json()["mfa_token"]
    bad = _post("/api/auth/mfa/verify", {"mfa_token": token, "code": "000000"})
    assert bad.status_code == 401
    assert counts.since() == {
        ("mfa", "failure"): 1,
        ("mfa", "success"): 1,
        ("login", "success"): 1,
    }


def test_refreshes_and_reuse(make_user, counts):
    user = make_user()
    first = issue_tokens(user, mfa=False)
    rotated = _post("/api/auth/token/refresh", {"refresh": first["refresh"]})
    assert rotated.status_code == 200
    assert (
        _post("/api/auth/token/refresh", {"refresh": first["refresh"]}).status_code
        == 401
    )
    assert _post("/api/auth/token/refresh", {"refresh": "garbage"}).status_code == 401
    assert counts.since() == {
        ("refresh", "success"): 1,
        ("refresh", "refused"): 2,
        "reuse": 1,
    }


def test_metrics_show_every_identity_counter_and_instance_health(
    make_user, auth_client
):
    from gateway import breaker, services

    svc = services.service_create(
        name="svc", instances=["http://127.0.0.1:9", "http://127.0.0.1:10"]
    )
    down, up = svc.instances.order_by("id")
    breaker.mark_down(down.id, 60)
    text = auth_client(make_user(Role.ADMIN)).get("/metrics").content.decode()
    for name in (
        'xenx_logins_total{outcome="lockout"}',
        'xenx_mfa_verifications_total{outcome="failure"}',
        'xenx_token_refreshes_total{outcome="refused"}',
        "xenx_refresh_token_reuse_total",
        'xenx_gateway_instance_healthy{service="svc",upstream="http://127.0.0.1:10"} 1.0',
        'xenx_gateway_instance_healthy{service="svc",upstream="http://127.0.0.1:9"} 0.0',
    ):
        assert name in text, name
