"""Logout and ended sessions survive the loss of the shared cache (a Redis restart or
flush): their denials are kept in the database (``RevokedToken``) and the first reader
of an empty cache writes them back before answering (``accounts.revocation``). Checked
on both token doors, for each kind of denial, with the cache lost before or after the
first call."""

import datetime as dt
import time

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import revocation, sessions
from accounts.models import RevokedToken, UserSession
from core.roles import Role
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(login):
    """signed_in(user, agent) → the tokens of a password login (one session each)."""

    def tokens(user, agent="Phone/1.0"):
        response = login(user.email, HTTP_USER_AGENT=agent)
        assert response.status_code == 200, response.content
        return response.json()

    return tokens


def _bearer(token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _lose_the_cache():
    """What a Redis restart without persistence leaves: nothing, on every node."""
    cache.clear()
    revocation.clear_memo()


def _logout(user, tokens):
    response = _bearer(tokens["access"]).post(
        "/api/auth/logout", {"refresh": tokens["refresh"]}, format="json"
    )
    assert response.status_code == 204, response.content


def _end_session(user, tokens):
    victim = UserSession.objects.get(user=user, login_user_agent="Laptop/2.0")
    sessions.session_end(session=victim, actor=user)


DENIALS = {"logout": _logout, "session ended": _end_session}


@pytest.mark.parametrize("denial", DENIALS)
@pytest.mark.parametrize("door", ["api", "gateway"])
def test_a_denial_survives_the_loss_of_the_cache(
    denial, door, make_user, gateway_service, signed_in
):
    user = make_user(Role.CLIENT)
    keep = signed_in(user, "Phone/1.0")
    victim = signed_in(user, "Laptop/2.0")
    DENIALS[denial](user, victim)
    path = "/api/auth/me" if door == "api" else gateway_service
    assert_error(_bearer(victim["access"]).get(path), 401, "token_revoked")

    _lose_the_cache()
    assert_error(_bearer(victim["access"]).get(path), 401, "token_revoked")
    # the marker is back, and the rebuild denied nothing else
    assert cache.get(revocation.LOADED_KEY) is True
    assert _bearer(keep["access"]).get(path).status_code == 200
    _lose_the_cache()
    assert _bearer(keep["access"]).get(path).status_code == 200
    assert_error(_bearer(victim["access"]).get(path), 401, "token_revoked")


def test_the_rebuild_runs_once_per_loss(make_user, signed_in):
    user = make_user(Role.CLIENT)
    tokens = signed_in(user)
    assert _bearer(tokens["access"]).get("/api/auth/me").status_code == 200
    _lose_the_cache()
    revocation.records({"user_id": user.pk, "jti": "no-such-jti"})  # rebuilds
    revocation.clear_memo()  # another process: its memo is empty, the cache is not
    with CaptureQueriesContext(connection) as queries:
        revocation.records({"user_id": user.pk, "jti": "no-such-jti"})
    assert not [q for q in queries if "revokedtoken" in q["sql"]]


def test_expired_denials_are_neither_rebuilt_nor_kept(make_user):
    past = timezone.now() - dt.timedelta(seconds=1)
    RevokedToken.objects.create(kind="jti", value="old", expires_at=past)
    RevokedToken.objects.create(kind="fam", value="oldfam", expires_at=past)
    _lose_the_cache()
    user = make_user(Role.CLIENT)
    revocation.records({"user_id": user.pk, "jti": "old", "fam": "oldfam"})
    assert cache.get("jti:old") is None and cache.get("fam:oldfam") is None
    # the next denial written drops the expired rows
    revocation.deny_access_token(
        "new", (timezone.now() + dt.timedelta(minutes=5)).timestamp()
    )
    assert sorted(RevokedToken.objects.values_list("value", flat=True)) == ["new"]


def test_fail_open_without_the_cache_still_honours_a_logout(
    make_user, settings, monkeypatch, signed_in
):
    """XENX_FAIL_OPEN_WITHOUT_CACHE: with the cache down the database decides, and it
    knows the logout too."""
    user = make_user(Role.CLIENT)
    tokens = signed_in(user)
    _logout(user, tokens)
    settings.XENX_FAIL_OPEN_WITHOUT_CACHE = True
    revocation.clear_memo()

    def down(keys):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get_many", down)  # the records' one read
    assert_error(_bearer(tokens["access"]).get("/api/auth/me"), 401, "token_revoked")


@pytest.mark.parametrize(
    "deny, key",
    [
        (lambda: revocation.deny_access_token("j-1", time.time() + 600), "jti:j-1"),
        (lambda: revocation.end_family("fam-1"), "fam:fam-1"),
    ],
    ids=["logout", "session ended"],
)
def test_a_denial_lost_before_its_transaction_commits_is_written_again(
    django_capture_on_commit_callbacks, deny, key
):
    """A cache emptied between the denial's write and its commit, and rebuilt meanwhile
    by another reader from the rows committed then (without this one): the commit
    writes the denial once more."""
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        deny()
        _lose_the_cache()
        cache.set(revocation.LOADED_KEY, True, None)  # the other reader's rebuild
        assert cache.get(key) is None
    assert cache.get(key) is True


def test_a_cache_down_at_commit_does_not_fail_the_committed_denial(
    django_capture_on_commit_callbacks, monkeypatch
):
    """The rewrite fails: the commit stands, and the marker goes, so that the next
    reader rebuilds every denial (this one included) from the database."""
    with (
        monkeypatch.context() as patched,  # undone once the commit's callbacks ran
        django_capture_on_commit_callbacks(execute=True),
        transaction.atomic(),
    ):
        revocation.deny_access_token("j-2", time.time() + 600)
        _lose_the_cache()
        cache.set(revocation.LOADED_KEY, True, None)  # another reader's rebuild
        patched.setattr(cache, "set", _unreachable)
    assert RevokedToken.objects.filter(value="j-2").exists()
    assert cache.get(revocation.LOADED_KEY) is None
    assert revocation.records({"user_id": 1, "jti": "j-2"}).denied  # from the row


def _unreachable(*args, **kwargs):
    raise ConnectionError("cache unreachable")
