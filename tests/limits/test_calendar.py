"""Calendar quotas on synthetic timelines: month ends, billing days, DST days, exact fractions, restores, clock steps.

Each table is a list of steps ``(name, now, op, argument, expected)`` with
``now`` a local calendar time in the quota's zone; failures name the step.
Times are engine ns (Unix time); nothing reads a clock.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Iterable

import pytest

from ratelimitd.limits import calendar
from ratelimitd.limits.calendar import CalendarQuota, Quota, ns_of, seconds_of, time_zone

S = 10**9
H = 3600 * S
DAY = 24 * H
D = Decimal


def has_zone(name: str) -> bool:
    try:
        time_zone(name)
    except ValueError:
        return False
    return True


NEEDS_TZDATA = pytest.mark.skipif(
    not (has_zone("Europe/Berlin") and has_zone("America/New_York") and has_zone("America/Santiago")),
    reason="no IANA time zone database on this machine (install tzdata): the DST cases need Europe/Berlin, "
    "America/New_York and America/Santiago; the UTC cases run without it",
)


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, tz: str = "UTC") -> int:
    """Return the engine time (Unix ns) of a local wall time in ``tz`` (the first one, where it occurs twice)."""
    moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=time_zone(tz))
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (moment - epoch) // dt.timedelta(seconds=1) * S


# ops: "acquire" (wait; charge when it said 0; expected: the wait in ns), "wait" (ns), "charge",
# "charge_at" (argument: (cost, stamp)), "refund", "remaining", "used", "overage", "billed",
# "reset_after" (ns), "period" (expected: (start, end)), "restrict" (argument: (remaining, ns)),
# "retune" (argument: a Quota), "roundtrip" (dump at now, load at now + argument ns: a shifted timeline)
Step = tuple[str, int, str, Any, Any]


def run(limiter: CalendarQuota, steps: Iterable[Step]) -> CalendarQuota:
    """Play ``steps`` on ``limiter``, asserting each expected value with the step's name; return the limiter."""
    for name, now, op, argument, expected in steps:
        where = f"step {name!r}: {op}({argument!r})"
        if op == "acquire":
            got: Any = limiter.wait(argument, now)
            if got == 0:
                limiter.charge(argument, now)
        elif op in ("wait", "refund", "charge"):
            got = getattr(limiter, op)(argument, now)
        elif op in ("remaining", "used", "overage", "billed", "reset_after"):
            got = getattr(limiter, op)(now)
        elif op == "period":
            got = (limiter.period_start(now), limiter.period_end(now))
        elif op == "charge_at":
            cost, stamp = argument
            got = limiter.charge_at(cost, stamp)
        elif op == "restrict":
            remaining, reset = argument
            got = limiter.restrict(remaining, reset, now)
        elif op == "retune":
            got = limiter.retune(argument, now)
        elif op == "roundtrip":
            got = None
            limiter = CalendarQuota.load(limiter.quota, limiter.dump(now), now + argument)
        else:
            raise AssertionError(f"{where}: unknown op")
        assert got == expected, f"{where} = {got!r}, expected {expected!r} ({limiter!r})"
        if isinstance(expected, Decimal):
            assert type(got) is Decimal
    return limiter


MONTHLY = Quota(100, "month")

MONTH_END = [
    ("fresh: the period of Jan 31", at(2024, 1, 31, 12), "period", None, (at(2024, 1, 1), at(2024, 2, 1))),
    ("nothing used: reset_after 0", at(2024, 1, 31, 12), "reset_after", None, 0),
    ("spend 99", at(2024, 1, 31, 12), "acquire", 99, 0),
    ("one more fits", at(2024, 1, 31, 23, 59, 59), "acquire", 1, 0),
    ("full: wait until Feb 1 00:00", at(2024, 1, 31, 23, 59, 59), "wait", 1, S),
    ("remaining 0", at(2024, 1, 31, 23, 59, 59), "remaining", None, 0),
    ("reset_after: the next period", at(2024, 1, 31, 23, 59, 59), "reset_after", None, S),
    ("1 ns before the turn: still full", at(2024, 2, 1) - 1, "wait", 1, 1),
    ("Feb 1 00:00 starts from 0", at(2024, 2, 1), "used", None, 0),
    ("Feb: a leap month, 29 days", at(2024, 2, 1), "period", None, (at(2024, 2, 1), at(2024, 3, 1))),
    ("a full month at once", at(2024, 2, 29, 23), "acquire", 100, 0),
    ("then until Mar 1", at(2024, 2, 29, 23), "wait", 1, H),
    ("Dec turns into the next year", at(2024, 12, 31, 23), "period", None, (at(2024, 12, 1), at(2025, 1, 1))),
    ("and the new year is fresh", at(2025, 1, 1), "remaining", None, 100),
]


def test_month_ends():
    run(CalendarQuota(MONTHLY), MONTH_END)


BILLING_DAY = [
    ("Jan 14: the period from Dec 15", at(2024, 1, 14, 23, 59), "period", None, (at(2023, 12, 15), at(2024, 1, 15))),
    ("spend all", at(2024, 1, 14, 23, 59), "acquire", 100, 0),
    ("until Jan 15 00:00", at(2024, 1, 14, 23, 59), "wait", 1, 60 * S),
    ("Jan 15: a new period", at(2024, 1, 15), "period", None, (at(2024, 1, 15), at(2024, 2, 15))),
    ("and empty", at(2024, 1, 15), "used", None, 0),
    ("Jan 31 is in the period of Jan 15", at(2024, 1, 31, 12), "acquire", 60, 0),
    ("Feb 1 is too: no turn on the 1st", at(2024, 2, 1, 12), "used", None, 60),
    ("Feb 14 still", at(2024, 2, 14, 23), "wait", 41, H),
    ("Feb 15 turns", at(2024, 2, 15), "remaining", None, 100),
]


def test_billing_day_15():
    run(CalendarQuota(Quota(100, "month", anchor=15)), BILLING_DAY)


def test_billing_day_28_in_february_and_march():
    quota = Quota(10, "month", anchor=28)
    assert quota.bounds(at(2023, 3, 1)) == (at(2023, 2, 28), at(2023, 3, 28))  # Feb 28 of a common year
    assert quota.bounds(at(2024, 2, 29)) == (at(2024, 2, 28), at(2024, 3, 28))  # and of a leap year
    assert quota.bounds(at(2024, 1, 5)) == (at(2023, 12, 28), at(2024, 1, 28))


def test_weeks_start_on_the_anchor_weekday():
    # 2024-01-03 is a Wednesday (anchor 2)
    quota = Quota(10, "week", anchor=2)
    assert quota.bounds(at(2024, 1, 3)) == (at(2024, 1, 3), at(2024, 1, 10))
    assert quota.bounds(at(2024, 1, 2, 23)) == (at(2023, 12, 27), at(2024, 1, 3))
    assert quota.bounds(at(2024, 1, 9, 23, 59, 59)) == (at(2024, 1, 3), at(2024, 1, 10))
    assert Quota(10, "week").bounds(at(2024, 1, 3)) == (at(2024, 1, 1), at(2024, 1, 8))  # default: Monday


def test_days_are_utc_midnights_by_default():
    quota = Quota(10, "day")
    assert quota.bounds(at(2024, 1, 1)) == (at(2024, 1, 1), at(2024, 1, 2))
    assert quota.bounds(at(2024, 1, 1) - 1) == (at(2023, 12, 31), at(2024, 1, 1))
    assert (at(2024, 1, 2) - at(2024, 1, 1)) == DAY


@NEEDS_TZDATA
@pytest.mark.parametrize(
    "tz, date, hours",
    [
        ("Europe/Berlin", (2024, 3, 31), 23),  # CET -> CEST at 02:00
        ("Europe/Berlin", (2024, 10, 27), 25),  # CEST -> CET at 03:00
        ("Europe/Berlin", (2024, 6, 1), 24),
        ("America/New_York", (2024, 3, 10), 23),
        ("America/New_York", (2024, 11, 3), 25),
        ("America/Santiago", (2024, 9, 8), 23),  # clocks jump over midnight: the day starts at the jump
    ],
)
def test_a_day_is_midnight_to_midnight_local_time_across_dst(tz, date, hours):
    quota = Quota(10, "day", timezone=tz)
    start, end = quota.bounds(at(*date, 12, tz=tz))
    assert end - start == hours * H
    assert start == at(*date, tz=tz)
    next_day = dt.date(*date) + dt.timedelta(days=1)
    assert end == at(next_day.year, next_day.month, next_day.day, tz=tz)
    assert quota.bounds(start) == (start, end) and quota.bounds(end - 1) == (start, end)


@NEEDS_TZDATA
def test_the_santiago_day_without_a_midnight_starts_when_the_clocks_jump():
    quota = Quota(10, "day", timezone="America/Santiago")
    start, _ = quota.bounds(at(2024, 9, 8, 12, tz="America/Santiago"))
    assert start == at(2024, 9, 8, 4)  # 00:00 -04 never happened; 01:00 -03 is 04:00 UTC
    assert quota.bounds(start - 1)[1] == start


@NEEDS_TZDATA
def test_a_berlin_month_across_the_dst_change():
    tz = "Europe/Berlin"
    steps = [
        ("March starts at 23:00 UTC on Feb 29", at(2024, 3, 15, tz=tz), "period", None,
         (at(2024, 2, 29, 23), at(2024, 3, 31, 22))),
        ("spend it", at(2024, 3, 31, 23, 30, tz=tz), "acquire", 100, 0),
        ("until local midnight, 22:00 UTC", at(2024, 3, 31, 23, 30, tz=tz), "wait", 1, 30 * 60 * S),
        ("April 00:00 CEST is fresh", at(2024, 4, 1, tz=tz), "remaining", None, 100),
        ("UTC would still be in March", at(2024, 3, 31, 23), "used", None, 0),
    ]
    run(CalendarQuota(Quota(100, "month", timezone=tz)), steps)


@NEEDS_TZDATA
def test_a_new_york_daily_quota_over_the_long_day():
    tz = "America/New_York"
    steps = [
        ("spend 10 at 00:30 on the 25-hour day", at(2024, 11, 3, 0, 30, tz=tz), "acquire", 10, 0),
        ("at 23:30 local", at(2024, 11, 3, 23, 30, tz=tz), "wait", 1, 30 * 60 * S),
        ("the day held 25 hours", at(2024, 11, 3, 23, 30, tz=tz), "period", None,
         (at(2024, 11, 3, 4), at(2024, 11, 4, 5))),
        ("the next local midnight is fresh", at(2024, 11, 4, tz=tz), "used", None, 0),
    ]
    run(CalendarQuota(Quota(10, "day", timezone=tz)), steps)


def test_a_hundred_thousand_tenths_make_exactly_ten_thousand():
    quota = CalendarQuota(Quota(10_000, "month"))
    now = at(2024, 5, 1)
    tenth = D("0.1")
    for _ in range(100_000):
        assert quota.wait(tenth, now) == 0
        quota.charge(tenth, now)
    assert quota.used(now) == 10_000 and type(quota.used(now)) is int
    assert quota.remaining(now) == 0
    assert quota.wait(tenth, now) == at(2024, 6, 1) - now
    assert quota.billed(now) == 10_000


FRACTIONS = [
    ("0.2 fits", at(2024, 5, 1), "acquire", D("0.2"), 0),
    ("0.1 fits", at(2024, 5, 1), "acquire", D("0.1"), 0),
    ("used 0.3 exactly", at(2024, 5, 1), "used", None, D("0.3")),
    ("remaining 0.7 exactly", at(2024, 5, 1), "remaining", None, D("0.7")),
    ("0.8 does not", at(2024, 5, 1), "wait", D("0.8"), at(2024, 6, 1) - at(2024, 5, 1)),
    ("0.7 does", at(2024, 5, 1), "acquire", D("0.7"), 0),
    ("a tenth refunded", at(2024, 5, 2), "refund", D("0.1"), None),
    ("0.9 used", at(2024, 5, 2), "used", None, D("0.9")),
    ("billed: 0.9 rounds to 1", at(2024, 5, 2), "billed", None, 1),
    ("a refund never goes below 0", at(2024, 5, 2), "refund", 5, None),
    ("nothing used", at(2024, 5, 2), "used", None, 0),
]


def test_fractional_costs():
    run(CalendarQuota(Quota(1, "month")), FRACTIONS)


@pytest.mark.parametrize(
    "used, billed",
    [(D("2.5"), 3), (D("2.49"), 2), (D("2.4"), 2), (D("3.5"), 4), (D("0.5"), 1), (D("0.1"), 0), (7, 7)],
)
def test_billed_rounds_half_up(used, billed):
    quota = CalendarQuota(Quota(100, "month"))
    quota.charge(used, at(2024, 5, 1))
    assert quota.billed(at(2024, 5, 1)) == billed


OVERAGE = [
    ("the allowance", at(2024, 5, 1), "acquire", 10, 0),
    ("beyond it: granted, no wait", at(2024, 5, 2), "acquire", D("2.5"), 0),
    ("used counts it all", at(2024, 5, 2), "used", None, D("12.5")),
    ("remaining 0", at(2024, 5, 2), "remaining", None, 0),
    ("overage 2.5", at(2024, 5, 2), "overage", None, D("2.5")),
    ("billed 13 (12.5 half up)", at(2024, 5, 2), "billed", None, 13),
    ("a cost above the whole limit is granted too", at(2024, 5, 2), "acquire", 50, 0),
    ("a provider's hold does not block an allow quota", at(2024, 5, 2), "restrict", (0, H), None),
    ("still granted", at(2024, 5, 2), "acquire", 1, 0),
    ("June: fresh, no overage", at(2024, 6, 1), "overage", None, 0),
]


def test_on_exhaust_allow_grants_and_counts_the_overage():
    run(CalendarQuota(Quota(10, "month", on_exhaust="allow")), OVERAGE)


def test_deny_has_no_overage_and_refuses_a_cost_above_the_limit():
    quota = CalendarQuota(Quota(10, "month"))
    quota.charge(10, at(2024, 5, 1))
    assert quota.overage(at(2024, 5, 1)) == 0
    with pytest.raises(ValueError, match="cost 11 exceeds the limit 10 of quota 10/month"):
        quota.wait(11, at(2024, 5, 1))
    quota.charge_at(3, at(2024, 5, 2))  # the provider counted more than we did: recorded, fit or not
    assert quota.overage(at(2024, 5, 2)) == 3


def test_a_peek_never_waits_and_a_zero_charge_changes_nothing():
    quota = CalendarQuota(Quota(5, "day"))
    quota.charge(5, at(2024, 5, 1))
    before = quota.dump(at(2024, 5, 1, 1))
    assert quota.wait(0, at(2024, 5, 1, 1)) == 0
    quota.charge(0, at(2024, 5, 1, 1))
    assert quota.dump(at(2024, 5, 1, 1)) == before
    assert not hasattr(quota, "__dict__")


HOLD = [
    ("spend 4 of 10", at(2024, 5, 1), "acquire", 4, 0),
    ("the provider says 1 more until 10:00", at(2024, 5, 1, 9), "restrict", (1, H), None),
    ("remaining 1", at(2024, 5, 1, 9), "remaining", None, 1),
    ("used as the provider sees it", at(2024, 5, 1, 9), "used", None, 9),
    ("reset_after: when the hold ends", at(2024, 5, 1, 9), "reset_after", None, H),
    ("1 fits", at(2024, 5, 1, 9), "acquire", 1, 0),
    ("2 more wait for the hold's end", at(2024, 5, 1, 9, 30), "wait", 2, 30 * 60 * S),
    ("after it: the quota's own count", at(2024, 5, 1, 10), "remaining", None, 5),
]


def test_a_provider_hold_defers_a_deny_quota():
    run(CalendarQuota(Quota(10, "day")), HOLD)


ROUNDTRIPS = [
    ("spend 50 in January", at(2024, 1, 31, 12), "acquire", 50, 0),
    ("dump and load in the same period", at(2024, 1, 31, 12), "roundtrip", 0, None),
    ("used kept", at(2024, 1, 31, 13), "used", None, 50),
    ("the period kept", at(2024, 1, 31, 13), "period", None, (at(2024, 1, 1), at(2024, 2, 1))),
    ("dump in January, the first call in February", at(2024, 1, 31, 23), "roundtrip", 0, None),
    ("an old period restores as empty", at(2024, 2, 1, 0, 0, 1), "used", None, 0),
    ("spend 70 in February", at(2024, 2, 10), "acquire", 70, 0),
    ("dump on Feb 10", at(2024, 2, 10), "roundtrip", 0, None),
    ("the first call after the restart is a month later: empty", at(2024, 3, 10), "remaining", None, 100),
]


def test_dump_and_load_across_a_period_boundary():
    run(CalendarQuota(MONTHLY), ROUNDTRIPS)


def test_dump_shape_and_a_fresh_quota():
    quota = CalendarQuota(Quota(D("10.5"), "month", anchor=3, on_exhaust="allow"))
    assert quota.dump(at(2024, 5, 1)) == {"quota": [D("10.5"), "month", 3, "UTC", "allow", "units"]}
    quota.charge(D("0.5"), at(2024, 5, 1))
    assert quota.dump(at(2024, 5, 1, 1)) == {
        "quota": [D("10.5"), "month", 3, "UTC", "allow", "units"],
        "start": at(2024, 5, 1, 1) - at(2024, 4, 3),
        "end": at(2024, 5, 3) - at(2024, 5, 1, 1),
        "used": D("0.5"),
        "last": H,
    }
    loaded = CalendarQuota.load(quota.quota, {"quota": [D("10.5"), "month", 3, "UTC", "allow", "units"]}, 0)
    assert loaded.used(at(2024, 5, 1)) == 0


SHIFTED_BACK = [
    ("spend 60 on Jan 31", at(2024, 1, 31, 12), "acquire", 60, 0),
    # the new run's timeline is 5 s behind the old one: the dumped period now ends at 23:59:55
    ("restart on a timeline 5 s behind", at(2024, 1, 31, 12), "roundtrip", -5 * S, None),
    ("after the shifted end, still January by the calendar", at(2024, 1, 31, 23, 59, 58), "used", None, 60),
    ("and the period is the calendar's", at(2024, 1, 31, 23, 59, 58), "period", None, (at(2024, 1, 1), at(2024, 2, 1))),
    ("February by the calendar: fresh", at(2024, 2, 1), "used", None, 0),
]

SHIFTED_AHEAD = [
    ("spend 60 on Jan 31", at(2024, 1, 31, 12), "acquire", 60, 0),
    ("restart on a timeline 5 s ahead", at(2024, 1, 31, 12), "roundtrip", 5 * S, None),
    ("February by the calendar, the dumped period not yet over", at(2024, 2, 1, 0, 0, 2), "used", None, 60),
    ("when it is, February starts fresh (not a month later)", at(2024, 2, 1, 0, 0, 5), "used", None, 0),
    ("and ends with the calendar's February", at(2024, 2, 1, 0, 0, 5), "period", None,
     (at(2024, 2, 1), at(2024, 3, 1))),
]


def test_a_restore_on_a_shifted_timeline_never_starts_a_period_early():
    run(CalendarQuota(MONTHLY), SHIFTED_BACK)
    run(CalendarQuota(MONTHLY), SHIFTED_AHEAD)


CLOCK_BACK = [
    ("spend 80 on Feb 1", at(2024, 2, 1, 0, 0, 10), "acquire", 80, 0),
    ("the clock steps back into January", at(2024, 1, 31, 23, 59), "used", None, 80),
    ("the period is not turned back", at(2024, 1, 31, 23, 59), "period", None, (at(2024, 2, 1), at(2024, 3, 1))),
    ("a charge there counts in February", at(2024, 1, 31, 23, 59), "acquire", 20, 0),
    ("full: the wait is to February's end", at(2024, 1, 31, 23, 59), "wait", 1,
     at(2024, 3, 1) - at(2024, 1, 31, 23, 59)),
    ("forward again: all 100 counted", at(2024, 2, 2), "used", None, 100),
    ("a correction stamped in January counts nowhere", at(2024, 2, 2), "charge_at", (5, at(2024, 1, 15)), None),
    ("still 100", at(2024, 2, 2), "used", None, 100),
]


def test_a_clock_stepping_back_forgets_nothing():
    run(CalendarQuota(MONTHLY), CLOCK_BACK)


def test_charge_at_on_a_fresh_quota_carries_use_over():
    quota = CalendarQuota(MONTHLY)
    quota.charge_at(45, at(2024, 5, 5))
    assert quota.remaining(at(2024, 5, 5)) == 55
    assert quota.wait(56, at(2024, 5, 5)) == at(2024, 6, 1) - at(2024, 5, 5)


RETUNE = [
    ("spend 60", at(2024, 5, 10), "acquire", 60, 0),
    ("a lower limit applies to the use as it is", at(2024, 5, 10), "retune", Quota(50, "month"), None),
    ("nothing left", at(2024, 5, 10), "remaining", None, 0),
    ("a higher one", at(2024, 5, 11), "retune", Quota(200, "month"), None),
    ("140 left", at(2024, 5, 11), "remaining", None, 140),
    ("a new billing day carries the use into its period", at(2024, 5, 12), "retune",
     Quota(200, "month", anchor=15), None),
    ("the period of now on the new calendar", at(2024, 5, 12), "period", None, (at(2024, 4, 15), at(2024, 5, 15))),
    ("use kept", at(2024, 5, 12), "used", None, 60),
    ("the new calendar turns on the 15th", at(2024, 5, 15), "used", None, 0),
    ("spend 10", at(2024, 5, 16), "acquire", 10, 0),
    ("a daily quota now", at(2024, 5, 16, 12), "retune", Quota(20, "day"), None),
    ("today counts the month's use", at(2024, 5, 16, 12), "remaining", None, 10),
    ("tomorrow is fresh", at(2024, 5, 17), "remaining", None, 20),
]


def test_retune_keeps_what_was_spent():
    run(CalendarQuota(Quota(100, "month")), RETUNE)


def test_load_adopts_a_new_quota():
    old = CalendarQuota(Quota(100, "month"))
    old.charge(30, at(2024, 5, 10))
    loaded = CalendarQuota.load(Quota(40, "month", on_exhaust="allow"), old.dump(at(2024, 5, 10)), at(2024, 5, 10))
    assert loaded.quota == Quota(40, "month", on_exhaust="allow")
    assert (loaded.remaining(at(2024, 5, 10)), loaded.wait(20, at(2024, 5, 10))) == (10, 0)


def test_a_time_quota_counts_seconds_of_lease_time():
    # PolyNode Free: WebSocket session 1 hour/day
    quota = CalendarQuota(Quota(3600, "day", unit="seconds"))
    morning = at(2024, 5, 1, 9)
    quota.charge(seconds_of(1_800_500_000_000), morning)  # a session of 30 min 0.5 s
    assert quota.remaining(morning) == D("1799.5")
    assert ns_of(quota.remaining(morning)) == 1_799_500_000_000  # what a new session may still hold
    quota.charge(seconds_of(1_799_500_000_000), morning + H)
    assert quota.remaining(morning + H) == 0
    assert quota.wait(seconds_of(1), morning + H) == at(2024, 5, 2) - (morning + H)
    assert str(quota.quota) == "1h/day"


@pytest.mark.parametrize(
    "ns, seconds", [(0, 0), (S, 1), (1_500_000_000, D("1.5")), (1, D("1E-9")), (3600 * S + 7, D("3600.000000007"))]
)
def test_seconds_of_and_back(ns, seconds):
    assert seconds_of(ns) == seconds
    assert ns_of(seconds) == ns


@pytest.mark.parametrize(
    "quota, text",
    [
        (Quota(10_000, "month"), "10000/month"),
        (Quota(D("0.5"), "week", anchor=6), "0.5/week, anchor 6 (Sunday)"),
        (Quota(10, "month", anchor=15, on_exhaust="allow"), "10/month, anchor 15, overage allowed"),
        (Quota(D("1.5"), "day", unit="seconds"), "1500ms/day"),
        (Quota(D("0.0001"), "day", unit="seconds"), "0.0001s/day"),
    ],
)
def test_quota_text(quota, text):
    assert str(quota) == text


@NEEDS_TZDATA
def test_quota_text_names_its_zone():
    assert str(Quota(5, "day", timezone="Europe/Berlin")) == "5/day, Europe/Berlin"


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((0, "month"), "a quota's limit must be a positive int or Decimal, not 0"),
        ((1.5, "month"), "a quota's limit must be a positive int or Decimal, not 1.5"),
        ((10, "year"), "period 'year' is not one of day, week, month"),
        ((10, "month", 29), "anchor 29 of a month quota must be an integer from 1 to 28"),
        ((10, "month", 0), "anchor 0 of a month quota must be an integer from 1 to 28"),
        ((10, "week", 7), "anchor 7 of a week quota must be an integer from 0 to 6"),
        ((10, "month", 1, "UTC", "block"), "on_exhaust 'block' is not one of deny, allow"),
        ((10, "month", 1, "UTC", "deny", "hours"), "unit 'hours' is not one of units, seconds"),
    ],
)
def test_quota_refuses_what_it_cannot_count(arguments, message):
    with pytest.raises(ValueError) as error:
        Quota(*arguments)
    assert str(error.value) == message


def test_a_day_ignores_its_anchor():
    assert Quota(10, "day", anchor=5) == Quota(10, "day")
    assert Quota(10, "day", anchor=5).anchor == 0


@NEEDS_TZDATA
def test_an_unknown_time_zone_names_the_closest():
    with pytest.raises(ValueError) as error:
        Quota(10, "day", timezone="Europe/Berln")
    assert str(error.value) == (
        '"Europe/Berln" is not a time zone (did you mean "Europe/Berlin"?): write an IANA name such as '
        '"UTC", "Europe/Berlin" or "America/New_York"'
    )


def test_without_a_time_zone_database_only_utc_works(monkeypatch):
    def missing(name):
        raise calendar.ZoneInfoNotFoundError(f"No time zone found with key {name}")

    monkeypatch.setattr(calendar, "ZoneInfo", missing)
    monkeypatch.setattr(calendar, "available_timezones", set)
    monkeypatch.setattr(calendar, "TZPATH", ("/usr/share/zoneinfo", "/etc/zoneinfo"))
    assert Quota(10, "day").bounds(at(2024, 5, 1, 12)) == (at(2024, 5, 1), at(2024, 5, 2))
    with pytest.raises(ValueError) as error:
        Quota(10, "day", timezone="Europe/Berlin")
    assert str(error.value) == (
        'time zone "Europe/Berlin" cannot be used: this machine has no IANA time zone database '
        "(looked in /usr/share/zoneinfo, /etc/zoneinfo and for the Python package tzdata); install the system "
        'package tzdata or `pip install tzdata`, or use "UTC", which needs none'
    )
