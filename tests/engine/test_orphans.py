"""Leases over a restart on a synthetic timeline: restored as orphans, reattached by a renew, freed after the grace.

The daemon-level tests (tests/leases/test_restarts.py) show a real client
reattaching; here the other path, a lease whose holder never comes back, is
followed through the 30 s grace without waiting for it.
"""

from __future__ import annotations

from ratelimitd.engine import Engine
from ratelimitd.engine.leases import ORPHAN_GRACE
from ratelimitd.engine.snapshot import export, restore
from ratelimitd.tiers.model import BucketSpec

from .tables import S, table

T0 = 1_700_000_000 * S
RESTART = T0 + 5 * S  # when the second run restores what the first one saved


def first_run() -> tuple[Engine, str]:
    """Return an engine (a daemon run) in which connection "a" holds the one slot of a reject bucket, and the lease."""
    buckets = {"ws": BucketSpec("ws", kind="concurrency", concurrent=1, when_full="reject")}
    engine = Engine(table(buckets, {"ws": ("ws",)}), run_tag="run1")
    return engine, engine.acquire("k", "ws", None, T0, token="a").extra["lease"]


def second_run(previous: Engine) -> Engine:
    """Return a new engine that restored ``previous``'s saved state at ``RESTART``, as a restarted daemon does."""
    engine = Engine(previous.table, run_tag="run2")
    counts = restore(engine, export(previous.buckets(), RESTART), RESTART)
    assert counts["orphaned_leases"] == 1
    return engine


def test_an_orphan_keeps_its_slot_through_the_grace_and_is_freed_after_it():
    first, lease = first_run()
    engine = second_run(first)
    assert engine.leases.by_id[lease].describe(RESTART)["orphaned"] is True
    assert not engine.acquire("k", "ws", None, RESTART).granted
    _, wake = engine.service(RESTART)
    assert wake == RESTART + ORPHAN_GRACE
    engine.service(RESTART + ORPHAN_GRACE - 1)
    assert lease in engine.leases.by_id and not engine.acquire("k", "ws", None, RESTART + ORPHAN_GRACE - 1).granted
    engine.service(RESTART + ORPHAN_GRACE)
    assert lease not in engine.leases.by_id
    assert engine.leases.notices == []  # nobody holds it to be told
    granted = engine.acquire("k", "ws", None, RESTART + ORPHAN_GRACE, token="b")
    assert granted.granted and granted.extra["lease"].startswith("run2-")


def test_an_orphan_renewed_within_the_grace_is_kept_past_it_by_its_new_connection():
    first, lease = first_run()
    engine = second_run(first)
    renewed = engine.renew(lease, RESTART + 29 * S, token="a-again")
    assert renewed.token == "a-again" and renewed.describe(RESTART + 29 * S)["orphaned"] is False
    engine.service(RESTART + ORPHAN_GRACE + 60 * S)
    assert lease in engine.leases.by_id
    assert not engine.acquire("k", "ws", None, RESTART + ORPHAN_GRACE + 60 * S).granted
    assert engine.release(lease, RESTART + ORPHAN_GRACE + 61 * S) == [lease]
    assert engine.acquire("k", "ws", None, RESTART + ORPHAN_GRACE + 61 * S).granted
