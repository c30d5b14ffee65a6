"""The store as the server uses it: every call from a Trio worker thread, whichever thread that is."""

from __future__ import annotations

import threading

import trio

from ratelimitd.store import BucketRow

from .store_support import T0


async def test_calls_from_different_worker_threads(open_store):
    store = await trio.to_thread.run_sync(open_store)
    seen = set()
    together = threading.Barrier(8)

    def write(batch: int) -> None:
        seen.add(threading.get_ident())
        together.wait(timeout=30)  # all eight calls are in flight at once, on eight threads
        store.write([BucketRow("k", "b", 0, "sliding-log", "5/1s", [[0, batch]], T0 + batch)], [], T0 + batch)

    await trio.to_thread.run_sync(store.begin_run, 1, T0)
    async with trio.open_nursery() as nursery:  # overlapping calls are serialised by the store
        for batch in range(1, 9):
            nursery.start_soon(trio.to_thread.run_sync, write, batch)
    (row,) = await trio.to_thread.run_sync(store.load_buckets)
    assert row.saved_at == T0 + row.state[0][1]
    assert len(seen) == 8
