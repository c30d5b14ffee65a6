"""Counts per aligned window: the state the fixed-window and sliding-window counters share.

Windows are aligned to multiples of the window length ``W`` since the Unix
epoch (engine time 0): window ``k`` is ``[k*W, (k+1)*W)``. The safety margin
``M`` means: a grant made at ``t`` may reach the provider anywhere in
``[t, t + M]``, so it counts in every window that interval touches. Put the
other way, window ``k``'s count holds every grant made in ``[k*W - M, (k+1)*W)``;
a grant in the last ``M`` of a window also counts in the next one (it is
"spilled" ahead). The margin never loosens: counts only grow with it.

State, O(1) per bucket: ``_start`` (start of the current window), ``_prev`` and
``_cur`` (counts of the window before and of the current one), ``_ahead``
(counts already spilled into the windows after; empty, or one entry while
``M < W``), and ``_last`` (the latest time seen by a charge or a window turn;
every grant is at or before it).

After a restart the store may shift stored times by other than a multiple of
``W`` (the new run's timeline is not the old one's). The counts then keep the
grid they were made on (``_phase = start % W``) rather than being re-counted
onto the epoch's, which would be inexact; the first time every count is zero
the grid falls back to the epoch's. Either grid enforces the same rule.

A clock that steps back never turns a window back, so nothing counted is
forgotten, and time does not run backwards (as in golang.org/x/time/rate): a
charge at a ``now`` before ``_last`` is counted in every window from the one of
``now`` through the one of ``_last + M``, so both where ``now`` puts it and as
if made at ``_last``. The limit per window therefore holds on the timeline where
each grant is at the latest time seen at a charge or a window turn.
"""

from __future__ import annotations

from typing import Any

from ratelimitd_client.amounts import Amount

from .base import Rate
from .hold import NEVER, Held

__all__ = ["WindowCounts"]


class WindowCounts(Held):
    """Aligned window counts for one rate; subclasses decide what the counts allow."""

    __slots__ = (
        "rate", "_limit", "_window", "_margin", "_phase", "_start",
        "_end", "_spill", "_prev", "_cur", "_ahead", "_last",
    )

    def __init__(self, rate: Rate) -> None:
        self._no_hold()
        self._phase = 0
        self._start = NEVER
        self._prev: Amount = 0
        self._cur: Amount = 0
        self._ahead: list[Amount] = []
        self._last = NEVER
        self._setup(rate)

    def _setup(self, rate: Rate) -> None:
        self.rate = rate
        self._limit = rate.limit
        self._window = rate.window
        self._margin = rate.margin
        self._end = self._start + rate.window
        self._spill = self._end - rate.margin

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.rate}, start={self._start}, prev={self._prev}, cur={self._cur}, "
            f"ahead={self._ahead}, last={self._last})"
        )

    # -- windows -------------------------------------------------------------------

    def _count(self, offset: int) -> Amount:
        """Return the count of the window ``offset`` windows after the current one (-1: the one before)."""
        if offset == 0:
            return self._cur
        if offset == -1:
            return self._prev
        if 0 < offset <= len(self._ahead):
            return self._ahead[offset - 1]
        return 0

    def _roll(self, now: int) -> None:
        """Make the window of ``now`` (later than the current one) current."""
        window = self._window
        start = now - (now - self._phase) % window
        turns = (start - self._start) // window
        ahead = self._ahead
        if turns == 1:
            self._prev = self._cur
            self._cur = ahead.pop(0) if ahead else 0
        else:
            self._prev = self._count(turns - 1)
            self._cur = self._count(turns)
            self._ahead = ahead[turns:]
        if self._phase and not self._prev and not self._cur and not self._ahead:
            self._phase = 0  # nothing counted: back to the epoch's grid
            start = now - now % window
        self._start = start
        self._end = start + window
        self._spill = self._end - self._margin
        if now > self._last:
            self._last = now

    def _add(self, cost: Amount, first: int, last: int) -> None:
        """Add ``cost`` to the count of every window that ``[first, last]`` touches (from the one before on)."""
        start, window = self._start, self._window
        low = (first - start) // window
        high = (last - start) // window
        for offset in range(low if low > -1 else -1, high + 1):
            if offset == 0:
                self._cur += cost
            elif offset == -1:
                self._prev += cost
            else:
                ahead = self._ahead
                while len(ahead) < offset:
                    ahead.append(0)
                ahead[offset - 1] += cost

    # -- the charging half of the face ---------------------------------------------

    def charge(self, cost: Amount, now: int) -> None:
        """Record a grant of ``cost`` at ``now`` (nothing for ``cost == 0``)."""
        if not cost:
            return
        if now >= self._end:
            self._roll(now)
        if now < self._last:  # the clock stepped back: counted from now through the latest time seen
            self._add(cost, now, self._last + self._margin)
        else:
            self._last = now
            self._cur += cost
            if now >= self._spill:
                self._add(cost, self._end, now + self._margin)
        if now < self._hold_until:
            self._hold_left -= cost

    def charge_at(self, cost: Amount, stamp: int) -> None:
        """Record ``cost`` as if granted at ``stamp`` (restores and corrections; a hold is not charged)."""
        if not cost:
            return
        if self._start == NEVER:
            self._roll(stamp)
        self._add(cost, stamp, stamp + self._margin)
        if stamp > self._last:
            self._last = stamp

    def refund(self, cost: Amount, now: int) -> None:
        """Give back ``cost`` from the newest grants: the current window's count, then the previous one's.

        As with the sliding log, the refunded grant is taken to be the newest:
        exact when no grant came after it. When the newest grant spilled into
        the windows ahead, it is taken back from them too. Counts never go
        below zero; a provider's hold is not given back.
        """
        if now >= self._end:
            self._roll(now)
        left = self._cur - cost
        self._cur = left if left > 0 else 0
        if left < 0:
            left = self._prev + left
            self._prev = left if left > 0 else 0
        if self._last + self._margin >= self._end:
            ahead = self._ahead
            for index, count in enumerate(ahead):
                left = count - cost
                ahead[index] = left if left > 0 else 0

    # -- persistence and reload ----------------------------------------------------

    def dump(self, now: int) -> Any:
        """Return the counts with times relative to ``now``: ``start`` and ``last`` as ages in ns.

        ``{"rate": [limit, window, margin, burst], "start": …, "prev": …, "cur": …,
        "ahead": […], "last": …}``, plus ``"hold"`` while one is active; only
        ``"rate"`` before the first charge. The rate is kept so that ``load``
        can re-align counts made under another window.
        """
        if now >= self._end:
            self._roll(now)
        rate = self.rate
        state: dict[str, Any] = {"rate": [rate.limit, rate.window, rate.margin, rate.burst]}
        if self._start != NEVER:
            ahead = list(self._ahead)
            while ahead and not ahead[-1]:
                ahead.pop()
            state.update(start=now - self._start, prev=self._prev, cur=self._cur, ahead=ahead, last=now - self._last)
        return self._dump_hold(now, state)

    @classmethod
    def load(cls, rate: Rate, data: Any, at: int) -> Any:
        """Rebuild counts dumped at engine time ``at``, then adopt ``rate``.

        Exact: when the store shifted the timeline by other than a multiple of
        the window, the counts keep their grid (see the module docstring). A
        different window length re-aligns them conservatively (see ``retune``).
        """
        limit, window, margin, burst = data.get("rate") or (rate.limit, rate.window, rate.margin, rate.burst)
        dumped = Rate(limit, window, margin, burst)
        limiter = cls(dumped)
        if "start" in data:
            limiter._start = at - data["start"]
            limiter._prev = data["prev"]
            limiter._cur = data["cur"]
            limiter._ahead = list(data["ahead"])
            limiter._last = at - data["last"]
            limiter._phase = limiter._start % dumped.window
            limiter._setup(dumped)
        limiter._load_hold(data, at)
        if rate != dumped:
            limiter.retune(rate, at)
        return limiter

    def retune(self, rate: Rate, now: int | None = None) -> None:
        """Adopt ``rate`` on reload, keeping what was spent.

        A new limit applies to the counts as they are (60/1m -> 30/1m with 40
        used leaves 0). A larger margin spills the current window's grants
        into the windows it now reaches (at most the current count each); a
        smaller one keeps what was already spilled. A new window length
        re-counts them onto the new windows as of ``now`` (or of the latest time
        seen when ``now`` is not given): each new window gets every old count
        whose grants could lie in it, and the limit for each window before the
        previous one, so for up to a few windows fewer grants may be allowed,
        never more.
        """
        old = self.rate
        if self._start == NEVER:
            self._setup(rate)
            return
        if rate.window != old.window:
            reference = self._last if now is None or now < self._last else now
            self._realign(rate, reference)
            return
        self._setup(rate)
        if rate.margin > old.margin:
            # the current window's grants may now reach further: each window they reach holds at most all of them
            ahead, cur = self._ahead, self._cur
            for offset in range(1, (self._last + rate.margin - self._start) // self._window + 1):
                while len(ahead) < offset:
                    ahead.append(0)
                if ahead[offset - 1] < cur:
                    ahead[offset - 1] = cur

    def _realign(self, rate: Rate, reference: int) -> None:
        """Rebuild the counts on ``rate``'s windows as of ``reference``, each an upper bound of what lands in it."""
        old_start, old_window, old_margin, old_limit = self._start, self._window, self._margin, self._limit
        last = self._last
        segments = [  # (first, last grant time, count) of what is known
            (old_start - old_window - old_margin, old_start - 1, self._prev),
            (old_start - old_margin, last, self._cur),
        ]

        def bound(low: int, high: int) -> Amount:
            total: Amount = 0
            for first, final, count in segments:
                if first <= high and low <= final:
                    total += count
            # windows before the previous one: at most the limit each
            oldest = (low - old_start) // old_window
            newest = min((high - old_start) // old_window, -2)
            if oldest <= newest:
                total += old_limit * (newest - oldest + 1)
            return total

        window, margin = rate.window, rate.margin
        start = reference - reference % window
        counts = []
        offset = -1
        while True:
            low = start + offset * window - margin
            if low > last:
                break
            counts.append(bound(low, min(start + (offset + 1) * window - 1, last)))
            offset += 1
        counts += [0] * (2 - len(counts))
        self._phase = 0
        self._start = start
        self._prev, self._cur, self._ahead = counts[0], counts[1], counts[2:]
        self._last = last if last > start else start
        self._setup(rate)
