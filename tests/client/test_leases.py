"""The client's side of leases, apart from a real daemon: the LeaseBook, the acquire fields, poll, and reattach.

The book is sans-I/O and tested with plain maps; ``poll`` and the renewals on a
new connection run against the scripted fake daemon, each async scenario under
Trio and under asyncio.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest

from ratelimitd_client import AsyncClient, Client, Lease, Permit, UnknownLease
from ratelimitd_client.backends import current_backend
from ratelimitd_client.leases import LeaseBook, lease_id
from ratelimitd_client.messages import acquire_message

from .fake_daemon import FakeConnection, FakeDaemon, granted
from .test_aio import concurrently, in_thread


def ended_push(lease: str, reason: str = "evicted", **extra: Any) -> dict[str, Any]:
    return {"push": "lease-ended", "lease": lease, "key": "k", "endpoint": "ws", "reason": reason, **extra}


@pytest.fixture
def sock_path(short_tmp: Path) -> str:
    return str(short_tmp / "rl.sock")


# --- the book ----------------------------------------------------------------------------------


def test_a_push_ends_the_lease_it_names_and_the_callbacks_run_when_fired() -> None:
    book = LeaseBook()
    seen: list[Lease] = []
    book.callbacks.append(seen.append)
    permit = book.granted(granted(1, lease="L-1"), "k", "ws", False)
    assert permit.lease == "L-1" and permit.lease_state is book.held["L-1"] and not permit.lease_state.ended
    book.push({"push": "something-else", "lease": "L-1"})
    book.push(ended_push("L-2"))  # not ours (yet)
    assert not permit.lease_state.ended
    book.push(ended_push("L-1", bucket="ws"))
    assert permit.lease_state.end_reason == "evicted" and permit.lease_state.end_message["bucket"] == "ws"
    assert book.held == {} and seen == []  # callbacks wait for fire(), outside the client's lock
    book.fire()
    assert seen == [permit.lease_state] and book.due == []


def test_a_push_that_comes_before_the_grant_is_applied_to_it() -> None:
    book = LeaseBook()
    book.push(ended_push("L-3", "idle"))
    permit = book.granted(granted(1, lease="L-3"), "k", "ws", False)
    assert permit.lease_state.end_reason == "idle" and "L-3" not in book.held


def test_own_ends_do_not_call_back_and_lost_ones_do() -> None:
    book = LeaseBook()
    seen: list[str] = []
    book.callbacks.append(lambda lease: seen.append(f"{lease.id} {lease.end_reason}"))
    for ident in ("L-1", "L-2", "L-3", "L-4"):
        book.granted(granted(1, lease=ident), "k", "ws", ident == "L-2")
    assert book.finished("L-1", "released").end_reason == "released"
    assert book.finished("L-2", "settled").reservation
    book.lost("L-3")
    book.release_all()
    book.fire()
    assert seen == ["L-3 lost"] and book.held == {}


def test_a_lease_is_named_by_a_lease_a_permit_or_its_id() -> None:
    book = LeaseBook()
    permit = book.granted(granted(1, lease="L-1"), "k", "ws", False)
    assert lease_id(permit) == lease_id(permit.lease_state) == lease_id("L-1") == "L-1"
    with pytest.raises(ValueError, match="carries no lease"):
        lease_id(Permit(True))
    with pytest.raises(TypeError, match="a lease is a Lease"):
        lease_id(None)


def test_acquire_sends_scopes_and_reserve() -> None:
    message = acquire_message("k", "position", 1, None, 0, {"wallet": "W1"}, 60)
    assert message == {
        "op": "acquire", "id": 0, "key": "k", "endpoint": "position", "cost": 1, "scopes": {"wallet": "W1"}, "reserve": 60.0
    }  # fmt: skip
    assert "scopes" not in acquire_message("k", "e") and "reserve" not in acquire_message("k", "e")
    with pytest.raises(TypeError, match="scopes must map scope names"):
        acquire_message("k", "e", scopes={"wallet": 1})
    with pytest.raises(ValueError, match="reserve must be a positive number"):
        acquire_message("k", "e", reserve=0)
    assert acquire_message("k", "e", Decimal("2.5"), reserve=1.5)["reserve"] == 1.5


# --- the blocking client -----------------------------------------------------------------------


def leasing(known: set[str]) -> Callable[[FakeConnection, Any], None]:
    """Return a handler that grants leases L-1, L-2… and renews those in ``known`` (others: unknown-lease)."""
    count = [0]

    def handle(conn: FakeConnection, request: Any) -> None:
        if request["op"] == "acquire":
            count[0] += 1
            known.add(f"L-{count[0]}")
            conn.send(granted(request["id"], lease=f"L-{count[0]}"))
        elif request["op"] == "renew":
            if request["lease"] in known:
                conn.send({"id": request["id"], "lease": request["lease"], "renewed": True})
            else:
                conn.send({"id": request["id"], "error": "unknown-lease", "message": f"lease {request['lease']!r} is not held"})
        elif request["op"] == "release":
            known.discard(request["lease"])
            conn.send({"id": request["id"], "released": [request["lease"]]})
        else:
            conn.send({"id": request["id"], "keys": []})

    return handle


def test_a_new_connection_renews_the_leases_held_before_anything_else(sock_path: str) -> None:
    known: set[str] = set()
    seen: list[Lease] = []
    with FakeDaemon(sock_path, leasing(known)) as fake, Client(sock_path) as client:
        client.on_lease_end(seen.append)
        kept = client.acquire("k", "ws")
        dropped = client.acquire("k", "ws")
        known.discard(dropped.lease)  # the restarted daemon kept only one
        fake.connections[0].close()
        assert client.keys() == []
        assert [(r.connection, r.message["op"], r.message.get("lease")) for r in fake.received[2:]] == [
            (2, "renew", "L-1"),
            (2, "renew", "L-2"),
            (2, "keys", None),
        ]
        assert kept.lease_state.reattached == 1 and not kept.lease_state.ended
        assert dropped.lease_state.end_reason == "lost" and seen == [dropped.lease_state]


def test_poll_reads_pushes_between_calls_and_sees_the_connection_close(sock_path: str) -> None:
    known: set[str] = set()
    with FakeDaemon(sock_path, leasing(known)) as fake, Client(sock_path) as client:
        assert client.poll() == 0 and client.fileno() is None  # not connected: nothing to read
        permit = client.acquire("k", "ws")
        assert client.poll() == 0 and client.fileno() is not None
        fake.connections[0].send(ended_push(permit.lease, "ttl"))
        assert client.poll(timeout=5) == 1 and permit.lease_state.end_reason == "ttl"
        fake.connections[0].close()
        assert client.poll(timeout=5) == 0 and client.fileno() is None


def test_permit_exit_sends_no_release_for_a_lease_the_daemon_ended(sock_path: str) -> None:
    known: set[str] = set()
    with FakeDaemon(sock_path, leasing(known)) as fake, Client(sock_path) as client:
        with client.permit("k", "ws") as permit:
            fake.connections[0].send(ended_push(permit.lease))
            client.poll(timeout=5)
        with client.permit("k", "ws"):
            pass
    assert [m["op"] for m in fake.messages] == ["acquire", "acquire", "release"]


def test_release_of_an_unknown_lease_raises_and_marks_it_lost(sock_path: str) -> None:
    known: set[str] = set()
    with FakeDaemon(sock_path, leasing(known)), Client(sock_path) as client:
        permit = client.acquire("k", "ws")
        known.clear()
        with pytest.raises(UnknownLease):
            client.renew(permit)
        assert permit.lease_state.end_reason == "lost"


# --- the async client ----------------------------------------------------------------------------

AsyncScenario = Callable[[str], Awaitable[None]]
SCENARIOS: list[AsyncScenario] = []


def scenario(fn: AsyncScenario) -> AsyncScenario:
    SCENARIOS.append(fn)
    return fn


@scenario
async def poll_returns_when_a_push_comes(path: str) -> None:
    known: set[str] = set()
    with FakeDaemon(path, leasing(known)) as fake:
        async with AsyncClient(path, timeout=5) as client:
            assert await client.poll() == 0
            permit = await client.acquire("k", "ws")
            assert await client.poll() == 0
            fake.connections[0].send(ended_push(permit.lease))
            assert await client.poll(timeout=5) == 1 and permit.lease_state.end_reason == "evicted"


@scenario
async def poll_beside_a_waiting_call_returns_when_the_reader_gets_a_push(path: str) -> None:
    known: set[str] = set()
    held: list[tuple[FakeConnection, Any]] = []
    handle = leasing(known)

    def hold_waits(conn: FakeConnection, request: Any) -> None:
        if request.get("wait"):
            held.append((conn, request))
        else:
            handle(conn, request)

    with FakeDaemon(path, hold_waits) as fake:
        async with AsyncClient(path, timeout=5) as client:
            permit = await client.acquire("k", "ws")

            async def push_then_answer() -> None:
                await in_thread(fake.wait_for, 2)
                conn, request = held[0]
                conn.send(ended_push(permit.lease))
                await in_thread(lambda: None)
                conn.send(granted(request["id"]))

            waited, pushes, _ = await concurrently(
                lambda: client.acquire("k", "rest", wait=30), lambda: client.poll(timeout=5), push_then_answer
            )
            assert waited.granted and pushes == 1 and permit.lease_state.ended


@pytest.mark.parametrize("run", SCENARIOS, ids=[fn.__name__ for fn in SCENARIOS])
async def test_under_trio(run: AsyncScenario, sock_path: str) -> None:
    assert current_backend().name == "trio"
    await run(sock_path)


@pytest.mark.parametrize("run", SCENARIOS, ids=[fn.__name__ for fn in SCENARIOS])
def test_under_asyncio(run: AsyncScenario, sock_path: str) -> None:
    async def main() -> None:
        assert current_backend().name == "asyncio"
        await run(sock_path)

    asyncio.run(main())


async def test_an_async_client_renews_its_leases_on_a_new_connection(sock_path: str) -> None:
    known: set[str] = set()
    with FakeDaemon(sock_path, leasing(known)) as fake:
        async with AsyncClient(sock_path, timeout=5) as client:
            kept = await client.acquire("k", "ws")
            fake.connections[0].close()
            assert await client.keys() == []
            assert [(r.connection, r.message["op"]) for r in fake.received[1:]] == [(2, "renew"), (2, "keys")]
            assert kept.lease_state.reattached == 1
