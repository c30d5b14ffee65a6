"""The exact sliding log: the default, and the only algorithm with no error at all.

It keeps every grant of the last window (plus the safety margin) with its cost,
so over any interval of the window's length the grants it allows never add up
to more than the limit — the same rule a sliding-log provider applies. Memory
grows with the limit (one entry per grant in the window); the sliding-window
counter is the O(1) alternative when that matters more than exactness.

A grant at ``t`` counts until ``t + window + margin`` (exclusive): grants at 0
and at exactly one window later never share a window. With the margin, a
provider that sees each request arrive up to ``margin`` after its grant still
never counts more than the limit in any window of its own.

A clock that steps back is safe without special handling: the log never
forgets a grant because ``now`` went back (expiry only looks at the grant's own
stamp), a grant stamped in the "future" counts in full until it ages out, and a
grant made at an earlier ``now`` is inserted in order, so ``wait`` stays exact.
"""

from __future__ import annotations

from array import array
from itertools import islice
from bisect import bisect_right
from collections import deque
from typing import Any, ClassVar

from ratelimitd_client.amounts import Amount

from .base import Rate
from .hold import Held

__all__ = ["SlidingLog", "grants_of"]

_INT64 = 1 << 63  # packed dumps hold signed 64-bit integers


class SlidingLog(Held):
    """The grants of the last ``window + margin`` ns of one bucket, oldest first."""

    algorithm: ClassVar[str] = "sliding-log"
    __slots__ = ("rate", "_limit", "_span", "_times", "_costs", "_used", "_fresh")

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self._limit = rate.limit
        self._span = rate.window + rate.margin
        self._times: deque[int] = deque()
        self._costs: deque[Amount] = deque()
        self._used: Amount = 0
        self._fresh = -1  # grants appended at the end since the last dump; -1: only a full dump will do
        self._no_hold()

    def __repr__(self) -> str:
        return f"SlidingLog({self.rate}, used={self._used}, grants={len(self._times)})"

    def _expire(self, now: int) -> None:
        horizon = now - self._span
        times = self._times
        while times and times[0] <= horizon:
            times.popleft()
            self._used -= self._costs.popleft()
        if self._fresh > len(times):
            self._fresh = len(times)

    def wait(self, cost: Amount, now: int) -> int:
        """Report ns from ``now`` until ``cost`` fits: when enough of the oldest grants have aged out.

        Returns 0 for ``cost == 0`` (a peek). Raises ``ValueError`` when ``cost``
        exceeds the limit, which no wait would satisfy.
        """
        times = self._times
        if times and times[0] <= now - self._span:
            self._expire(now)
        if self._used + cost <= self._limit:
            if now >= self._hold_until or cost <= self._hold_left:
                return 0
            return self._hold_until - now
        if not cost:
            return 0
        return self._held_wait(cost, now, self._earliest)

    def _earliest(self, cost: Amount, start: int) -> int:
        # the log is already expired at some now <= start; freeing is monotone in time
        excess = self._used + cost - self._limit
        if excess <= 0:
            return start
        freed: Amount = 0
        span = self._span
        for stamp, spent in zip(self._times, self._costs):
            freed += spent
            if freed >= excess:
                at = stamp + span
                return at if at > start else start
        raise ValueError(f"cost {cost} exceeds the limit {self._limit} of rate {self.rate}")

    def charge(self, cost: Amount, now: int) -> None:
        """Record a grant of ``cost`` at ``now`` (nothing for ``cost == 0``)."""
        if not cost:
            return
        times = self._times
        if not times or now >= times[-1]:
            times.append(now)
            self._costs.append(cost)
            if self._fresh >= 0:
                self._fresh += 1
        else:
            self._insert(now, cost)
        self._used += cost
        if now < self._hold_until:
            self._hold_left -= cost

    def charge_at(self, cost: Amount, stamp: int) -> None:
        """Record ``cost`` as if granted at ``stamp`` (restores and corrections; a hold is not charged)."""
        if not cost:
            return
        times = self._times
        if not times or stamp >= times[-1]:
            times.append(stamp)
            self._costs.append(cost)
            if self._fresh >= 0:
                self._fresh += 1
        else:
            self._insert(stamp, cost)
        self._used += cost

    def _insert(self, stamp: int, cost: Amount) -> None:
        # Rare: a clock that stepped back, or a restore. Keep the log sorted (after equal stamps).
        index = bisect_right(self._times, stamp)
        self._times.insert(index, stamp)
        self._costs.insert(index, cost)
        self._fresh = -1  # not at the end: a delta of the tail would miss it

    def refund(self, cost: Amount, now: int) -> None:
        """Give back ``cost`` from the newest grants (the ones a settle or cancel refers to).

        Exact when no other grant came after the one refunded; otherwise the
        newest grants are shortened instead, which frees the same amount but
        up to their age earlier. A provider's hold is not given back (see ``hold``).
        """
        self._expire(now)
        self._fresh = -1  # the newest grants change: a delta of the tail would not say so
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

    def spent_since(self, stamp: int) -> Amount:
        """Report the sum of the grants made after ``stamp`` (a provider's count taken then lacks them)."""
        total: Amount = 0
        times, costs = self._times, self._costs
        for index in range(len(times) - 1, -1, -1):
            if times[index] <= stamp:
                break
            total += costs[index]
        return total

    def remaining(self, now: int) -> Amount:
        """Report what could be charged at ``now`` (never below 0; bounded by an active hold)."""
        self._expire(now)
        left = self._limit - self._used
        return self._held_remaining(left if left > 0 else 0, now)

    def used(self, now: int) -> Amount:
        """Report the sum of the grants that still count at ``now`` (or what an active hold implies, if more)."""
        self._expire(now)
        return self._held_used(self._used, now)

    def reset_after(self, now: int) -> int:
        """Report ns until the oldest counted grant ages out (0 when nothing counts).

        While a provider's hold allows less than the log, until the hold ends.
        """
        self._expire(now)
        log_left = self._limit - self._used
        if now < self._hold_until and self._hold_left <= log_left:
            return self._hold_until - now
        if not self._times:
            return 0
        return self._times[0] + self._span - now

    def dump(self, now: int) -> Any:
        """Return the counted grants, oldest first, and any ``"hold"``.

        Integer costs (the common case) are packed: ``{"ages": bytes, "costs": bytes}``,
        two arrays of 64-bit integers, so that a log of thousands of grants
        encodes and decodes at memory speed; strict durability writes a dirty
        bucket on every commit. Other costs: ``{"log": [[age_ns, cost], …]}``.
        """
        self._expire(now)
        self._fresh = 0
        return self._dump_hold(now, _pack(self._times, self._costs, now))

    def dump_delta(self, now: int) -> Any:
        """Return only the grants appended since the last dump (same form as ``dump``), or None.

        None means a full ``dump`` is needed: the log changed other than at its
        end (a grant inserted earlier, a refund) or was never dumped. Loading a
        full dump and then each later delta, in order, rebuilds the log.
        """
        self._expire(now)
        fresh = self._fresh
        if fresh < 0:
            return None
        start = len(self._times) - fresh
        self._fresh = 0
        times = islice(self._times, start, None)
        costs = islice(self._costs, start, None)
        return self._dump_hold(now, _pack(list(times), list(costs), now))

    def apply_delta(self, data: Any, at: int) -> None:
        """Add the grants of a ``dump_delta`` made at engine time ``at``, and adopt its hold."""
        for age, spent in grants_of(data):
            self.charge_at(spent, at - age)
        if "hold" in data:
            self._load_hold(data, at)

    @classmethod
    def load(cls, rate: Rate, data: Any, at: int) -> "SlidingLog":
        """Rebuild a log dumped at engine time ``at`` (either form of ``dump``, or the older plain list)."""
        log = cls(rate)
        for age, spent in grants_of(data):
            log.charge_at(spent, at - age)
        log._load_hold(data, at)
        return log

    def retune(self, rate: Rate, now: int | None = None) -> None:
        """Adopt ``rate`` (same or other limit, window or margin), keeping every grant and any hold.

        ``now`` is accepted for the common face and not needed: the log is exact whatever the rate.
        """
        self.rate = rate
        self._limit = rate.limit
        self._span = rate.window + rate.margin


def _pack(times: Any, costs: Any, now: int) -> dict[str, Any]:
    """Return grants as ``dump`` stores them: packed int64 arrays when every cost is a small int."""
    if all(cost.__class__ is int and -_INT64 <= cost < _INT64 for cost in costs):
        return {"ages": array("q", [now - stamp for stamp in times]).tobytes(), "costs": array("q", costs).tobytes()}
    return {"log": [[now - stamp, spent] for stamp, spent in zip(times, costs)]}


def grants_of(data: Any) -> Any:
    """Return the ``(age, cost)`` pairs of any form ``dump`` or ``dump_delta`` wrote (also the older plain list)."""
    if isinstance(data, dict) and "ages" in data:
        ages, costs = array("q"), array("q")
        ages.frombytes(data["ages"])
        costs.frombytes(data["costs"])
        return zip(ages, costs)
    return data["log"] if isinstance(data, dict) else data
