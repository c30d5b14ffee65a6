"""GCRA, the generic cell rate algorithm: a token bucket with a burst, kept as one time, ``tat``.

The model is redis-cell (and ITU-T I.371's virtual scheduling algorithm), with
its names:

- ``emission_interval`` ``T``: the time one unit of cost takes to drain,
  ``window / limit``. Rounded **up** to whole ns (and further up, by less than
  the burst's decimal denominator, so that ``burst * T`` is whole), which makes
  the steady rate at most ``limit / window``, never more.
- ``tat``, the theoretical arrival time: when the bucket would be empty again
  had everything charged so far drained at the steady rate. Charging ``cost``
  at ``now`` sets ``tat = max(tat, now) + cost * T`` (``cost * T`` rounded up).
- ``delay_variation_tolerance`` ``τ``: how far ``tat`` may run ahead of
  ``now`` once a charge is counted, ``burst * T`` (redis-cell's
  ``emission_interval * (max_burst + 1)``; ITU-T's cell-delay tolerance is
  this less one ``T``). A cost fits at ``now`` when
  ``max(tat, now) + cost * T - now <= τ``; otherwise it fits that many ns later.

So a full bucket takes ``burst`` at once, then refills one unit per ``T``. Over
any interval of length ``I``, grants never exceed ``burst + I / T`` — the
property a leaky-bucket provider (nginx ``limit_req``) enforces. It is *not* a
sliding window: within one window it allows up to ``burst + limit``.

The safety margin ``M``: each grant is taken to reach the provider anywhere in
``[now, now + M]``. It is checked as if it arrived at once and drained as if it
arrived ``M`` late: the charge starts from ``max(tat, now + M)``. A provider
running GCRA with the same ``T`` and ``τ`` then accepts every request whose
arrival was delayed by at most ``M``, whatever the order they arrive in. It
costs ``M / T`` units of the burst after an idle spell and nothing of the
steady rate; it never loosens (``tat`` only grows with it).

A clock that steps back needs no special case: ``tat`` is never lowered by an
earlier ``now``, so an earlier ``now`` only sees a fuller bucket (as in
golang.org/x/time/rate, time does not run backwards).

``remaining`` and ``used`` are in units (``(τ - (tat - now)) / T`` and
``(tat - now) / T``), exact where they have a short decimal form, else rounded
down and up to ``exact.PLACES`` places. ``used`` includes the margin's share.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, ClassVar

from ratelimitd_client.amounts import Amount

from .base import Rate
from .exact import amount_of, ceil_div, ratio, scale_down, scale_up
from .hold import NEVER, Held

__all__ = ["GCRA", "emission_interval"]


def emission_interval(rate: Rate) -> int:
    """Return ``T`` in ns for ``rate``: ``window / limit`` rounded up, and up so that ``capacity * T`` is whole.

    Rounding up only slows the steady rate: by less than 1 ns per unit, and for
    a burst with a decimal part (2.5) by less than its denominator (2) in ns,
    since ``T`` must then be a multiple of it.
    """
    limit_n, limit_d = ratio(rate.limit)
    interval = ceil_div(rate.window * limit_d, limit_n)
    _, capacity_d = ratio(rate.capacity)
    return ceil_div(interval, capacity_d) * capacity_d


class GCRA(Held):
    """The ``tat`` of one rate's bucket."""

    algorithm: ClassVar[str] = "gcra"
    __slots__ = (
        "rate", "_emission_interval", "_delay_variation_tolerance", "_margin", "_tat", "_base", "_before", "_last",
    )

    def __init__(self, rate: Rate) -> None:
        self._no_hold()
        self._tat = NEVER  # the bucket is empty
        self._base = NEVER  # where the charges since the bucket last ran empty started
        self._before = NEVER  # tat when it last ran empty (what refunding all since gives back)
        self._last = NEVER  # the time of the last charge (the reference of a retune without now)
        self._setup(rate)

    def _setup(self, rate: Rate) -> None:
        self.rate = rate
        # T: ns one unit of cost takes to drain at the steady rate
        self._emission_interval = emission_interval(rate)
        # τ = burst × T: how far tat may run ahead of now once a charge is counted (whole: see emission_interval)
        self._delay_variation_tolerance = scale_down(rate.capacity, self._emission_interval)
        self._margin = rate.margin

    def __repr__(self) -> str:
        return f"GCRA({self.rate}, emission_interval={self._emission_interval}, tat={self._tat})"

    def _increment(self, cost: Amount) -> int:
        """Return ``cost * T`` in ns, rounded up (a fractional cost never drains faster than its share)."""
        if type(cost) is int:
            return cost * self._emission_interval
        return scale_up(cost, self._emission_interval)

    def wait(self, cost: Amount, now: int) -> int:
        """Report ns from ``now`` until ``cost`` conforms: ``max(tat, now) + cost*T - τ - now``, or 0.

        Returns 0 for ``cost == 0`` (a peek). Raises ``ValueError`` when ``cost``
        exceeds the burst, which no wait would satisfy.
        """
        increment = cost * self._emission_interval if type(cost) is int else scale_up(cost, self._emission_interval)
        tat = self._tat
        if tat > now:
            increment += tat - now
        if increment <= self._delay_variation_tolerance and (now >= self._hold_until or cost <= self._hold_left):
            return 0
        if not cost:
            return 0
        return self._held_wait(cost, now, self._earliest)

    def _earliest(self, cost: Amount, start: int) -> int:
        """Return the first time at or after ``start`` at which ``cost`` conforms."""
        increment = self._increment(cost)
        if increment > self._delay_variation_tolerance:
            raise ValueError(f"cost {cost} exceeds the burst {self.rate.capacity} of rate {self.rate}")
        at = self._tat + increment - self._delay_variation_tolerance
        return at if at > start else start

    def charge(self, cost: Amount, now: int) -> None:
        """Record a grant of ``cost`` at ``now``: ``tat = max(tat, now + M) + cost*T`` (nothing for 0)."""
        if not cost:
            return
        increment = cost * self._emission_interval if type(cost) is int else scale_up(cost, self._emission_interval)
        base = now + self._margin
        tat = self._tat
        if tat < base:
            self._before = tat
            self._base = tat = base
        self._tat = tat + increment
        self._last = now
        if now < self._hold_until:
            self._hold_left -= cost

    def charge_at(self, cost: Amount, stamp: int) -> None:
        """Record ``cost`` as if granted at ``stamp`` (restores and corrections; a hold is not charged).

        A stamp before later charges is added on top of them, which holds it
        at least as long as it would have been held.
        """
        if not cost:
            return
        base = stamp + self._margin
        tat = self._tat
        if tat < base:
            self._before = tat
            self._base = tat = base
        self._tat = tat + self._increment(cost)
        if stamp > self._last:
            self._last = stamp

    def refund(self, cost: Amount, now: int) -> None:
        """Give back ``cost`` from the newest grants: ``tat`` moves back by ``cost*T`` (rounded down).

        Exact when no other grant came after the one refunded. Never moves
        ``tat`` before where it stood when the bucket last ran empty (refunding
        everything since gives exactly that back). A provider's hold is not given back.
        """
        if not cost or self._tat == NEVER:
            return
        decrement = scale_down(cost, self._emission_interval)
        if decrement >= self._tat - self._base:
            # back to before the bucket last ran empty; what came before that is not known: no more to give back
            self._tat = self._base = self._before
        else:
            self._tat -= decrement

    def _level(self, now: int) -> int:
        """Return ``tat - now``, the ns the bucket needs to drain (0 when empty)."""
        level = self._tat - now
        return level if level > 0 else 0

    def remaining(self, now: int) -> Amount:
        """Report what could be charged at ``now``: ``(τ - (tat - now)) / T`` units, rounded down (never below 0)."""
        room = self._delay_variation_tolerance - self._level(now)
        if room <= 0:
            return 0
        return self._held_remaining(amount_of(Fraction(room, self._emission_interval), up=False), now)

    def used(self, now: int) -> Amount:
        """Report ``(tat - now) / T`` units, rounded up: what the bucket holds (with the margin's share)."""
        return self._held_used(amount_of(Fraction(self._level(now), self._emission_interval), up=True), now)

    def reset_after(self, now: int) -> int:
        """Report ns until ``remaining`` grows by a whole unit (or to the full burst); 0 when full."""
        return self._held_reset(now)

    def dump(self, now: int) -> Any:
        """Return ``{"rate": [limit, window, margin, burst], "tat": ns ahead of now, …}``, times relative to ``now``.

        ``tat``, ``base`` and ``before`` as ns after ``now`` (negative: before),
        ``last`` as an age; None where never set. Plus ``"hold"`` while one is active.
        """
        rate = self.rate
        state: dict[str, Any] = {"rate": [rate.limit, rate.window, rate.margin, rate.burst]}
        if self._tat != NEVER:
            state.update(
                tat=self._tat - now,
                base=None if self._base == NEVER else self._base - now,
                before=None if self._before == NEVER else self._before - now,
                last=None if self._last == NEVER else now - self._last,
            )
        return self._dump_hold(now, state)

    @classmethod
    def load(cls, rate: Rate, data: Any, at: int) -> "GCRA":
        """Rebuild a bucket dumped at engine time ``at``, then adopt ``rate`` (converting what it holds)."""
        limit, window, margin, burst = data.get("rate") or (rate.limit, rate.window, rate.margin, rate.burst)
        dumped = Rate(limit, window, margin, burst)
        bucket = cls(dumped)
        if data.get("tat") is not None:
            bucket._tat = at + data["tat"]
            bucket._base = NEVER if data.get("base") is None else at + data["base"]
            bucket._before = NEVER if data.get("before") is None else at + data["before"]
            bucket._last = NEVER if data.get("last") is None else at - data["last"]
        bucket._load_hold(data, at)
        if rate != dumped:
            bucket.retune(rate, at)
        return bucket

    def retune(self, rate: Rate, now: int | None = None) -> None:
        """Adopt ``rate`` on reload, keeping what the bucket holds in units of cost.

        With ``now``, the level ``tat - now`` is converted exactly (rounded up)
        from the old ``T`` to the new: 60/1m -> 30/1m with 40 held leaves
        40 held of a burst of 30, so 0 remaining. Without ``now``, it is
        converted at the last charge in the direction that never loosens: a
        slower rate scales the level from there, a faster one keeps it in ns.
        """
        old = self._emission_interval
        self._setup(rate)
        new = self._emission_interval
        if new == old or self._tat == NEVER:
            return
        if now is None:
            now = self._last
            if new < old:
                return

        def convert(time: int) -> int:
            if time == NEVER or time <= now:
                return time
            return now + ceil_div((time - now) * new, old)

        self._tat, self._base, self._before = convert(self._tat), convert(self._base), convert(self._before)
