"""Leases on a synthetic timeline: concurrency slots, eviction, TTL and idle ends, reservations."""

from __future__ import annotations

import pytest

from ratelimitd.engine import Engine, Waiter
from ratelimitd.engine.leases import LeaseRequest
from ratelimitd.errors import UnknownLease
from ratelimitd.tiers.model import BucketSpec

from .tables import S, rate, single, table

T0 = 1_700_000_000 * S


def ws_engine(concurrent=1, when_full="reject", **kw) -> Engine:
    buckets = {"ws": BucketSpec("ws", kind="concurrency", concurrent=concurrent, when_full=when_full, **kw)}
    return Engine(table(buckets, {"ws": ("ws",)}))


def test_a_concurrency_slot_is_held_until_released():
    engine = ws_engine(concurrent=2)
    first = engine.acquire("k", "ws", None, T0, token="a")
    second = engine.acquire("k", "ws", None, T0, token="b")
    assert first.granted and second.granted and first.extra["lease"] != second.extra["lease"]
    third = engine.acquire("k", "ws", None, T0)
    assert not third.granted and third.remaining == 0
    assert engine.release(first.extra["lease"], T0 + S) == [first.extra["lease"]]
    assert engine.acquire("k", "ws", None, T0 + S).granted
    with pytest.raises(UnknownLease):
        engine.release(first.extra["lease"], T0 + S)


def test_evict_oldest_takes_the_oldest_lease_and_tells_its_holder():
    engine = ws_engine(concurrent=1, when_full="evict-oldest")
    old = engine.acquire("k", "ws", None, T0, token="old-conn")
    new = engine.acquire("k", "ws", None, T0 + S, token="new-conn")
    assert new.granted
    assert engine.leases.notices == [
        ("old-conn", {"push": "lease-ended", "lease": old.extra["lease"], "key": "k", "endpoint": "ws", "reason": "evicted", "bucket": "ws"})
    ]
    with pytest.raises(UnknownLease):
        engine.release(old.extra["lease"], T0 + 2 * S)


def test_a_waiter_for_a_slot_is_served_when_it_is_released():
    engine = ws_engine(concurrent=1)
    held = engine.acquire("k", "ws", None, T0, token="a")
    waiter = engine.acquire("k", "ws", None, T0, deadline=T0 + 60 * S, token="b")
    assert isinstance(waiter, Waiter)
    answers, wake = engine.service(T0 + S)
    assert answers == [] and wake == T0 + 60 * S
    engine.release(held.extra["lease"], T0 + 2 * S)
    answers, _ = engine.service(T0 + 2 * S)
    assert [(w.token, d.granted, "lease" in d.extra) for w, d in answers] == [("b", True, True)]


def test_ttl_and_idle_end_a_lease_and_renewal_keeps_it():
    engine = ws_engine(concurrent=1, idle=45 * 60 * S)
    lease = engine.acquire("k", "ws", None, T0, token="a").extra["lease"]
    _, wake = engine.service(T0)
    assert wake == T0 + 45 * 60 * S
    engine.renew(lease, T0 + 40 * 60 * S)
    engine.service(T0 + 45 * 60 * S)
    assert lease in engine.leases.by_id
    engine.service(T0 + 85 * 60 * S)
    assert lease not in engine.leases.by_id
    assert engine.leases.notices[-1][1]["reason"] == "idle"
    assert engine.acquire("k", "ws", None, T0 + 85 * 60 * S).granted


def test_a_lease_taken_inside_another_ends_with_it():
    engine = ws_engine(concurrent=5)
    parent = engine.acquire("k", "ws", None, T0, token="a").extra["lease"]
    child = engine.acquire("k", "ws", None, T0, token="a", extras=LeaseRequest({"lease": parent})).extra["lease"]
    assert engine.release(parent, T0 + S) == [child, parent]


def test_a_reservation_settles_higher_or_lower_and_stays_charged_in_full_unsettled():
    engine = Engine(single("100/1m"))
    reservation = engine.acquire("k", "e", 10, T0, extras=LeaseRequest(reserve=60 * S))
    assert reservation.granted and reservation.remaining == 90
    assert engine.settle(reservation.extra["lease"], 4, T0 + S) == -6
    assert engine.acquire("k", "e", 0, T0 + S).remaining == 96
    again = engine.acquire("k", "e", 10, T0 + 2 * S, extras=LeaseRequest(reserve=60 * S))
    assert engine.settle(again.extra["lease"], 25, T0 + 3 * S) == 15
    assert engine.acquire("k", "e", 0, T0 + 3 * S).remaining == 71
    unsettled = engine.acquire("k", "e", 10, T0 + 4 * S, extras=LeaseRequest(reserve=5 * S)).extra["lease"]
    engine.service(T0 + 9 * S)
    with pytest.raises(UnknownLease):
        engine.settle(unsettled, 1, T0 + 10 * S)
    assert engine.acquire("k", "e", 0, T0 + 10 * S).remaining == 61


def test_rate_and_concurrency_together_are_all_or_nothing():
    buckets = {
        "rest": BucketSpec("rest", rates=(rate("1/1m"),)),
        "ws": BucketSpec("ws", kind="concurrency", concurrent=2),
    }
    engine = Engine(table(buckets, {"connect": ("rest", "ws")}))
    assert engine.acquire("k", "connect", None, T0).granted
    denied = engine.acquire("k", "connect", None, T0)
    assert not denied.granted and denied.scope == "rest"
    assert engine.show("k", T0)["buckets"][1]["rates"] == [] 
