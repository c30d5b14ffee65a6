"""The sliding log on synthetic timelines: boundaries, margin, fractions, peeks, clock steps, refunds, holds."""

from __future__ import annotations

import pytest

from ratelimitd.limits import SlidingLog

from .timeline import D, S, T0, rate, run, s

W10 = 10 * S
MINUTE = 60 * S

TABLES = {
    "boundaries": (rate(3, W10), [
        ("first", 0, "acquire", 1, 0),
        ("second", 0, "acquire", 1, 0),
        ("third", 4, "acquire", 1, 0),
        ("full", 4, "wait", 1, 6),
        ("two wait for both oldest", 4, "wait", 2, 6),
        ("nothing left", 4, "remaining", None, 0),
        ("oldest ages out in", 4, "reset_after", None, 6),
        ("a ns before one window later", "9.999999999", "wait", 1, "0.000000001"),
        ("exactly one window later", 10, "acquire", 2, 0),
        ("used", 10, "used", None, 3),
        ("full again", 10, "wait", 1, 4),
        ("round trip", 10, "roundtrip", None, None),
        ("after the round trip", 14, "acquire", 1, 0),
    ]),
    "margin": (rate(3, W10, margin=250 * 10**6), [
        ("a whole burst", 0, "acquire", 3, 0),
        ("one window later is not enough", 10, "wait", 1, "0.25"),
        ("a ns short", "10.249999999", "wait", 1, "0.000000001"),
        ("one window and the margin later", "10.25", "acquire", 3, 0),
    ]),
    "fractional costs": (rate(1, S), [
        ("a tenth", 0, "acquire", D("0.1"), 0),
        ("two tenths", 0, "acquire", D("0.2"), 0),
        ("exactly three tenths", 0, "used", None, D("0.3")),
        ("exactly seven left", 0, "remaining", None, D("0.7")),
        ("the rest", "0.5", "acquire", D("0.7"), 0),
        ("a twentieth waits for the first tenth", "0.5", "wait", D("0.05"), "0.5"),
        ("the first two age out", 1, "remaining", None, D("0.3")),
        ("round trip", 1, "roundtrip", None, None),
        ("still exact", 1, "used", None, D("0.7")),
    ]),
    "peek": (rate(2, W10), [
        ("fill", 0, "acquire", 2, 0),
        ("a peek on a full log", 1, "wait", 0, 0),
        ("a zero charge", 1, "charge", 0, None),
        ("changes nothing", 1, "used", None, 2),
        ("lower the limit under the use", 1, "retune", rate(1, W10), None),
        ("a peek over the limit", 1, "wait", 0, 0),
        ("a unit waits", 1, "wait", 1, 9),
    ]),
    "clock steps back": (rate(3, W10), [
        ("fill at 100", 100, "acquire", 3, 0),
        ("stepped back 5 s: nothing forgotten", 95, "wait", 1, 15),
        ("nothing left", 95, "remaining", None, 0),
        ("caught up", 110, "acquire", 1, 0),
        ("stepped back again", 105, "acquire", 1, 0),
        ("kept in order", 105, "acquire", 1, 0),
        ("full: the oldest is the one at 105", 105, "wait", 1, 10),
        ("the step-back grants age out first", 115, "remaining", None, 2),
    ]),
    "refund": (rate(3, W10), [
        ("two", 0, "acquire", 2, 0),
        ("one", 5, "acquire", 1, 0),
        ("cancel the newest", 5, "refund", 1, None),
        ("one left", 5, "remaining", None, 1),
        ("two wait for the first grant", 5, "wait", 2, 5),
        ("refund more than was charged", 6, "refund", 5, None),
        ("nothing counts", 6, "used", None, 0),
        ("all free", 6, "acquire", 3, 0),
    ]),
    "restrict outlasts the log's own expiry": (rate(60, MINUTE), [
        ("fifty", 0, "acquire", 50, 0),
        ("provider: none left for 30 s", 50, "restrict", (0, 30), None),
        ("held", 50, "wait", 1, 30),
        ("the fifty aged out, the hold did not", 60, "wait", 1, 20),
        ("remaining", 60, "remaining", None, 0),
        ("remaining grows when the hold ends", 60, "reset_after", None, 20),
        ("used reflects the hold", 60, "used", None, 60),
        ("round trip keeps the hold", 60, "roundtrip", None, None),
        ("still held", 70, "wait", 1, 10),
        ("hold over", 80, "acquire", 60, 0),
    ]),
    "restrict to a count": (rate(60, MINUTE), [
        ("ten", 0, "acquire", 10, 0),
        ("provider: five left for 30 s", 1, "restrict", (5, 30), None),
        ("five left", 1, "remaining", None, 5),
        ("four", 2, "acquire", 4, 0),
        ("one more", 3, "acquire", 1, 0),
        ("the hold is spent", 4, "wait", 1, 27),
        ("a looser word is ignored", 4, "restrict", (40, 10), None),
        ("still spent", 4, "wait", 1, 27),
        ("a refund does not give to the hold", 4, "refund", 1, None),
        ("still spent after the refund", 4, "wait", 1, 27),
        ("after the hold, the log (refund included) decides", 31, "remaining", None, 46),
    ]),
    "restrict longer than the window": (rate(60, MINUTE), [
        ("one", 0, "acquire", 1, 0),
        ("429 with retry-after 120 s", 0, "restrict", (0, 120), None),
        ("held past the window", 100, "wait", 1, 20),
        ("free at the end", 120, "acquire", 60, 0),
    ]),
    "restrict merges the stricter of both": (rate(60, MINUTE), [
        ("three left for 10 s", 0, "restrict", (3, 10), None),
        ("five left for 20 s", 0, "restrict", (5, 20), None),
        ("three left", 0, "remaining", None, 3),
        ("three", 0, "acquire", 3, 0),
        ("held until 20 s", 0, "wait", 1, 20),
    ]),
    "retune keeps what was spent": (rate(60, MINUTE), [
        ("forty", 0, "acquire", 40, 0),
        ("the limit halves", 10, "retune", rate(30, MINUTE), None),
        ("none left", 10, "remaining", None, 0),
        ("until the forty age out", 10, "wait", 1, 50),
        ("then all of the new limit", 60, "acquire", 30, 0),
    ]),
}


@pytest.mark.parametrize("table", TABLES, ids=list(TABLES))
def test_sliding_log_timeline(table):
    limit, steps = TABLES[table]
    run(SlidingLog(limit), steps)


def test_a_cost_over_the_limit_is_refused_loudly():
    log = SlidingLog(rate(3, W10))
    log.charge(3, T0)
    with pytest.raises(ValueError, match="cost 4 exceeds the limit 3"):
        log.wait(4, T0)


def test_the_older_plain_list_dump_still_loads():
    log = SlidingLog.load(rate(3, W10), [[s(2), 1], [s(1), 2]], T0)
    assert log.used(T0) == 3
    assert log.wait(1, T0) == s(8)
