"""inspect(): what ``ratelimitctl status --state PATH`` shows of a state file, read-only."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from decimal import Decimal

import pytest

from ratelimitd.store import BucketRow, StateStore, StoreCorrupt, StoreError, StoreMissing, inspect

from .store_support import T0

S = 10**9


def row(owner, bucket, idx=0, state=None, saved_at=T0):
    return BucketRow(owner, bucket, idx, "sliding-log", "60/1m", state or [[0, 1]], saved_at)


@pytest.fixture
def filled(open_store):
    store = open_store()
    store.begin_run(100, T0)
    store.write(
        [row("research", "rest", 0, saved_at=T0 - 5 * S), row("research", "rest", 1), row("research", "ws"),
         row("group:desk", "heavy", 0, [[3, Decimal("0.1")]])],
        [], T0 + S,
    )
    store.record_reset("other", ["rest"], T0 + 2 * S)
    return store


def test_after_a_clean_stop(filled, state_path):
    filled.end_run(T0 + 3 * S)
    filled.close()
    before = state_path.read_bytes()
    report = inspect(state_path)
    assert state_path.read_bytes() == before
    assert report["path"] == str(state_path)
    assert report["daemon_pid"] is None and report["clean"] is True
    assert report["schema"] == ["m001_initial"]
    assert report["last_flush_at"] == T0 + 2 * S
    last = report["last_run"]
    assert (last["run_id"], last["pid"], last["outcome"], last["started_at"], last["stopped_at"]) == (
        1, 100, "clean", T0, T0 + 3 * S
    )
    assert report["buckets"] == {
        "rows": 4,
        "owners": {
            "group:desk": {"rows": 1, "buckets": ["heavy"], "oldest_saved_at": T0, "newest_saved_at": T0},
            "research": {"rows": 3, "buckets": ["rest", "ws"], "oldest_saved_at": T0 - 5 * S, "newest_saved_at": T0},
        },
    }
    assert report["resets"] == [{"owner": "other", "buckets": ["rest"], "at": T0 + 2 * S}]
    assert "rows" not in report


def test_after_a_crash_the_last_run_shows_crashed(filled, state_path):
    filled.close()  # no end_run
    report = inspect(state_path)
    assert report["clean"] is False and report["last_run"]["outcome"] == "crashed"


def test_beside_a_running_daemon(filled, state_path):
    report = inspect(state_path)
    assert report["daemon_pid"] == os.getpid()
    assert report["clean"] is None and report["last_run"]["outcome"] == "running"
    filled.write([], [], T0 + 9 * S)  # the daemon carries on undisturbed


def test_rows_with_their_decoded_state(filled, state_path):
    report = inspect(state_path, rows=True)
    assert report["rows"][0] == {
        "owner": "group:desk", "bucket": "heavy", "idx": 0, "algorithm": "sliding-log", "rate": "60/1m",
        "saved_at": T0, "state": [[3, Decimal("0.1")]],
    }
    assert len(report["rows"]) == 4


def test_the_recovery_note_is_shown_with_its_run(filled, state_path):
    filled.note_recovery({"held_back_ns": 12 * S})
    assert inspect(state_path)["last_run"]["recovery"] == {"held_back_ns": 12 * S}


def test_what_a_killed_daemon_left_in_its_wal_is_readable(tmp_path):
    path = tmp_path / "state.db"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import os
            from ratelimitd.store import BucketRow, StateStore
            store = StateStore.open({str(path)!r})
            store.begin_run(os.getpid(), 7)
            store.write([BucketRow("k", "b", 0, "sliding-log", "1/1s", [[1, 1]], 7)], [], 8)
            print("written", flush=True)
            os.kill(os.getpid(), 9)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    assert child.stdout.readline() == "written\n"
    child.wait(timeout=30)
    assert os.path.getsize(f"{path}-wal") > 0  # the write is still only in the WAL
    report = inspect(path)
    assert report["clean"] is False and report["last_run"]["outcome"] == "crashed"
    assert report["last_run"]["pid"] == child.pid and report["last_flush_at"] == 8
    assert report["buckets"]["rows"] == 1


def test_a_missing_file(tmp_path):
    with pytest.raises(StoreMissing) as caught:
        inspect(tmp_path / "nope.db")
    assert str(caught.value) == (
        f"no state file at {tmp_path / 'nope.db'}; check --state PATH (the daemon creates it on its first start)"
    )
    assert not (tmp_path / "nope.db").exists()


def test_a_corrupt_file(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(StoreCorrupt, match="file is not a database"):
        inspect(path)


def test_an_empty_file_has_nothing_to_show(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"")
    with pytest.raises(StoreError) as caught:
        StateStore.open_readonly(path)
    assert str(caught.value) == f"state file {path} is empty: no daemon has written it yet"


def test_the_daemon_starts_fresh_on_an_empty_file(tmp_path):
    """A 0-byte file holds nothing to forget (SQLite never leaves one behind after a commit)."""
    path = tmp_path / "state.db"
    path.write_bytes(b"")
    with StateStore.open(path, lock_timeout=0) as store:
        assert store.begin_run(1, T0).previous is None
