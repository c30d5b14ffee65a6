"""The sliding-window counter on synthetic timelines, its exact weighting, and its documented over-grant."""

from __future__ import annotations

import pytest

from ratelimitd.limits import SlidingWindow

from .timeline import D, S, T0, rate, run

W10 = 10 * S
MINUTE = 60 * S

TABLES = {
    "boundaries and the weighting": (rate(4, W10), [
        ("four", 2, "acquire", 4, 0),
        ("the next window weighs the previous 4 down to 3 at 12.5 s", 2, "wait", 1, "10.5"),
        ("a ns before", "12.499999999", "wait", 1, "0.000000001"),
        ("exactly then", "12.5", "acquire", 1, 0),
        ("estimate 4 * 7.5/10 + 1", "12.5", "used", None, 4),
        ("estimate 4 * 5/10 + 1", 15, "used", None, 3),
        ("one left", 15, "remaining", None, 1),
        ("a whole unit more at 17.5 s", 15, "reset_after", None, "2.5"),
        ("round trip", 15, "roundtrip", None, None),
        ("estimate 4 * 2.5/10 + 1", "17.5", "remaining", None, 2),
        ("exactly one window later: only the one counts", 20, "remaining", None, 3),
    ]),
    "a weight with no finite decimal form is rounded the safe way": (rate(1, 3 * S), [
        ("one", 0, "acquire", 1, 0),
        ("two thirds of it still weigh", 4, "used", None, D("0.666666666667")),
        ("a third is free", 4, "remaining", None, D("0.333333333333")),
    ]),
    "the over-grant a sliding log would refuse": (rate(10, W10), [
        ("ten at the very end of a window", "9.999", "acquire", 10, 0),
        ("the turn: the previous window weighs in full", 10, "wait", 1, 1),
        *[(f"one more at {k} s", k, "acquire", 1, 0) for k in range(11, 20)],
        ("nineteen grants within 9.001 s; now full", 19, "wait", 1, 1),
    ]),
    "margin spills the last second into the next window": (rate(4, W10, margin=S), [
        ("two in the spill zone", "9.5", "acquire", 2, 0),
        ("round trip", "9.5", "roundtrip", None, None),
        ("the next window starts with them, and weighs them as previous too", 10, "remaining", None, 0),
        ("until 2 * (20 - t)/10 + 2 leaves one", 10, "wait", 1, 5),
    ]),
    "fractional costs": (rate(1, S), [
        ("a tenth", 0, "acquire", D("0.1"), 0),
        ("two tenths", 0, "acquire", D("0.2"), 0),
        ("exactly three tenths", 0, "used", None, D("0.3")),
        ("exactly seven left", 0, "remaining", None, D("0.7")),
        ("half of them weigh half a window on", "1.5", "used", None, D("0.15")),
        ("and the rest is free", "1.5", "remaining", None, D("0.85")),
        ("eight tenths fit", "1.5", "acquire", D("0.8"), 0),
        ("a tenth fits once 0.3 * (2 - t) <= 0.1, rounded up to the ns", "1.5", "wait", D("0.1"), "0.166666667"),
    ]),
    "peek": (rate(2, W10), [
        ("fill", 0, "acquire", 2, 0),
        ("a peek on a full window", 1, "wait", 0, 0),
        ("a zero charge", 1, "charge", 0, None),
        ("changes nothing", 1, "used", None, 2),
        ("lower the limit under the use", 1, "retune", rate(1, W10), None),
        ("a peek over the limit", 1, "wait", 0, 0),
        ("no room even with no weight: a unit waits until the two weigh nothing", 1, "wait", 1, 19),
    ]),
    "clock steps back": (rate(4, W10), [
        ("four in [10, 20)", 15, "acquire", 4, 0),
        ("stepped back into [0, 10): no fresh window", 5, "wait", 1, "17.5"),
        ("nothing left", 5, "remaining", None, 0),
        ("the next window", 22, "remaining", None, D("0.8")),
        ("stepped back before it: weighed as at its start", 18, "remaining", None, 0),
        ("and waits as from its start", 18, "wait", 1, "4.5"),
    ]),
    "refund": (rate(4, W10), [
        ("three", 0, "acquire", 3, 0),
        ("cancel one", 1, "refund", 1, None),
        ("two weigh in full at the turn", 10, "remaining", None, 2),
        ("cancel more than the current window holds", 10, "refund", 1, None),
        ("taken from the previous window", 10, "remaining", None, 3),
    ]),
    "restrict outlasts the window": (rate(60, MINUTE), [
        ("fifty", 0, "acquire", 50, 0),
        ("provider: none left for 100 s", 50, "restrict", (0, 100), None),
        ("by 120 s the counter alone would allow all, but the hold says none", 120, "remaining", None, 0),
        ("held until 150 s", 120, "wait", 1, 30),
        ("round trip keeps the hold", 120, "roundtrip", None, None),
        ("hold over", 150, "acquire", 60, 0),
    ]),
    "retune keeps what was spent": (rate(60, MINUTE), [
        ("forty", 0, "acquire", 40, 0),
        ("the limit halves", 10, "retune", rate(30, MINUTE), None),
        ("none left", 10, "remaining", None, 0),
        ("until 40 * (120 - t)/60 <= 29", 10, "wait", 1, "66.5"),
    ]),
}


@pytest.mark.parametrize("table", TABLES, ids=list(TABLES))
def test_sliding_window_timeline(table):
    limit, steps = TABLES[table]
    run(SlidingWindow(limit), steps)


def test_decimal_weighting_is_exact_beyond_the_decimal_context():
    # previous * window = 1e13 + 2e-15 ns: 28-digit Decimal arithmetic would round it to exactly
    # room * window = 1e13 and let the cost in at the window's start; exactly, it fits 1 ns later
    window = 20_000 * S
    counter = SlidingWindow(rate(1, window))
    start = T0 - T0 % window + window
    counter.charge(D("0.5000000000000000000000000001"), start - 1)
    assert counter.wait(D("0.5"), start) == 1
    assert counter.wait(D("0.5"), start + 1) == 0


def test_a_cost_over_the_limit_is_refused_loudly():
    with pytest.raises(ValueError, match="cost 5 exceeds the limit 4"):
        SlidingWindow(rate(4, W10)).wait(5, T0)
