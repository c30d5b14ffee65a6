"""GCRA on synthetic timelines: burst and refill, the margin, rounding of the emission interval, holds, reloads."""

from __future__ import annotations

import pytest

from ratelimitd.limits import GCRA, Rate
from ratelimitd.limits.gcra import emission_interval

from .timeline import D, MS, S, T0, rate, run, s

W10 = 10 * S
MINUTE = 60 * S

TABLES = {
    "burst and refill": (rate(10, W10), [
        ("a full burst", 0, "acquire", 10, 0),
        ("then one per emission interval", 0, "wait", 1, 1),
        ("nothing left", 0, "remaining", None, 0),
        ("used", 0, "used", None, 10),
        ("a whole unit back in", 0, "reset_after", None, 1),
        ("a ns early", "0.999999999", "wait", 1, "0.000000001"),
        ("one", 1, "acquire", 1, 0),
        ("two need two intervals", 1, "wait", 2, 2),
        ("round trip", 1, "roundtrip", None, None),
        ("half drained", 6, "remaining", None, 5),
        ("one window after the burst", 10, "remaining", None, 9),
        ("full again", 11, "remaining", None, 10),
        ("nothing to wait for", 11, "reset_after", None, 0),
    ]),
    "a burst below the limit": (rate(10, W10, burst=3), [
        ("three at once", 0, "acquire", 3, 0),
        ("then one per second", 0, "wait", 1, 1),
        ("one", 1, "acquire", 1, 0),
        ("full to the burst, not the limit", 100, "remaining", None, 3),
        ("more than the burst", 100, "acquire", 3, 0),
    ]),
    "a burst above the limit": (rate(1, S, burst=5), [
        ("five at once", 0, "acquire", 5, 0),
        ("then one per second", 0, "wait", 1, 1),
    ]),
    "margin: drained as if it arrived late": (rate(10, W10, margin=100 * MS), [
        ("nine at once", 0, "acquire", 9, 0),
        ("the tenth waits for the margin's share of the burst", 0, "wait", 1, "0.1"),
        ("remaining", 0, "remaining", None, D("0.9")),
        ("used includes the margin's share", 0, "used", None, D("9.1")),
        ("the tenth", "0.1", "acquire", 1, 0),
        ("the steady rate is unchanged", "0.1", "wait", 1, 1),
        ("round trip", "0.1", "roundtrip", None, None),
        ("after an idle spell a single request does not wait", 100, "acquire", 1, 0),
    ]),
    "fractional costs": (rate(10, W10), [
        ("a tenth", 0, "acquire", D("0.1"), 0),
        ("two tenths", 0, "acquire", D("0.2"), 0),
        ("exactly three tenths", 0, "used", None, D("0.3")),
        ("exactly 9.7 left", 0, "remaining", None, D("9.7")),
        ("round trip", 0, "roundtrip", None, None),
        ("still exact", 0, "used", None, D("0.3")),
        ("drained", "0.3", "remaining", None, 10),
    ]),
    "a fractional burst": (rate(1, S, burst=D("2.5")), [
        ("the whole burst", 0, "acquire", D("2.5"), 0),
        ("half a unit in half a second", 0, "wait", D("0.5"), "0.5"),
    ]),
    "the emission interval rounds up: never faster than the rate": (rate(7, MINUTE), [
        ("seven at once", 0, "acquire", 7, 0),
        ("one per 60/7 s, rounded up to the ns", 0, "wait", 1, "8.571428572"),
        ("one window later 4 ns of the burst are still held", 60, "remaining", None, D("6.999999999533")),
        ("full a few ns later", "60.000000004", "remaining", None, 7),
    ]),
    "peek": (rate(2, W10), [
        ("fill", 0, "acquire", 2, 0),
        ("a peek on a full bucket", 1, "wait", 0, 0),
        ("a zero charge", 1, "charge", 0, None),
        ("changes nothing", 1, "used", None, D("1.8")),
        ("lower the limit under the use", 1, "retune", rate(1, W10), None),
        ("a peek over the limit", 1, "wait", 0, 0),
    ]),
    "clock steps back": (rate(10, W10), [
        ("a burst at 100", 100, "acquire", 10, 0),
        ("stepped back 5 s: the bucket looks fuller, never emptier", 95, "wait", 1, 6),
        ("nothing left", 95, "remaining", None, 0),
        ("one", 101, "acquire", 1, 0),
        ("stepped back again", 99, "wait", 1, 3),
    ]),
    "refund": (rate(10, W10, margin=100 * MS), [
        ("four", 0, "acquire", 4, 0),
        ("give one back", 0, "refund", 1, None),
        ("three and the margin held", 0, "used", None, D("3.1")),
        ("give back more than was charged", 0, "refund", 10, None),
        ("empty again, margin and all", 0, "used", None, 0),
        ("four more", 0, "acquire", 4, 0),
        ("another bucket's worth of refunds", 0, "refund", 10, None),
        ("a refund with nothing charged since gives nothing", 0, "refund", 1, None),
        ("empty", 0, "used", None, 0),
        ("the whole burst", 1, "acquire", 10, 0),
    ]),
    "restrict outlasts the refill": (rate(10, W10), [
        ("five", 0, "acquire", 5, 0),
        ("provider: none left for 30 s", 1, "restrict", (0, 30), None),
        ("held", 1, "wait", 1, 30),
        ("drained, still held", 20, "remaining", None, 0),
        ("round trip keeps the hold", 20, "roundtrip", None, None),
        ("hold over", 31, "acquire", 10, 0),
    ]),
    "retune keeps what the bucket holds": (rate(60, MINUTE), [
        ("forty", 10, "acquire", 40, 0),
        ("the limit halves: 40 held of a burst of 30", 10, "retune", rate(30, MINUTE), None),
        ("none left", 10, "remaining", None, 0),
        ("used", 10, "used", None, 40),
        ("until 11 drain at 2 s each", 10, "wait", 1, 22),
    ]),
}


@pytest.mark.parametrize("table", TABLES, ids=list(TABLES))
def test_gcra_timeline(table):
    limit, steps = TABLES[table]
    run(GCRA(limit), steps)


@pytest.mark.parametrize(
    "limit, window, burst, expected",
    [
        (60, MINUTE, None, S),
        (7, MINUTE, None, 8_571_428_572),  # 60/7 s rounded up
        (D("0.5"), S, None, 2 * S),
        (3, 10, D("2.5"), 4),  # ceil(10/3) = 4 is even, so 2.5 * 4 is whole
        (3, 7, D("2.5"), 4),  # ceil(7/3) = 3 rounded up to a multiple of 2
    ],
)
def test_the_emission_interval_is_rounded_up(limit, window, burst, expected):
    assert emission_interval(Rate(limit, window, 0, burst)) == expected


def test_retune_without_now_never_loosens():
    # charged at 0: 40 of 60/1m; reloaded at 10 s without now, converted at the last charge
    slower = GCRA(rate(60, MINUTE))
    slower.charge(40, T0)
    slower.retune(rate(30, MINUTE))
    exact = GCRA(rate(60, MINUTE))
    exact.charge(40, T0)
    exact.retune(rate(30, MINUTE), T0 + s(10))
    assert slower.wait(1, T0 + s(10)) >= exact.wait(1, T0 + s(10)) > 0
    faster = GCRA(rate(60, MINUTE))
    faster.charge(40, T0)
    faster.retune(rate(120, MINUTE))
    exact = GCRA(rate(60, MINUTE))
    exact.charge(40, T0)
    exact.retune(rate(120, MINUTE), T0 + s(10))
    assert faster.remaining(T0 + s(10)) <= exact.remaining(T0 + s(10))


def test_a_cost_over_the_burst_is_refused_loudly():
    with pytest.raises(ValueError, match="cost 4 exceeds the burst 3"):
        GCRA(rate(10, W10, burst=3)).wait(4, T0)
