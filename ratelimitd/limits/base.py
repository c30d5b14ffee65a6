"""What every kind of window limit shares: the ``Rate`` it enforces and the face it shows.

Each algorithm is one module with one class. An instance is the state of one
rate on one bucket (one key, one bucket name) and nothing else: it does no I/O,
reads no clock and knows nothing of Trio, sockets or SQLite. Time comes in as
``now``, integer nanoseconds on the engine's monotonic timeline.

The face (``Limiter``):

- ``wait(cost, now)`` reports how many ns from ``now`` until ``cost`` could be
  charged (0: it could be charged now). ``cost`` never exceeds ``rate.limit``
  (the engine refuses such requests before asking); ``cost == 0`` peeks.
- ``charge(cost, now)`` records a grant. Only called after ``wait`` said 0.
- ``refund(cost, now)`` gives back part of an earlier charge (a reservation
  settled lower, a grant cancelled). It never frees more than was charged.
- ``remaining(now)`` reports what could still be charged at ``now``.
- ``reset_after(now)`` reports ns until ``remaining`` next grows (0 if full).
- ``used(now)`` reports what the current window holds.
- ``restrict(remaining, reset_after, now)`` adopts a provider's stricter view:
  from ``now`` until ``now + reset_after`` at most ``remaining`` more may be charged.
- ``dump(now)`` returns the state as plain CBOR-able data with times relative
  to ``now``; ``load(rate, data, at)`` rebuilds it, ``at`` being the engine time
  at which it was dumped. Relative times keep the algorithms ignorant of clocks.
- ``retune(rate)`` adopts a new rate of the same window kind on reload,
  keeping what has been spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from ratelimitd_client.amounts import Amount

from ..units import format_duration

__all__ = ["Rate", "Limiter"]


@dataclass(frozen=True, slots=True)
class Rate:
    """One limit: at most ``limit`` units per ``window`` ns.

    ``margin`` (ns) is the safety margin: a grant is held ``margin`` longer than
    the window, because the provider counts arrival times and a request granted
    exactly one window after another may arrive less than a window after it.
    ``burst`` is the GCRA/token-bucket capacity; None means ``limit``.
    """

    limit: Amount
    window: int
    margin: int = 0
    burst: Amount | None = None

    def __str__(self) -> str:
        text = f"{self.limit}/{format_duration(self.window)}"
        if self.burst is not None:
            text += f" burst {self.burst}"
        return text

    @property
    def capacity(self) -> Amount:
        """Report the largest cost one request can ever be granted under this rate."""
        return self.limit if self.burst is None else self.burst


class Limiter(Protocol):
    """The state of one rate under one algorithm (see the module docstring)."""

    algorithm: ClassVar[str]
    rate: Rate

    def wait(self, cost: Amount, now: int) -> int: ...

    def charge(self, cost: Amount, now: int) -> None: ...

    def refund(self, cost: Amount, now: int) -> None: ...

    def remaining(self, now: int) -> Amount: ...

    def reset_after(self, now: int) -> int: ...

    def used(self, now: int) -> Amount: ...

    def restrict(self, remaining: Amount, reset_after: int, now: int) -> None: ...

    def dump(self, now: int) -> Any: ...

    def retune(self, rate: Rate) -> None: ...
