"""The live state of one bucket for one owner: its limiters, a provider's hold, who holds its line.

A bucket is what a ``BucketSpec`` becomes for one key (or one group, for
``scope = "group"``): one limiter per rate, all of which must allow a charge.
The engine checks and charges buckets; this module only answers for one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ratelimitd_client.amounts import Amount

from ..limits import ALGORITHMS
from ..tiers.model import BucketSpec

if TYPE_CHECKING:
    from .waiting import Waiter

__all__ = ["Bucket"]


class Bucket:
    """One owner's bucket.

    ``blocker`` is the first waiter (in serving order) that this bucket itself
    refuses; while it is live, nobody else may take from this bucket ahead of it.
    """

    __slots__ = ("owner", "name", "spec", "limiters", "held_until", "blocker", "feedback")

    def __init__(self, owner: str, spec: BucketSpec) -> None:
        self.owner = owner
        self.name = spec.name
        self.spec = spec
        self.limiters = [ALGORITHMS[spec.algorithm](rate) for rate in spec.rates] if spec.kind == "rate" else []
        self.held_until = 0
        self.blocker: Waiter | None = None
        self.feedback: dict[str, Any] = {}  # what provider reports did here (see engine.feedback)

    def wait(self, cost: Amount, now: int) -> int:
        """Report ns from ``now`` until every rate of this bucket (and any hold) allows ``cost``."""
        longest = self.held_until - now if self.held_until > now else 0
        for limiter in self.limiters:
            needed = limiter.wait(cost, now)
            if needed > longest:
                longest = needed
        return longest

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
        for limiter in self.limiters:
            left = limiter.remaining(now)
            if best is None or left < best:
                best = left
                reset = limiter.reset_after(now)
        if self.held_until > now:
            best = 0
            reset = max(reset, self.held_until - now)
        return best, reset

    def line_held(self) -> bool:
        """Report whether a live waiter that this bucket refuses holds its line."""
        blocker = self.blocker
        return blocker is not None and blocker.live

    def rebuild(self, spec: BucketSpec, now: int) -> None:
        """Adopt ``spec`` on reload, keeping what was spent.

        Same algorithm and number of rates: each limiter is retuned in place.
        Otherwise new limiters start charged with the old bucket's use at ``now``,
        which is conservative: nothing spent is forgotten, at worst held a bit longer.
        """
        self.spec = spec
        if spec.kind != "rate":
            self.limiters = []
            return
        old = self.limiters
        if (
            len(old) == len(spec.rates)
            and spec.algorithm == self.spec_algorithm(old)
            and all(limiter.rate.window == rate.window for limiter, rate in zip(old, spec.rates))
        ):
            for limiter, rate in zip(old, spec.rates):
                limiter.retune(rate)
            return
        used = max((limiter.used(now) for limiter in old), default=0)
        self.limiters = [ALGORITHMS[spec.algorithm](rate) for rate in spec.rates]
        if used:
            for limiter in self.limiters:
                limiter.charge_at(min(used, limiter.rate.capacity), now)

    @staticmethod
    def spec_algorithm(limiters: list[Any]) -> str | None:
        """Report the algorithm of ``limiters`` (all share one), None when there are none."""
        return limiters[0].algorithm if limiters else None

    def reset(self) -> None:
        """Forget everything spent and any hold; waiters stay queued."""
        self.limiters = [ALGORITHMS[self.spec.algorithm](rate) for rate in self.spec.rates] if self.spec.kind == "rate" else []
        self.held_until = 0
