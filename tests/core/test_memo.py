"""core.memo.Memo: bounded by count, by age, and safe to share between threads."""

import importlib
import threading

import pytest

from accounts import tokens
from core.memo import Memo


def test_holds_at_most_maxsize_entries_oldest_written_goes_first():
    memo = Memo(3)
    for i in range(10):
        memo.set(i, i * 10)
    assert len(memo) == 3
    assert [memo.get(i) for i in range(10)] == [None] * 7 + [70, 80, 90]


def test_rewriting_a_key_does_not_evict():
    memo = Memo(2)
    memo.set("a", 1)
    memo.set("b", 2)
    memo.set("a", 3)
    assert (memo.get("a"), memo.get("b"), len(memo)) == (3, 2, 2)


def test_ttl_forgets_an_entry_after_its_time():
    now = [100.0]
    memo = Memo(10, ttl=0.5, clock=lambda: now[0])
    memo.set("k", "v")
    now[0] = 100.4
    assert memo.get("k") == "v" and "k" in memo
    now[0] = 100.5
    assert memo.get("k", "gone") == "gone"
    assert len(memo) == 0  # an expired entry read is dropped


def test_get_or_set_computes_once_while_remembered():
    memo, calls = Memo(4), []
    for _ in range(3):
        memo.get_or_set("k", lambda: calls.append(1) or "v")
    assert calls == [1]


def test_pop_and_clear():
    memo = Memo(4)
    memo.set("a", 1)
    memo.set("b", 2)
    memo.pop("a")
    memo.pop("missing")
    assert ("a" in memo, "b" in memo) == (False, True)
    memo.clear()
    assert len(memo) == 0


@pytest.mark.parametrize("maxsize,ttl", [(0, None), (-1, None), (1, 0), (1, -2.0)])
def test_refuses_a_memo_without_a_bound(maxsize, ttl):
    with pytest.raises(ValueError):
        Memo(maxsize, ttl=ttl)


def test_many_threads_writing_new_keys_stay_within_the_bound():
    memo = Memo(100)

    def write(base):
        for i in range(5_000):
            memo.set((base, i), i)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(memo) <= 100 + len(threads)


# --- every process memo is a Memo (issue 24) ----------------------------------------


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("accounts.tokens", "verified_tokens"),
        ("gateway.assertions", "signed_assertions"),
        ("gateway.metrics", "metric_children"),
        ("gateway.probes", "pool_managers"),
    ],
)
def test_process_memos_are_bounded(module, name):
    memo = getattr(importlib.import_module(module), name)
    assert isinstance(memo, Memo)
    assert memo.maxsize <= 20_000


def test_verified_tokens_stay_within_their_bound(monkeypatch, make_user):
    """Every token a client presents was a new key of a dict emptied only when full;
    now the oldest verified token goes first."""
    monkeypatch.setattr(tokens, "verified_tokens", Memo(3))
    user = make_user()
    raws = [tokens.issue_tokens(user, mfa=False)["access"] for _ in range(5)]
    for raw in raws:
        assert tokens.decode_access_token(raw)["user_id"] == str(user.pk)
    assert len(tokens.verified_tokens) == 3
    assert raws[-1] in tokens.verified_tokens and raws[0] not in tokens.verified_tokens
