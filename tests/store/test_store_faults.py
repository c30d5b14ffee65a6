"""Faults of the state file: corrupt, locked, unwritable, unsafe, full. Each refuses with the path and what to do."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
from datetime import datetime

import pytest

from ratelimitd.store import (
    BucketRow,
    StateStore,
    StoreCorrupt,
    StoreFull,
    StoreLocked,
    StoreUnsafePath,
    StoreUnwritable,
    move_aside,
)
from ratelimitd.store.errors import classify

from .store_support import NOBODY, T0, FakeClocks, as_user

ROOT = os.geteuid() == 0


def row(idx=0, state=None, owner="research"):
    return BucketRow(owner, "rest", idx, "sliding-log", "60/1m", [[idx, 1]] if state is None else state, T0)


def corrupt_message(path, detail):
    return (
        f"state file {path} is corrupt ({detail}); ratelimitd does not start on it, because starting "
        "empty would forget what was already spent: restore a backup, or move it aside "
        f"(mv {path} {path}.corrupt) to start from empty"
    )


# -- corrupt -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage", [bytes(range(256)) * 32, b"hello, I am not a database\n"], ids=["binary", "short text"]
)
def test_a_file_of_garbage_is_refused_and_left_untouched(tmp_path, garbage):
    path = tmp_path / "state.db"
    path.write_bytes(garbage)
    for _ in range(2):  # the lock is released after a refusal: the second try meets the same fault
        with pytest.raises(StoreCorrupt) as caught:
            StateStore.open(path, lock_timeout=0)
        assert str(caught.value) == corrupt_message(path, "file is not a database")
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.db", "state.db.lock"]


def test_a_malformed_database_is_refused(tmp_path):
    path = tmp_path / "state.db"
    with StateStore.open(path, lock_timeout=0, clocks=FakeClocks()) as store:
        store.begin_run(1, T0)
        store.write([row(i, [[i, "x" * 400]]) for i in range(2000)], [], T0)
    page = 4096
    with open(path, "r+b") as handle:  # overwrite three pages in the middle of the table
        handle.seek(20 * page)
        handle.write(b"\xa5" * (3 * page))
    with pytest.raises(StoreCorrupt) as caught:
        StateStore.open(path, lock_timeout=0)
    assert str(caught.value).startswith(f"state file {path} is corrupt (")
    assert caught.value.path == str(path)


def test_a_row_whose_state_cannot_be_decoded_is_named(open_store, state_path):
    store = open_store()
    store.begin_run(1, T0)
    store.write([row(0)], [], T0)
    with sqlite3.connect(state_path) as conn:
        conn.execute("UPDATE buckets SET state = x'8201' WHERE idx = 0")
    with pytest.raises(StoreCorrupt, match=r"row \(research, rest, 0\) holds state that is not CBOR: premature end"):
        store.load_buckets()


def test_move_aside_renames_the_file_and_its_wal_for_a_fresh_start(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"junk" * 100)
    (tmp_path / "state.db-wal").write_bytes(b"wal")
    target = move_aside(path, when=datetime(2024, 3, 9, 14, 5, 7))
    assert target == f"{path}.corrupt-20240309T140507"
    assert open(target, "rb").read() == b"junk" * 100
    assert open(target + "-wal", "rb").read() == b"wal"
    with StateStore.open(path, lock_timeout=0) as store:
        assert store.begin_run(1, T0).previous is None


def test_move_aside_refuses_while_a_daemon_uses_the_file(open_store, state_path):
    open_store()
    with pytest.raises(StoreLocked):
        move_aside(state_path)
    assert state_path.exists()


# -- locked ------------------------------------------------------------------------


def test_a_second_open_in_the_same_process_is_refused(open_store, state_path):
    open_store()
    with pytest.raises(StoreLocked) as caught:
        open_store()
    assert str(caught.value) == (
        f"another ratelimitd (pid {os.getpid()}) uses {state_path}; stop it first, "
        "or give this daemon its own --state PATH"
    )
    assert caught.value.pid == os.getpid()


def test_a_daemon_in_another_process_is_named_by_its_pid(state_path, open_store):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from ratelimitd.store import StateStore
            store = StateStore.open({str(state_path)!r})
            print("ready", flush=True)
            sys.stdin.read()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline() == "ready\n"
        with pytest.raises(StoreLocked) as caught:
            open_store()
        assert caught.value.pid == holder.pid
        assert f"another ratelimitd (pid {holder.pid}) uses {state_path}" in str(caught.value)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    open_store()  # the lock died with its process


# -- unwritable and unsafe ---------------------------------------------------------


def test_a_parent_that_is_a_regular_file_is_refused(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    for path in (blocker / "state.db", blocker / "sub" / "state.db"):
        with pytest.raises(StoreUnwritable) as caught:
            StateStore.open(path, lock_timeout=0)
        message = str(caught.value)
        assert message.startswith(f"cannot write state file {path} (")
        assert "is not a directory" in message
        assert message.endswith(f"make {path.parent} writable by uid {os.geteuid()}, or choose another --state PATH")


def _open_as_user(path):
    """Open the store as a non-root user (a forked child when the tests run as root)."""
    action = lambda: StateStore.open(path, lock_timeout=0).close()  # noqa: E731
    return as_user(NOBODY, action) if ROOT else action()


def test_a_directory_the_user_cannot_write_is_refused(shared_dir):
    locked_dir = shared_dir / "ro"
    locked_dir.mkdir(mode=0o555)
    path = locked_dir / "state.db"
    with pytest.raises(StoreUnwritable) as caught:
        _open_as_user(path)
    uid = NOBODY if ROOT else os.geteuid()
    assert str(caught.value) == (
        f"cannot write state file {path} ({path}.lock: Permission denied); "
        f"make {locked_dir} writable by uid {uid}, or choose another --state PATH"
    )


def test_a_file_the_user_cannot_write_is_refused(shared_dir):
    own_dir = shared_dir / "own"
    own_dir.mkdir(mode=0o700)
    path = own_dir / "state.db"
    with StateStore.open(path, lock_timeout=0) as store:  # a real state file...
        store.begin_run(1, T0)
    path.chmod(0o400)  # ...made read-only
    if ROOT:
        for entry in [own_dir, *own_dir.iterdir()]:
            os.chown(entry, NOBODY, NOBODY)
    with pytest.raises(StoreUnwritable) as caught:
        _open_as_user(path)
    assert str(caught.value).startswith(f"cannot write state file {path} (Permission denied)")
    assert stat.S_IMODE(path.stat().st_mode) == 0o400


def test_a_symlink_into_another_users_directory_is_refused(tmp_path, shared_dir):
    if ROOT:
        foreign = shared_dir / "foreign"
        foreign.mkdir()
        os.chown(foreign, NOBODY, NOBODY)
        target, owner = foreign / "state.db", NOBODY
    else:
        target, owner = "/ratelimitd-test-state.db", 0  # "/" belongs to root
    link = tmp_path / "state.db"
    link.symlink_to(target)
    with pytest.raises(StoreUnsafePath) as caught:
        StateStore.open(link, lock_timeout=0)
    assert str(caught.value) == (
        f"state path {link} goes through a symlink to {target}, in a directory owned by uid {owner}, "
        f"not by this user (uid {os.geteuid()}); ratelimitd refuses to follow it: "
        "give a path in a directory this user owns"
    )
    assert not os.path.lexists(str(target))


def test_a_symlink_within_the_users_own_directories_is_followed(tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    (tmp_path / "link").symlink_to(real_dir)
    with StateStore.open(tmp_path / "link" / "state.db", lock_timeout=0) as store:
        assert store.path == str(real_dir / "state.db")


@pytest.mark.skipif(not ROOT, reason="only root can give a file to another user")
def test_a_file_owned_by_another_user_is_refused(tmp_path):
    path = tmp_path / "state.db"
    path.write_bytes(b"")
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(StoreUnsafePath) as caught:
        StateStore.open(path, lock_timeout=0)
    assert str(caught.value) == (
        f"state file {path} is owned by uid {NOBODY}, not by this user (uid 0); "
        "run ratelimitd as its owner, or choose another --state PATH"
    )


def test_new_files_are_private_and_loose_modes_are_tightened(tmp_path):
    path = tmp_path / "new" / "state.db"
    with StateStore.open(path, lock_timeout=0, clocks=FakeClocks()) as store:
        store.begin_run(1, T0)
        store.write([row()], [], T0)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert modes == {"state.db": 0o600, "state.db-wal": 0o600, "state.db-shm": 0o600, "state.db.lock": 0o600}
    path.chmod(0o644)
    StateStore.open(path, lock_timeout=0).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# -- full --------------------------------------------------------------------------


def test_a_full_disk_fails_the_batch_leaves_the_file_consistent_and_a_retry_succeeds(open_store, state_path, clocks):
    store = open_store()
    store.begin_run(1, T0)
    store.write([row(i) for i in range(10)], [], T0)
    before = store.load_buckets()
    conn = store._db.conn
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")  # SQLite's own SQLITE_FULL, as on a full disk

    big = [row(i, [[i, "x" * 2000]]) for i in range(100)]
    clocks.advance(10**9)
    with pytest.raises(StoreFull) as caught:
        store.write(big, [("research", "rest", 0)], T0 + 10**9)
    assert str(caught.value) == (
        f"cannot write state file {state_path}: the disk is full (database or disk is full); "
        f"free space on the filesystem holding {state_path.parent}"
    )
    assert store.load_buckets() == before
    assert store.runs(1)[0].last_flush_at == T0
    assert conn.execute("PRAGMA quick_check").fetchone() == ("ok",)

    conn.execute("PRAGMA max_page_count = 1073741823")
    store.write(big, [("research", "rest", 0)], T0 + 10**9)
    assert len(store.load_buckets()) == 100
    assert store.runs(1)[0].last_flush_at == T0 + 10**9


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), StoreFull),
        (OSError(errno.EROFS, "Read-only file system"), StoreUnwritable),
        (OSError(errno.EACCES, "Permission denied"), StoreUnwritable),
    ],
    ids=["ENOSPC", "EROFS", "EACCES"],
)
def test_os_errors_are_classified(error, kind):
    assert type(classify(error, "/s/state.db")) is kind


# -- kill -9 during writes ---------------------------------------------------------

_WRITER = """
import os, sys
from ratelimitd.store import BucketRow, StateStore
store = StateStore.open(sys.argv[1])
store.begin_run(os.getpid(), 1)
batch = 1
while True:
    store.write([BucketRow("k", "b", i, "sliding-log", "60/1m", [[batch, i]], batch) for i in range(500)], [], batch)
    print(batch, flush=True)
    batch += 1
"""


@pytest.mark.parametrize("commits", [1, 3, 7])
def test_a_kill_during_writes_leaves_exactly_the_last_committed_batch(tmp_path, commits):
    path = tmp_path / "state.db"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    for _ in range(commits):
        committed = int(writer.stdout.readline())
    writer.kill()  # SIGKILL, most likely inside the next batch's transaction
    writer.wait(timeout=30)

    with StateStore.open(path, lock_timeout=0) as store:
        info = store.begin_run(os.getpid(), T0)
        rows = store.load_buckets()
    batches = {row.state[0][0] for row in rows}
    assert len(rows) == 500 and len(batches) == 1
    (batch,) = batches
    assert batch >= committed
    assert info.previous.outcome == "crashed" and info.previous.last_flush_at == batch
