"""What a new run learns about the one before it, and how stored times join this run's timeline.

Each run's engine time is Unix time read once at its start and then advanced
by a monotonic clock, so two runs have two timelines that differ by whatever
the wall clock did in between (NTP, a manual ``date``, a reboot). Every flush
therefore records three readings taken together: engine time, wall time, and
``CLOCK_BOOTTIME`` with the boot id. At the next start ``plan_recovery``
picks the most trustworthy bridge:

- same boot: ``CLOCK_BOOTTIME`` never steps and counts suspend, so the time
  between the last flush and now is exact whatever the wall clock did;
- another boot: only the wall clock bridges a reboot. The previous run ended
  before this boot began, so nothing it saved is placed later than the boot's
  start (this clamp only ever makes stored grants older than the wall clock
  says, never older than they truly are). A wall clock stepped *forward*
  while the machine was down cannot be detected; see docs/state.md.

Two estimates place a previous engine time ``E`` on this timeline: one from
the run's start readings plus engine time elapsed since, one from its last
flush's readings (taken when the writer ran, a little after the snapshot, and
after any suspend). They differ by the writer's lag, a suspend or a wall
step. Stored rows take the *later* estimate (their grants look younger, so
they count longer); the last durable write takes the *earlier* one (the
interval that may hold unrecorded grants looks longer). Both errors are on
the side of granting less.

Nothing here reads a clock: ``SystemClocks`` does, and ``StateStore`` calls it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

__all__ = ["SystemClocks", "PreviousRun", "RecoveryInfo", "plan_recovery"]

_BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"


class SystemClocks:
    """The machine's clocks as the store records them (tests pass a fake with the same three methods)."""

    def boot_id(self) -> str:
        """Return this boot's id, or "" where the kernel does not tell (then no two runs count as one boot)."""
        try:
            with open(_BOOT_ID_FILE, encoding="ascii") as handle:
                return handle.read().strip()
        except OSError:
            return ""

    def boottime_ns(self) -> int:
        """Return ns since boot, suspend included (``CLOCK_BOOTTIME``)."""
        return time.clock_gettime_ns(time.CLOCK_BOOTTIME)

    def wall_ns(self) -> int:
        """Return the wall clock in Unix ns."""
        return time.time_ns()


@dataclass(frozen=True, slots=True)
class PreviousRun:
    """The latest run recorded in the state file, with its times on *its own* timeline.

    ``outcome`` is "clean" (stopped with the final flush committed), "unclean"
    (stopped, but said its state was incomplete) or "crashed" (never stopped).
    """

    run_id: int
    pid: int
    boot_id: str
    started_at: int
    started_wall: int
    started_boottime: int
    last_flush_at: int
    last_flush_wall: int
    last_flush_boottime: int
    stopped_at: int | None
    outcome: str

    @property
    def clean(self) -> bool:
        """Report whether the run stopped with every grant durable."""
        return self.outcome == "clean"


@dataclass(frozen=True, slots=True)
class RecoveryInfo:
    """What ``begin_run`` reports. Every time below is on *this* run's engine timeline.

    ``shift_ns`` has already been added to every stored ``saved_at``, so rows
    from ``load_buckets`` are ready for ``Limiter.load(rate, state, at=row.saved_at)``.
    ``last_durable`` is the previous run's last committed flush; ``dead_by`` the
    latest moment the previous run could still have granted. Both are None when
    there was no previous run (a new state file).
    """

    run_id: int
    now: int
    boot_id: str
    previous: PreviousRun | None
    same_boot: bool
    shift_ns: int
    last_durable: int | None
    dead_by: int | None

    @property
    def clean(self) -> bool:
        """Report whether the stored state is complete: a new file, or a previous run that stopped cleanly."""
        return self.previous is None or self.previous.clean

    @property
    def unaccounted_ns(self) -> int:
        """Report the length of ``[last_durable, dead_by]`` after an unclean stop, else 0.

        Grants of that interval may have been sent and never stored; the
        engine treats it as fully used (docs/state.md, crash recovery).
        """
        if self.clean or self.last_durable is None or self.dead_by is None:
            return 0
        return max(0, self.dead_by - self.last_durable)


def plan_recovery(
    previous: PreviousRun | None,
    *,
    run_id: int,
    now: int,
    boot_id: str,
    boottime_ns: int,
    wall_ns: int,
) -> RecoveryInfo:
    """Return the ``RecoveryInfo`` of a run starting at engine time ``now`` after ``previous``.

    ``boot_id``, ``boottime_ns`` and ``wall_ns`` are read together with ``now``.
    An empty boot id on either side means "unknown": the wall clock bridges,
    and the previous run may have granted until ``now``.
    """
    if previous is None:
        return RecoveryInfo(run_id, now, boot_id, None, False, 0, None, None)
    flush, start = previous.last_flush_at, previous.started_at
    same_boot = bool(boot_id) and boot_id == previous.boot_id
    if same_boot:
        base = now - boottime_ns  # this run's engine time at boottime 0
        by_flush = base + previous.last_flush_boottime
        by_start = base + previous.started_boottime + (flush - start)
        dead_by = now
    else:
        base = now - wall_ns  # this run's engine time at wall time 0
        by_flush = base + previous.last_flush_wall
        by_start = base + previous.started_wall + (flush - start)
        known = bool(boot_id) and bool(previous.boot_id)
        dead_by = now - boottime_ns if known else now
    rows_at = min(max(by_flush, by_start), dead_by)
    last_durable = min(by_flush, by_start, dead_by)
    return RecoveryInfo(run_id, now, boot_id, previous, same_boot, rows_at - flush, last_durable, dead_by)
