"""PolyNode (seeds/002_29f8ee710a3f1a6e.txt) end to end: every limit of the seed through a real daemon and client.

The bundled ``polynode`` preset is loaded as users load it (``include = ["polynode"]``).
Requests per minute are counted on the real one-minute windows (a request's cost
fills a window at once). The Free tier's hour of WebSocket session a day is tried
on a tier ``short_free`` added to the preset's provider: the same endpoints and
bucket kinds, with "2s/day" for "1h/day"; the real tiers' numbers are asserted
through ``hello``.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from ratelimitd_client import Client, CostTooLarge, NotAvailable

from ..daemon import Daemon
from .support import balance, bucket, ended_by_daemon, keys_table, module_daemon, rate_numbers, wait_for

# "V3 REST data limits": Plan, Standard V3 REST data, Heavy V3 trade-history endpoints (req/min); Free: Not available
STANDARD = {"starter": 1000, "growth": 2000, "enterprise": 4000}
HEAVY = {"starter": 1000, "growth": 1500, "enterprise": 1500}
# "Tier limits": Event / Orderbook WebSocket connections (None: Unlimited)
CONNECTIONS = {"free": 1, "starter": 10, "growth": 50, "enterprise": None}
# "Tier limits": Filter items per subscription (Enterprise: Custom)
FILTER_ITEMS = {"free": 10000, "starter": 10000, "growth": 10000}
# "Tier limits": Snapshot size, Snapshot lookback, API keys, Key generation, Orderbook market subs
INFO = {
    "free": {"snapshot_count": 20, "snapshot_lookback": "30s", "api_keys": 1, "key_generation": "1 per IP per day"},
    "starter": {"snapshot_count": 100, "snapshot_lookback": "2m", "api_keys": 3, "key_generation": "via dashboard"},
    "growth": {"snapshot_count": 200, "snapshot_lookback": "5m", "api_keys": 10, "key_generation": "via dashboard"},
    "enterprise": {"snapshot_count": 500, "snapshot_lookback": "5m", "api_keys": 25, "key_generation": "via dashboard"},
}
# "Pagination limits": holder lists up to 300 / 1000 / 2000 rows; most lists clamp at 300; pnl/events at 10000
HOLDER_PAGE = {"starter": 300, "growth": 1000, "enterprise": 2000}
# "V3 REST data limits": the heavy trade-history endpoints
HEAVY_PATHS = [
    "/v3/trades",
    "/v3/wallets/0xabc/trades",
    "/v3/wallets/0xabc/combos/trades",
    "/v3/markets/123/trades",
    "/v3/markets/slug/will-it-rain/trades",
    "/v3/builders/b1/trades",
]

# The Free tier's shape, with 2 seconds of WebSocket session a day for the hour.
SHORT_FREE = """
[providers.polynode.tiers.short_free]
events_ws    = { concurrent = 1 }
orderbook_ws = { concurrent = 1 }
ws_session   = { time_quota = "2s/day" }
filter_items = { max_cost = 10000 }
"""


def polynode(tier: str, overrides: str | None = None) -> dict[str, str]:
    """Return the fields of a key of the polynode preset on ``tier``."""
    fields = {"provider": "polynode", "tier": tier}
    if overrides is not None:
        fields["overrides"] = overrides
    return fields


# "custom by agreement": an Enterprise key with its own limits
DESK = '{ standard = { rate = "6000/1m" }, heavy = { rate = "3000/1m" }, filter_items = { max_cost = 50000 } }'

KEYS = {
    **{tier: polynode(tier) for tier in CONNECTIONS},
    **{f"standard_{tier}": polynode(tier) for tier in STANDARD},
    **{f"heavy_{tier}": polynode(tier) for tier in HEAVY},
    **{f"events_{tier}": polynode(tier) for tier in CONNECTIONS},
    **{f"orderbook_{tier}": polynode(tier) for tier in CONNECTIONS},
    **{f"filters_{tier}": polynode(tier) for tier in FILTER_ITEMS},
    "both": polynode("growth"),
    "stricter": polynode("starter"),
    "held": polynode("growth"),
    "desk": polynode("enterprise", DESK),
}


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    with module_daemon(keys_table("polynode", KEYS)) as running:
        yield running


def seconds_to_utc_midnight(now: float) -> float:
    """Return the seconds from ``now`` to the next midnight UTC."""
    today = datetime.fromtimestamp(now, timezone.utc).date()
    tomorrow = today + timedelta(days=1)
    return calendar.timegm(tomorrow.timetuple()) - now


def test_v3_rest_requires_a_paid_plan_free_is_not_available_not_rate_limited(daemon) -> None:
    with Client(daemon.socket) as client:
        for endpoint in ("rest", "heavy"):
            with pytest.raises(NotAvailable) as refused:
                client.acquire("free", endpoint, wait=5)  # at once, never queued: a 402, not a 429
            assert refused.value.code == "not-available"
        assert client.acquire("starter", "rest").granted
        assert {one["name"] for one in client.hello("free")["limits"]["buckets"]}.isdisjoint({"standard", "heavy"})


@pytest.mark.parametrize("plan", list(STANDARD))
def test_standard_v3_rest_requests_per_minute_per_plan(daemon, plan: str) -> None:
    key = f"standard_{plan}"
    with Client(daemon.socket) as client:
        assert rate_numbers(client.hello(key), "standard") == [(STANDARD[plan], "1m")]
        assert client.acquire(key, "rest", cost=STANDARD[plan] - 1).granted
        assert client.acquire(key, "rest").granted
        over = client.acquire(key, "rest")
        assert (over.granted, over.scope) == (False, "standard")
        assert 59 < over.retry_after <= 60.1


@pytest.mark.parametrize("plan", list(HEAVY))
def test_heavy_v3_trade_history_requests_per_minute_per_plan(daemon, plan: str) -> None:
    key = f"heavy_{plan}"
    with Client(daemon.socket) as client:
        assert rate_numbers(client.hello(key), "heavy") == [(HEAVY[plan], "1m")]
        assert client.acquire(key, "heavy", cost=HEAVY[plan]).granted
        over = client.acquire(key, "heavy")
        assert not over.granted and over.scope in ("heavy", "standard")
        assert over.buckets["heavy"][0] == 0


def test_heavy_endpoints_check_both_the_standard_and_the_heavy_bucket(daemon) -> None:
    """Growth: 2,000 standard and 1,500 heavy a minute; a heavy call takes from both, all or nothing."""
    with Client(daemon.socket) as client:
        heavy = client.acquire("both", "heavy", cost=1500)
        assert heavy.granted
        assert {name: left for name, (left, _reset) in heavy.buckets.items()} == {"standard": 500, "heavy": 0}
        refused = client.acquire("both", "heavy")
        # the heavy bucket was exceeded (PolyNode's "scope": "v3_heavy")
        assert (refused.granted, refused.scope) == (False, "heavy")
        assert refused.buckets["standard"][0] == 500  # nothing was charged to standard
        assert client.acquire("both", "rest", cost=500).granted  # standard reads go on until standard is used up
        standard_out = client.acquire("both", "rest")
        assert (standard_out.granted, standard_out.scope) == (False, "standard")


def test_heavy_endpoints_the_stricter_remaining_limit_applies(daemon) -> None:
    """Starter: standard used up by ordinary reads refuses heavy calls although the heavy bucket is untouched."""
    with Client(daemon.socket) as client:
        assert client.acquire("stricter", "rest", cost=1000).granted
        refused = client.acquire("stricter", "heavy")
        assert (refused.granted, refused.scope) == (False, "standard")
        assert refused.buckets["heavy"][0] == 1000


def test_heavy_trade_history_paths_route_to_the_heavy_endpoint(daemon) -> None:
    with Client(daemon.socket) as client:
        routes = client.routes("starter")
        for path in HEAVY_PATHS:
            assert routes.match("GET", f"https://api.polynode.dev{path}").endpoint == "heavy", path
        for path in ("/v3/markets/search", "/v3/wallets/0xabc", "/v3/wallets/0xabc/pnl/events"):
            assert routes.match("GET", f"https://api.polynode.dev{path}").endpoint == "rest", path


def test_a_heavy_429_with_scope_v3_heavy_and_reset_at_holds_only_the_heavy_bucket(daemon) -> None:
    with Client(daemon.socket) as client:
        applied = client.report("held", None, 429, bucket="heavy", reset_at=int(time.time()) + 30)
        assert [(item["bucket"], item["action"]) for item in applied] == [("heavy", "hold")]
        refused = client.acquire("held", "heavy")
        assert (refused.granted, refused.scope) == (False, "heavy") and 25 < refused.retry_after <= 31
        assert client.acquire("held", "rest").granted


@pytest.mark.parametrize("endpoint", ["events", "orderbook"])
@pytest.mark.parametrize("plan", [plan for plan in CONNECTIONS if CONNECTIONS[plan] is not None])
def test_event_and_orderbook_websocket_connections_per_plan(daemon, plan: str, endpoint: str) -> None:
    cap = CONNECTIONS[plan]
    key = f"{endpoint}_{plan}"
    with Client(daemon.socket) as client:
        assert bucket(client.hello(key), f"{endpoint}_ws")["concurrent"] == cap
        connections = [client.acquire(key, endpoint) for _ in range(cap)]
        assert all(permit.granted for permit in connections)
        over = client.acquire(key, endpoint)
        assert (over.granted, over.scope, over.retry_after) == (False, f"{endpoint}_ws", None)
        client.release(connections[0])
        assert client.acquire(key, endpoint).granted


@pytest.mark.parametrize("endpoint", ["events", "orderbook"])
def test_enterprise_websocket_connections_are_unlimited(daemon, endpoint: str) -> None:
    key = f"{endpoint}_enterprise"
    with Client(daemon.socket) as client:
        assert bucket(client.hello(key), f"{endpoint}_ws")["kind"] == "unlimited"
        assert all(client.acquire(key, endpoint).granted for _ in range(200))


def test_websocket_session_is_one_hour_a_day_on_free_and_unlimited_on_paid_plans(daemon) -> None:
    with Client(daemon.socket) as client:
        session = bucket(client.hello("free"), "ws_session")
        assert (session["kind"], session["quota"]) == (
            "time-quota",
            {"limit": 3600, "period": "day", "timezone": "UTC", "on_exhaust": "deny"},
        )
        for plan in ("starter", "growth", "enterprise"):
            assert bucket(client.hello(plan), "ws_session")["kind"] == "unlimited", plan
        assert client.show("free")["endpoints"]["events"] == ["events_ws", "ws_session"]
        assert client.show("free")["endpoints"]["orderbook"] == ["orderbook_ws", "ws_session"]


@pytest.mark.parametrize("plan", list(FILTER_ITEMS))
def test_filter_items_per_subscription_over_10000_are_refused_never_queued(daemon, plan: str) -> None:
    key = f"filters_{plan}"
    with Client(daemon.socket) as client:
        assert bucket(client.hello(key), "filter_items")["max_cost"] == FILTER_ITEMS[plan]
        assert client.acquire(key, "subscribe", cost=10000).granted
        assert client.acquire(key, "subscribe", cost=10000).granted  # a cap per subscription, not a count
        with pytest.raises(CostTooLarge) as refused:
            client.acquire(key, "subscribe", cost=10001, wait=5)
        assert refused.value.code == "cost-too-large"
        assert "10000" in refused.value.message and "filter_items" in refused.value.message
        assert client.status()["waiters"] == 0


def test_enterprise_custom_by_agreement_overrides_per_key(daemon) -> None:
    with Client(daemon.socket) as client:
        assert bucket(client.hello("enterprise"), "filter_items")["kind"] == "unlimited"  # "Custom"
        assert client.acquire("enterprise", "subscribe", cost=1_000_000).granted
        limits = client.hello("desk")
        assert rate_numbers(limits, "standard") == [(6000, "1m")]
        assert rate_numbers(limits, "heavy") == [(3000, "1m")]
        assert client.acquire("desk", "heavy", cost=3000).granted
        assert client.acquire("desk", "rest", cost=3000).granted
        assert not client.acquire("desk", "rest").granted
        assert client.acquire("desk", "subscribe", cost=50000).granted
        with pytest.raises(CostTooLarge):
            client.acquire("desk", "subscribe", cost=50001)


def test_snapshot_size_lookback_api_keys_key_generation_and_pagination_are_reported(daemon) -> None:
    with Client(daemon.socket) as client:
        for plan, expected in INFO.items():
            info = client.hello(plan)["limits"]["info"]
            assert {name: info[name] for name in expected} == expected, plan
            assert info["orderbook_market_subs"] == "unlimited"
            if plan in HOLDER_PAGE:
                pages = (info["holder_page_max"], info["page_max"], info["pnl_events_page_max"])
                assert pages == (HOLDER_PAGE[plan], 300, 10000), plan


def test_free_websocket_session_ends_when_the_days_time_is_used_up_and_no_new_one_until_midnight(start_daemon) -> None:
    """"2s/day" for "1 hour/day": the connection is ended and told ("time-quota"); no new one for the rest of the day.

    The holder renews its lease once (a heartbeat, as a client holding a WebSocket does);
    the test below checks that the end comes without it.
    """
    daemon = start_daemon(keys_table("polynode", {"k": polynode("short_free")}, SHORT_FREE))
    with Client(daemon.socket) as holder, Client(daemon.socket) as other:
        connection = holder.acquire("k", "events")
        assert connection.granted
        holder.renew(connection)
        assert ended_by_daemon(holder, connection.lease_state) == "time-quota"
        used = balance(holder, "k", "ws_session")
        assert used["remaining"] == 0 and 2 <= used["used"] < 2.5
        now = time.time()
        for endpoint in ("events", "orderbook"):  # the day's time is shared by every WebSocket connection
            refused = other.acquire("k", endpoint)
            assert (refused.granted, refused.scope) == (False, "ws_session")
            assert refused.retry_after == pytest.approx(seconds_to_utc_midnight(now), abs=5)


def test_free_websocket_session_ends_on_its_own_when_the_days_time_is_used_up(start_daemon) -> None:
    """Nothing but the time quota happens on this daemon: the lease's deadline alone must end it."""
    daemon = start_daemon(keys_table("polynode", {"k": polynode("short_free")}, SHORT_FREE))
    with Client(daemon.socket) as holder:
        # start_daemon's probe has gone: nothing else wakes the daemon
        wait_for(lambda: holder.status()["connections"] == 1)
        connection = holder.acquire("k", "events")
        assert connection.granted
        assert ended_by_daemon(holder, connection.lease_state) == "time-quota"


def test_free_websocket_session_time_of_connections_held_at_once_adds_up_to_the_days_allowance(start_daemon) -> None:
    daemon = start_daemon(keys_table("polynode", {"k": polynode("short_free")}, SHORT_FREE))
    with Client(daemon.socket) as holder:
        events = holder.acquire("k", "events")
        orderbook = holder.acquire("k", "orderbook")
        assert events.granted and orderbook.granted
        holder.renew(orderbook)  # a heartbeat
        assert ended_by_daemon(holder, events.lease_state) == "time-quota"
        assert ended_by_daemon(holder, orderbook.lease_state) == "time-quota"
        used = balance(holder, "k", "ws_session")
        assert used["used"] < 2.5 and used["overage"] < 0.5
