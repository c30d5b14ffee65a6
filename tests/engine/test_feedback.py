"""Provider feedback on a synthetic timeline: a 429 holds, capacity returns gradually, stricter counts win."""

from __future__ import annotations

import pytest

from ratelimitd.engine import Engine
from ratelimitd.engine.feedback import RELEASE_STEPS, apply_report
from ratelimitd.errors import BadRequest
from ratelimitd.tiers.model import BucketSpec

from .tables import S, rate, single, table

T0 = 1_700_000_000 * S


def test_a_429_with_retry_after_holds_every_bucket_of_the_endpoint():
    engine = Engine(single("100/1m"))
    assert engine.acquire("k", "e", None, T0).granted
    applied = apply_report(engine, "k", "e", None, 429, T0 + S, retry_after=12 * S)
    assert applied == [{"bucket": "b", "action": "hold", "until": (T0 + 13 * S) / 1e9, "remaining": 0}]
    denied = engine.acquire("k", "e", None, T0 + 2 * S)
    assert not denied.granted and denied.reason == "hold" and denied.retry_after == 11 * S
    assert engine.acquire("k", "e", None, T0 + 13 * S).granted


def test_after_a_hold_capacity_comes_back_over_a_window_not_in_one_burst():
    engine = Engine(single("100/1m"))
    apply_report(engine, "k", "e", None, 429, T0, retry_after=10 * S)
    granted_at_release = sum(engine.acquire("k", "e", None, T0 + 10 * S).granted for _ in range(100))
    assert granted_at_release == 100 // RELEASE_STEPS
    later = sum(engine.acquire("k", "e", None, T0 + 10 * S + 30 * S).granted for _ in range(100))
    assert granted_at_release + later <= 100 // 2 + 100 // RELEASE_STEPS
    assert sum(engine.acquire("k", "e", None, T0 + 10 * S + 60 * S).granted for _ in range(100)) > 0


def test_a_429_without_a_time_holds_at_least_until_our_oldest_grant_ages_out():
    engine = Engine(single("10/10s"))
    engine.acquire("k", "e", None, T0)
    apply_report(engine, "k", "e", None, 429, T0 + S)
    assert not engine.acquire("k", "e", None, T0 + 9 * S).granted


def test_a_lower_remaining_is_adopted_until_the_reset_and_a_higher_one_is_only_drift():
    engine = Engine(single("60/1m"))
    for _ in range(10):
        engine.acquire("k", "e", None, T0)
    applied = apply_report(engine, "k", "e", None, 200, T0 + S, remaining=5, reset_at=T0 + 20 * S)
    assert applied[0]["action"] == "restrict" and applied[0]["remaining"] == 5
    assert sum(engine.acquire("k", "e", None, T0 + 2 * S).granted for _ in range(10)) == 5
    assert engine.acquire("k", "e", None, T0 + 20 * S).granted
    looser = apply_report(engine, "k", "e", None, 200, T0 + 21 * S, remaining=59)
    assert looser[0]["action"] == "none"
    bucket = engine.show("k", T0 + 21 * S)["buckets"][0]
    assert bucket["feedback"]["corrections"] == 1 and bucket["feedback"]["drift"] < 0


def test_a_report_naming_a_bucket_holds_only_that_bucket():
    buckets = {"standard": BucketSpec("standard", rates=(rate("100/1m"),)), "heavy": BucketSpec("heavy", rates=(rate("100/1m"),))}
    engine = Engine(table(buckets, {"rest": ("standard",), "heavy": ("standard", "heavy")}))
    apply_report(engine, "k", None, "heavy", 429, T0, retry_after=30 * S)
    assert engine.acquire("k", "rest", None, T0 + S).granted
    denied = engine.acquire("k", "heavy", None, T0 + S)
    assert not denied.granted and denied.scope == "heavy"


def test_a_report_must_name_a_real_bucket_or_an_endpoint():
    engine = Engine(single("1/1s"))
    with pytest.raises(BadRequest, match="key 'k' has no bucket 'v3_heavy'"):
        apply_report(engine, "k", None, "v3_heavy", 429, T0)
    with pytest.raises(BadRequest, match="names an 'endpoint' or a 'bucket'"):
        apply_report(engine, "k", None, None, 429, T0)
