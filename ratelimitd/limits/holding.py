"""Amounts held, not spent: concurrent connections, positions per wallet, filter items per connection.

A holding goes up when a lease takes from it and down when the lease is
released; time alone never frees it. It shows the same face as the window
limiters so that a bucket treats every kind alike, with one difference in
meaning: when it is full, ``wait`` cannot know when a holder will let go, so it
reports ``NEVER`` and waiters are served when a release happens.

State is the amount each lease holds (``lease id -> amount``), so that a
restarted daemon knows which leases of its previous run still hold a slot.
"""

from __future__ import annotations

from typing import Any, ClassVar

from ratelimitd_client.amounts import Amount

__all__ = ["Holding", "NEVER"]

# "not until something is released": far beyond any real wait, still an int of ns
NEVER = 1 << 62


class Holding:
    """The leases holding part of one bucket (one owner, or one scope value such as one wallet)."""

    algorithm: ClassVar[str] = "holding"
    __slots__ = ("limit", "held", "by_lease")

    def __init__(self, limit: Amount | None) -> None:
        self.limit = limit  # None: unlimited (the tier offers it without a bound)
        self.held: Amount = 0
        self.by_lease: dict[str, Amount] = {}

    def wait(self, cost: Amount, now: int) -> int:
        """Report 0 when ``cost`` fits beside what is held, else ``NEVER`` (only a release can help)."""
        if self.limit is None or self.held + cost <= self.limit:
            return 0
        return NEVER

    def hold(self, lease: str, cost: Amount) -> None:
        """Record that ``lease`` holds ``cost`` more."""
        if cost:
            self.by_lease[lease] = self.by_lease.get(lease, 0) + cost
            self.held += cost

    def release(self, lease: str) -> Amount:
        """Give back everything ``lease`` holds here; return how much that was."""
        amount = self.by_lease.pop(lease, 0)
        self.held -= amount
        return amount

    def remaining(self, now: int) -> Amount | None:
        """Report what could still be held (None: unlimited)."""
        return None if self.limit is None else max(self.limit - self.held, 0)

    def used(self, now: int) -> Amount:
        """Report what is held."""
        return self.held

    def reset_after(self, now: int) -> int:
        """Report 0: a holding frees on release, not at a time."""
        return 0

    def oldest(self) -> str | None:
        """Return the lease that has held here longest (leases are kept in the order they came)."""
        return next(iter(self.by_lease), None)

    def dump(self, now: int) -> Any:
        """Return ``[[lease id, amount], …]`` in the order the leases came."""
        return [[lease, amount] for lease, amount in self.by_lease.items()]

    @classmethod
    def load(cls, limit: Amount | None, data: Any) -> "Holding":
        """Rebuild a holding from ``dump``'s data."""
        holding = cls(limit)
        for lease, amount in data:
            holding.hold(lease, amount)
        return holding
