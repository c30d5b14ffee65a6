"""Calendar quotas: an allowance per day, week or month of a time zone's calendar, with exact fractional costs.

Struct's monthly credits (1 per REST call, 0.1 or 0.2 per webhook event, billed
integer-rounded at the end of each period) and PolyNode Free's hour of WebSocket
session a day are quotas of this kind: nothing frees with time inside a period,
and everything frees at once when the next period starts.

Periods follow the calendar of ``Quota.timezone`` (an IANA name, "UTC" by
default), so they are DST-correct: a day runs from local midnight to local
midnight (23 or 25 hours across a DST change), a week from local midnight of
its ``anchor`` weekday, a month from local midnight of its ``anchor`` day (the
billing day, 1-28 so that every month has it). Engine time is Unix time in ns
(UTC); ``Quota.bounds(now)`` turns it into the period's start and end.

The state is one period's start and end and the amount used in it. A period
that is over is forgotten: the first call at or after its end starts the next
one from zero. A clock that steps back never turns the period back (nothing
counted is forgotten), and a restore on a timeline shifted by a little keeps
counting the period it was dumped in until the calendar's next one starts.

Amounts are ``int`` or ``Decimal`` and are only ever added and subtracted, so
100,000 charges of 0.1 make exactly 10,000.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError, available_timezones

from ratelimitd_client.amounts import Amount, normalize

from ..units import NS_PER_SECOND, format_duration
from .hold import NEVER, Held

__all__ = [
    "PERIODS",
    "ON_EXHAUST",
    "QUOTA_UNITS",
    "WEEKDAYS",
    "ANCHORS",
    "Quota",
    "CalendarQuota",
    "time_zone",
    "seconds_of",
    "ns_of",
]

# calendar periods a quota may count over
PERIODS = ("day", "week", "month")

# what an exhausted quota does: "deny" refuses until the next period; "allow" grants and counts overage
ON_EXHAUST = ("deny", "allow")

# what a quota's amounts are: "units" of cost, or "seconds" of lease time (a time quota)
QUOTA_UNITS = ("units", "seconds")

# a weekly quota's anchor, 0-6, as ``datetime.date.weekday()`` numbers them
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

# the anchor of each period when none is given: the 1st of the month, Monday, (unused for days)
_DEFAULT_ANCHOR = {"day": 0, "week": 0, "month": 1}

# the anchors each period accepts, lowest and highest: weekdays, and billing days every month has
ANCHORS = {"day": (0, 0), "week": (0, 6), "month": (1, 28)}

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_SECOND = dt.timedelta(seconds=1)
_DAY = dt.timedelta(days=1)


def time_zone(name: str) -> dt.tzinfo:
    """Return the ``tzinfo`` of the IANA time zone ``name``; "UTC" needs no time zone database.

    Raises ``ValueError`` saying why ``name`` cannot be used: it is no zone
    the database knows (with the closest name), or this machine has no
    database at all (where it was looked for, and how to install one).
    """
    if name == "UTC":
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(_zone_problem(name)) from exc


def _zone_problem(name: str) -> str:
    known = available_timezones()
    if not known:
        places = ", ".join(TZPATH) or "no directory (TZPATH is empty)"
        return (
            f"time zone {json.dumps(name)} cannot be used: this machine has no IANA time zone database "
            f"(looked in {places} and for the Python package tzdata); install the system package tzdata "
            f'or `pip install tzdata`, or use "UTC", which needs none'
        )
    match = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {json.dumps(match[0])}?)" if match else ""
    return (
        f"{json.dumps(name)} is not a time zone{hint}: write an IANA name such as "
        f'"UTC", "Europe/Berlin" or "America/New_York"'
    )


def seconds_of(ns: int) -> Amount:
    """Return ``ns`` nanoseconds as an exact amount of seconds (``1_500_000_000`` -> ``Decimal("1.5")``)."""
    if ns % NS_PER_SECOND == 0:
        return ns // NS_PER_SECOND
    return Decimal(ns).scaleb(-9).normalize()


def ns_of(seconds: Amount) -> int:
    """Return an amount of ``seconds`` as whole nanoseconds, rounded down."""
    if type(seconds) is int:
        return seconds * NS_PER_SECOND
    numerator, denominator = seconds.as_integer_ratio()
    return numerator * NS_PER_SECOND // denominator


def _ns(moment: dt.datetime) -> int:
    """Return the Unix time of the aware ``moment`` in ns (offsets are whole seconds)."""
    return ((moment - _EPOCH) // _SECOND) * NS_PER_SECOND


@dataclass(frozen=True, slots=True)
class Quota:
    """An allowance of ``limit`` per calendar ``period`` ("day", "week", "month") in ``timezone``.

    ``anchor`` is where a period starts: for "month" the billing day (1-28,
    default 1), for "week" the weekday (0 = Monday to 6 = Sunday, default 0);
    a day always starts at midnight, so for "day" it is ignored (and 0). ``on_exhaust`` is
    "deny" (refuse until the next period) or "allow" (grant and count the
    overage, as a provider that bills overage instead of blocking). ``unit`` is
    "units" (costs) or "seconds" (lease time: a time quota).

    Raises ``ValueError`` for a value outside these, or a time zone this
    machine does not know (see ``time_zone``).
    """

    limit: Amount
    period: str
    anchor: int | None = None
    timezone: str = "UTC"
    on_exhaust: str = "deny"
    unit: str = "units"

    def __post_init__(self) -> None:
        if isinstance(self.limit, bool) or not isinstance(self.limit, (int, Decimal)) or not self.limit > 0:
            raise ValueError(f"a quota's limit must be a positive int or Decimal, not {self.limit!r}")
        if self.period not in PERIODS:
            raise ValueError(f"period {self.period!r} is not one of {', '.join(PERIODS)}")
        anchor = _DEFAULT_ANCHOR[self.period] if self.anchor is None or self.period == "day" else self.anchor
        low, high = ANCHORS[self.period]
        if isinstance(anchor, bool) or not isinstance(anchor, int) or not low <= anchor <= high:
            raise ValueError(f"anchor {anchor!r} of a {self.period} quota must be an integer from {low} to {high}")
        object.__setattr__(self, "anchor", anchor)
        if self.on_exhaust not in ON_EXHAUST:
            raise ValueError(f"on_exhaust {self.on_exhaust!r} is not one of {', '.join(ON_EXHAUST)}")
        if self.unit not in QUOTA_UNITS:
            raise ValueError(f"unit {self.unit!r} is not one of {', '.join(QUOTA_UNITS)}")
        time_zone(self.timezone)

    def __str__(self) -> str:
        limit = self.limit
        if self.unit == "seconds":
            ns = limit * NS_PER_SECOND  # a tier table's durations count whole ms at the finest
            text = format_duration(int(ns)) if ns % 1_000_000 == 0 else f"{limit}s"
        else:
            text = str(limit)
        text += f"/{self.period}"
        if self.period == "month" and self.anchor != 1:
            text += f", anchor {self.anchor}"
        elif self.period == "week" and self.anchor != 0:
            text += f", anchor {self.anchor} ({WEEKDAYS[self.anchor]})"
        if self.timezone != "UTC":
            text += f", {self.timezone}"
        if self.on_exhaust == "allow":
            text += ", overage allowed"
        return text

    def bounds(self, now: int) -> tuple[int, int]:
        """Return ``(start, end)`` in engine ns of the calendar period that holds ``now`` (start <= now < end)."""
        zone = time_zone(self.timezone)
        date = (_EPOCH + dt.timedelta(seconds=now // NS_PER_SECOND)).astimezone(zone).date()
        first = self._first_day(date)
        start = self._midnight(first, zone)
        while start > now:  # only where a zone's clocks went back across midnight
            first = self._first_day(first - _DAY)
            start = self._midnight(first, zone)
        end = self._midnight(self._next_first_day(first), zone)
        while end <= now:
            first = self._next_first_day(first)
            start, end = end, self._midnight(self._next_first_day(first), zone)
        return start, end

    def _first_day(self, date: dt.date) -> dt.date:
        """Return the local date on which the period holding ``date`` starts."""
        if self.period == "day":
            return date
        if self.period == "week":
            return date - dt.timedelta(days=(date.weekday() - self.anchor) % 7)
        anchor = self.anchor
        if date.day >= anchor:
            return date.replace(day=anchor)
        if date.month == 1:
            return dt.date(date.year - 1, 12, anchor)
        return dt.date(date.year, date.month - 1, anchor)

    def _next_first_day(self, first: dt.date) -> dt.date:
        """Return the local date on which the period after the one starting on ``first`` starts."""
        if self.period == "day":
            return first + _DAY
        if self.period == "week":
            return first + 7 * _DAY
        if first.month == 12:
            return dt.date(first.year + 1, 1, first.day)
        return dt.date(first.year, first.month + 1, first.day)

    @staticmethod
    def _midnight(date: dt.date, zone: dt.tzinfo) -> int:
        """Return the first instant of local ``date`` in ``zone``, in engine ns.

        Where midnight does not exist (clocks jumped over it) this is the
        moment of the jump; where it occurs twice, the first of the two.
        """
        return _ns(dt.datetime(date.year, date.month, date.day, tzinfo=zone))

    def calendar(self) -> tuple[str, int, str]:
        """Return what places the periods: ``(period, anchor, timezone)``."""
        return self.period, self.anchor, self.timezone


class CalendarQuota(Held):
    """What one bucket has used of its quota in the current calendar period.

    The face of the window limits (``limits.base``), with ``quota`` in place
    of ``rate``, plus ``overage``, ``billed``, ``period_start`` and ``period_end``.
    """

    algorithm: ClassVar[str] = "calendar"
    __slots__ = ("quota", "_limit", "_deny", "_start", "_end", "_used", "_last")

    def __init__(self, quota: Quota) -> None:
        self._no_hold()
        self._start = NEVER
        self._end = NEVER
        self._used: Amount = 0
        self._last = NEVER
        self._setup(quota)

    def _setup(self, quota: Quota) -> None:
        self.quota = quota
        self._limit = quota.limit
        self._deny = quota.on_exhaust == "deny"

    def __repr__(self) -> str:
        return f"CalendarQuota({self.quota}, start={self._start}, end={self._end}, used={self._used})"

    def _roll(self, now: int) -> None:
        """Start counting the calendar period of ``now`` (at or after the current period's end)."""
        start, end = self.quota.bounds(now)
        if self._start != NEVER and start <= self._start + (self._end - self._start) // 2 < end:
            # the calendar's period of now is the one counted, whose end came early (a restore on
            # a timeline shifted back a little, or new time zone rules): keep counting it
            self._start, self._end = start, end
            return
        self._start, self._end, self._used = start, end, 0

    # -- deciding ------------------------------------------------------------------

    def wait(self, cost: Amount, now: int) -> int:
        """Report ns from ``now`` until ``cost`` fits: 0, or until the next period starts.

        With ``on_exhaust = "allow"`` always 0: what goes beyond the limit is
        overage. Returns 0 for ``cost == 0`` (a peek). With "deny", raises
        ``ValueError`` when ``cost`` exceeds the limit, which no wait would satisfy.
        A provider's hold (``restrict``) defers a "deny" quota until it ends.
        """
        if now >= self._end:
            self._roll(now)
        if not self._deny or not cost:
            return 0
        if self._used + cost <= self._limit and (now >= self._hold_until or cost <= self._hold_left):
            return 0
        return self._held_wait(cost, now, self._earliest)

    def _earliest(self, cost: Amount, start: int) -> int:
        """Return the first time at or after ``start`` at which the quota allows ``cost``."""
        if cost > self._limit:
            raise ValueError(f"cost {cost} exceeds the limit {self._limit} of quota {self.quota}")
        if start >= self._end or self._used + cost <= self._limit:
            return start
        return self._end

    def charge(self, cost: Amount, now: int) -> None:
        """Record a grant of ``cost`` at ``now`` in the period of ``now`` (nothing for ``cost == 0``).

        At a ``now`` before the current period (a clock that stepped back) the
        grant counts in the current period, which is never turned back.
        """
        if not cost:
            return
        if now >= self._end:
            self._roll(now)
        self._used += cost
        if now > self._last:
            self._last = now
        if now < self._hold_until:
            self._hold_left -= cost

    def charge_at(self, cost: Amount, stamp: int) -> None:
        """Record ``cost`` as if granted at ``stamp`` (restores and corrections; a hold is not charged).

        A ``stamp`` in a period already over counts nowhere: that period is gone.
        """
        if not cost:
            return
        if stamp >= self._end:
            self._roll(stamp)
        elif stamp < self._start:
            return
        self._used += cost
        if stamp > self._last:
            self._last = stamp

    def refund(self, cost: Amount, now: int) -> None:
        """Give back ``cost`` of the current period's use (never below 0; a hold is not given back).

        A charge made in a period that is over has nothing left to give back,
        but this cannot tell: refund only what was charged in this period.
        """
        if now >= self._end:
            self._roll(now)
        left = self._used - cost
        self._used = left if left > 0 else 0

    def restrict(self, remaining: Amount, reset_after: int, now: int) -> None:
        """Adopt a provider's count: at most ``remaining`` more until ``now + reset_after`` (see ``hold``).

        Binds only a "deny" quota's ``wait``; an "allow" quota reports it in ``remaining``.
        """
        Held.restrict(self, remaining, reset_after, now)

    # -- reporting -----------------------------------------------------------------

    def remaining(self, now: int) -> Amount:
        """Report what is left of this period's allowance at ``now`` (never below 0; bounded by a hold)."""
        if now >= self._end:
            self._roll(now)
        left = self._limit - self._used
        return _report(self._held_remaining(left if left > 0 else 0, now))

    def used(self, now: int) -> Amount:
        """Report what this period has used (beyond the limit too, with "allow"), or what a hold implies if more."""
        if now >= self._end:
            self._roll(now)
        used = self._used
        if now < self._hold_until:
            floor = self._limit - self._hold_left
            if floor > used:
                used = floor
        return _report(used)

    def overage(self, now: int) -> Amount:
        """Report what this period used beyond its limit (0 within it).

        With "allow" this is what was granted beyond the allowance, which a
        provider bills; with "deny" only a correction from the provider or a
        limit lowered on reload can make it more than 0.
        """
        if now >= self._end:
            self._roll(now)
        over = self._used - self._limit
        return _report(over) if over > 0 else 0

    def billed(self, now: int) -> int:
        """Report this period's use as the provider bills it: rounded to an integer, half up (2.5 -> 3, 2.4 -> 2).

        Struct bills credits "integer-rounded at the end of each period"; the
        seed does not say which way a half goes, and half up is the common
        billing rule (and never less than the usual half-even).
        """
        if now >= self._end:
            self._roll(now)
        used = self._used
        if type(used) is int:
            return used
        return int(used.quantize(Decimal(1), rounding=ROUND_HALF_UP))

    def reset_after(self, now: int) -> int:
        """Report ns until ``remaining`` next grows: the next period's start, or a binding hold's end; 0 when full.

        (Before the first period is known there is nothing used: 0.)
        """
        if now >= self._end:
            self._roll(now)
        if now < self._hold_until and self._hold_left < self._limit - self._used:
            return self._hold_until - now
        return self._end - now if self._used else 0

    def period_start(self, now: int) -> int:
        """Report the engine time (ns) at which the period counted at ``now`` started."""
        if now >= self._end:
            self._roll(now)
        return self._start

    def period_end(self, now: int) -> int:
        """Report the engine time (ns) at which the period counted at ``now`` ends and the next starts."""
        if now >= self._end:
            self._roll(now)
        return self._end

    # -- persistence and reload ----------------------------------------------------

    def dump(self, now: int) -> Any:
        """Return the state with times relative to ``now``.

        ``{"quota": [limit, period, anchor, timezone, on_exhaust, unit], "start":
        ns since the period started, "end": ns until it ends, "used": …, "last":
        ns since the latest charge}``, plus ``"hold"`` while one is active; only
        ``"quota"`` before the first period is known.
        """
        if self._start != NEVER and now >= self._end:
            self._roll(now)
        quota = self.quota
        state: dict[str, Any] = {
            "quota": [quota.limit, quota.period, quota.anchor, quota.timezone, quota.on_exhaust, quota.unit]
        }
        if self._start != NEVER:
            state.update(start=now - self._start, end=self._end - now, used=self._used)
            if self._last != NEVER:
                state["last"] = now - self._last
        return self._dump_hold(now, state)

    @classmethod
    def load(cls, quota: Quota, data: Any, at: int) -> "CalendarQuota":
        """Rebuild a quota dumped at engine time ``at``, then adopt ``quota``.

        The period keeps the bounds it was dumped with (shifted with the
        timeline), so a restore never starts a fresh period early; a period
        already over by the first call after ``at`` restores as empty.
        """
        dumped = quota
        if data.get("quota"):
            try:
                dumped = Quota(*data["quota"])
            except (TypeError, ValueError):
                dumped = quota  # written by another version, or its zone is gone: count under the new one
        limiter = cls(dumped)
        if "start" in data:
            limiter._start = at - data["start"]
            limiter._end = at + data["end"]
            limiter._used = data["used"]
            if "last" in data:
                limiter._last = at - data["last"]
        limiter._load_hold(data, at)
        if dumped != quota:
            limiter.retune(quota, at)
        return limiter

    def retune(self, quota: Quota, now: int | None = None) -> None:
        """Adopt ``quota`` on reload, keeping what this period has used.

        A new limit, ``on_exhaust`` or ``unit`` applies to the use as it is
        (10,000 -> 5,000 with 6,000 used leaves nothing, or 1,000 overage).
        A new calendar (period, anchor or time zone) carries this period's use
        into the new calendar's period of ``now`` (or of the latest time seen
        when ``now`` is not given): use before this period is not known and is
        not counted, and this period's use is counted whole even where part of
        it falls before the new period's start.
        """
        old = self.quota
        self._setup(quota)
        if self._start == NEVER or quota.calendar() == old.calendar():
            return
        reference = max(self._start, self._last if now is None or now < self._last else now)
        self._start, self._end = quota.bounds(reference)


def _report(amount: Amount) -> Amount:
    """Return ``amount`` as an ``int`` when it is integral (``Decimal("10000.0")`` -> 10000)."""
    return amount if type(amount) is int else normalize(amount)
