"""A state file that fails at run time: the daemon logs it, keeps serving from memory, retries, and says so.

In-process on MockClock with a real state file whose writes fail (a full disk,
as the store reports it) until the test lets them through again.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from ratelimitd_client import AsyncClient

from ratelimitd.server.app import Server, Settings
from ratelimitd.server.listener import bind_unix
from ratelimitd.server.persistence import Persister
from ratelimitd.store import StateStore, StoreFull
from ratelimitd.tiers import load_text

TABLE = """
[providers.api.endpoints]
"rest" = ["rest"]
"strict" = ["kept"]
[providers.api.tiers.basic]
rest = { rate = "100/1m" }
kept = { rate = "100/1d", durability = "strict" }
[keys.k]
provider = "api"
tier = "basic"
"""


class FailingStore:
    """A real store whose ``write`` fails like a full disk while ``failing`` is set."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self.failing = False
        self.path = store.path

    def write(self, *args, **kwargs):
        if self.failing:
            raise StoreFull(self.path, "database or disk is full")
        return self._store.write(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._store, name)


@pytest.fixture
def autojump_clock():
    return trio.testing.MockClock(autojump_threshold=0.02)


async def test_write_failures_are_retried_surfaced_and_serving_goes_on(short_tmp, autojump_clock):
    path = str(short_tmp / "rl.sock")
    store = FailingStore(StateStore.open(str(short_tmp / "state.db")))
    server = Server(Settings(config="<test>", socket=path, state=store.path), load_text(TABLE))
    server.persister = Persister(store, "batched")
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, bind_unix(path))
        async with AsyncClient(socket=path) as client:
            store.failing = True
            assert (await client.acquire("k", "rest")).granted  # batched: served from memory
            await trio.sleep(1)
            status = (await client.status())["persistence"]
            assert status["failures"] >= 2 and "disk is full" in status["last_error"]
            # a strict grant cannot be made durable: it is refused as an error, never granted unrecorded
            with pytest.raises(Exception, match="could not be made durable"):
                await client.acquire("k", "strict")
            store.failing = False
            await trio.sleep(10)  # the writer's backoff is at most 5 s
            status = (await client.status())["persistence"]
            assert status["last_error"] is None and status["flushes"] >= 1
            assert (await client.acquire("k", "strict")).granted
        server.stop()
    rows = {(row.owner, row.bucket, row.idx) for row in StateStore.open_readonly(store.path).load_buckets()}
    assert ("k", "rest", 0) in rows and ("k", "kept", 0) in rows  # what was held back got written once the disk took it
