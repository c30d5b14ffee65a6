"""The live state of one bucket for one owner: its limiters, a provider's hold, who holds its line.

A bucket is what a ``BucketSpec`` becomes for one key (or one group, for
``scope = "group"``): one limiter per rate, all of which must allow a charge.
The engine checks and charges buckets; this module only answers for one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ratelimitd_client.amounts import Amount

from ..limits import ALGORITHMS
from ..limits.holding import NEVER, Holding
from ..tiers.model import BucketSpec

if TYPE_CHECKING:
    from .waiting import Waiter

__all__ = ["Bucket", "make_limiters", "make_holding", "is_strict", "HOLDING_KINDS", "QUOTA_KINDS"]

# kinds whose amounts are held by leases and given back on release
HOLDING_KINDS = ("concurrency", "capacity")
# kinds counted over calendar periods (a day, a month)
QUOTA_KINDS = ("quota", "time-quota")


def is_strict(spec: BucketSpec, strict_default: bool) -> bool:
    """Report whether grants on ``spec`` are answered only once on disk.

    The tier table decides; else calendar quotas are strict (after a crash a
    batched month would have to be held until its end), and other buckets
    follow the daemon's ``--durability``.
    """
    if spec.durability is not None:
        return spec.durability == "strict"
    return strict_default or spec.kind in QUOTA_KINDS


def make_limiters(spec: BucketSpec) -> list[Any]:
    """Return fresh limiters for ``spec``: one per rate, or the calendar quota of a quota bucket."""
    if spec.kind == "rate":
        return [ALGORITHMS[spec.algorithm](rate) for rate in spec.rates]
    quota = getattr(spec, "quota", None)
    if spec.kind in ("quota", "time-quota") and quota is not None:
        from ..limits.calendar import CalendarQuota

        return [CalendarQuota(quota)]
    return []


def make_holding(spec: BucketSpec) -> Holding | None:
    """Return a fresh holding for a concurrency or capacity bucket, None for other kinds."""
    if spec.kind == "concurrency":
        return Holding(spec.concurrent)
    if spec.kind == "capacity":
        return Holding(getattr(spec, "count_limit", None))
    return None


class Bucket:
    """One owner's bucket.

    ``blocker`` is the first waiter (in serving order) that this bucket itself
    refuses; while it is live, nobody else may take from this bucket ahead of it.
    """

    __slots__ = ("owner", "name", "spec", "limiters", "holding", "held_until", "blocker", "feedback", "cap")

    def __init__(self, owner: str, spec: BucketSpec) -> None:
        self.owner = owner
        self.name = spec.name
        self.spec = spec
        self.limiters = make_limiters(spec)
        self.holding = make_holding(spec)  # concurrency and capacity: what leases hold
        self.held_until = 0
        self.cap: Amount | None = None  # a provider's limit below the table's: larger costs cannot pass now
        self.blocker: Waiter | None = None
        self.feedback: dict[str, Any] = {}  # what provider reports did here (see engine.feedback)

    def wait(self, cost: Amount, now: int) -> int:
        """Report ns from ``now`` until every rate of this bucket (and any hold) allows ``cost``."""
        if self.cap is not None and cost > self.cap:
            return NEVER
        longest = self.held_until - now if self.held_until > now else 0
        for limiter in self.limiters:
            needed = limiter.wait(cost, now)
            if needed > longest:
                longest = needed
        if self.holding is not None and not longest and self.holding.wait(cost, now) and not self.can_evict_for(cost):
            return NEVER
        return longest

    def can_evict_for(self, cost: Amount) -> bool:
        """Report whether taking older leases away (``when_full = "evict-oldest"``) would make room for ``cost``."""
        holding = self.holding
        return (
            holding is not None
            and self.spec.when_full == "evict-oldest"
            and holding.limit is not None
            and cost <= holding.limit
        )

    def charge(self, cost: Amount, now: int) -> None:
        """Charge ``cost`` to every rate of this bucket."""
        for limiter in self.limiters:
            limiter.charge(cost, now)

    def refund(self, cost: Amount, now: int) -> None:
        """Give ``cost`` back to every rate of this bucket."""
        for limiter in self.limiters:
            limiter.refund(cost, now)

    def report(self, now: int) -> tuple[Amount | None, int]:
        """Return ``(remaining, reset_ns)`` of the tightest rate; remaining is None when unlimited."""
        best: Amount | None = None
        reset = 0
        if self.holding is not None:
            best = self.holding.remaining(now)
        for limiter in self.limiters:
            quota = getattr(limiter, "quota", None)
            if quota is not None and quota.on_exhaust == "allow":
                continue  # never refuses: its balance is in `show`, not in what a permit has left
            left = limiter.remaining(now)
            if left is None:
                continue
            if best is None or left < best:
                best = left
                reset = limiter.reset_after(now)
        if self.held_until > now:
            best = 0
            reset = max(reset, self.held_until - now)
        return best, reset

    def line_held(self, now: int, cost: Amount) -> bool:
        """Report whether a waiter this bucket refused still keeps ``cost`` from being taken ahead of it.

        It does while it is live and the bucket cannot give both it and ``cost``
        now; once both fit (its moment has come and the scheduler will serve it),
        taking ``cost`` delays nobody.
        """
        blocker = self.blocker
        if blocker is None or not blocker.live:
            return False
        both = blocker.cost + cost
        capacity = self.spec.capacity
        if capacity is not None and both > capacity:
            return True
        return self.wait(both, now) > 0

    def rebuild(self, spec: BucketSpec, now: int) -> None:
        """Adopt ``spec`` on reload, keeping what was spent.

        Same algorithm and number of rates: each limiter is retuned in place.
        Otherwise new limiters start charged with the old bucket's use at ``now``,
        which is conservative: nothing spent is forgotten, at worst held a bit longer.
        """
        old_kind = self.spec.kind
        self.spec = spec
        self.cap = None  # the table's limits apply again; the provider's are learned anew
        fresh = make_holding(spec)
        if fresh is None or self.holding is None:
            self.holding = fresh  # a holding that appears starts empty; leases of a vanished one end with it
        else:
            self.holding.limit = fresh.limit  # leases keep their slots; the new limit applies to new ones
        if spec.kind != "rate":
            if spec.kind == old_kind and self.limiters and spec.kind in ("quota", "time-quota"):
                self.limiters[0].retune(spec.quota)
            else:
                self.limiters = make_limiters(spec)
            return
        old = self.limiters
        if (
            len(old) == len(spec.rates)
            and spec.algorithm == old[0].algorithm
            and all(limiter.rate.window == rate.window for limiter, rate in zip(old, spec.rates))
        ):
            for limiter, rate in zip(old, spec.rates):
                limiter.retune(rate, now)
            return
        used = max((limiter.used(now) for limiter in old), default=0)
        self.limiters = make_limiters(spec)
        if used:
            for limiter in self.limiters:
                limiter.charge_at(min(used, limiter.rate.capacity), now)

    def reset(self) -> None:
        """Forget everything spent and any hold; waiters stay queued and leases keep what they hold."""
        self.limiters = make_limiters(self.spec)
        self.held_until = 0
        self.cap = None
