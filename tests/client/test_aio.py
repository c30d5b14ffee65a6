"""AsyncClient against the scripted fake daemon, each scenario under Trio and under asyncio.

A scenario is written once against the client's own backend detection; it runs
as a pytest-trio test and inside ``asyncio.run`` in a plain test. Holding a
request in the fake daemon until the test says so makes the interleavings
deterministic: nothing here depends on how fast anything runs.
"""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
import trio
import trio.testing

from ratelimitd_client import (
    AsyncClient,
    DaemonUnavailable,
    NotAvailable,
    Permit,
    RateLimited,
    RatelimitdError,
    UnknownKey,
)
from ratelimitd_client.backends import current_backend

from .fake_daemon import FakeConnection, FakeDaemon, frame, granted, vector
from .test_client import golden

Scenario = Callable[[str], Awaitable[None]]
SCENARIOS: list[Scenario] = []


def scenario(fn: Scenario) -> Scenario:
    SCENARIOS.append(fn)
    return fn


async def concurrently(*fns: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Run the coroutine functions as concurrent tasks of the running library; return their results in order."""
    if current_backend().name == "trio":
        results: list[Any] = [None] * len(fns)

        async def run(index: int) -> None:
            results[index] = await fns[index]()

        async with trio.open_nursery() as nursery:
            for index in range(len(fns)):
                nursery.start_soon(run, index)
        return results
    return list(await asyncio.gather(*(fn() for fn in fns)))


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run the blocking ``fn`` in a worker thread of the running library."""
    if current_backend().name == "trio":
        return await trio.to_thread.run_sync(fn, *args)
    return await asyncio.to_thread(fn, *args)


class Holder:
    """A handler that answers at once unless told to hold; held requests are answered from the test."""

    def __init__(self, hold: Callable[[Any], bool]) -> None:
        self.hold = hold
        self.held: dict[str, tuple[FakeConnection, Any]] = {}
        self.lock = threading.Lock()

    def __call__(self, conn: FakeConnection, request: Any) -> None:
        if self.hold(request):
            with self.lock:
                self.held[request["key"]] = (conn, request)
        else:
            conn.send(granted(request["id"], key=request.get("key")))

    def answer(self, key: str, **reply: Any) -> None:
        with self.lock:
            conn, request = self.held.pop(key)
        conn.send(granted(request["id"], key=key, **reply))


# --- scenarios ---------------------------------------------------------------------------------


@scenario
async def golden_session(path: str) -> None:
    with FakeDaemon(path, golden) as fake:
        async with AsyncClient(path) as client:
            assert (await client.hello())["protocol"] == 1
            assert await client.acquire("research", "rest") == Permit(True, 0.0, 59, "rest", 60.0, {"rest": (59, 60.0)})
            assert (await client.acquire("research", "rest", cost=5, wait=30, priority=1)).granted
            assert (await client.acquire("struct-main", "webhook-event", cost=Decimal("0.1"))).granted
            assert (await client.status())["grants"] == 1200
            assert [k["key"] for k in await client.keys()] == ["research", "struct-main"]
            assert (await client.show("research"))["tier"] == "explorer"
            assert (await client.reload())["reloaded"] is True
            assert await client.reset("research") == ["rest"]
    names = ["hello", "acquire", "acquire-wait", "acquire-decimal-cost", "status", "keys", "show", "reload", "reset"]
    for received, name in zip(fake.received, names, strict=True):
        assert received.frame == vector("request", name)["frame"], name


@scenario
async def denied_and_permit(path: str) -> None:
    def answer(conn: FakeConnection, request: Any) -> None:
        if request["op"] == "release":
            conn.send({"id": request["id"], "released": [request["lease"]]})
        elif request["key"] == "ws":
            conn.send(granted(request["id"], lease="L1"))
        else:
            conn.send(frame("reply", "acquire-denied", request["id"]))

    with FakeDaemon(path, answer) as fake:
        async with AsyncClient(path) as client:
            permit = await client.acquire("research", "rest")
            assert not permit and permit.retry_after == 12.5
            with pytest.raises(RateLimited) as caught:
                async with client.permit("research", "rest"):
                    pytest.fail("the block must not run without a permit")
            assert caught.value.scope == "rest" and caught.value.retry_after == 12.5
            async with client.permit("ws", "stream") as leased:
                assert leased.lease == "L1"
    assert [(m["op"], m.get("lease")) for m in fake.messages][-2:] == [("acquire", None), ("release", "L1")]


@scenario
async def error_replies(path: str) -> None:
    def refuse(conn: FakeConnection, request: Any) -> None:
        if request["key"] == "reserch":
            conn.send(frame("reply", "error-unknown-key", request["id"]))
        else:
            conn.send({"id": request["id"], "error": "not-available", "message": "tier free has no bucket 'heavy'"})

    with FakeDaemon(path, refuse):
        async with AsyncClient(path) as client:
            with pytest.raises(UnknownKey, match="reserch"):
                await client.show("reserch")
            with pytest.raises(NotAvailable, match="heavy"):
                await client.acquire("poly", "trades")


@scenario
async def replies_out_of_order_reach_their_callers(path: str) -> None:
    holder = Holder(lambda request: True)
    with FakeDaemon(path, holder) as fake:
        async with AsyncClient(path, timeout=5) as client:

            async def release_in_reverse() -> None:
                await in_thread(fake.wait_for, 3)
                for key in ("k2", "k1", "k0"):
                    holder.answer(key, remaining=int(key[1]))

            results = await concurrently(
                *(lambda key=f"k{i}": client.acquire(key, "rest") for i in range(3)), release_in_reverse
            )
    assert [permit.remaining for permit in results[:3]] == [0, 1, 2]
    assert len(fake.connections) == 1  # pipelined on one connection


@scenario
async def a_long_wait_does_not_delay_a_quick_call(path: str) -> None:
    holder = Holder(lambda request: "wait" in request)
    order: list[str] = []
    with FakeDaemon(path, holder) as fake:
        async with AsyncClient(path, timeout=5) as client:

            async def slow() -> None:
                await client.acquire("slow", "rest", wait=30)
                order.append("slow")

            async def quick() -> None:
                await in_thread(fake.wait_for, 1)  # the slow request is with the daemon, its task reading
                await client.acquire("quick", "rest")
                order.append("quick")
                holder.answer("slow")

            await concurrently(slow, quick)
    assert order == ["quick", "slow"]


@scenario
async def pushes_go_to_hooks(path: str) -> None:
    push = vector("push", "push")

    def pushy(conn: FakeConnection, request: Any) -> None:
        conn.send(push["frame"], granted(request["id"]), push["frame"])

    seen: list[Any] = []
    with FakeDaemon(path, pushy):
        async with AsyncClient(path) as client:
            client.on_push(seen.append)
            assert (await client.acquire("research", "rest")).granted
            assert (await client.acquire("research", "rest")).granted
    assert seen == [push["meaning"]] * 4


@scenario
async def requests_lost_with_a_connection_are_retried_once_on_one_new_connection(path: str) -> None:
    def drop_first(conn: FakeConnection, request: Any) -> None:
        if conn.number == 1:
            if len(fake.received) == 2:
                conn.close()  # the daemon restarted holding two requests
        else:
            conn.send(granted(request["id"]))

    with FakeDaemon(path, drop_first) as fake:
        async with AsyncClient(path, timeout=5) as client:
            results = await concurrently(
                lambda: client.acquire("a", "rest", wait=10), lambda: client.acquire("b", "rest", wait=10)
            )
            assert all(results)
            assert (await client.acquire("c", "rest")).granted
    assert len(fake.connections) == 2
    first = sorted(r.message["id"] for r in fake.received if r.connection == 1)
    again = sorted(r.message["id"] for r in fake.received if r.connection == 2)[:2]
    assert first == again


@scenario
async def broken_twice_is_reported(path: str) -> None:
    with FakeDaemon(path, lambda conn, request: conn.close()) as fake:
        async with AsyncClient(path) as client:
            with pytest.raises(DaemonUnavailable, match="twice"):
                await client.status()
    assert len(fake.received) == 2


@scenario
async def no_socket_is_reported_at_once(path: str) -> None:
    client = AsyncClient(path)
    with pytest.raises(DaemonUnavailable) as caught:
        await client.acquire("research", "rest")
    assert path in str(caught.value) and "RATELIMITD_SOCKET" in str(caught.value)


@scenario
async def silence_times_out(path: str) -> None:
    with FakeDaemon(path, lambda conn, request: None):
        async with AsyncClient(path, timeout=0.05) as client:
            with pytest.raises(DaemonUnavailable, match="no answer within 0.05 s"):
                await client.status()


@scenario
async def close_fails_waiting_calls_and_a_later_call_reconnects(path: str) -> None:
    holder = Holder(lambda request: request["key"] == "held")
    with FakeDaemon(path, holder) as fake:
        client = AsyncClient(path, timeout=5)

        async def held() -> str:
            try:
                await client.acquire("held", "rest", wait=30)
            except DaemonUnavailable:
                raise
            except RatelimitdError as exc:
                return str(exc)
            return "granted"

        async def closer() -> None:
            await in_thread(fake.wait_for, 1)
            await client.close()

        outcome, _ = await concurrently(held, closer)
        assert "closed while the request waited" in outcome
        assert (await client.acquire("other", "rest")).granted
        await client.close()
    assert len(fake.connections) == 2


@scenario
async def a_frame_larger_than_the_socket_buffer_is_not_interleaved(path: str) -> None:
    big = "x" * 1_000_000  # several socket buffers: sent in pieces while other tasks send
    with FakeDaemon(path, golden) as fake:
        async with AsyncClient(path, timeout=10) as client:
            results = await concurrently(
                lambda: client.request("show", key=big), *(lambda: client.acquire("research", "rest") for _ in range(5))
            )
    assert results[0]["key"] == "research" and all(results[1:])
    assert sorted(m["op"] for m in fake.messages) == ["acquire"] * 5 + ["show"]
    assert [m["key"] for m in fake.messages if m["op"] == "show"] == [big]


# --- the same scenarios under both libraries -----------------------------------------------------


@pytest.fixture
def sock_path(short_tmp: Path) -> str:
    return str(short_tmp / "rl.sock")


@pytest.mark.parametrize("run", SCENARIOS, ids=[fn.__name__ for fn in SCENARIOS])
async def test_under_trio(run: Scenario, sock_path: str) -> None:
    assert current_backend().name == "trio"
    await run(sock_path)


@pytest.mark.parametrize("run", SCENARIOS, ids=[fn.__name__ for fn in SCENARIOS])
def test_under_asyncio(run: Scenario, sock_path: str) -> None:
    async def main() -> None:
        assert current_backend().name == "asyncio"
        await run(sock_path)

    asyncio.run(main())


# --- cancellation of the task that is reading ------------------------------------------------------


async def test_a_cancelled_reader_hands_the_reading_over_under_trio(sock_path: str) -> None:
    holder = Holder(lambda request: True)
    got: list[Permit] = []
    with FakeDaemon(sock_path, holder) as fake:
        async with AsyncClient(sock_path, timeout=5) as client:
            scope = trio.CancelScope()

            async def first() -> None:
                with scope:
                    await client.acquire("first", "rest", wait=30)

            async def second() -> None:
                got.append(await client.acquire("second", "rest", wait=30))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(first)
                await trio.to_thread.run_sync(fake.wait_for, 1)  # first is the reader
                nursery.start_soon(second)
                await trio.to_thread.run_sync(fake.wait_for, 2)  # second waits for first to route its reply
                scope.cancel()
                await trio.testing.wait_all_tasks_blocked()  # first has gone; second reads now
                holder.answer("second", remaining=7)
    assert scope.cancelled_caught and [p.remaining for p in got] == [7]


def test_a_cancelled_reader_hands_the_reading_over_under_asyncio(sock_path: str) -> None:
    holder = Holder(lambda request: True)

    async def main() -> None:
        with FakeDaemon(sock_path, holder) as fake:
            async with AsyncClient(sock_path, timeout=5) as client:
                first = asyncio.create_task(client.acquire("first", "rest", wait=30))
                await asyncio.to_thread(fake.wait_for, 1)  # first is the reader
                second = asyncio.create_task(client.acquire("second", "rest", wait=30))
                await asyncio.to_thread(fake.wait_for, 2)  # second waits for first to route its reply
                first.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await first
                holder.answer("second", remaining=7)
                assert (await second).remaining == 7

    asyncio.run(main())


# --- a task cancelled just as it was handed the reading ----------------------------------------------


def push_then_answer(holder: Holder, key: str) -> None:
    """Send a push and the held reply of ``key`` in one write (the push is read first)."""
    with holder.lock:
        conn, request = holder.held.pop(key)
    conn.send(vector("push", "push")["frame"], granted(request["id"]))


async def test_a_task_cancelled_when_handed_the_reading_passes_it_on_under_trio(sock_path: str) -> None:
    holder = Holder(lambda request: True)
    got: dict[str, Permit] = {}
    with FakeDaemon(sock_path, holder) as fake:
        async with AsyncClient(sock_path, timeout=5) as client:
            w1 = trio.CancelScope()
            client.on_push(lambda message: w1.cancel())  # runs in the reader, before it hands over

            r_done = trio.Event()

            async def acquire(key: str, scope: trio.CancelScope | None = None) -> None:
                with scope or trio.CancelScope():
                    got[key] = await client.acquire(key, "rest", wait=30)
                if key == "r":
                    r_done.set()

            async with trio.open_nursery() as nursery:
                for count, key in enumerate(["r", "w1", "w2"], 1):
                    nursery.start_soon(acquire, key, w1 if key == "w1" else None)
                    await trio.to_thread.run_sync(fake.wait_for, count)
                push_then_answer(holder, "r")  # r reads it, w1 is cancelled, r hands over to w1
                await r_done.wait()
                await trio.testing.wait_all_tasks_blocked()  # w1 has gone; w2 must be reading now
                holder.answer("w2")
    assert sorted(got) == ["r", "w2"] and w1.cancelled_caught


def test_a_task_cancelled_when_handed_the_reading_passes_it_on_under_asyncio(sock_path: str) -> None:
    holder = Holder(lambda request: True)

    async def main() -> None:
        with FakeDaemon(sock_path, holder) as fake:
            async with AsyncClient(sock_path, timeout=5) as client:
                tasks: dict[str, asyncio.Task[Permit]] = {}
                client.on_push(lambda message: tasks["w1"].cancel())  # runs in the reader, before it hands over
                for count, key in enumerate(["r", "w1", "w2"], 1):
                    tasks[key] = asyncio.create_task(client.acquire(key, "rest", wait=30))
                    await asyncio.to_thread(fake.wait_for, count)
                push_then_answer(holder, "r")
                assert (await tasks["r"]).granted
                with pytest.raises(asyncio.CancelledError):
                    await tasks["w1"]
                holder.answer("w2")
                assert (await tasks["w2"]).granted

    asyncio.run(main())
