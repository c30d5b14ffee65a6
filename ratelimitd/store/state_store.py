"""The state file of one daemon: open it, begin a run, load rows, write batches, end the run.

Synchronous on purpose: the server calls it from one writer task through
``trio.to_thread.run_sync``, never on the event loop. The connection is made
with ``check_same_thread=False`` (Trio's worker threads vary between calls)
and every method holds an internal mutex, so calls are serialised even if
two tasks ever overlap. It holds no logic of limits: ``state`` is opaque.

Life of a daemon's store::

    store = StateStore.open(path)          # lock, create 0600, WAL, migrations, quick_check
    info = store.begin_run(os.getpid(), now)   # RecoveryInfo; rows moved onto this timeline
    rows = store.load_buckets()
    ...
    store.write(rows, deleted, now)        # one transaction per batch, also a heartbeat
    store.record_reset(owner, buckets, now)
    ...
    store.write(final_rows, deleted, now, sync=True)  # final flush
    store.end_run(now, clean=True)
    store.close()

``now`` is always engine time (Unix ns, monotonic during a run). In
``write`` it must be the time of the *snapshot*: every grant made before it
is in this batch or an earlier one, because ``now`` becomes the last durable
write from which crash recovery counts (docs/state.md).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import cbor2
from sqlite_utils import Database

from .errors import StoreCorrupt, StoreError, StoreGuard
from .files import StateLock
from .opening import connect_for_daemon, connect_readonly
from .recovery import PreviousRun, RecoveryInfo, SystemClocks, plan_recovery
from .rows import BucketKey, BucketRow, Reset, decode_state, encode_state
from .schema import migrations

__all__ = ["StateStore", "KEEP_RUNS", "KEEP_RESETS"]

#: History kept in ``runs`` and ``resets``: enough to debug a crash loop, small enough to read.
KEEP_RUNS = 50
KEEP_RESETS = 200

_SELECT_ROWS = "SELECT owner, bucket, idx, algorithm, rate, state, saved_at FROM buckets"
_UPSERT = (
    "INSERT INTO buckets (owner, bucket, idx, algorithm, rate, state, saved_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (owner, bucket, idx) DO UPDATE SET "
    "algorithm = excluded.algorithm, rate = excluded.rate, "
    "state = excluded.state, saved_at = excluded.saved_at"
)
_DELETE_ONE = "DELETE FROM buckets WHERE owner = ? AND bucket = ? AND idx = ?"
_DELETE_BUCKET = "DELETE FROM buckets WHERE owner = ? AND bucket = ?"
_DELETE_OWNER = "DELETE FROM buckets WHERE owner = ?"
_DECODE_ERRORS = (cbor2.CBORDecodeError, ValueError, TypeError)
_RUN_COLUMNS = (
    "run_id, pid, boot_id, started_at, started_wall, started_boottime, "
    "last_flush_at, last_flush_wall, last_flush_boottime, stopped_at, outcome"
)


class StateStore:
    """One open state file (see the module docstring for the order of calls)."""

    __slots__ = ("path", "readonly", "_db", "_lock", "_clocks", "_boot_id", "_run_id", "_sync", "_mutex")

    def __init__(self, db: Database, path: str, *, lock: StateLock | None, clocks: Any, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._db = db
        self._lock = lock
        self._clocks = clocks
        self._boot_id = clocks.boot_id()
        self._run_id: int | None = None
        self._sync = False
        self._mutex = threading.Lock()

    # -- opening -----------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clocks: Any = None,
        lock_timeout: float = 1.0,
    ) -> "StateStore":
        """Open (or create) the state file for a daemon and return the store.

        Creates the directory (0700) and file (0600), takes the daemon lock,
        switches to WAL, applies pending migrations and runs ``PRAGMA
        quick_check``. Raises ``StoreLocked`` (another daemon), ``StoreCorrupt``
        (not a database, malformed), ``StoreIncompatible`` (another program's
        database, or a newer ratelimitd's), ``StoreUnwritable``,
        ``StoreUnsafePath`` or ``StoreFull``; it never empties or replaces an
        existing file. ``clocks`` replaces ``SystemClocks`` in tests.
        """
        db, real, lock = connect_for_daemon(path, lock_timeout)
        return cls(db, real, lock=lock, clocks=clocks or SystemClocks(), readonly=False)

    @classmethod
    def open_readonly(cls, path: str | os.PathLike[str]) -> "StateStore":
        """Open an existing state file for reading only (``ratelimitctl status --state``).

        Takes no lock and never writes (a running daemon is not disturbed).
        Raises ``StoreMissing`` when there is no file, ``StoreCorrupt`` or
        ``StoreIncompatible`` when it cannot be read as a state file, and a
        ``StoreError`` when it is empty (no daemon has written it yet).
        """
        db, real = connect_readonly(path)
        return cls(db, real, lock=None, clocks=SystemClocks(), readonly=True)

    def close(self) -> None:
        """Close the database (SQLite checkpoints the WAL) and release the lock; calling it twice is harmless."""
        with self._mutex:
            try:
                self._db.close()
            finally:
                if self._lock is not None:
                    self._lock.release()

    def __enter__(self) -> "StateStore":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------

    def begin_run(self, pid: int, now: int) -> RecoveryInfo:
        """Record a new run starting at engine time ``now`` and report what the previous one left.

        In one transaction: marks a previous run that never stopped as
        "crashed", inserts this run as "running" (its last flush is its
        start), moves every stored ``saved_at`` onto this run's timeline
        (``RecoveryInfo.shift_ns``), and trims the history.
        """
        self._writable()
        if self._run_id is not None:
            raise RuntimeError(f"run {self._run_id} already begun on {self.path}")
        boottime, wall = self._clocks.boottime_ns(), self._clocks.wall_ns()
        with self._mutex, self._guard("begin a run in"):
            conn = self._db.conn
            with self._db.atomic():
                conn.execute("UPDATE runs SET outcome = 'crashed' WHERE outcome = 'running'")
                found = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
                previous = PreviousRun(*found) if found else None
                cursor = conn.execute(
                    "INSERT INTO runs (pid, boot_id, started_at, started_wall, started_boottime, "
                    "last_flush_at, last_flush_wall, last_flush_boottime, outcome) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running')",
                    (pid, self._boot_id, now, wall, boottime, now, wall, boottime),
                )
                run_id = cursor.lastrowid
                assert run_id is not None
                info = plan_recovery(
                    previous, run_id=run_id, now=now, boot_id=self._boot_id, boottime_ns=boottime, wall_ns=wall
                )
                if info.shift_ns:
                    conn.execute("UPDATE buckets SET saved_at = saved_at + ?", (info.shift_ns,))
                conn.execute("DELETE FROM runs WHERE run_id <= ?", (run_id - KEEP_RUNS,))
            self._run_id = run_id
        return info

    def note_recovery(self, summary: Any) -> None:
        """Store the engine's account of this run's recovery (CBOR-able; shown by ``inspect``)."""
        run_id = self._current_run()
        blob = encode_state(summary, "recovery summary")
        with self._mutex, self._guard("save state to"), self._db.atomic():
            self._db.conn.execute("UPDATE runs SET recovery = ? WHERE run_id = ?", (blob, run_id))

    def end_run(self, now: int, clean: bool = True) -> None:
        """Record this run's stop at ``now``: "clean" promises every grant is in a committed write.

        Call it after the final ``write``; ``clean=False`` records a stop whose
        final flush failed, so the next start recovers conservatively.
        """
        run_id = self._current_run()
        outcome = "clean" if clean else "unclean"
        with self._mutex, self._guard("save state to"):
            self._set_sync(True)
            with self._db.atomic():
                self._db.conn.execute(
                    "UPDATE runs SET stopped_at = ?, outcome = ? WHERE run_id = ?", (now, outcome, run_id)
                )
        self._run_id = None

    def runs(self, limit: int = 10) -> list[PreviousRun]:
        """Return the latest ``limit`` runs, newest first (times on each run's own timeline)."""
        with self._mutex, self._guard("read"):
            found = self._db.conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY run_id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [PreviousRun(*row) for row in found]

    def recovery_notes(self, limit: int = 10) -> dict[int, Any]:
        """Return the recovery summaries of the latest ``limit`` runs that noted one, by run id."""
        with self._mutex, self._guard("read"):
            found = self._db.conn.execute(
                "SELECT run_id, recovery FROM runs WHERE recovery IS NOT NULL ORDER BY run_id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return {run_id: self._decode(blob, f"run {run_id}") for run_id, blob in found}

    # -- buckets -----------------------------------------------------------------

    def load_buckets(self) -> list[BucketRow]:
        """Return every stored row, ordered by (owner, bucket, idx).

        ``saved_at`` is on the current run's timeline once ``begin_run`` ran.
        Raises ``StoreCorrupt`` naming the first row whose state cannot be decoded.
        """
        loads = decode_state
        with _gc_paused():
            with self._mutex, self._guard("read"):
                found = self._db.conn.execute(_SELECT_ROWS + " ORDER BY owner, bucket, idx").fetchall()
            try:
                return [
                    BucketRow(owner, bucket, idx, algorithm, rate, loads(blob), saved_at)
                    for owner, bucket, idx, algorithm, rate, blob, saved_at in found
                ]
            except _DECODE_ERRORS:
                pass
        for owner, bucket, idx, _, _, blob, _ in found:  # name the first bad row
            self._decode(blob, f"row ({owner}, {bucket}, {idx})")
        raise AssertionError("a row failed to decode once and then decoded")  # pragma: no cover

    def summarise_buckets(self) -> dict[str, dict[str, Any]]:
        """Return per owner: ``rows``, sorted ``buckets`` names, ``oldest_saved_at`` and ``newest_saved_at``."""
        with self._mutex, self._guard("read"):
            found = self._db.conn.execute(
                "SELECT owner, count(*), min(saved_at), max(saved_at), group_concat(DISTINCT bucket) "
                "FROM buckets GROUP BY owner ORDER BY owner"
            ).fetchall()
        return {
            owner: {
                "rows": count,
                "buckets": sorted(set((names or "").split(","))),
                "oldest_saved_at": oldest,
                "newest_saved_at": newest,
            }
            for owner, count, oldest, newest, names in found
        }

    def schema(self) -> list[str]:
        """Return the names of the migrations applied to the file, oldest first."""
        with self._mutex, self._guard("read"):
            return [migration.name for migration in migrations.applied(self._db)]

    def write(
        self,
        rows: Iterable[BucketRow],
        deleted: Iterable[BucketKey | tuple[str, str] | tuple[str, str, int | None]],
        now: int,
        *,
        resets: Sequence[Reset] = (),
        sync: bool = False,
    ) -> None:
        """Commit one batch in one transaction: ``resets``, then ``deleted``, then ``rows``, then the flush mark.

        ``rows`` are upserted by (owner, bucket, idx); ``deleted`` keys with
        ``idx`` None remove every rate of the bucket; a reset removes the
        owner's rows for its buckets (all when None) and is logged in
        ``resets``. Rows written after a delete or reset of the same key in
        the same call win. The flush mark (``now``, wall, boottime) is updated
        even when the batch is empty, so an idle daemon keeps the crash
        interval short. ``sync=True`` makes this commit survive power loss
        (``synchronous=FULL``), as ``strict`` durability needs.

        Raises ``ValueError`` (before touching the file) when a row's state is
        not CBOR-able, and a ``StoreError`` (``StoreFull``, ``StoreUnwritable``…)
        when the commit fails; the database is then unchanged and the batch
        can be retried.
        """
        run_id = self._current_run()
        encoded = [
            (row.owner, row.bucket, row.idx, row.algorithm, row.rate,
             encode_state(row.state, f"row ({row.owner}, {row.bucket}, {row.idx})"), row.saved_at)
            for row in rows
        ]
        one, whole = [], []
        for key in deleted:
            owner, bucket, *rest = key
            idx = rest[0] if rest else None
            if idx is None:
                whole.append((owner, bucket))
            else:
                one.append((owner, bucket, idx))
        boottime, wall = self._clocks.boottime_ns(), self._clocks.wall_ns()
        with self._mutex, self._guard("save state to"):
            self._set_sync(sync)
            conn = self._db.conn
            with self._db.atomic():
                for reset in resets:
                    self._apply_reset(reset, run_id)
                if one:
                    conn.executemany(_DELETE_ONE, one)
                if whole:
                    conn.executemany(_DELETE_BUCKET, whole)
                if encoded:
                    conn.executemany(_UPSERT, encoded)
                conn.execute(
                    "UPDATE runs SET last_flush_at = ?, last_flush_wall = ?, last_flush_boottime = ? "
                    "WHERE run_id = ?",
                    (now, wall, boottime, run_id),
                )

    def record_reset(self, owner: str, buckets: Iterable[str] | None, now: int, *, sync: bool = False) -> None:
        """Delete the owner's rows for ``buckets`` (all when None) and log the reset, in one transaction.

        A shortcut for ``write((), (), now, resets=[Reset(...)])``: the reset
        is durable once this returns, so a restart does not undo it.
        """
        chosen = None if buckets is None else tuple(buckets)
        self.write((), (), now, resets=[Reset(owner, chosen, now)], sync=sync)

    def resets(self, limit: int = 10) -> list[Reset]:
        """Return the latest ``limit`` recorded resets, newest first."""
        with self._mutex, self._guard("read"):
            found = self._db.conn.execute(
                "SELECT owner, buckets, at FROM resets ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [
            Reset(owner, None if names is None else tuple(json.loads(names)), at) for owner, names, at in found
        ]

    # -- internals ---------------------------------------------------------------

    def _apply_reset(self, reset: Reset, run_id: int) -> None:
        conn = self._db.conn
        if reset.buckets is None:
            conn.execute(_DELETE_OWNER, (reset.owner,))
            names = None
        else:
            conn.executemany(_DELETE_BUCKET, [(reset.owner, bucket) for bucket in reset.buckets])
            names = json.dumps(list(reset.buckets))
        cursor = conn.execute(
            "INSERT INTO resets (run_id, owner, buckets, at) VALUES (?, ?, ?, ?)",
            (run_id, reset.owner, names, reset.at),
        )
        conn.execute("DELETE FROM resets WHERE id <= ?", ((cursor.lastrowid or 0) - KEEP_RESETS,))

    def _decode(self, blob: bytes, where: str) -> Any:
        try:
            return decode_state(blob)
        except _DECODE_ERRORS as exc:
            raise StoreCorrupt(self.path, f"{where} holds state that is not CBOR: {exc}") from exc

    def _set_sync(self, sync: bool) -> None:
        if sync != self._sync:
            self._db.execute(f"PRAGMA synchronous = {'FULL' if sync else 'NORMAL'}")
            self._sync = sync

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(f"state file {self.path} is open read-only", path=self.path)

    def _current_run(self) -> int:
        self._writable()
        if self._run_id is None:
            raise RuntimeError(f"no run begun on {self.path}: call begin_run first")
        return self._run_id

    def _guard(self, doing: str) -> StoreGuard:
        return StoreGuard(self.path, doing)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    # Decoding 100,000 rows makes about a million small objects, none of them
    # cyclic; left on, the cyclic collector runs over them again and again and
    # doubles the load time (docs/state.md has the numbers). Start-up only.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
