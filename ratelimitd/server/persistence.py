"""The daemon's one writer: engine state to SQLite off the event loop, and back at start.

SQLite never runs on the event loop: every store call goes through
``trio.to_thread.run_sync`` from the single writer task (or, at start and
stop, from ``serve`` before it accepts and after it stopped accepting).

Durability modes (docs/state.md):

- ``batched``: every ``interval`` the writer dumps the buckets charged since
  the last flush and commits them in one transaction (a heartbeat even when
  nothing changed, so that crash recovery holds back as little as possible).
- ``strict`` (the daemon's mode, or per bucket in the tier table): the reply
  to a grant is held until the transaction that records it has committed with
  fsync. Every grant waiting when the writer wakes goes into one transaction
  (group commit), so strict costs one fsync per batch, not per grant.

A failed write is logged, counted in ``status``, and retried with backoff;
serving continues from memory. Strict replies of a failed write are answered
with an error, never as unrecorded grants.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import trio
from ratelimitd_client.wire import encode

from ..engine import Engine
from ..engine.snapshot import Journal, deleted_keys, hold_after_crash, restore
from ..store import Reset, StateStore, StoreError
from .clock import Clock

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Persister", "DEFAULT_FLUSH_INTERVAL"]

log = logging.getLogger("ratelimitd")

# How often batched mode commits. After a crash each batched bucket is held for one
# window past the last commit, so this is also how much a crash can cost; 100 ms is
# invisible next to the windows providers use and costs one small transaction.
DEFAULT_FLUSH_INTERVAL = 0.1
# Retrying a failing disk: start fast, back off to this.
MAX_RETRY_DELAY = 5.0


class Persister:
    """Restores engine state at start, flushes it while running, and marks a clean stop."""

    def __init__(self, store: StateStore, durability: str, interval: float = DEFAULT_FLUSH_INTERVAL) -> None:
        self.store = store
        self.durability = durability
        self.interval = interval
        self._pending: list[tuple["Connection", bytes, Any]] = []
        self._resets: list[Reset] = []
        self._kick = trio.Event()
        self.journal = Journal()  # dirty sliding logs are written as deltas between full rows
        self.flushes = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.last_error: str | None = None
        self.last_flush_wall: float | None = None
        self.recovery: dict[str, Any] = {}

    # -- start ------------------------------------------------------------------------------

    async def restore(self, engine: Engine, clock: Clock) -> None:
        """Begin this run in the state file and load what the previous run saved into ``engine``.

        After an unclean stop, holds every non-strict bucket as docs/state.md's
        crash-recovery rule says, and records what it held back.
        """
        now = clock.now()
        info = await trio.to_thread.run_sync(self.store.begin_run, os.getpid(), now)
        rows = await trio.to_thread.run_sync(self.store.load_buckets)
        now = clock.now()
        counts = restore(engine, rows, now)
        self.recovery = {
            "clean": info.clean,
            "previous_outcome": info.previous.outcome if info.previous else None,
            "rows": len(rows),
            **counts,
            "last_durable": info.last_durable / 1e9 if info.previous else None,
            "restored_age_s": (now - info.last_durable) / 1e9 if info.previous else None,
            "at": time.time(),
        }
        if not info.clean:
            held = hold_after_crash(engine, info.dead_by, now, engine.strict_default)
            self.recovery.update(held, unaccounted_s=info.unaccounted_ns / 1e9)
            log.warning(
                "recovered from an unclean stop: grants of the last %.3f s before it may be missing from the state "
                "file; holding %d buckets back for up to %.1f s so that no window can over-grant",
                info.unaccounted_ns / 1e9, held["buckets_held"], held["longest_hold_s"],
            )
            await trio.to_thread.run_sync(self.store.note_recovery, dict(self.recovery))
        log.info("restored %d rows from %s (%s)", len(rows), self.store.path, "clean stop" if info.clean else "after a crash")

    # -- while serving ----------------------------------------------------------------------

    def hold_reply(self, conn: "Connection", frame: bytes, rid: Any) -> None:
        """Send ``frame`` to ``conn`` only once the grant it reports has been committed."""
        self._pending.append((conn, frame, rid))
        self._kick.set()

    def note_reset(self, owner: str, buckets: list[str], now: int) -> None:
        """Record a reset, so that a restart cannot bring the spent amounts back."""
        self._resets.append(Reset(owner, tuple(buckets), now))
        self._kick.set()

    async def run(self, engine: Engine, clock: Clock) -> None:
        """Flush every ``interval`` (at once when strict replies wait) until cancelled."""
        while True:
            with trio.move_on_after(self.interval):
                await self._kick.wait()
            self._kick = trio.Event()
            if not await self.flush(engine, clock):
                await trio.sleep(min(MAX_RETRY_DELAY, self.interval * 2**self.consecutive_failures))

    async def flush(self, engine: Engine, clock: Clock, sync: bool = False) -> bool:
        """Commit what changed since the last flush; report whether the commit succeeded."""
        now = clock.now()
        dirty, engine.dirty = engine.dirty, set()
        removed, engine.removed = engine.removed, set()
        resets, self._resets = self._resets, []
        pending, self._pending = self._pending, []
        rows, rewritten = self.journal.changes(dirty, now)
        try:
            await trio.to_thread.run_sync(
                lambda: self.store.write(
                    rows, deleted_keys(removed) + rewritten, now, resets=resets, sync=sync or bool(pending)
                )
            )
        except StoreError as exc:
            self.journal.forget(dirty)
            engine.dirty |= dirty
            engine.removed |= removed
            self._resets[:0] = resets
            self.failures += 1
            self.consecutive_failures += 1
            self.last_error = str(exc)
            log.error("cannot write the state file (attempt %d; serving from memory): %s", self.consecutive_failures, exc)
            for conn, _frame, rid in pending:
                conn.push(encode({"id": rid, "error": "internal", "message": f"the grant could not be made durable: {exc}"}))
            return False
        for conn, frame, _rid in pending:
            conn.push(frame)
        self.flushes += 1
        self.consecutive_failures = 0
        self.last_error = None
        self.last_flush_wall = time.time()
        return True

    # -- stop -------------------------------------------------------------------------------

    async def close(self, engine: Engine, clock: Clock) -> None:
        """Make the final flush, mark the run clean when it committed, and close the file."""
        committed = await self.flush(engine, clock, sync=True)
        now = clock.now()
        await trio.to_thread.run_sync(lambda: self.store.end_run(now, clean=committed))
        await trio.to_thread.run_sync(self.store.close)
        if committed:
            log.info("final state written to %s", self.store.path)
        else:
            log.error("the final flush failed: the next start will treat this stop as unclean")

    def status(self) -> dict[str, Any]:
        """Return what ``status`` reports about persistence."""
        return {
            "durability": self.durability,
            "flush_interval": self.interval,
            "flushes": self.flushes,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_flush": self.last_flush_wall,
            "recovery": self.recovery,
        }
