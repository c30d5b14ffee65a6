"""The server's timing on Trio's MockClock: waiters are granted at the exact moment, time out exactly, and are dropped with their connection.

The daemon runs in-process (``Server.serve``) on a real Unix socket, the client
is the real ``AsyncClient`` under Trio, and time is a ``MockClock`` that jumps
whenever every task is blocked — so a 10-second wait takes no wall time and
the assertions are on exact instants.
"""

from __future__ import annotations

import trio
import trio.testing
import pytest
from ratelimitd_client import AsyncClient

from ratelimitd.server.app import Server, Settings
from ratelimitd.server.listener import bind_unix
from ratelimitd.tiers import load_text

TABLE = """
[providers.api]
margin = "0ms"
[providers.api.endpoints]
"rest" = ["rest"]
[providers.api.tiers.basic]
rest = { rate = "2/10s" }
[keys.k]
provider = "api"
tier = "basic"
"""


@pytest.fixture
def autojump_clock():
    # Real sockets: the clock may only jump once every task has been blocked for a moment of
    # real time, or it would jump while a frame is still on its way through the kernel.
    return trio.testing.MockClock(autojump_threshold=0.02)


@pytest.fixture
async def server(short_tmp, autojump_clock):
    path = str(short_tmp / "rl.sock")
    server = Server(Settings(config="<test>", socket=path, durability="memory"), load_text(TABLE))
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, bind_unix(path))
        yield server
        server.stop()


async def test_a_waiter_is_granted_exactly_when_the_oldest_grant_ages_out(server, autojump_clock):
    async with AsyncClient(socket=server.settings.socket) as client:
        start = trio.current_time()
        assert (await client.acquire("k", "rest")).granted
        await trio.sleep(3)
        assert (await client.acquire("k", "rest")).granted
        permit = await client.acquire("k", "rest", wait=30)
        assert permit.granted
        assert trio.current_time() - start == pytest.approx(10, abs=1e-6)


async def test_a_waiter_times_out_at_its_deadline_with_retry_after(server, autojump_clock):
    async with AsyncClient(socket=server.settings.socket) as client:
        start = trio.current_time()
        await client.acquire("k", "rest", cost=2)
        await trio.sleep(1)
        permit = await client.acquire("k", "rest", wait=8.5)  # the slot frees at 10 s: too late
        assert not permit.granted
        assert trio.current_time() - start == pytest.approx(1, abs=1e-6)  # known at once: no point holding it
        waiter = await client.acquire("k", "rest", wait=9)  # frees exactly at its deadline: granted
        assert waiter.granted and trio.current_time() - start == pytest.approx(10, abs=1e-6)


async def test_waiters_are_served_in_arrival_order_at_the_exact_times(server, autojump_clock):
    order = []

    async def wait_for_permit(name: str, client: AsyncClient) -> None:
        permit = await client.acquire("k", "rest", wait=60)
        order.append((name, permit.granted, round(trio.current_time() - start, 6)))

    async with AsyncClient(socket=server.settings.socket) as client:
        start = trio.current_time()
        await client.acquire("k", "rest", cost=2)
        async with trio.open_nursery() as nursery:
            for name in ("a", "b", "c"):
                nursery.start_soon(wait_for_permit, name, client)
                await trio.sleep(1)
    assert order == [("a", True, 10.0), ("b", True, 10.0), ("c", True, 20.0)]


async def test_a_waiter_whose_connection_closes_is_dropped(server, autojump_clock):
    async with AsyncClient(socket=server.settings.socket) as client:
        start = trio.current_time()
        await client.acquire("k", "rest", cost=2)
        async with trio.open_nursery() as nursery:
            leaver = AsyncClient(socket=server.settings.socket)

            async def leave_after_a_second() -> None:
                with trio.move_on_after(1):
                    await leaver.acquire("k", "rest", cost=2, wait=60)
                await leaver.close()

            nursery.start_soon(leave_after_a_second)
            await trio.sleep(2)
            assert server.engine.waiters == 0
            permit = await client.acquire("k", "rest", cost=2, wait=60)
        assert permit.granted and trio.current_time() - start == pytest.approx(10, abs=1e-6)


async def test_stop_answers_waiters_with_shutting_down(server, autojump_clock):
    from ratelimitd_client import ShuttingDown

    async with AsyncClient(socket=server.settings.socket) as client:
        await client.acquire("k", "rest", cost=2)
        async with trio.open_nursery() as nursery:

            async def stop_soon() -> None:
                await trio.sleep(1)
                server.stop()

            nursery.start_soon(stop_soon)
            with pytest.raises(ShuttingDown):
                await client.acquire("k", "rest", wait=60)
