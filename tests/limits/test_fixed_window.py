"""The fixed window on synthetic timelines (T0 is aligned to every window used here)."""

from __future__ import annotations

import pytest

from ratelimitd.limits import FixedWindow

from .timeline import D, S, T0, rate, run, s

W10 = 10 * S
MINUTE = 60 * S

TABLES = {
    "boundaries": (rate(3, W10), [
        ("first", 0, "acquire", 1, 0),
        ("two more", 3, "acquire", 2, 0),
        ("full until the window turns", 3, "wait", 1, 7),
        ("nothing left", 3, "remaining", None, 0),
        ("remaining grows at the turn", 3, "reset_after", None, 7),
        ("a ns before the turn", "9.999999999", "wait", 1, "0.000000001"),
        ("exactly one window later: all of it", 10, "acquire", 3, 0),
        ("used", 10, "used", None, 3),
        ("full for the whole window", 10, "wait", 1, 10),
        ("round trip", 10, "roundtrip", None, None),
        ("full after the round trip", "19.5", "wait", 1, "0.5"),
    ]),
    "the boundary burst: twice the limit within a millisecond": (rate(3, W10), [
        ("three at the end of a window", "9.999", "acquire", 3, 0),
        ("three more at the start of the next", 10, "acquire", 3, 0),
        ("then nothing for a window", 10, "wait", 1, 10),
    ]),
    "margin spills the last second into the next window": (rate(3, W10, margin=S), [
        ("before the spill zone", "8.999999999", "acquire", 1, 0),
        ("at the spill zone's start", 9, "acquire", 2, 0),
        ("full; the next window starts with two", 9, "wait", 1, 1),
        ("round trip", 9, "roundtrip", None, None),
        ("the spilled two", 10, "used", None, 2),
        ("one left", 10, "remaining", None, 1),
        ("one", 10, "acquire", 1, 0),
        ("full until 20", 10, "wait", 1, 10),
    ]),
    "a full spill fills the next window too": (rate(3, W10, margin=S), [
        ("three in the spill zone", "9.5", "acquire", 3, 0),
        ("the next window is full as well", "9.5", "wait", 1, "10.5"),
        ("two windows later", 20, "acquire", 3, 0),
    ]),
    "fractional costs": (rate(1, S), [
        ("a tenth", 0, "acquire", D("0.1"), 0),
        ("two tenths", 0, "acquire", D("0.2"), 0),
        ("exactly three tenths", 0, "used", None, D("0.3")),
        ("exactly seven left", 0, "remaining", None, D("0.7")),
        ("the rest", "0.5", "acquire", D("0.7"), 0),
        ("a twentieth waits for the turn", "0.5", "wait", D("0.05"), "0.5"),
        ("all of it again", 1, "remaining", None, 1),
    ]),
    "peek": (rate(2, W10), [
        ("fill", 0, "acquire", 2, 0),
        ("a peek on a full window", 1, "wait", 0, 0),
        ("a zero charge", 1, "charge", 0, None),
        ("changes nothing", 1, "used", None, 2),
        ("lower the limit under the use", 1, "retune", rate(1, W10), None),
        ("a peek over the limit", 1, "wait", 0, 0),
        ("a unit waits for the turn", 1, "wait", 1, 9),
    ]),
    "clock steps back": (rate(3, W10), [
        ("fill the window [10, 20)", 15, "acquire", 3, 0),
        ("stepped back into [0, 10): no fresh window", 5, "wait", 1, 15),
        ("nothing left", 5, "remaining", None, 0),
        ("caught up", 20, "acquire", 1, 0),
        ("stepped back below the current window", 18, "acquire", 1, 0),
        ("counted in the current window", 20, "used", None, 2),
        ("one left", 21, "remaining", None, 1),
    ]),
    "clock steps back in the spill zone": (rate(3, W10, margin=S), [
        ("one late in the window", "9.5", "acquire", 1, 0),
        ("one stepped back to before the spill zone", 5, "acquire", 1, 0),
        ("counted as at the latest time seen: spilled", 10, "used", None, 2),
    ]),
    "refund": (rate(3, W10, margin=S), [
        ("two", 0, "acquire", 2, 0),
        ("one", 5, "acquire", 1, 0),
        ("cancel the newest", 5, "refund", 1, None),
        ("one left", 5, "remaining", None, 1),
        ("refund more than was charged", 6, "refund", 5, None),
        ("nothing counts", 6, "used", None, 0),
        ("one in the spill zone", "9.5", "acquire", 1, 0),
        ("cancelled", "9.6", "refund", 1, None),
        ("taken back from the next window too", 10, "remaining", None, 3),
    ]),
    "restrict outlasts the window": (rate(60, MINUTE), [
        ("fifty", 0, "acquire", 50, 0),
        ("provider: none left for 70 s", 50, "restrict", (0, 70), None),
        ("the window turned, the hold did not", 60, "wait", 1, 60),
        ("remaining", 60, "remaining", None, 0),
        ("round trip keeps the hold", 60, "roundtrip", None, None),
        ("hold over", 120, "acquire", 60, 0),
    ]),
    "retune keeps what was spent": (rate(60, MINUTE), [
        ("forty", 0, "acquire", 40, 0),
        ("the limit halves", 10, "retune", rate(30, MINUTE), None),
        ("none left", 10, "remaining", None, 0),
        ("until the window turns", 10, "wait", 1, 50),
        ("then all of the new limit", 60, "acquire", 30, 0),
    ]),
    "retune to a larger margin spills what the window holds": (rate(3, W10), [
        ("one late in the window", "9.5", "acquire", 1, 0),
        ("the margin grows to a second", "9.6", "retune", rate(3, W10, margin=S), None),
        ("the grant may land in the next window", 10, "used", None, 1),
    ]),
    "retune to another window re-counts conservatively": (rate(3, W10), [
        ("three in [10, 20)", 12, "acquire", 3, 0),
        ("the window doubles with the limit", 15, "retune", rate(6, 2 * W10), None),
        ("the three still count in [0, 20)", 15, "remaining", None, 3),
        ("three", 15, "acquire", 3, 0),
        ("full until 20", 15, "wait", 1, 5),
    ]),
}


@pytest.mark.parametrize("table", TABLES, ids=list(TABLES))
def test_fixed_window_timeline(table):
    limit, steps = TABLES[table]
    run(FixedWindow(limit), steps)


def test_windows_are_aligned_to_the_epoch():
    window = FixedWindow(rate(3, W10))
    window.charge(3, T0 + s(7))  # T0 is a multiple of 10 s
    assert window.wait(1, T0 + s(7)) == s(3)


def test_a_restart_off_the_grid_keeps_the_counts_exact_until_they_are_empty():
    window = FixedWindow(rate(3, W10))
    window.charge(2, T0 + s(4))
    dumped_at = T0 + s(5)
    shifted = dumped_at + s("3.25")  # the store moved the stored time by 3.25 s
    restored = FixedWindow.load(window.rate, window.dump(dumped_at), shifted)
    for later in (0, s(1), s(4), s("4.75"), s(5), s(15)):  # same behaviour, 3.25 s on
        assert restored.wait(2, shifted + later) == window.wait(2, dumped_at + later), later
        assert restored.remaining(shifted + later) == window.remaining(dumped_at + later), later
    # idle: back on the epoch's grid
    restored.charge(3, shifted + s(40))
    assert restored.wait(1, shifted + s(40)) == T0 + s(50) - (shifted + s(40))


def test_a_cost_over_the_limit_is_refused_loudly():
    with pytest.raises(ValueError, match="cost 4 exceeds the limit 3"):
        FixedWindow(rate(3, W10)).wait(4, T0)
