"""A provider's word on top of any window limit: at most ``left`` more may be charged until ``until``.

``restrict(remaining, reset_after, now)`` records what a provider answered
(``X-RateLimit-Remaining`` / ``Reset``, a 429's ``Retry-After`` as remaining 0).
The hold is kept beside the algorithm's own state rather than folded into it,
because no algorithm can express "at most R more until T" exactly in its own
terms: a sliding log frees old grants before T, a fixed window resets at its
own edge, a bucket refills. With the hold beside it, the limiter allows a
charge only when both agree, so the provider's view is adopted exactly and
never loosened; the cost on the hot path is one comparison while no hold is
active.

Every algorithm class inherits ``Held`` and checks ``now < _hold_until`` inline.
"""

from __future__ import annotations

from typing import Any, Callable

from ratelimitd_client.amounts import Amount

__all__ = ["NEVER", "Held"]

# a time before any engine time: "no hold", "no grant yet"
NEVER = -(1 << 63)


class Held:
    """The hold part of a limiter: ``_hold_left`` may still be charged before ``_hold_until`` (engine ns).

    Charges made while the hold is active count against it; refunds do not
    give to it, because a refund cannot say whether the grant it returns was
    made before the provider's count (and so is already in it) or after.
    """

    __slots__ = ("_hold_until", "_hold_left")

    rate: Any

    def _no_hold(self) -> None:
        self._hold_until = NEVER
        self._hold_left = 0

    def restrict(self, remaining: Amount, reset_after: int, now: int) -> None:
        """Adopt a provider's count: at most ``remaining`` more may be charged until ``now + reset_after``.

        Never loosens. A hold that says at least as much is kept as it is; one
        that says less is replaced; when each is stricter somewhere, the two are
        merged into the stricter of both (the later end, the smaller remaining).
        A ``reset_after`` of zero or less says nothing and is ignored.
        """
        if reset_after <= 0:
            return
        if remaining < 0:
            remaining = 0
        until = now + reset_after
        if now < self._hold_until:
            left = self._hold_left
            if until <= self._hold_until and remaining >= left:
                return
            if until < self._hold_until:
                until = self._hold_until
            if remaining > left:
                remaining = left if left > 0 else 0
        self._hold_until = until
        self._hold_left = remaining

    def _held_wait(self, cost: Amount, now: int, earliest: Callable[[Amount, int], int]) -> int:
        """Return ns from ``now`` until both the algorithm (``earliest(cost, t0)``) and the hold allow ``cost``."""
        at = earliest(cost, now)
        if now < self._hold_until and cost > self._hold_left and at < self._hold_until:
            at = earliest(cost, self._hold_until)
        return at - now

    def _held_remaining(self, left: Amount, now: int) -> Amount:
        """Return ``left`` (the algorithm's remaining) bounded by the hold."""
        if now < self._hold_until and self._hold_left < left:
            return self._hold_left if self._hold_left > 0 else 0
        return left

    def _held_used(self, used: Amount, now: int) -> Amount:
        """Return ``used`` (the algorithm's) raised to what the hold implies: capacity minus its remaining."""
        if now < self._hold_until:
            floor = self.rate.capacity - self._hold_left
            if floor > used:
                return floor
        return used

    def _held_reset(self, now: int) -> int:
        """Return ns until ``remaining`` grows by a whole unit, or to full capacity (0 when full).

        For limits whose remaining grows continuously (GCRA, the sliding-window
        counter) "next grows" is taken in whole units: the wait for
        ``floor(remaining) + 1``, capped at the capacity.
        """
        left = self.remaining(now)  # type: ignore[attr-defined]
        capacity = self.rate.capacity
        if left >= capacity:
            return 0
        target = int(left) + 1
        if target > capacity:
            target = capacity
        return self.wait(target, now)  # type: ignore[attr-defined]

    def _dump_hold(self, now: int, state: dict[str, Any]) -> dict[str, Any]:
        """Add ``"hold": [ns_until_it_ends, left]`` to ``state`` while a hold is active; return ``state``."""
        if now < self._hold_until:
            state["hold"] = [self._hold_until - now, self._hold_left]
        return state

    def _load_hold(self, state: Any, at: int) -> None:
        """Restore a hold dumped at engine time ``at``."""
        self._no_hold()
        hold = state.get("hold") if isinstance(state, dict) else None
        if hold:
            until, left = hold
            self._hold_until = at + until
            self._hold_left = left
