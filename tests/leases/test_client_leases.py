"""Leases through the Python client against a real daemon: eviction told to its holder, reject and wait,
a killed holder's slot freed, idle timeouts and renew, counts per scope, reservations settled.

Each test starts its own ``ratelimitd`` process on a real socket (``start_daemon``). A push is
waited for with ``poll(timeout=…)``, which returns as soon as it comes: the timeouts are bounds,
not sleeps. The idle test is the exception that must let real time pass (a daemon's timer on its
own clock); it keeps wide margins, and the engine tests cover idle ends on a synthetic timeline.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ratelimitd_client import AsyncClient, Client, Lease, UnknownLease

from .tables import TABLE

# bound on waiting for a push that must come (returns as soon as it does)
PUSH_WITHIN = 5.0


def wait_for(condition, within: float = 5.0) -> None:
    """Return once ``condition()`` is true; fail after ``within`` s (readiness, not a timing assertion)."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the condition did not become true in time"
        time.sleep(0.005)


def test_a_second_connection_evicts_the_first_and_its_holder_is_told(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    ended: list[Lease] = []
    with Client(daemon.socket) as first, Client(daemon.socket) as second:
        first.on_lease_end(ended.append)
        with first.permit("k", "ws") as held:
            assert held.lease_state is not None and held.lease_state.id == held.lease
            assert not held.lease_state.ended
            newer = second.acquire("k", "ws")
            assert newer.granted and newer.lease != held.lease
            assert first.poll(timeout=PUSH_WITHIN) == 1
            assert held.lease_state.ended and held.lease_state.end_reason == "evicted"
            assert held.lease_state.end_message["bucket"] == "ws"
            assert ended == [held.lease_state]
        # leaving permit() sent no release for the evicted lease and raised nothing
        assert [lease["lease"] for lease in second.leases("k")] == [newer.lease]
        assert held.lease_state.end_reason == "evicted"


def test_leases_inside_an_evicted_one_end_with_it(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    with Client(daemon.socket) as first, Client(daemon.socket) as second:
        connection = first.acquire("k", "ws")
        subscription = first.acquire("k", "sub", cost=2, scopes={"lease": connection.lease})
        assert subscription.granted and subscription.remaining == 1
        assert not first.acquire("k", "sub", cost=2, scopes={"lease": connection.lease}).granted
        second.acquire("k", "ws")
        deadline = time.monotonic() + PUSH_WITHIN
        while not connection.lease_state.ended and time.monotonic() < deadline:
            first.poll(timeout=0.5)
        assert subscription.lease_state.end_reason == "parent-ended"
        assert connection.lease_state.end_reason == "evicted"
        assert [lease["endpoint"] for lease in second.leases("k")] == ["ws"]  # the subscription went too


async def test_an_async_holder_is_told_of_its_eviction(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    ended: list[str] = []
    async with AsyncClient(daemon.socket) as first:
        first.on_lease_end(lambda lease: ended.append(lease.end_reason))
        async with first.permit("k", "ws") as held:
            with Client(daemon.socket) as second:
                assert second.acquire("k", "ws").granted
            assert await first.poll(timeout=PUSH_WITHIN) == 1
            assert held.lease_state.end_reason == "evicted"
        assert ended == ["evicted"]
        # it is gone, and leaving permit() raised nothing
        assert held.lease not in [lease["lease"] for lease in await first.leases("k")]


def test_reject_refuses_without_a_retry_time_and_a_waiter_gets_the_slot_when_it_is_released(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    with Client(daemon.socket) as first, Client(daemon.socket) as second:
        held = first.acquire("k", "stream")
        assert held.granted
        refused = second.acquire("k", "stream")
        assert (refused.granted, refused.retry_after, refused.remaining, refused.scope) == (False, None, 0, "stream")
        assert refused.lease is None and refused.lease_state is None

        answers = []
        waiter = threading.Thread(target=lambda: answers.append(second.acquire("k", "stream", wait=5)))
        waiter.start()
        with Client(daemon.socket) as watcher:
            wait_for(lambda: watcher.status()["waiters"] == 1)
        assert first.release(held) == [held.lease]
        waiter.join(10)
        (granted,) = answers
        assert granted.granted and granted.lease_state is not None
        assert held.lease_state.end_reason == "released"
        assert [lease["lease"] for lease in first.leases("k")] == [granted.lease]


HOLDER = textwrap.dedent(
    """
    import sys, time
    from ratelimitd_client import Client
    client = Client(sys.argv[1])
    permit = client.acquire("k", "stream")
    print(permit.lease if permit.granted else "denied", flush=True)
    time.sleep(60)
    """
)


def test_a_client_process_killed_while_holding_a_lease_frees_the_slot_within_a_second(start_daemon) -> None:
    """The issue's bound: SIGKILL to the holder, and another client has the slot within a second.

    The daemon sees the killed process's socket close (the kernel closes it with
    the process) and releases its leases at once, serving the waiter in the same
    pass: this takes milliseconds, so 1 s is generous on a loaded machine. The
    acquire waits up to 5 s so that a slow release fails the timing assertion
    with its figure, not the grant.
    """
    daemon = start_daemon(TABLE)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, daemon.socket], stdout=subprocess.PIPE, text=True)
    try:
        lease = holder.stdout.readline().strip()
        assert lease and lease != "denied"
        with Client(daemon.socket) as other:
            assert not other.acquire("k", "stream").granted
            holder.kill()
            killed = time.monotonic()
            permit = other.acquire("k", "stream", wait=5)
            freed_after = time.monotonic() - killed
            assert permit.granted and permit.lease != lease
            assert freed_after < 1.0, f"the slot was free {freed_after:.3f} s after SIGKILL"
    finally:
        holder.kill()
        holder.wait(10)


def test_an_idle_lease_ends_with_a_push_and_renew_keeps_it(start_daemon) -> None:
    """``idle = "1s"``: renewed every 0.3 s it lives past 1 s; left alone it ends with reason ``idle``.

    Real time must pass here (the daemon's timer): each renew comes 0.3 s after
    the last, well inside the 1 s; the end is waited for up to 5 s.
    """
    daemon = start_daemon(TABLE)
    with Client(daemon.socket) as holder, Client(daemon.socket) as other:
        permit = holder.acquire("k", "idle")
        started = time.monotonic()
        while time.monotonic() - started < 1.5:
            assert holder.poll(timeout=0.3) == 0
            renewed = holder.renew(permit)
            assert renewed["renewed"] is True and renewed["lease"] == permit.lease and renewed["idle_for"] < 0.1
        assert not permit.lease_state.ended
        assert not other.acquire("k", "idle").granted

        assert holder.poll(timeout=PUSH_WITHIN) == 1
        assert permit.lease_state.end_reason == "idle"
        assert other.acquire("k", "idle").granted
        with pytest.raises(UnknownLease):
            holder.renew(permit)


def test_counts_per_wallet_are_held_and_given_back(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    with Client(daemon.socket) as client:
        first = client.acquire("k", "position", scopes={"wallet": "W1"})
        second = client.acquire("k", "position", scopes={"wallet": "W1"})
        full = client.acquire("k", "position", scopes={"wallet": "W1"})
        assert (first.granted, second.granted, full.granted) == (True, True, False)
        assert (full.scope, full.retry_after, full.remaining) == ("wallets", None, 0)
        assert client.acquire("k", "position", scopes={"wallet": "W2"}).granted
        wallets = next(bucket for bucket in client.show("k")["buckets"] if bucket["name"] == "wallets")
        assert {value: counted["held"] for value, counted in wallets["scopes"].items()} == {"wallet=W1": 2, "wallet=W2": 1}
        assert client.release(first) == [first.lease]
        assert client.acquire("k", "position", scopes={"wallet": "W1"}).granted


def test_a_reservation_settled_lower_refunds_higher_charges_more_and_unsettled_stays_charged(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    with Client(daemon.socket) as client:
        def remaining() -> int:
            return client.acquire("k", "rest", 0).remaining

        with client.reserve("k", "rest", 10, within=60) as reservation:
            assert reservation.remaining == 90 and reservation.lease_state.reservation
            assert client.settle(reservation, 4) == -6
        assert remaining() == 96 and reservation.lease_state.end_reason == "settled"
        with pytest.raises(UnknownLease):
            client.settle(reservation, 4)

        with client.reserve("k", "rest", 10) as reservation:
            assert client.settle(reservation.lease, 25) == 15
        assert remaining() == 71

        with client.reserve("k", "rest", 10) as reservation:
            pass  # the real cost never became known: released, charged in full
        assert remaining() == 61 and reservation.lease_state.end_reason == "released"


def test_a_reservation_left_open_expires_charged_in_full_and_its_holder_is_told(start_daemon) -> None:
    daemon = start_daemon(TABLE)
    with Client(daemon.socket) as client:
        wait_for(lambda: client.status()["connections"] == 1)  # start_daemon's probe is gone: nothing else wakes the daemon
        expiring = client.acquire("k", "rest", 10, reserve=0.2)
        assert client.poll(timeout=2.0) == 1
        assert expiring.lease_state.end_reason == "reservation-expired"
        assert client.acquire("k", "rest", 0).remaining == 90
