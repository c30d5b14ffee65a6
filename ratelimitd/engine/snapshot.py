"""Engine state to and from stored rows, and the hold that makes a crash safe.

The engine stays ignorant of SQLite: it hands out plain ``BucketRow`` values
and takes them back. Three rules live here:

- A row restores into its bucket only if the current tier table still has
  that owner and bucket; under a changed rate or algorithm it restores
  conservatively (what was spent stays spent).
- A provider's hold (``held_until``) is a row of its own (``idx`` -1).
- After an unclean stop every non-strict rate is treated as fully used up to
  the moment the previous run was known dead (docs/state.md, "crash-recovery
  rule"), so grants that were made but never stored cannot be repeated.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from ..limits import ALGORITHMS
from ..limits.holding import Holding
from ..limits.sliding_log import grants_of
from ..store import BucketKey, BucketRow
from ..units import parse_rate
from .bucket import QUOTA_KINDS, Bucket, is_strict
from .core import Engine
from .leases import ORPHAN_GRACE, Lease

__all__ = ["HOLD_ROW", "HOLDING_ROW", "DELTA_ROWS", "Journal", "export", "restore", "hold_after_crash"]

log = logging.getLogger("ratelimitd")

# the ``idx`` of the row that stores a bucket's provider hold
HOLD_ROW = -1
HOLD_ALGORITHM = "hold"
# the ``idx`` of the row that stores what leases hold in a concurrency or capacity bucket
HOLDING_ROW = -2
# delta rows of a rate (grants appended since the previous row): idx = -DELTA_ROWS - seq * MAX_RATES - rate
DELTA_ROWS = 1000
MAX_RATES = 16
# a bucket is rewritten whole (and its deltas deleted) after this many deltas
MAX_DELTAS = 64


def export(buckets: Iterable[Bucket], now: int) -> list[BucketRow]:
    """Return the rows that describe ``buckets`` at ``now`` whole (one per rate, the hold, the holding)."""
    rows = []
    for bucket in buckets:
        for index, limiter in enumerate(bucket.limiters):
            rows.append(
                BucketRow(bucket.owner, bucket.name, index, limiter.algorithm, _spec_text(limiter), limiter.dump(now), now)
            )
        rows += export_extras(bucket, now)
    return rows


def export_extras(bucket: Bucket, now: int) -> list[BucketRow]:
    """Return the small rows of ``bucket`` besides its rates: its provider hold and what leases hold."""
    held = bucket.held_until - now if bucket.held_until > now else 0
    rows = [BucketRow(bucket.owner, bucket.name, HOLD_ROW, HOLD_ALGORITHM, "", held, now)]
    if bucket.holding is not None:
        rows.append(BucketRow(bucket.owner, bucket.name, HOLDING_ROW, Holding.algorithm, "", bucket.holding.dump(now), now))
    return rows


class Journal:
    """Which buckets have a full row in the state file this run, and how many delta rows follow it.

    A sliding log of thousands of grants is rewritten whole only every
    ``MAX_DELTAS`` commits; in between, each commit writes the grants appended
    since the previous one (``SlidingLog.dump_delta``). That keeps a strict
    commit small however full the window is. A failed commit is forgotten, so
    the retry writes whole buckets again.
    """

    def __init__(self) -> None:
        self._deltas: dict[tuple[str, str], int] = {}  # bucket -> deltas written since its full row

    def changes(self, buckets: Iterable[Bucket], now: int) -> tuple[list[BucketRow], list[BucketKey]]:
        """Return the rows (and keys to delete first) that record ``buckets`` at ``now``."""
        rows: list[BucketRow] = []
        deleted: list[BucketKey] = []
        for bucket in buckets:
            ident = (bucket.owner, bucket.name)
            seq = self._deltas.get(ident)
            deltas = None
            if seq is not None and seq < MAX_DELTAS and len(bucket.limiters) <= MAX_RATES:
                deltas = [getattr(limiter, "dump_delta", _no_delta)(now) for limiter in bucket.limiters]
                if any(delta is None for delta in deltas):
                    deltas = None
            if deltas is None:
                rows += export([bucket], now)
                deleted.append(BucketKey(bucket.owner, bucket.name, None))  # earlier deltas go with the old rows
                self._deltas[ident] = 0
                continue
            for index, (limiter, delta) in enumerate(zip(bucket.limiters, deltas)):
                idx = -DELTA_ROWS - seq * MAX_RATES - index
                rows.append(BucketRow(bucket.owner, bucket.name, idx, limiter.algorithm, _spec_text(limiter), delta, now))
            rows += [row for row in export_extras(bucket, now)]
            self._deltas[ident] = seq + 1
        return rows, deleted

    def forget(self, buckets: Iterable[Bucket]) -> None:
        """Make the next commit of ``buckets`` write them whole (their last rows may not have been written)."""
        for bucket in buckets:
            self._deltas.pop((bucket.owner, bucket.name), None)


def _no_delta(now: int) -> None:
    return None


def _spec_text(limiter: Any) -> str:
    """Return what a limiter enforces as text: its rate, or a calendar quota's quota."""
    rate = getattr(limiter, "rate", None)
    return str(rate if rate is not None else limiter.quota)


def deleted_keys(identities: Iterable[tuple[str, str]]) -> list[BucketKey]:
    """Return the store keys that delete every row of the buckets ``(owner, name)``."""
    return [BucketKey(owner, name, None) for owner, name in identities]


def restore(engine: Engine, rows: Iterable[BucketRow], now: int) -> dict[str, int]:
    """Load ``rows`` into ``engine``'s buckets; return counts of rows restored, converted and dropped.

    A row whose algorithm and window still match is loaded as it was (under the
    new limit, if the limit changed); one whose algorithm or window changed is
    replaced by the new algorithm charged at ``now`` with what the old state
    still held — conservative, never forgetting a grant. Rows of buckets the
    table no longer has are dropped.
    """
    specs = engine.bucket_specs()
    counts = {"restored": 0, "converted": 0, "dropped": 0, "orphaned_leases": 0}
    rows = list(rows)
    deltas = sorted((row for row in rows if row.idx <= -DELTA_ROWS), key=lambda row: -row.idx)
    for row in rows:
        if row.idx <= -DELTA_ROWS:
            continue
        spec = specs.get((row.owner.split("/", 1)[0], row.bucket))  # "key/wallet=W1" counts under key's spec
        if spec is None:
            counts["dropped"] += 1
            continue
        bucket = engine.bucket(row.owner, spec)
        if row.idx == HOLDING_ROW:
            if bucket.holding is not None:
                bucket.holding = Holding.load(bucket.holding.limit, row.state)
                counts["orphaned_leases"] += _orphan_leases(engine, bucket, now)
            continue
        if row.idx == HOLD_ROW:
            if row.state and row.saved_at + row.state > now:
                bucket.held_until = max(bucket.held_until, row.saved_at + row.state)
            continue
        if row.idx < 0 or row.idx >= len(bucket.limiters):
            counts["dropped"] += 1
            continue
        if spec.kind != "rate":  # a calendar quota: same kind, same period, else dropped with a note
            limiter = bucket.limiters[row.idx]
            if row.algorithm == limiter.algorithm:
                bucket.limiters[row.idx] = type(limiter).load(spec.quota, row.state, row.saved_at)
                counts["restored"] += 1
            else:
                counts["dropped"] += 1
            continue
        rate = spec.rates[row.idx]
        cls = ALGORITHMS[spec.algorithm]
        old_window = _window_of(row.rate)
        if row.algorithm == spec.algorithm and old_window == rate.window:
            bucket.limiters[row.idx] = cls.load(rate, row.state, row.saved_at)
            counts["restored"] += 1
            continue
        used = _used_under(row, rate, now)
        limiter = cls(rate)
        if used:
            limiter.charge_at(min(used, rate.capacity), now)
        bucket.limiters[row.idx] = limiter
        engine.dirty.add(bucket)
        counts["converted"] += 1
    for row in deltas:  # in the order they were written: later grants, and the latest hold, last
        spec = specs.get((row.owner.split("/", 1)[0], row.bucket))
        index = (-row.idx - DELTA_ROWS) % MAX_RATES
        if spec is None or spec.kind != "rate" or index >= len(spec.rates):
            continue
        limiter = engine.bucket(row.owner, spec).limiters[index]
        if hasattr(limiter, "apply_delta") and row.algorithm == limiter.algorithm:
            limiter.apply_delta(row.state, row.saved_at)
        else:  # the bucket changed algorithm: its grants still count, charged as they were
            for age, spent in grants_of(row.state):
                limiter.charge_at(spent, row.saved_at - age)
    return counts


def _orphan_leases(engine: Engine, bucket: Bucket, now: int) -> int:
    """Rebuild the leases of the previous run that hold part of ``bucket``, without a holder.

    Their clients may reattach by renewing within ``ORPHAN_GRACE``; after it their
    slots are freed (a restarted daemon cannot tell whether they are still alive).
    Returns how many leases were new.
    """
    assert bucket.holding is not None
    new = 0
    for lease_id in bucket.holding.by_lease:
        lease = engine.leases.by_id.get(lease_id)
        if lease is None:
            key = bucket.owner.split("/", 1)[0]
            lease = Lease(lease_id, key, "", None, None, now)
            lease.ends_at = now + ORPHAN_GRACE
            engine.leases.adopt(lease)
            new += 1
        lease.holdings.append(bucket)
    return new


def _window_of(rate_text: str) -> int | None:
    try:
        return parse_rate(rate_text.split(" burst ")[0])[1]
    except ValueError:
        return None


def _used_under(row: BucketRow, rate: Any, now: int) -> Any:
    """Return what ``row``'s own algorithm says is still used at ``now`` (0 when it cannot tell)."""
    cls = ALGORITHMS.get(row.algorithm)
    if cls is None:
        return rate.capacity  # unknown state: count the bucket as full, never as empty
    try:
        limit, window = parse_rate(row.rate.split(" burst ")[0])
    except ValueError:
        return rate.capacity
    old = cls.load(type(rate)(limit, window, rate.margin), row.state, row.saved_at)
    return old.used(now)


def hold_after_crash(engine: Engine, dead_by: int, now: int, strict_default: bool) -> dict[str, Any]:
    """Treat every non-strict rate as full until ``dead_by + window + margin``; return what was held back.

    Applies to every bucket the table defines, not only restored ones: a bucket
    first used after the last flush has no row, yet may have been granted.
    """
    held = 0
    longest = 0
    for (owner, _name), spec in engine.bucket_specs().items():
        if spec.kind not in ("rate", *QUOTA_KINDS) or is_strict(spec, strict_default):
            continue
        bucket = engine.bucket(owner, spec)
        touched = False
        for limiter in bucket.limiters:
            if spec.kind == "rate":
                span = limiter.rate.window + limiter.rate.margin
                hold = dead_by + span - now
            else:  # a batched calendar quota: anything may have been spent, until the period ends
                hold = limiter.period_end(now) - now
            if hold > 0:
                limiter.restrict(0, hold, now)
                touched = True
                longest = max(longest, hold)
        if touched:
            held += 1
            engine.dirty.add(bucket)
    return {"buckets_held": held, "longest_hold_s": longest / 1e9}
