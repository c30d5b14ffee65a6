"""Runs: the clean-stop marker, and how a restart places the previous run's times on its own timeline."""

from __future__ import annotations

import sqlite3

import pytest

from ratelimitd.store import BucketRow, StoreError
from ratelimitd.store.state_store import KEEP_RUNS

from .store_support import T0

SECOND = 10**9
HOUR = 3600 * SECOND


def row(saved_at, state=None):
    return BucketRow("research", "rest", 0, "sliding-log", "60/1m", [[0, 1]] if state is None else state, saved_at)


def outcomes(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT run_id, outcome FROM runs ORDER BY run_id").fetchall()


def test_first_run_on_a_new_file_has_nothing_to_recover(open_store):
    info = open_store().begin_run(100, T0)
    assert (info.run_id, info.previous, info.clean, info.unaccounted_ns) == (1, None, True, 0)
    assert (info.last_durable, info.dead_by, info.shift_ns) == (None, None, 0)


def test_a_clean_stop_is_reported_clean_with_its_final_flush(open_store, clocks, state_path):
    store = open_store()
    store.begin_run(100, T0)
    clocks.advance(10 * SECOND)
    store.write([row(T0 + 10 * SECOND)], [], T0 + 10 * SECOND)
    store.end_run(T0 + 10 * SECOND)
    store.close()
    assert outcomes(state_path) == [(1, "clean")]

    clocks.advance(5 * SECOND)
    info = open_store().begin_run(200, T0 + 15 * SECOND)
    assert info.clean and info.unaccounted_ns == 0
    assert info.previous.pid == 100 and info.previous.outcome == "clean"
    assert info.previous.stopped_at == T0 + 10 * SECOND
    assert info.last_durable == T0 + 10 * SECOND
    assert outcomes(state_path) == [(1, "clean"), (2, "running")]


def test_a_run_that_never_stopped_is_reported_crashed(open_store, clocks, state_path):
    store = open_store()
    store.begin_run(100, T0)
    clocks.advance(3 * SECOND)
    store.write([row(T0 + 3 * SECOND)], [], T0 + 3 * SECOND)
    store.close()  # as after kill -9: the lock goes with the process, the run stays "running"

    clocks.advance(7 * SECOND)
    info = open_store().begin_run(200, T0 + 10 * SECOND)
    assert not info.clean and info.previous.outcome == "crashed"
    assert (info.last_durable, info.dead_by) == (T0 + 3 * SECOND, T0 + 10 * SECOND)
    assert info.unaccounted_ns == 7 * SECOND
    assert outcomes(state_path) == [(1, "crashed"), (2, "running")]


def test_a_stop_declared_unclean_recovers_like_a_crash(open_store, clocks):
    store = open_store()
    store.begin_run(100, T0)
    store.end_run(T0 + SECOND, clean=False)
    store.close()
    clocks.advance(2 * SECOND)
    info = open_store().begin_run(200, T0 + 2 * SECOND)
    assert info.previous.outcome == "unclean" and not info.clean
    assert info.unaccounted_ns == 2 * SECOND


@pytest.mark.parametrize("step", [-HOUR, +HOUR, 0], ids=["wall back 1h", "wall forward 1h", "no step"])
def test_a_wall_clock_step_between_runs_on_one_boot_keeps_true_ages(open_store, clocks, step):
    """The new run's engine time starts from the stepped wall clock; boottime bridges the gap exactly."""
    store = open_store()
    store.begin_run(100, T0)
    clocks.advance(20 * SECOND)
    store.write([row(T0 + 20 * SECOND, [[4 * SECOND, 1]])], [], T0 + 20 * SECOND)  # a grant at T0+16s
    store.close()

    clocks.advance(30 * SECOND)
    clocks.wall += step
    now = clocks.wall  # the next daemon anchors its engine time to the (stepped) wall clock
    again = open_store()
    info = again.begin_run(200, now)
    assert info.same_boot and info.shift_ns == step
    assert info.last_durable == now - 30 * SECOND
    (loaded,) = again.load_buckets()
    grant = loaded.saved_at - loaded.state[0][0]
    assert now - grant == 34 * SECOND  # the grant's true age, whatever the wall clock did


def test_rows_are_moved_onto_the_new_timeline(open_store, clocks):
    store = open_store()
    store.begin_run(100, T0)
    clocks.advance(20 * SECOND)
    store.write([row(T0 + 20 * SECOND)], [], T0 + 20 * SECOND)
    store.close()
    clocks.advance(30 * SECOND)
    clocks.wall -= HOUR
    again = open_store()
    info = again.begin_run(200, clocks.wall)
    (loaded,) = again.load_buckets()
    assert loaded.saved_at == clocks.wall - 30 * SECOND == T0 + 20 * SECOND + info.shift_ns
    assert loaded.state == [[0, 1]]


def test_history_is_trimmed_to_the_latest_runs(open_store, clocks, state_path):
    for number in range(KEEP_RUNS + 5):
        store = open_store()
        store.begin_run(number, T0 + number * SECOND)
        store.end_run(T0 + number * SECOND)
        store.close()
    ids = [run_id for run_id, _ in outcomes(state_path)]
    assert ids == list(range(6, KEEP_RUNS + 6))


def test_the_recovery_note_is_kept_with_its_run(open_store):
    store = open_store()
    info = store.begin_run(100, T0)
    store.note_recovery({"held_back_ns": 7 * SECOND, "buckets": 3})
    assert store.recovery_notes() == {info.run_id: {"held_back_ns": 7 * SECOND, "buckets": 3}}


def test_a_run_is_begun_once(open_store):
    store = open_store()
    store.begin_run(100, T0)
    with pytest.raises(RuntimeError, match="already begun"):
        store.begin_run(100, T0)


def test_a_read_only_store_refuses_to_begin_a_run(open_store, state_path):
    from ratelimitd.store import StateStore

    open_store().close()
    with StateStore.open_readonly(state_path) as reader:
        with pytest.raises(StoreError, match="open read-only"):
            reader.begin_run(1, T0)
