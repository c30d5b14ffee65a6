"""The daemon's one clock: engine time is Unix time in ns, advanced by Trio's monotonic clock.

It is read here and nowhere else. At start the wall clock is read once and
tied to ``trio.current_time()``; from then on engine time moves with the
monotonic clock, so a wall-clock step during a run (NTP, a manual ``date``)
cannot shorten or stretch a window. Under ``trio.testing.MockClock`` engine time
follows the mock, which is how the server's timing is tested without sleeping.
"""

from __future__ import annotations

import math
import time

import trio

__all__ = ["Clock"]

_NS = 1_000_000_000


class Clock:
    """Engine time: ``now()`` in integer Unix ns; conversions to and from Trio's clock."""

    __slots__ = ("_offset",)

    def __init__(self, wall_ns: int | None = None) -> None:
        anchor = time.time_ns() if wall_ns is None else wall_ns
        self._offset = anchor - int(trio.current_time() * _NS)

    def now(self) -> int:
        """Return the current engine time (Unix ns that never steps)."""
        return self._offset + int(trio.current_time() * _NS)

    def trio_time(self, engine_ns: int) -> float:
        """Return the Trio clock reading at which engine time reaches ``engine_ns`` (rounded up)."""
        return math.ceil(engine_ns - self._offset) / _NS + 1e-9

    def wall(self) -> float:
        """Return engine time as Unix seconds, for ``time`` fields on the wire."""
        return self.now() / _NS
