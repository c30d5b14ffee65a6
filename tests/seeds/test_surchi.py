"""SURCHI (seeds/001_c9abd3ddc2ddfdeb.txt) end to end: every limit of the seed through a real daemon and client.

The bundled ``surchi`` preset is loaded as users load it (``include = ["surchi"]``);
the requests per minute are counted on the real one-minute window (no waiting is
needed to fill it). A tier ``short`` added to the preset's provider (same endpoints,
same bucket kinds, a one-second window) shows the window rolling over, waited for
by the daemon (``acquire(wait=…)``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ratelimitd_client import Client

from ..daemon import Daemon
from .support import bucket, ended_by_daemon, keys_table, module_daemon, rate_numbers

# "Rate Limit Tiers": Tier, Requests / min, WebSocket Connections, Historical Data
REQUESTS_PER_MINUTE = {"explorer": 60, "sentinel": 300, "elite": 1200}
HISTORICAL_DATA = {"explorer": "7 days", "sentinel": "90 days", "elite": "full history"}
# "WebSocket Rate Limits": Tier, Max Concurrent Connections, Max Subscriptions per Connection
CONNECTIONS = {"explorer": 1, "sentinel": 3, "elite": 10}
SUBSCRIPTIONS = {"explorer": 5, "sentinel": 20, "elite": None}  # None: "Unlimited"

SHORT_TIER = """
[providers.surchi.tiers.short]
rest = { rate = "60/1s" }
ws   = { concurrent = 1, when_full = "evict-oldest" }
subscriptions = { capacity = 5, per = "lease" }
"""


def surchi(tier: str) -> dict[str, str]:
    """Return the fields of a key of the surchi preset on ``tier``."""
    return {"provider": "surchi", "tier": tier}


KEYS = {
    **{tier: surchi(tier) for tier in REQUESTS_PER_MINUTE},
    **{f"rest_{tier}": surchi(tier) for tier in REQUESTS_PER_MINUTE},
    **{f"ws_{tier}": surchi(tier) for tier in CONNECTIONS},
    **{f"subs_{tier}": surchi(tier) for tier in SUBSCRIPTIONS},
    "research": surchi("explorer"),
    "cascade": surchi("explorer"),
    "rolling": surchi("short"),
}


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    with module_daemon(keys_table("surchi", KEYS, SHORT_TIER)) as running:
        yield running


def test_rate_limit_tiers_and_websocket_limits_of_the_preset(daemon) -> None:
    with Client(daemon.socket) as client:
        for tier in REQUESTS_PER_MINUTE:
            limits = client.hello(tier)
            assert rate_numbers(limits, "rest") == [(REQUESTS_PER_MINUTE[tier], "1m")], tier
            ws = bucket(limits, "ws")
            assert (ws["kind"], ws["concurrent"], ws["when_full"]) == ("concurrency", CONNECTIONS[tier], "evict-oldest")
            subscriptions = bucket(limits, "subscriptions")
            if SUBSCRIPTIONS[tier] is None:
                assert subscriptions["kind"] == "unlimited"
            else:
                assert (subscriptions["kind"], subscriptions["count_limit"], subscriptions["per"]) == (
                    "capacity",
                    SUBSCRIPTIONS[tier],
                    "lease",
                )
            assert limits["limits"]["info"]["historical_data"] == HISTORICAL_DATA[tier]
        # WebSocket connections "consume from a separate connection quota rather than the per-minute request limit"
        assert client.show("explorer")["endpoints"] == {"rest": ["rest"], "ws": ["ws"], "subscribe": ["subscriptions"]}


@pytest.mark.parametrize("tier", list(REQUESTS_PER_MINUTE))
def test_requests_per_minute_per_tier_on_a_rolling_60_second_window(daemon, tier: str) -> None:
    limit = REQUESTS_PER_MINUTE[tier]
    key = f"rest_{tier}"
    with Client(daemon.socket) as client:
        permits = [client.acquire(key, "rest") for _ in range(limit)]
        assert all(permit.granted for permit in permits)
        assert [permit.remaining for permit in permits[-2:]] == [1, 0]  # X-RateLimit-Remaining counting down
        over = client.acquire(key, "rest")
        assert (over.granted, over.scope, over.remaining) == (False, "rest", 0)
        # until the window has rolled past the first request (100 ms margin); filling 1,200 takes a moment
        assert 50 < over.retry_after <= 60.1


def test_requests_come_back_when_the_rolling_window_has_passed(daemon) -> None:
    """The short tier's 60 per second: the 61st waits in the daemon until the window rolls over."""
    with Client(daemon.socket) as client:
        assert all(client.acquire("rolling", "rest").granted for _ in range(60))
        over = client.acquire("rolling", "rest")
        assert not over.granted and 0 < over.retry_after <= 1.01  # until the first is a window (+ margin) old
        assert client.acquire("rolling", "rest", wait=5).granted


def test_websocket_connections_do_not_count_against_the_request_quota(daemon) -> None:
    with Client(daemon.socket) as client:
        connection = client.acquire("research", "ws")
        assert connection.granted
        inside = {"lease": connection.lease}
        assert all(client.acquire("research", "subscribe", scopes=inside).granted for _ in range(3))
        assert client.acquire("research", "rest").remaining == 59


def test_explorer_second_connection_terminates_the_oldest_and_its_holder_is_told(daemon) -> None:
    pushes: list[dict[str, Any]] = []
    with Client(daemon.socket) as first, Client(daemon.socket) as second:
        first.on_push(pushes.append)
        oldest = first.acquire("ws_explorer", "ws")
        assert oldest.granted
        newest = second.acquire("ws_explorer", "ws")
        assert newest.granted and newest.lease != oldest.lease  # going over terminates the oldest, not the newest
        assert ended_by_daemon(first, oldest.lease_state) == "evicted"
        assert pushes == [
            {
                "push": "lease-ended",
                "lease": oldest.lease,
                "key": "ws_explorer",
                "endpoint": "ws",
                "reason": "evicted",
                "bucket": "ws",
            }
        ]
        assert [lease["lease"] for lease in second.leases("ws_explorer")] == [newest.lease]


@pytest.mark.parametrize("tier", ["sentinel", "elite"])
def test_connections_over_the_tier_quota_terminate_the_oldest(daemon, tier: str) -> None:
    cap = CONNECTIONS[tier]
    key = f"ws_{tier}"
    with Client(daemon.socket) as first, Client(daemon.socket) as others:
        oldest = first.acquire(key, "ws")
        kept = [others.acquire(key, "ws") for _ in range(cap - 1)]
        assert oldest.granted and all(permit.granted for permit in kept)
        assert len(others.leases(key)) == cap  # at the quota, nothing is terminated
        newest = others.acquire(key, "ws")
        assert newest.granted
        assert ended_by_daemon(first, oldest.lease_state) == "evicted"
        held = {lease["lease"] for lease in others.leases(key)}
        assert held == {permit.lease for permit in kept} | {newest.lease}  # only the oldest went


@pytest.mark.parametrize("tier", ["explorer", "sentinel"])
def test_subscriptions_per_connection(daemon, tier: str) -> None:
    cap = SUBSCRIPTIONS[tier]
    key = f"subs_{tier}"
    with Client(daemon.socket) as client:
        connection = client.acquire(key, "ws")
        inside = {"lease": connection.lease}
        subscriptions = [client.acquire(key, "subscribe", scopes=inside) for _ in range(cap)]
        assert all(permit.granted for permit in subscriptions)
        over = client.acquire(key, "subscribe", scopes=inside)
        assert (over.granted, over.scope, over.retry_after) == (False, "subscriptions", None)
        client.release(subscriptions[0])  # unsubscribe
        assert client.acquire(key, "subscribe", scopes=inside).granted
        if CONNECTIONS[tier] > 1:
            another = client.acquire(key, "ws")  # another connection has its own subscriptions
            assert client.acquire(key, "subscribe", cost=cap, scopes={"lease": another.lease}).granted


def test_elite_subscriptions_per_connection_are_unlimited(daemon) -> None:
    with Client(daemon.socket) as client:
        connection = client.acquire("subs_elite", "ws")
        inside = {"lease": connection.lease}
        assert all(client.acquire("subs_elite", "subscribe", scopes=inside).granted for _ in range(200))
        assert client.acquire("subs_elite", "subscribe", cost=1_000_000, scopes=inside).granted


def test_a_terminated_connection_takes_its_subscriptions_with_it(daemon) -> None:
    with Client(daemon.socket) as first, Client(daemon.socket) as second:
        connection = first.acquire("cascade", "ws")
        subscriptions = [first.acquire("cascade", "subscribe", scopes={"lease": connection.lease}) for _ in range(5)]
        newer = second.acquire("cascade", "ws")
        assert ended_by_daemon(first, connection.lease_state) == "evicted"
        assert ended_by_daemon(first, subscriptions[-1].lease_state) == "parent-ended"
        assert {permit.lease_state.end_reason for permit in subscriptions} == {"parent-ended"}
        # the new connection starts with all 5 of its own
        assert all(second.acquire("cascade", "subscribe", scopes={"lease": newer.lease}).granted for _ in range(5))


def test_tier_upgrades_take_effect_live_and_keep_what_was_spent(start_daemon) -> None:
    """"Tier upgrades take effect within one epoch": a reload moves the key; the minute's count is kept."""
    daemon = start_daemon(keys_table("surchi", {"research": surchi("explorer")}))
    with Client(daemon.socket) as client:
        assert client.acquire("research", "rest", cost=60).granted
        assert not client.acquire("research", "rest").granted
        daemon.write_table(keys_table("surchi", {"research": surchi("sentinel")}))
        assert client.reload()["reloaded"] is True
        upgraded = client.acquire("research", "rest")
        assert upgraded.granted and upgraded.remaining == 300 - 61
        assert [client.acquire("research", "ws").granted for _ in range(3)] == [True, True, True]
        assert client.show("research")["tier"] == "sentinel"
