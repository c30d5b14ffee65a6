"""The fixed window: at most ``limit`` per window, windows aligned to the Unix epoch.

The cheapest limit (one count per bucket) and the coarsest. It matches a
provider that counts per calendar window ("60 per minute, resetting at :00")
exactly, and no other: a burst of ``limit`` at the end of one window and
another ``limit`` at the start of the next are both allowed, so any interval
of the window's length may hold up to **2 x limit** grants (the boundary burst).
Against a sliding-log provider use the sliding log.

The safety margin ``M``: a grant made in the last ``M`` of a window may arrive
in the next one, so it counts in both (see ``windows``); a provider with the
same windows never sees more than ``limit`` in one of its windows from arrivals
delayed by up to ``M``. It costs nothing except in the last ``M`` of a window.

``wait`` reports the start of the first window with room for the cost;
``remaining`` grows only when a window turns.
"""

from __future__ import annotations

from typing import ClassVar

from ratelimitd_client.amounts import Amount

from .windows import WindowCounts

__all__ = ["FixedWindow"]


class FixedWindow(WindowCounts):
    """The count of the current aligned window (and what was spilled ahead) for one rate."""

    algorithm: ClassVar[str] = "fixed-window"
    __slots__ = ()

    def wait(self, cost: Amount, now: int) -> int:
        """Report ns from ``now`` until ``cost`` fits: 0, or until the first window with room starts.

        Returns 0 for ``cost == 0`` (a peek). Raises ``ValueError`` when ``cost``
        exceeds the limit.
        """
        if now >= self._end:
            self._roll(now)
        if self._cur + cost <= self._limit and (now >= self._hold_until or cost <= self._hold_left):
            return 0
        if not cost:
            return 0
        return self._held_wait(cost, now, self._earliest)

    def _earliest(self, cost: Amount, start: int) -> int:
        """Return the first time at or after ``start`` at which the counts allow ``cost``."""
        limit, window = self._limit, self._window
        if cost > limit:
            raise ValueError(f"cost {cost} exceeds the limit {limit} of rate {self.rate}")
        offset = (start - self._start) // window
        if offset < 0:
            offset = 0
        while self._count(offset) + cost > limit:
            offset += 1
        at = self._start + offset * window
        return at if at > start else start

    def remaining(self, now: int) -> Amount:
        """Report what could be charged at ``now``: the limit less the current window's count (never below 0)."""
        if now >= self._end:
            self._roll(now)
        left = self._limit - self._cur
        return self._held_remaining(left if left > 0 else 0, now)

    def used(self, now: int) -> Amount:
        """Report the current window's count (with grants spilled into it from the window before)."""
        if now >= self._end:
            self._roll(now)
        return self._held_used(self._cur, now)

    def reset_after(self, now: int) -> int:
        """Report ns until ``remaining`` grows by a whole unit (or to the full limit): a window's start; 0 when full."""
        if now >= self._end:
            self._roll(now)
        return self._held_reset(now)
