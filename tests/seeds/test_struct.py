"""Struct (seeds/003_1eda4d156d40af24.txt) end to end: every limit of the seed through a real daemon and client.

The bundled ``struct`` preset is loaded as users load it (``include = ["struct"]``).
Where the seed's windows are a minute or a month, a tier ``short`` is added to the
preset's own provider, with the same endpoints and bucket kinds and short windows,
and the real tiers' numbers are asserted through ``hello`` / ``show``. The monthly
credit allowance is set per key (``overrides``), as the preset tells users to.
"""

from __future__ import annotations

import calendar
import time
from datetime import datetime, timezone
from decimal import Decimal

from collections.abc import Iterator

import pytest

from ratelimitd_client import Client, CostTooLarge

from ..daemon import Daemon
from .support import balance, bucket, keys_table, module_daemon, rate_numbers, rate_usage

# "REST throughput": Plan, Requests/second, Requests/minute
REST = {"free": (5, 120), "hobby": (25, 1000), "startup": (125, 5000), "scale": (300, 15000)}
# "WebSocket connections": Plan, Concurrent connections (per organisation)
CONNECTIONS = {"free": 1, "hobby": 50, "startup": 250, "scale": 1000}
# "Webhook subscriptions": Plan, Max active webhooks
WEBHOOKS = {"free": 10, "hobby": 5000, "startup": 25000, "scale": 100000}
# "Filter limits": 500 total filter items summed across all rooms on the same connection
FILTER_ITEMS = 500

# The preset's shape with windows short enough to pass in a test: 5 per second and 8 per 3 s
# stand for 5 per second and 120 per minute; everything else as the preset's free tier.
SHORT_TIER = """
[providers.struct.tiers.short]
rest = { rate = ["5/1s", "8/3s"] }
ws   = { concurrent = 1, scope = "group" }
webhooks = { capacity = 10, scope = "group" }
filters  = { capacity = 500, per = "connection" }
credits  = { quota = "1000000000/month", on_exhaust = "allow", scope = "group" }
"""



def plan_key(tier: str, group: str | None = None, overrides: str | None = None) -> dict[str, str]:
    """Return the fields of a key of the struct preset on ``tier``."""
    fields = {"provider": "struct", "tier": tier}
    if group is not None:
        fields["group"] = group
    if overrides is not None:
        fields["overrides"] = overrides
    return fields


# one daemon for the module; each test uses keys of its own
KEYS = {
    **{plan: plan_key(plan) for plan in REST},
    "sixth": plan_key("free"),
    "short": plan_key("short"),
    "ingest": plan_key("free", "acme"),
    "alerts": plan_key("free", "acme"),
    "other": plan_key("free", "globex"),
    **{f"ws_{plan}_{half}": plan_key(plan, f"ws_{plan}") for plan in CONNECTIONS for half in "ab"},
    "hooks_a": plan_key("free", "hooks"),
    "hooks_b": plan_key("free", "hooks"),
    **{f"webhooks_{plan}": plan_key(plan) for plan in WEBHOOKS},
    "filters": plan_key("free"),
    "filters_cap": plan_key("free"),
    "metered": plan_key("free", overrides='{ credits = { quota = "10/month", on_exhaust = "deny" } }'),
    "billed": plan_key("free", overrides='{ credits = { quota = "10/month" } }'),
    "credit_steps": plan_key("free"),
    "first": plan_key("hobby"),
    "fifteenth": plan_key("hobby", overrides='{ credits = { quota = "500000/month", anchor = 15 } }'),
    "org_a": plan_key("free", "org"),
    "org_b": plan_key("free", "org"),
}


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    with module_daemon(keys_table("struct", KEYS, SHORT_TIER)) as running:
        yield running


def next_month_start(now: float, billing_day: int = 1) -> float:
    """Return the Unix time of the next billing day (midnight UTC) after ``now``."""
    today = datetime.fromtimestamp(now, timezone.utc)
    year, month = today.year, today.month
    if today.day >= billing_day:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return calendar.timegm((year, month, billing_day, 0, 0, 0))


def test_rest_throughput_per_plan_is_per_second_and_per_minute(daemon) -> None:
    with Client(daemon.socket) as client:
        for plan, (per_second, per_minute) in REST.items():
            assert rate_numbers(client.hello(plan), "rest") == [(per_second, "1s"), (per_minute, "1m")], plan
            assert client.show(plan)["endpoints"]["rest"] == ["rest", "credits"]


def test_rest_free_plan_refuses_the_sixth_request_in_a_second(daemon) -> None:
    with Client(daemon.socket) as client:
        assert all(client.acquire("sixth", "rest").granted for _ in range(5))
        sixth = client.acquire("sixth", "rest")
        assert (sixth.granted, sixth.scope) == (False, "rest")
        assert 0 < sixth.retry_after <= 1.01  # the per-second window (and its 10 ms margin), not the minute
        assert rate_usage(client.show("sixth"), "rest") == [(5, 0), (5, 115)]


def test_rest_the_tighter_of_per_second_and_per_minute_applies(daemon) -> None:
    """Per second refuses first; once it has room again, per minute refuses (short windows: 5/1s, 8/3s).

    The first five are one request of cost 5, so that they leave the window together.
    """
    with Client(daemon.socket) as client:
        assert client.acquire("short", "rest", cost=5).granted
        by_second = client.acquire("short", "rest")
        assert (by_second.granted, by_second.scope) == (False, "rest")
        assert 0 < by_second.retry_after <= 1.01
        assert rate_usage(client.show("short"), "rest") == [(5, 0), (5, 3)]

        # the daemon holds this until the second has passed; the "minute" still has 3
        assert client.acquire("short", "rest", cost=3, wait=5).granted
        by_minute = client.acquire("short", "rest")
        assert (by_minute.granted, by_minute.scope) == (False, "rest")
        assert rate_usage(client.show("short"), "rest") == [(3, 2), (8, 0)]  # the second has room: the minute refuses
        assert 1.0 < by_minute.retry_after <= 3.03 - 1.0


def test_websocket_connections_are_capped_per_organisation_across_its_keys_and_rejected_when_full(daemon) -> None:
    with Client(daemon.socket) as first, Client(daemon.socket) as second:
        held = first.acquire("ingest", "ws")
        assert held.granted
        refused = second.acquire("alerts", "ws")  # another key of the same organisation
        assert (refused.granted, refused.scope, refused.retry_after, refused.remaining) == (False, "ws", None, 0)
        other = second.acquire("other", "ws")  # another organisation has its own cap
        assert other.granted
        assert held.lease_state.end_reason is None  # rejected, not evicted: the first connection stays
        first.release(held)
        assert second.acquire("alerts", "ws").granted


@pytest.mark.parametrize("plan", list(CONNECTIONS))
def test_websocket_concurrent_connections_per_plan(daemon, plan: str) -> None:
    """The plan's cap, shared by two keys of one organisation: all but one on one key, the last on the other."""
    cap = CONNECTIONS[plan]
    a, b = f"ws_{plan}_a", f"ws_{plan}_b"
    with Client(daemon.socket) as client:
        assert bucket(client.hello(a), "ws")["concurrent"] == cap
        if cap > 1:
            assert client.acquire(a, "ws", cost=cap - 1).granted  # cap - 1 connections in one request
        assert client.acquire(b, "ws").granted
        for key in (a, b):
            over = client.acquire(key, "ws")
            assert (over.granted, over.scope, over.retry_after) == (False, "ws", None)
        assert bucket(client.show(a), "ws")["held"] == cap


def test_max_active_webhooks_free_plan_ten_per_organisation(daemon) -> None:
    with Client(daemon.socket) as client:
        hooks = [client.acquire("hooks_a" if index < 6 else "hooks_b", "webhook") for index in range(10)]
        assert all(hook.granted for hook in hooks)
        eleventh = client.acquire("hooks_b", "webhook")
        assert (eleventh.granted, eleventh.scope, eleventh.retry_after) == (False, "webhooks", None)
        assert bucket(client.show("hooks_a"), "webhooks")["held"] == 10
        client.release(hooks[0])  # deleting a webhook frees its place
        assert client.acquire("hooks_b", "webhook").granted


@pytest.mark.parametrize("plan", list(WEBHOOKS))
def test_max_active_webhooks_per_plan(daemon, plan: str) -> None:
    cap = WEBHOOKS[plan]
    key = f"webhooks_{plan}"
    with Client(daemon.socket) as client:
        assert bucket(client.hello(key), "webhooks")["count_limit"] == cap
        assert client.acquire(key, "webhook", cost=cap - 1).granted  # all but one active
        assert client.acquire(key, "webhook").granted
        over = client.acquire(key, "webhook")
        assert (over.granted, over.scope) == (False, "webhooks")


def test_filter_items_500_summed_across_rooms_on_one_connection(daemon) -> None:
    with Client(daemon.socket) as connection, Client(daemon.socket) as another:
        assert bucket(connection.hello("filters"), "filters")["count_limit"] == FILTER_ITEMS
        room = connection.acquire("filters", "filter", cost=300)
        assert room.granted
        second_room = connection.acquire("filters", "filter", cost=300)  # 600 on one connection
        assert (second_room.granted, second_room.scope, second_room.retry_after) == (False, "filters", None)
        assert connection.acquire("filters", "filter", cost=200).granted  # exactly 500 summed
        assert not connection.acquire("filters", "filter", cost=1).granted
        assert another.acquire("filters", "filter", cost=300).granted  # another connection has its own 500
        connection.release(room)  # leave_room
        assert connection.acquire("filters", "filter", cost=300).granted


def test_filter_items_over_500_in_one_subscription_can_never_be_held(daemon) -> None:
    with Client(daemon.socket) as client:
        with pytest.raises(CostTooLarge):
            client.acquire("filters_cap", "filter", cost=FILTER_ITEMS + 1, wait=5)  # refused at once, never queued
        assert client.acquire("filters_cap", "filter", cost=FILTER_ITEMS).granted


def test_credits_at_0_1_per_webhook_event_reach_exactly_the_allowance(daemon) -> None:
    """100 events of 0.1 credit use exactly 10 credits: the 100th is granted, the 101st refused."""
    with Client(daemon.socket) as client:
        granted = [client.acquire("metered", "webhook_event") for _ in range(100)]
        assert all(permit.granted for permit in granted)
        assert granted[-1].remaining == 0
        over = client.acquire("metered", "webhook_event")
        assert (over.granted, over.scope) == (False, "credits")
        assert client.acquire("metered", "alert_event").granted is False  # "same per-event rate": same credits
        now = time.time()
        assert balance(client, "metered", "credits") == {
            "used": 10,
            "remaining": 0,
            "overage": 0,
            "billed": 10,
            "period_end": pytest.approx(next_month_start(now)),
        }
        assert over.retry_after == pytest.approx(next_month_start(now) - now, abs=5)  # refused until the next month


def test_credits_overage_is_billed_not_refused_and_billed_integer_rounded(daemon) -> None:
    with Client(daemon.socket) as client:
        assert bucket(client.hello("billed"), "credits")["quota"]["on_exhaust"] == "allow"
        assert all(client.acquire("billed", "webhook_event").granted for _ in range(104))
        assert {name: balance(client, "billed", "credits")[name] for name in ("used", "overage", "billed")} == {
            "used": Decimal("10.4"),
            "overage": Decimal("0.4"),
            "billed": 10,
        }
        assert client.acquire("billed", "alert_event").granted
        assert {name: balance(client, "billed", "credits")[name] for name in ("used", "overage", "billed")} == {
            "used": Decimal("10.5"),
            "overage": Decimal("0.5"),
            "billed": 11,  # integer-rounded, half up
        }


def test_credits_rest_call_1_ws_connect_1_events_0_1_or_0_2(daemon) -> None:
    steps = [
        ("rest", None, 1),  # "REST: typically 1 credit per call"
        ("ws", None, 2),  # "the 1-credit connection hold is per-connect"
        ("webhook_event", None, Decimal("2.1")),  # "0.1 ... credits per delivered event"
        ("webhook_event", Decimal("0.2"), Decimal("2.3")),  # "... or 0.2"
        ("alert_event", None, Decimal("2.4")),  # "Alerts WebSocket: same per-event rate as webhooks"
        ("credits", 3, Decimal("5.4")),  # a WebSocket message at its room's rate
    ]
    with Client(daemon.socket) as client:
        for endpoint, cost, used in steps:
            assert client.acquire("credit_steps", endpoint, cost=cost).granted
            assert balance(client, "credit_steps", "credits")["used"] == used, endpoint
        assert balance(client, "credit_steps", "credits")["billed"] == 5


def test_credits_monthly_period_starts_on_the_billing_day(daemon) -> None:
    with Client(daemon.socket) as client:
        now = time.time()
        assert balance(client, "first", "credits")["period_end"] == pytest.approx(next_month_start(now))
        assert balance(client, "fifteenth", "credits")["period_end"] == pytest.approx(next_month_start(now, 15))
        assert bucket(client.hello("fifteenth"), "credits")["quota"] == {
            "limit": 500000,
            "period": "month",
            "timezone": "UTC",
            "on_exhaust": "allow",
        }


def test_credits_are_shared_by_the_organisation(daemon) -> None:
    with Client(daemon.socket) as client:
        assert client.acquire("org_a", "rest").granted
        assert client.acquire("org_b", "webhook_event").granted
        used = [balance(client, key, "credits")["used"] for key in ("org_a", "org_b")]
        assert used == [Decimal("1.1"), Decimal("1.1")]


def test_backoff_cap_and_credit_billing_are_reported_per_plan(daemon) -> None:
    """"Cap the backoff at 30 seconds"; "Credits are billed integer-rounded at the end of each period"."""
    with Client(daemon.socket) as client:
        for plan in REST:
            info = client.hello(plan)["limits"]["info"]
            assert info["retry_backoff_cap"] == "30s", plan
            assert info["credits_billing"] == "integer-rounded at the end of each period", plan
