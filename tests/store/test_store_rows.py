"""Bucket rows through the store: exact round trips, upserts, deletes, resets, and batches as transactions."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from ratelimitd.limits import ALGORITHMS, Rate
from ratelimitd.store import BucketKey, BucketRow, Reset

from .store_support import T0

SECOND = 10**9


def row(owner="research", bucket="rest", idx=0, state=None, saved_at=T0, algorithm="sliding-log", rate="60/1m"):
    return BucketRow(owner, bucket, idx, algorithm, rate, [] if state is None else state, saved_at)


@pytest.fixture
def store(open_store):
    store = open_store()
    store.begin_run(100, T0)
    return store


STATES = [
    ("empty log", []),
    ("decimal costs", [[1_000, Decimal("0.1")], [2_000, Decimal("12.000000000000000001")]]),
    ("nested lists", [[1, [2, [3, [4, []]]]], [[], [[]]]]),
    ("large ints", [[1_700_000_000_000_000_000, 1], [2**63 - 1, 2**64], [-(2**63), 2**70]]),
    ("map of mixed values", {"tat": 1_712_345_678_901_234_567, "burst": Decimal("2.5"), "note": "é", "on": True, "x": None}),
    ("bytes", b"\x00\xffraw"),
]


@pytest.mark.parametrize("state", [state for _, state in STATES], ids=[name for name, _ in STATES])
def test_state_round_trips_exactly(store, state):
    store.write([row(state=state)], [], T0)
    (loaded,) = store.load_buckets()
    assert loaded == row(state=state)
    assert type(loaded.state) is type(state)


def test_rows_survive_close_and_reopen_with_every_field(open_store, store):
    rows = [
        row("research", "rest", 0, [[5, 1]], T0 - 5),
        row("research", "rest", 1, [[5, 1]], T0 - 5, rate="1000/1h"),
        row("group:desk", "heavy", 0, {"used": Decimal("0.3")}, T0 - 7, algorithm="calendar-quota", rate="10000/30d"),
    ]
    store.write(rows, [], T0)
    store.end_run(T0 + 1)
    store.close()
    assert open_store().load_buckets() == sorted(rows, key=lambda r: r.key)


@pytest.mark.parametrize("name", sorted(ALGORITHMS))
def test_every_algorithms_state_round_trips_through_the_store(store, name):
    rate = Rate(limit=10, window=60 * SECOND, margin=50_000_000)
    limiter = ALGORITHMS[name](rate)
    for step, cost in enumerate([1, 2, Decimal("0.5"), 3]):
        limiter.charge(cost, T0 + step * SECOND)
    now = T0 + 10 * SECOND
    store.write([BucketRow("k", "b", 0, name, str(rate), limiter.dump(now), now)], [], now)
    (loaded,) = store.load_buckets()
    restored = ALGORITHMS[name].load(rate, loaded.state, loaded.saved_at)
    assert limiter.remaining(now) < 10  # something was spent, so the comparison below can fail
    for later in (now, now + SECOND, now + 30 * SECOND, now + 55 * SECOND, now + 61 * SECOND, now + 200 * SECOND):
        step = f"{name} at now+{(later - now) // SECOND}s"
        assert restored.remaining(later) == limiter.remaining(later), step
        assert restored.wait(5, later) == limiter.wait(5, later), step
        assert restored.dump(later) == limiter.dump(later), step


def test_an_upsert_replaces_the_row_with_the_same_key(store):
    store.write([row(state=[[1, 1]])], [], T0)
    store.write([row(state=[[1, 1], [2, 1]], saved_at=T0 + 1, rate="61/1m")], [], T0 + 1)
    assert store.load_buckets() == [row(state=[[1, 1], [2, 1]], saved_at=T0 + 1, rate="61/1m")]


def test_deleted_keys_remove_one_rate_or_every_rate_of_a_bucket(store):
    store.write([row(idx=0), row(idx=1), row(idx=2), row(bucket="ws"), row(owner="other")], [], T0)
    store.write([], [BucketKey("research", "rest", 1)], T0)
    assert [r.key for r in store.load_buckets()] == [
        ("other", "rest", 0), ("research", "rest", 0), ("research", "rest", 2), ("research", "ws", 0)
    ]
    store.write([], [("research", "rest")], T0)
    assert [r.key for r in store.load_buckets()] == [("other", "rest", 0), ("research", "ws", 0)]


def test_rows_written_with_a_delete_of_the_same_key_win(store):
    store.write([row(state=[[9, 9]])], [], T0)
    store.write([row(state=[[1, 1]])], [("research", "rest")], T0, resets=[Reset("research", None, T0)])
    assert store.load_buckets() == [row(state=[[1, 1]])]


def test_a_reset_deletes_the_owners_rows_and_is_recorded_across_restarts(open_store, store):
    store.write([row(bucket="rest"), row(bucket="ws"), row(bucket="heavy"), row(owner="other")], [], T0)
    store.record_reset("research", ["rest", "heavy"], T0 + 1)
    assert [r.key for r in store.load_buckets()] == [("other", "rest", 0), ("research", "ws", 0)]
    store.record_reset("research", None, T0 + 2)
    store.close()  # no end_run: a reset must not depend on a clean stop

    again = open_store()
    again.begin_run(101, T0 + 10)
    assert [r.key for r in again.load_buckets()] == [("other", "rest", 0)]
    assert again.resets() == [Reset("research", None, T0 + 2), Reset("research", ("rest", "heavy"), T0 + 1)]


def test_a_row_that_is_not_cbor_able_is_refused_before_anything_is_written(store):
    store.write([row(state=[[1, 1]])], [], T0)
    with pytest.raises(ValueError, match=r"row \(research, ws, 0\): state .* cannot be stored as CBOR"):
        store.write([row(state=[[2, 2]]), row(bucket="ws", state=[object()])], [("research", "rest")], T0 + 1)
    assert store.load_buckets() == [row(state=[[1, 1]])]


def test_a_batch_is_one_transaction(store, state_path):
    """A failure inside a batch (here a row SQLite rejects) leaves no part of it behind."""
    from ratelimitd.store import StoreError

    store.write([row(state=[[1, 1]])], [], T0)
    bad = BucketRow("research", "ws", 0, None, "60/1m", [], T0)  # algorithm NOT NULL
    with pytest.raises(StoreError):
        store.write([row(idx=5), bad], [("research", "rest", 0)], T0 + 1)
    assert store.load_buckets() == [row(state=[[1, 1]])]
    with sqlite3.connect(state_path) as conn:
        assert conn.execute("SELECT last_flush_at FROM runs").fetchone() == (T0,)


def test_an_empty_write_still_moves_the_flush_mark(store, clocks, state_path):
    clocks.advance(2 * SECOND)
    store.write([], [], T0 + 2 * SECOND)
    with sqlite3.connect(state_path) as conn:
        mark = conn.execute("SELECT last_flush_at, last_flush_wall, last_flush_boottime FROM runs").fetchone()
    assert mark == (T0 + 2 * SECOND, clocks.wall, clocks.boottime)


def test_writing_before_a_run_is_begun_is_a_programming_error(open_store):
    with pytest.raises(RuntimeError, match="call begin_run first"):
        open_store().write([row()], [], T0)


def test_sync_writes_use_synchronous_full_and_batched_ones_normal(store):
    pragma = lambda: store._db.conn.execute("PRAGMA synchronous").fetchone()[0]  # noqa: E731
    assert pragma() == 1  # NORMAL
    store.write([row()], [], T0, sync=True)
    assert pragma() == 2  # FULL
    store.write([row()], [], T0)
    assert pragma() == 1
