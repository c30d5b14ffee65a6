"""plan_recovery on synthetic timelines: every case errs on the side of granting less.

Each case: a previous run started at engine time P (= its wall clock then) with
boottime B, its last flush was recorded at engine time P+F; the new run starts
at engine time N. ``rows_at`` is where the previous run's last flush lands on
the new timeline for stored rows (``flush + shift``), ``last_durable`` where
it lands for the crash interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ratelimitd.store.recovery import PreviousRun, plan_recovery

S = 10**9
P = 1_700_000_000 * S  # previous run's start, engine = wall
B = 1_000 * S  # previous run's boottime at start
F = 60 * S  # engine time from its start to its last flush


def previous(*, boot="A", flush_wall=None, flush_boottime=None, outcome="crashed"):
    return PreviousRun(
        run_id=1,
        pid=1,
        boot_id=boot,
        started_at=P,
        started_wall=P,
        started_boottime=B,
        last_flush_at=P + F,
        last_flush_wall=P + F if flush_wall is None else flush_wall,
        last_flush_boottime=B + F if flush_boottime is None else flush_boottime,
        stopped_at=None,
        outcome=outcome,
    )


@dataclass
class Case:
    name: str
    previous: PreviousRun
    boot: str
    boottime: int  # new run's boottime reading
    wall: int  # new run's wall reading (its engine time starts there too)
    rows_at: int
    last_durable: int
    dead_by: int


CASES = [
    Case("same boot, 10 s later", previous(), "A", B + F + 10 * S, P + F + 10 * S,
         rows_at=P + F, last_durable=P + F, dead_by=P + F + 10 * S),
    Case("same boot, wall stepped back 1 h between runs", previous(), "A", B + F + 10 * S, P + F + 10 * S - 3600 * S,
         rows_at=P + F - 3600 * S, last_durable=P + F - 3600 * S, dead_by=P + F + 10 * S - 3600 * S),
    Case("same boot, writer read its clocks 30 ms after the snapshot", previous(flush_boottime=B + F + 30_000_000),
         "A", B + F + 10 * S, P + F + 10 * S,
         rows_at=P + F + 30_000_000, last_durable=P + F, dead_by=P + F + 10 * S),
    Case("same boot, 5 s suspend during the previous run", previous(flush_boottime=B + F + 5 * S),
         "A", B + F + 15 * S, P + F + 15 * S,
         rows_at=P + F + 5 * S, last_durable=P + F, dead_by=P + F + 15 * S),
    Case("reboot, wall clock right", previous(), "B", 40 * S, P + F + 100 * S,
         rows_at=P + F, last_durable=P + F, dead_by=P + F + 60 * S),
    Case("reboot, wall clock back 1 h: nothing lands after the boot", previous(), "B", 40 * S, P + F + 100 * S - 3600 * S,
         rows_at=P + F + 60 * S - 3600 * S, last_durable=P + F + 60 * S - 3600 * S, dead_by=P + F + 60 * S - 3600 * S),
    Case("reboot, wall stepped back 10 s during the previous run", previous(boot="A", flush_wall=P + F - 10 * S),
         "B", 40 * S, P + F + 100 * S,
         rows_at=P + F, last_durable=P + F - 10 * S, dead_by=P + F + 60 * S),
    Case("boot ids unknown: the previous run may have lived until now", previous(boot=""), "", 40 * S, P + F + 100 * S,
         rows_at=P + F, last_durable=P + F, dead_by=P + F + 100 * S),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_plan_recovery(case):
    info = plan_recovery(case.previous, run_id=2, now=case.wall, boot_id=case.boot, boottime_ns=case.boottime, wall_ns=case.wall)
    got = (P + F + info.shift_ns, info.last_durable, info.dead_by)
    assert got == (case.rows_at, case.last_durable, case.dead_by), case.name
    assert info.unaccounted_ns == case.dead_by - case.last_durable
    assert info.last_durable <= P + F + info.shift_ns <= info.dead_by


def test_a_clean_previous_run_leaves_nothing_unaccounted():
    info = plan_recovery(previous(outcome="clean"), run_id=2, now=P + 2 * F, boot_id="A", boottime_ns=B + 2 * F, wall_ns=P + 2 * F)
    assert info.clean and info.unaccounted_ns == 0 and info.last_durable == P + F
