"""Leases over a daemon restart, through the Python client: the holder reattaches by renewing and keeps its slot.

The daemon runs with ``--durability strict``, so a grant is answered only once it
is on disk and the restart finds the lease whatever the moment of the kill. The
restarted daemon keeps the previous run's leases as orphans for 30 s; the client
renews the leases it holds on its first new connection. That a lease nobody
reattaches is freed after the grace is tested on the engine, on a synthetic
timeline (tests/engine/test_orphans.py), rather than by waiting 30 s here.
"""

from __future__ import annotations

import pytest

from ratelimitd_client import Client

from .tables import TABLE


def restart(daemon, how: str) -> None:
    if how == "kill -9":
        daemon.kill()
    else:
        assert daemon.stop() == 0
    daemon.start()


def holder_keeps_its_slot_over_a_restart(start_daemon, how: str) -> None:
    daemon = start_daemon(TABLE, "--durability", "strict")
    with Client(daemon.socket) as holder, Client(daemon.socket) as other:
        held = holder.acquire("k", "stream")
        assert held.granted
        restart(daemon, how)

        listed = {lease["lease"]: lease for lease in other.leases()}
        assert listed[held.lease]["orphaned"] is True
        assert not other.acquire("k", "stream").granted  # the orphan keeps the slot

        mine = {lease["lease"]: lease for lease in holder.leases()}  # the new connection renewed it first
        assert mine[held.lease]["orphaned"] is False and mine[held.lease]["pid"] is not None
        assert held.lease_state.reattached == 1 and not held.lease_state.ended
        assert not other.acquire("k", "stream").granted

        newer = other.acquire("k", "ws")
        assert newer.granted and newer.lease != held.lease  # the new run's ids are its own

        assert holder.release(held) == [held.lease]
        assert other.acquire("k", "stream").granted


def test_a_holder_reattaches_after_kill_9(start_daemon) -> None:
    holder_keeps_its_slot_over_a_restart(start_daemon, "kill -9")


def test_a_holder_reattaches_after_sigterm(start_daemon) -> None:
    holder_keeps_its_slot_over_a_restart(start_daemon, "SIGTERM")


def test_a_lease_the_restarted_daemon_does_not_know_is_reported_lost(start_daemon) -> None:
    daemon = start_daemon(TABLE, "--durability", "memory")  # nothing survives the restart
    ended = []
    with Client(daemon.socket) as holder:
        holder.on_lease_end(ended.append)
        held = holder.acquire("k", "stream")
        restart(daemon, "kill -9")
        assert holder.leases() == []
        assert held.lease_state.end_reason == "lost" and ended == [held.lease_state]
        assert holder.acquire("k", "stream").granted
