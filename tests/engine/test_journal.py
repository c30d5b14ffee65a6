"""Persisting by deltas: a full row, then only the grants appended since, rebuilds every log exactly."""

from __future__ import annotations

from decimal import Decimal

from ratelimitd.engine import Engine
from ratelimitd.engine.snapshot import MAX_DELTAS, Journal, restore
from ratelimitd.store import BucketRow

from .tables import S, single

T0 = 1_700_000_000 * S


class FakeFile:
    """The state file as the store applies a write: deletes first, then upserts (tested in tests/store)."""

    def __init__(self) -> None:
        self.rows: dict[tuple, BucketRow] = {}

    def write(self, rows, deleted) -> None:
        for key in deleted:
            for ident in [ident for ident in self.rows if ident[:2] == (key.owner, key.bucket)]:
                if key.idx is None or ident[2] == key.idx:
                    del self.rows[ident]
        for row in rows:
            self.rows[(row.owner, row.bucket, row.idx)] = row


def commit(engine: Engine, journal: Journal, file: FakeFile, now: int) -> list[BucketRow]:
    rows, deleted = journal.changes(engine.dirty, now)
    engine.dirty = set()
    file.write(rows, deleted)
    return rows


def test_deltas_after_a_full_row_restore_the_log_exactly():
    engine, journal, file = Engine(single("1000/1m")), Journal(), FakeFile()
    for step in range(200):
        now = T0 + step * S // 10
        engine.acquire("k", "e", Decimal("0.5") if step % 7 == 0 else 1 + step % 3, now)
        rows = commit(engine, journal, file, now)
        if step == 0:
            assert rows[0].idx == 0  # the first commit writes the bucket whole
        elif step < MAX_DELTAS:
            assert rows[0].idx < -100 and len(file.rows) == step + 2  # deltas pile up beside it, small
    assert len(file.rows) < MAX_DELTAS + 4  # compacted: a whole row again, its deltas deleted
    end = T0 + 30 * S
    again = Engine(single("1000/1m"))
    restore(again, list(file.rows.values()), end)
    assert again.show("k", end)["buckets"][0]["rates"][0]["used"] == engine.show("k", end)["buckets"][0]["rates"][0]["used"]
    assert [again.acquire("k", "e", 0, end + step * S).remaining for step in range(0, 70, 5)] == [
        engine.acquire("k", "e", 0, end + step * S).remaining for step in range(0, 70, 5)
    ]


def test_a_grant_inserted_out_of_order_makes_the_next_commit_whole():
    engine, journal, file = Engine(single("10/1m")), Journal(), FakeFile()
    engine.acquire("k", "e", 1, T0 + 5 * S)
    commit(engine, journal, file, T0 + 5 * S)
    engine.acquire("k", "e", 1, T0 + 2 * S)  # the clock stepped back: not at the end of the log
    rows = commit(engine, journal, file, T0 + 5 * S)
    assert rows[0].idx == 0
    again = Engine(single("10/1m"))
    restore(again, list(file.rows.values()), T0 + 6 * S)
    assert again.acquire("k", "e", 0, T0 + 6 * S).remaining == 8


def test_a_failed_commit_is_written_whole_on_retry():
    engine, journal, file = Engine(single("10/1m")), Journal(), FakeFile()
    engine.acquire("k", "e", 1, T0)
    commit(engine, journal, file, T0)
    engine.acquire("k", "e", 1, T0 + S)
    lost, _ = journal.changes(engine.dirty, T0 + S)  # this commit fails: its delta never reaches the file
    journal.forget(engine.dirty)
    rows = commit(engine, journal, file, T0 + 2 * S)
    assert rows[0].idx == 0
    again = Engine(single("10/1m"))
    restore(again, list(file.rows.values()), T0 + 3 * S)
    assert again.acquire("k", "e", 0, T0 + 3 * S).remaining == 8
