"""The exact sliding log: the default, and the only algorithm with no error at all.

It keeps every grant of the last window (plus the safety margin) with its cost,
so over any interval of the window's length the grants it allows never add up
to more than the limit — the same rule a sliding-log provider applies. Memory
grows with the limit (one entry per grant in the window); the sliding-window
counter is the O(1) alternative when that matters more than exactness.

A grant at ``t`` counts until ``t + window + margin`` (exclusive): grants at 0
and at exactly one window later never share a window.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from typing import Any, ClassVar

from ratelimitd_client.amounts import Amount

from .base import Rate

__all__ = ["SlidingLog"]


class SlidingLog:
    """The grants of the last ``window + margin`` ns of one bucket, oldest first."""

    algorithm: ClassVar[str] = "sliding-log"
    __slots__ = ("rate", "_span", "_times", "_costs", "_used")

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self._span = rate.window + rate.margin
        self._times: deque[int] = deque()
        self._costs: deque[Amount] = deque()
        self._used: Amount = 0

    def _expire(self, now: int) -> None:
        horizon = now - self._span
        times = self._times
        while times and times[0] <= horizon:
            times.popleft()
            self._used -= self._costs.popleft()

    def wait(self, cost: Amount, now: int) -> int:
        """Report ns from ``now`` until ``cost`` fits: when enough of the oldest grants have aged out."""
        self._expire(now)
        excess = self._used + cost - self.rate.limit
        if excess <= 0:
            return 0
        freed: Amount = 0
        for stamp, spent in zip(self._times, self._costs):
            freed += spent
            if freed >= excess:
                return stamp + self._span - now
        raise ValueError(f"cost {cost} exceeds the limit {self.rate.limit} of rate {self.rate}")

    def charge(self, cost: Amount, now: int) -> None:
        """Record a grant of ``cost`` at ``now``."""
        self.charge_at(cost, now)

    def charge_at(self, cost: Amount, stamp: int) -> None:
        """Record ``cost`` as if granted at ``stamp`` (grants, restores and corrections)."""
        if not cost:
            return
        times = self._times
        if times and stamp < times[-1]:
            self._insert(stamp, cost)
        else:
            times.append(stamp)
            self._costs.append(cost)
        self._used += cost

    def _insert(self, stamp: int, cost: Amount) -> None:
        # Rare: a clock that stepped back, or a provider's correction. Keep the log sorted.
        entries = list(zip(self._times, self._costs))
        insort(entries, (stamp, cost), key=lambda entry: entry[0])
        self._times = deque(entry[0] for entry in entries)
        self._costs = deque(entry[1] for entry in entries)

    def refund(self, cost: Amount, now: int) -> None:
        """Give back ``cost`` from the newest grants (the ones a settle or cancel refers to)."""
        self._expire(now)
        while cost > 0 and self._times:
            newest = self._costs[-1]
            if newest > cost:
                self._costs[-1] = newest - cost
                self._used -= cost
                return
            self._times.pop()
            self._costs.pop()
            self._used -= newest
            cost -= newest

    def remaining(self, now: int) -> Amount:
        """Report what could be charged at ``now``."""
        self._expire(now)
        left = self.rate.limit - self._used
        return left if left > 0 else 0

    def used(self, now: int) -> Amount:
        """Report the sum of the grants that still count at ``now``."""
        self._expire(now)
        return self._used

    def reset_after(self, now: int) -> int:
        """Report ns until the oldest counted grant ages out (0 when nothing counts)."""
        self._expire(now)
        if not self._times:
            return 0
        return self._times[0] + self._span - now

    def restrict(self, remaining: Amount, reset_after: int, now: int) -> None:
        """Adopt a provider's count: at most ``remaining`` more until ``now + reset_after``.

        Adds one phantom grant of the difference that ages out exactly at the
        provider's reset; never loosens the log.
        """
        surplus = self.remaining(now) - remaining
        if surplus <= 0:
            return
        self.charge_at(surplus, now + min(reset_after, self._span) - self._span)

    def dump(self, now: int) -> Any:
        """Return ``[[age_ns, cost], …]`` of the counted grants, oldest first."""
        self._expire(now)
        return [[now - stamp, spent] for stamp, spent in zip(self._times, self._costs)]

    @classmethod
    def load(cls, rate: Rate, data: Any, at: int) -> "SlidingLog":
        """Rebuild a log dumped at engine time ``at``."""
        log = cls(rate)
        for age, spent in data:
            log.charge_at(spent, at - age)
        return log

    def retune(self, rate: Rate) -> None:
        """Adopt ``rate`` (same or other limit, window or margin), keeping every grant."""
        self.rate = rate
        self._span = rate.window + rate.margin
