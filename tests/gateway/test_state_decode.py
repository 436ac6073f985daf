"""``gateway.state.decoded``: django-redis's decoding of the values the hot path reads
(a user's revocation records), memoised per raw bytes only when the value is immutable,
so that a record never comes back changed and a new record is always decoded."""

import pickle
from dataclasses import dataclass

import pytest
from django.test import override_settings

from accounts.revocation import OrgState, UserState
from core.memo import Memo
from gateway import state


@dataclass
class Mutable:
    value: int


@dataclass(frozen=True)
class FrozenHoldingAList:
    items: list


@pytest.fixture
def decoder(monkeypatch):
    """django-redis's own decode (int first, then unpickle), counting its calls."""
    calls = []

    def decode(raw):
        calls.append(raw)
        try:
            return int(raw)
        except ValueError:
            return pickle.loads(raw)

    state.use_client(None, decode=decode)
    yield calls
    state.forget()


@pytest.mark.parametrize(
    "value",
    [
        UserState(7, True, "client", None, 0.0),
        UserState(8, False, "cpa", 3, 1700000000.5, 1700000001.25),
        OrgState(3, True, False),
        True,
        "text",
    ],
    ids=["user", "revoked-user", "org", "denied", "text"],
)
def test_an_immutable_record_is_decoded_once_per_bytes(decoder, value):
    raw = pickle.dumps(value)
    first, second = state.decoded(raw), state.decoded(raw)
    assert first == value and second == value
    assert second is first
    assert decoder == [raw]


def test_an_integer_is_decoded_as_django_redis_does(decoder):
    assert state.decoded(b"42") == 42
    assert state.decoded(b"42") == 42
    assert decoder == [b"42"]


@pytest.mark.parametrize(
    "value",
    [{"a": 1}, [1, 2], Mutable(1), FrozenHoldingAList([1])],
    ids=["dict", "list", "mutable-dataclass", "frozen-holding-a-list"],
)
def test_a_mutable_value_is_decoded_every_time_and_never_shared(decoder, value):
    raw = pickle.dumps(value)
    first = state.decoded(raw)
    second = state.decoded(raw)
    assert first == value and second == value and second is not first
    assert decoder == [raw, raw]


def test_a_changed_record_is_new_bytes_and_decoded_afresh(decoder):
    before = UserState(7, True, "client", None, 0.0)
    after = UserState(7, True, "client", None, 1700000000.0)  # tokens revoked
    assert state.decoded(pickle.dumps(before)) == before
    assert state.decoded(pickle.dumps(after)) == after
    assert len(decoder) == 2


def test_bounded_and_forgotten_when_the_cache_setting_changes(decoder, monkeypatch):
    monkeypatch.setattr(state, "decoded_values", Memo(3))
    for n in range(3):
        state.decoded(pickle.dumps(UserState(n, True, "client", None, 0.0)))
    assert len(state.decoded_values) == 3
    state.decoded(pickle.dumps(UserState(99, True, "client", None, 0.0)))
    assert len(state.decoded_values) == 3  # bounded: hostile churn cannot grow it
    with override_settings(CACHES={"default": {"BACKEND": "x"}}):
        assert len(state.decoded_values) == 0
