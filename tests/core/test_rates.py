"""The one rate grammar (core/rates.py) and every door that takes a rate: the system
check of XENX_RATE_LIMITS, the services API, the register_service command (issue 24:
"0/m" passed the check and left a role unlimited, "10/0m" passed and made every call
of the role a 500, the optional names the README documents were refused)."""

import pytest
from django.core.management import CommandError, call_command

from core.rates import InvalidRate, parse_rate
from core.roles import Role
from tests.conftest import assert_error
from tests.support.linearity import assert_linear
from xenx.checks import check_rate_limits

GOOD = {
    "60/m": (60, 60),
    "10/15m": (10, 900),
    "1/s": (1, 1),
    "5/h": (5, 3600),
    "1000/d": (1000, 86400),
    "999999999/999999999d": (999_999_999, 999_999_999 * 86400),
}
BAD = [
    "0/m",
    "10/0m",
    "00/m",
    "010/m",
    "10/01m",
    "-1/m",
    "1e3/m",
    "10/x",
    "10/mm",
    "10/",
    "/m",
    "10",
    "",
    " 10/m",
    "10/m ",
    "10/m\n",
    "１０/m",  # full-width digits: Python's int() would take them
    "1000000000/m",  # 10 digits: past the bound
    "1" * 5000 + "/m",  # int() of it raises ValueError in Python 3.11
    10,
    None,
    ["10/m"],
]


@pytest.mark.parametrize(("rate", "parsed"), GOOD.items())
def test_good_rates(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", BAD, ids=[repr(b)[:20] for b in BAD])
def test_bad_rates_are_refused_with_a_sentence(rate):
    with pytest.raises(InvalidRate) as caught:
        parse_rate(rate)
    assert "is not a rate like '60/m'" in str(caught.value)
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    "make",
    [lambda n: "1" * n + "/m", lambda n: "1/" + "1" * n + "m", lambda n: "/" * n],
)
def test_the_grammar_is_linear(make):
    def parse(value):
        with pytest.raises(InvalidRate):
            parse_rate(value)

    assert_linear(make, parse, 4096)


# --- the doors -----------------------------------------------------------------


@pytest.mark.parametrize("rate", ["0/m", "10/0m", "010/m"])
def test_the_check_refuses_what_the_parser_refuses(settings, rate):
    settings.XENX_RATE_LIMITS = {**settings.XENX_RATE_LIMIT_DEFAULTS, "client": rate}
    assert [m.id for m in check_rate_limits(None)] == ["xenx.E002"]


def test_every_documented_name_is_accepted(settings):
    documented = [
        "anonymous",
        "client",
        "cpa",
        "staff",
        "admin",
        "login_ip",
        "login_account",
        "register_ip",
        "register_account",
        "password_reset_ip",
        "password_reset_account",
        "mfa_verify_ip",
        "mfa_account",
        "password_change_account",
    ]
    settings.XENX_RATE_LIMITS = dict.fromkeys(documented, "7/m")
    assert check_rate_limits(None) == []


@pytest.mark.parametrize("rate", ["0/m", "10/0m", "1" * 5000 + "/m"])
def test_the_services_api_refuses_a_bad_rate(auth_client, make_user, rate):
    resp = auth_client(make_user(Role.ADMIN)).post(
        "/api/services",
        {
            "name": "svc",
            "instances": [{"url": "http://127.0.0.1:9"}],
            "rate_limits": {"client": rate},
        },
        format="json",
    )
    assert_error(resp, 400, "validation_error")
    assert "is not a rate like" in str(resp.json()["error"]["details"])


@pytest.mark.parametrize("rate", ["0/m", "10/0m"])
def test_register_service_refuses_a_bad_rate(db, rate):
    with pytest.raises(CommandError, match="is not a rate like"):
        call_command(
            "register_service",
            "svc",
            "http://127.0.0.1:9",
            "--rate-limit",
            f"client={rate}",
        )
