"""The engine on synthetic timelines: atomic multi-bucket acquires, denials, waiting, reload, reset."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ratelimitd.engine import Decision, Engine, Waiter
from ratelimitd.errors import CostTooLarge, NotAvailable, UnknownEndpoint, UnknownKey
from ratelimitd.tiers.model import BucketSpec

from .tables import S, rate, single, table

T0 = 1_700_000_000 * S


def test_grants_up_to_the_limit_then_denies_with_exact_retry_after():
    engine = Engine(single("3/10s"))
    steps = [(0, True, 2), (1, True, 1), (2, True, 0), (3, False, 0)]
    for at, granted, remaining in steps:
        decision = engine.acquire("k", "e", None, T0 + at * S)
        assert decision.granted is granted, f"step t+{at}s"
        assert decision.remaining == remaining, f"step t+{at}s"
    denied = engine.acquire("k", "e", None, T0 + 3 * S)
    assert denied.retry_after == 7 * S  # the grant at t0 ages out at t0+10s
    assert denied.scope == "b" and denied.reason == "limit"
    assert engine.acquire("k", "e", None, T0 + 10 * S - 1).granted is False
    assert engine.acquire("k", "e", None, T0 + 10 * S).granted is True


def test_denial_charges_nothing_on_any_bucket():
    buckets = {"standard": BucketSpec("standard", rates=(rate("5/1m"),)), "heavy": BucketSpec("heavy", rates=(rate("2/1m"),))}
    engine = Engine(table(buckets, {"rest": ("standard",), "heavy": ("standard", "heavy")}))
    assert engine.acquire("k", "heavy", None, T0).granted
    assert engine.acquire("k", "heavy", None, T0 + 1).granted
    third = engine.acquire("k", "heavy", None, T0 + 2)
    assert not third.granted and third.scope == "heavy"
    # the standard bucket was charged twice, not three times: three more fit on "rest"
    assert [engine.acquire("k", "rest", None, T0 + 3 + i).granted for i in range(4)] == [True, True, True, False]


def test_retry_after_is_when_all_buckets_allow():
    buckets = {
        "sec": BucketSpec("sec", rates=(rate("2/1s"),)),
        "min": BucketSpec("min", rates=(rate("3/1m"),)),
    }
    engine = Engine(table(buckets, {"e": ("sec", "min")}))
    for i in range(3):
        assert engine.acquire("k", "e", None, T0 + i * S).granted
    denied = engine.acquire("k", "e", None, T0 + 3 * S)
    assert denied.scope == "min"
    assert denied.retry_after == 57 * S
    assert dict((name, left) for name, left, _ in denied.buckets) == {"sec": 2, "min": 0}


def test_multiple_rates_on_one_bucket_all_apply():
    engine = Engine(single("2/1s,3/1m"))
    grants = [engine.acquire("k", "e", None, T0 + i * S // 2).granted for i in range(6)]
    assert grants == [True, True, True, False, False, False]


def test_distinct_errors():
    engine = Engine(table({"b": BucketSpec("b", rates=(rate("3/1s"),))}, {"e": ("b",), "paid": ("b", "premium")}))
    with pytest.raises(UnknownKey):
        engine.acquire("nobody", "e", None, T0)
    with pytest.raises(UnknownEndpoint):
        engine.acquire("k", "nothing", None, T0)
    with pytest.raises(NotAvailable):
        engine.acquire("k", "paid", None, T0)
    with pytest.raises(CostTooLarge, match="cost 4 exceeds the per-request maximum 3 of bucket 'b'"):
        engine.acquire("k", "e", 4, T0)


def test_fractional_costs_are_exact_and_peek_charges_nothing():
    engine = Engine(single("1/1m"))
    for _ in range(10):
        assert engine.acquire("k", "e", Decimal("0.1"), T0).granted
    assert engine.acquire("k", "e", 0, T0).remaining == 0
    assert not engine.acquire("k", "e", Decimal("0.1"), T0).granted


def test_peek_reports_without_charging():
    engine = Engine(single("3/10s"))
    peek = engine.acquire("k", "e", 0, T0)
    assert peek.granted and peek.remaining == 3
    assert engine.acquire("k", "e", None, T0).remaining == 2


def test_waiter_is_granted_at_the_earliest_moment():
    engine = Engine(single("1/10s"))
    assert engine.acquire("k", "e", None, T0).granted
    waiter = engine.acquire("k", "e", None, T0 + S, deadline=T0 + 30 * S, token="w")
    assert isinstance(waiter, Waiter)
    answers, wake = engine.service(T0 + S)
    assert answers == [] and wake == T0 + 10 * S
    answers, wake = engine.service(T0 + 10 * S)
    assert [(w.token, d.granted) for w, d in answers] == [("w", True)]
    assert wake is None


def test_waiter_that_cannot_make_its_deadline_is_denied_at_once():
    engine = Engine(single("1/10s"))
    engine.acquire("k", "e", None, T0)
    decision = engine.acquire("k", "e", None, T0 + S, deadline=T0 + 5 * S)
    assert isinstance(decision, Decision) and not decision.granted and decision.retry_after == 9 * S


def test_waiters_time_out_with_a_denial():
    engine = Engine(single("1/10s"))
    engine.acquire("k", "e", None, T0)
    first = engine.acquire("k", "e", None, T0, deadline=T0 + 10 * S, token="a")
    second = engine.acquire("k", "e", None, T0, deadline=T0 + 12 * S, token="b")
    assert isinstance(first, Waiter) and isinstance(second, Waiter)
    answers, wake = engine.service(T0 + 10 * S)
    assert [(w.token, d.granted) for w, d in answers] == [("a", True)]
    assert wake == T0 + 12 * S
    answers, wake = engine.service(T0 + 12 * S)
    assert [(w.token, d.granted, d.reason) for w, d in answers] == [("b", False, "timeout")]
    assert answers[0][1].retry_after == 8 * S


def test_waiters_are_served_fifo_and_nobody_overtakes_them():
    engine = Engine(single("3/10s"))
    engine.acquire("k", "e", 2, T0)
    engine.acquire("k", "e", 1, T0 + 5 * S)
    big = engine.acquire("k", "e", 3, T0 + 6 * S, deadline=T0 + 60 * S, token="big")
    small = engine.acquire("k", "e", 1, T0 + 7 * S, deadline=T0 + 60 * S, token="small")
    assert isinstance(big, Waiter) and isinstance(small, Waiter)
    # at t0+10s two units are free: enough for the small waiter and for a try, but the big one is first
    answers, wake = engine.service(T0 + 10 * S)
    assert answers == [] and wake == T0 + 15 * S
    refused = engine.acquire("k", "e", 1, T0 + 10 * S)
    assert not refused.granted and refused.reason == "queue" and refused.retry_after == 5 * S
    answers, wake = engine.service(T0 + 15 * S)
    assert [w.token for w, _ in answers] == ["big"] and wake == T0 + 25 * S
    answers, _ = engine.service(T0 + 25 * S)
    assert [w.token for w, _ in answers] == ["small"]


def test_priority_lane_goes_first():
    engine = Engine(single("1/10s"))
    engine.acquire("k", "e", None, T0)
    engine.acquire("k", "e", None, T0 + 1, deadline=T0 + 60 * S, token="low")
    engine.acquire("k", "e", None, T0 + 2, deadline=T0 + 60 * S, priority=5, token="high")
    answers, _ = engine.service(T0 + 10 * S)
    assert [w.token for w, _ in answers] == ["high"]


def test_cancelled_waiter_lets_the_next_one_move_up():
    engine = Engine(single("1/10s"))
    engine.acquire("k", "e", None, T0)
    gone = engine.acquire("k", "e", None, T0, deadline=T0 + 60 * S, token="gone")
    engine.acquire("k", "e", None, T0, deadline=T0 + 60 * S, token="next")
    engine.cancel(gone)
    answers, _ = engine.service(T0 + 10 * S)
    assert [w.token for w, _ in answers] == ["next"]
    assert engine.waiters == 0


def test_multi_bucket_waiters_keep_global_order():
    buckets = {"standard": BucketSpec("standard", rates=(rate("1/10s"),)), "heavy": BucketSpec("heavy", rates=(rate("1/10s"),))}
    engine = Engine(table(buckets, {"rest": ("standard",), "heavy": ("standard", "heavy")}))
    engine.acquire("k", "rest", None, T0)
    engine.acquire("k", "heavy", None, T0 + 1, deadline=T0 + 60 * S, token="heavy")
    engine.acquire("k", "rest", None, T0 + 2, deadline=T0 + 60 * S, token="rest")
    answers, _ = engine.service(T0 + 10 * S)
    assert [w.token for w, _ in answers] == ["heavy"]
    answers, _ = engine.service(T0 + 20 * S)
    assert [w.token for w, _ in answers] == ["rest"]


def test_reload_keeps_counters_and_applies_new_limits():
    engine = Engine(single("5/1m"))
    for i in range(4):
        assert engine.acquire("k", "e", None, T0 + i).granted
    engine.reload(single("3/1m"), T0 + 10)
    decision = engine.acquire("k", "e", None, T0 + 11)
    assert not decision.granted and decision.remaining == 0
    engine.reload(single("6/1m"), T0 + 12)
    assert [engine.acquire("k", "e", None, T0 + 13 + i).granted for i in range(3)] == [True, True, False]


def test_reload_answers_waiters_whose_endpoint_disappeared():
    engine = Engine(single("1/1m"))
    engine.acquire("k", "e", None, T0)
    engine.acquire("k", "e", None, T0, deadline=T0 + 120 * S, token="w")
    answers = engine.reload(table({"b": BucketSpec("b", rates=(rate("1/1m"),))}, {"other": ("b",)}), T0 + 1)
    assert [(w.token, type(error).__name__) for w, error in answers] == [("w", "UnknownEndpoint")]


def test_reset_forgets_spending_and_frees_waiters():
    engine = Engine(single("1/1m"))
    engine.acquire("k", "e", None, T0)
    engine.acquire("k", "e", None, T0, deadline=T0 + 120 * S, token="w")
    assert engine.reset("k", None, T0 + S) == [("k", "b")]
    answers, _ = engine.service(T0 + S)
    assert [(w.token, d.granted) for w, d in answers] == [("w", True)]


def test_group_scoped_bucket_is_shared_between_keys():
    buckets = {"org": BucketSpec("org", rates=(rate("2/1m"),), scope="group")}
    engine = Engine(table(buckets, {"e": ("org",)}, keys=("a", "b"), group="acme"))
    assert engine.acquire("a", "e", None, T0).granted
    assert engine.acquire("b", "e", None, T0).granted
    assert not engine.acquire("a", "e", None, T0).granted


def test_unlimited_bucket_never_limits():
    buckets = {"free": BucketSpec("free", kind="unlimited")}
    engine = Engine(table(buckets, {"e": ("free",)}))
    decisions = [engine.acquire("k", "e", 10**9, T0) for _ in range(100)]
    assert all(d.granted and d.remaining is None for d in decisions)


def test_clock_stepping_back_never_grants_more():
    engine = Engine(single("2/10s"))
    assert engine.acquire("k", "e", None, T0 + 5 * S).granted
    assert engine.acquire("k", "e", None, T0 + 5 * S).granted
    # the clock steps back 4 s: the two grants still count for a full window from when they were made
    assert not engine.acquire("k", "e", None, T0 + S).granted
    assert not engine.acquire("k", "e", None, T0 + 14 * S).granted
    assert engine.acquire("k", "e", None, T0 + 15 * S).granted


def test_light_calls_backfill_a_bucket_that_a_heavy_waiter_is_not_refused_by():
    buckets = {"standard": BucketSpec("standard", rates=(rate("3/10s"),)), "heavy": BucketSpec("heavy", rates=(rate("1/10s"),))}
    engine = Engine(table(buckets, {"rest": ("standard",), "heavy": ("standard", "heavy")}))
    assert engine.acquire("k", "heavy", None, T0).granted
    heavy = engine.acquire("k", "heavy", None, T0 + S, deadline=T0 + 60 * S, token="heavy")
    assert isinstance(heavy, Waiter)
    # the heavy waiter is refused only by "heavy": "standard" stays open to light calls
    assert engine.acquire("k", "rest", None, T0 + 2 * S).granted
    # ... until "standard" would refuse the heavy waiter too: then it holds that line
    assert engine.acquire("k", "rest", None, T0 + 3 * S).granted
    light = engine.acquire("k", "rest", None, T0 + 4 * S, deadline=T0 + 60 * S, token="light")
    assert isinstance(light, Waiter)
    answers, wake = engine.service(T0 + 4 * S)
    assert answers == [] and wake == T0 + 10 * S
    answers, _ = engine.service(T0 + 10 * S)
    assert [w.token for w, _ in answers] == ["heavy"]
    answers, _ = engine.service(T0 + 12 * S)
    assert [w.token for w, _ in answers] == ["light"]
