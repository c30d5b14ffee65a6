"""The bundled presets reproduce the seed providers' published limits number for number.

Each test is named after its seed and holds that seed's tables as data, copied
from /work/shared/seeds/*.txt, so a wrong number in a preset fails its test.
Every bucket of every tier is asserted whole (kind and every field the engine
reads), so a limit added, dropped or changed in a preset fails here too.
"""

from __future__ import annotations

import os
from decimal import Decimal

import pytest

from ratelimitd.errors import NotAvailable
from ratelimitd.limits.calendar import Quota
from ratelimitd.tiers import PRESETS, BucketSpec, load_text, preset_path

from .helpers import MS, rates

MINUTE = 60_000 * MS


def preset(name: str):
    """Return provider ``name`` of a table that includes only its preset."""
    table = load_text(f'include = ["{name}"]')
    return table.providers[name]


def with_keys(name: str):
    """Return a table including preset ``name`` with a key called after each of its tiers."""
    provider = preset(name)
    keys = "\n".join(f'[keys.{tier}]\nprovider = "{name}"\ntier = "{tier}"' for tier in provider.tiers)
    return load_text(f'include = ["{name}"]\n{keys}')


def endpoints(provider) -> dict[str, tuple[tuple[str, ...], object]]:
    """Return each endpoint of ``provider`` as (buckets, default cost)."""
    return {name: (spec.buckets, spec.cost) for name, spec in provider.endpoints.items()}


def rate(name: str, *limits: tuple[int, str], scope: str = "key") -> tuple[str, object]:
    """Return what a rate bucket must look like: ("rate", [(limit, window), …], scope)."""
    return name, ("rate", list(limits), scope)


def shape(bucket: BucketSpec) -> object:
    """Return ``bucket`` as the tests compare it: rates as (limit, window) pairs, other kinds as the spec itself."""
    if bucket.kind == "rate":
        return ("rate", rates(bucket), bucket.scope)
    return bucket


def test_presets_lists_every_bundled_file():
    directory = os.path.dirname(preset_path("surchi"))
    on_disk = sorted(name[: -len(".toml")] for name in os.listdir(directory) if name.endswith(".toml"))
    assert list(PRESETS) == on_disk


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_documents_its_source_and_uses_exact_windows(name):
    provider = preset(name)
    assert provider.docs.startswith("https://")
    for tier in provider.tiers.values():
        for bucket in tier.buckets.values():
            assert bucket.algorithm == "sliding-log"  # the exact default: every seed counts a sliding window
            for one in bucket.rates:
                assert one.margin == min(100 * MS, one.window // 100)


@pytest.mark.parametrize("name", PRESETS)
def test_every_endpoint_of_every_preset_resolves_or_is_not_available(name):
    table = with_keys(name)
    for tier in table.providers[name].tiers:
        for endpoint in table.providers[name].endpoints:
            try:
                route = table.route(tier, endpoint)
            except NotAvailable:
                continue
            for bucket in route.buckets:
                assert bucket.capacity is None or route.endpoint.cost <= bucket.capacity


# 000_8779cf3d9896ed31.txt, "Exit Intelligence Stream Limits by Tier" and "REST API Rate Limits"
LASERSELL = {
    # tier: (requests/min, wallets/session, positions/wallet, positions/session, sessions/key,
    #        hi_capacity, pnl_flush_ms, inactivity timeout, liquidity snapshots, partner fees)
    "personal": (60, 1, 2, 2, 1, 256, 100, "45m", False, False),
    "professional": (60, 5, 100, 500, 1, 256, 100, None, True, False),
    "advanced": (60, 200, 100, 20_000, 1, 256, 100, None, True, True),
}


def test_lasersell_preset():
    provider = preset("lasersell")
    assert list(provider.tiers) == list(LASERSELL)  # Enterprise is "Custom" in every table
    assert endpoints(provider) == {
        "rest": (("rest",), 1),
        "stream": (("stream",), 1),
        "session": (("stream",), 1),
        "wallet": (("max_wallets_per_session",), 1),
        "position": (("max_positions_per_wallet", "max_positions_per_session"), 1),  # both at once
        "liquidity_snapshots": (("liquidity_snapshots",), 1),
        "partner_fees": (("partner_fees",), 1),
    }
    assert [(route.path, route.endpoint) for route in provider.routes] == [("/v1/sell", "rest"), ("/v1/buy", "rest")]
    for name, row in LASERSELL.items():
        per_minute, wallets, per_wallet, per_session, sessions, hi_capacity, flush, idle, snapshots, fees = row
        tier = provider.tiers[name]
        expected = dict(
            [
                rate("rest", (per_minute, "1m")),  # sliding window per key
                ("stream", BucketSpec(
                    "stream", "concurrency", concurrent=sessions, idle=idle and 45 * MINUTE,
                )),
                ("max_wallets_per_session", BucketSpec(
                    "max_wallets_per_session", "capacity", count_limit=wallets, per="lease",
                )),
                ("max_positions_per_wallet", BucketSpec(
                    "max_positions_per_wallet", "capacity", count_limit=per_wallet, per="wallet",
                )),
                ("max_positions_per_session", BucketSpec(
                    "max_positions_per_session", "capacity", count_limit=per_session, per="lease",
                )),
            ]
        )
        if snapshots:  # "No": not available on the tier
            expected["liquidity_snapshots"] = BucketSpec("liquidity_snapshots", "unlimited")
        if fees:
            expected["partner_fees"] = BucketSpec("partner_fees", "unlimited")
        assert {bucket: shape(spec) for bucket, spec in tier.buckets.items()} == expected, name
        # hello returns the key's `limits` object ("LimitsMsg Schema") from info
        assert dict(tier.info) == {
            "hi_capacity": hi_capacity,
            "pnl_flush_ms": flush,
            "max_wallets_per_session": wallets,
            "max_positions_per_wallet": per_wallet,
            "max_positions_per_session": per_session,
            "max_sessions_per_api_key": sessions,
            "liquidity_snapshots": snapshots,
            "partner_fees": fees,
        }
    table = with_keys("lasersell")
    for endpoint in ("liquidity_snapshots", "partner_fees"):
        with pytest.raises(NotAvailable):
            table.route("personal", endpoint)
    with pytest.raises(NotAvailable):
        table.route("professional", "partner_fees")


# 001_c9abd3ddc2ddfdeb.txt, "Rate Limit Tiers" and "WebSocket Rate Limits"
SURCHI = {
    # tier: (requests/min, max concurrent connections, max subscriptions per connection, historical data)
    "explorer": (60, 1, 5, "7 days"),
    "sentinel": (300, 3, 20, "90 days"),
    "elite": (1_200, 10, None, "full history"),  # None: Unlimited
}


def test_surchi_preset():
    provider = preset("surchi")
    assert list(provider.tiers) == list(SURCHI)
    assert endpoints(provider) == {
        "rest": (("rest",), 1),
        "ws": (("ws",), 1),
        "subscribe": (("subscriptions",), 1),
    }
    for name, (per_minute, connections, subscriptions, history) in SURCHI.items():
        tier = provider.tiers[name]
        if subscriptions is None:
            per_connection = BucketSpec("subscriptions", "unlimited")
        else:  # counted per connection: the ws lease the subscribe names
            per_connection = BucketSpec("subscriptions", "capacity", count_limit=subscriptions, per="lease")
        assert {bucket: shape(spec) for bucket, spec in tier.buckets.items()} == dict(
            [
                rate("rest", (per_minute, "1m")),  # rolling 60-second window per key
                # going over terminates the oldest connection (close code 4029)
                ("ws", BucketSpec("ws", "concurrency", concurrent=connections, when_full="evict-oldest")),
                ("subscriptions", per_connection),
            ]
        ), name
        assert dict(tier.info) == {"historical_data": history}
    assert with_keys("surchi").route("explorer", "ws").buckets[0].concurrent == 1


# 002_29f8ee710a3f1a6e.txt, "Tier limits", "V3 REST data limits" and "Pagination limits"
POLYNODE = {
    # tier: (standard req/min, heavy req/min, event ws, orderbook ws, filter items per subscription,
    #        WebSocket session per day); None: Not available (REST) or Unlimited / Custom (the others)
    "free": (None, None, 1, 1, 10_000, "1h"),
    "starter": (1_000, 1_000, 10, 10, 10_000, None),
    "growth": (2_000, 1_500, 50, 50, 10_000, None),
    "enterprise": (4_000, 1_500, None, None, None, None),  # REST: the documented defaults
}
POLYNODE_INFO = {
    # tier: (snapshot_count, snapshot lookback, API keys, key generation, holder page max)
    "free": (20, "30s", 1, "1 per IP per day", None),
    "starter": (100, "2m", 3, "via dashboard", 300),
    "growth": (200, "5m", 10, "via dashboard", 1_000),
    "enterprise": (500, "5m", 25, "via dashboard", 2_000),
}


def test_polynode_preset():
    table = with_keys("polynode")
    provider = table.providers["polynode"]
    assert list(provider.tiers) == list(POLYNODE)
    assert endpoints(provider) == {
        "rest": (("standard",), 1),
        "heavy": (("standard", "heavy"), 1),  # both buckets; the stricter applies
        "events": (("events_ws", "ws_session"), 1),
        "orderbook": (("orderbook_ws", "ws_session"), 1),
        "subscribe": (("filter_items",), 1),
    }
    for name, (standard, heavy, events, orderbook, filters, session) in POLYNODE.items():
        tier = provider.tiers[name]
        expected = {}
        if standard is not None:
            expected.update([rate("standard", (standard, "1m")), rate("heavy", (heavy, "1m"))])
        for bucket, connections in (("events_ws", events), ("orderbook_ws", orderbook)):
            expected[bucket] = (
                BucketSpec(bucket, "unlimited") if connections is None
                else BucketSpec(bucket, "concurrency", concurrent=connections, when_full="reject")
            )
        expected["ws_session"] = (
            BucketSpec("ws_session", "unlimited") if session is None
            else BucketSpec("ws_session", "time-quota", quota=Quota(3600, "day", unit="seconds"))  # 1 hour/day
        )
        expected["filter_items"] = (
            BucketSpec("filter_items", "unlimited") if filters is None  # "Custom": a per-key override
            else BucketSpec("filter_items", "cap", max_cost=filters)
        )
        assert {bucket: shape(spec) for bucket, spec in tier.buckets.items()} == expected, name
        count, lookback, keys, generation, holders = POLYNODE_INFO[name]
        info = {
            "snapshot_count": count,
            "snapshot_lookback": lookback,
            "api_keys": keys,
            "orderbook_market_subs": "unlimited",
            "key_generation": generation,
        }
        if holders is not None:
            info.update(holder_page_max=holders, page_max=300, pnl_events_page_max=10_000)
        assert dict(tier.info) == info, name
    for endpoint in ("rest", "heavy"):  # Free: "Not available" (402), not rate limited
        with pytest.raises(NotAvailable):
            table.route("free", endpoint)
    assert [bucket.name for bucket in table.route("starter", "heavy").buckets] == ["standard", "heavy"]
    assert table.route("free", "subscribe").buckets[0].capacity == 10_000  # a subscription of 10,001 is refused


# 003_1eda4d156d40af24.txt, "REST throughput", "WebSocket connections", "Webhook subscriptions",
# "Filter limits" and "Credits"
STRUCT = {
    # tier: (requests/second, requests/minute, concurrent connections per organisation, max active webhooks)
    "free": (5, 120, 1, 10),
    "hobby": (25, 1_000, 50, 5_000),
    "startup": (125, 5_000, 250, 25_000),
    "scale": (300, 15_000, 1_000, 100_000),
}
STRUCT_FILTER_ITEMS = 500  # summed across all rooms on the same connection
STRUCT_CREDITS_PLACEHOLDER = 1_000_000_000  # the seed publishes no allowance: documented placeholder


def test_struct_preset():
    provider = preset("struct")
    assert list(provider.tiers) == list(STRUCT)  # Enterprise is "Custom"
    assert endpoints(provider) == {
        "rest": (("rest", "credits"), 1),  # REST: typically 1 credit per call
        "ws": (("ws", "credits"), 1),  # the 1-credit connection hold, per connect
        "webhook": (("webhooks",), 1),
        "filter": (("filters",), 1),
        "credits": (("credits",), 1),
        "webhook_event": (("credits",), Decimal("0.1")),  # 0.1 or 0.2 credits per delivered event
        "alert_event": (("credits",), Decimal("0.1")),  # alerts: the same per-event rate as webhooks
    }
    for name, (per_second, per_minute, connections, webhooks) in STRUCT.items():
        tier = provider.tiers[name]
        assert {bucket: shape(spec) for bucket, spec in tier.buckets.items()} == dict(
            [
                rate("rest", (per_second, "1s"), (per_minute, "1m")),  # both on one bucket: the tighter applies
                # capped per organisation, new connections rejected at handshake (4002)
                ("ws", BucketSpec("ws", "concurrency", concurrent=connections, when_full="reject", scope="group")),
                ("webhooks", BucketSpec("webhooks", "capacity", count_limit=webhooks, scope="group")),
                ("filters", BucketSpec("filters", "capacity", count_limit=STRUCT_FILTER_ITEMS, per="connection")),
                # a monthly allowance; overage is billed, not refused
                ("credits", BucketSpec(
                    "credits", "quota", scope="group",
                    quota=Quota(STRUCT_CREDITS_PLACEHOLDER, "month", 1, "UTC", "allow", "units"),
                )),
            ]
        ), name
        assert dict(tier.info) == {
            "credits_allowance": "not published in the seed: set keys.KEY.overrides.credits.quota",
            "credits_billing": "integer-rounded at the end of each period",
            "retry_backoff_cap": "30s",
        }
    free = provider.tiers["free"].buckets["rest"].rates
    assert [one.margin for one in free] == [10 * MS, 100 * MS]  # 1% of 1 s; capped at 100 ms on 1 min


def test_struct_credits_allowance_is_set_per_key():
    table = load_text(
        'include = ["struct"]\n[keys.ingest]\nprovider = "struct"\ntier = "hobby"\n'
        'overrides = { credits = { quota = "500000/month", anchor = 15 } }\n'
    )
    assert table.key("ingest").buckets["credits"].quota == Quota(500_000, "month", 15, "UTC", "allow")


# 004_c806c4ab7af67d43.txt, "Free Tier Limits" and "Pro Tier Limits" (Min, Hour, Day)
HOUDINI = {
    "free": {"quote": (5, 20, 50), "exchange": (1, 5, 10)},
    "pro": {"quote": (500, 2_000, 5_000), "exchange": (50, 500, 2_000)},
}


def test_houdini_preset():
    table = with_keys("houdini")
    provider = table.providers["houdini"]
    assert list(provider.tiers) == list(HOUDINI)
    assert endpoints(provider) == {"quote": (("quote",), 1), "exchange": (("exchange",), 1)}
    for name, limits in HOUDINI.items():
        tier = provider.tiers[name]
        assert {bucket: shape(spec) for bucket, spec in tier.buckets.items()} == dict(
            rate(endpoint, (minute, "1m"), (hour, "1h"), (day, "1d"))
            for endpoint, (minute, hour, day) in limits.items()
        ), name
        assert dict(tier.info) == {}
        for endpoint in limits:
            route = table.route(name, endpoint)
            assert [bucket.name for bucket in route.buckets] == [endpoint]  # per-endpoint buckets
