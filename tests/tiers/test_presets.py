"""The bundled presets reproduce the seed providers' published limits number for number.

Each test is named after its seed and holds that seed's tables as data, copied
from /work/shared/seeds/*.txt, so a wrong number in a preset fails its test.
"""

from __future__ import annotations

import os

import pytest

from ratelimitd.errors import NotAvailable
from ratelimitd.tiers import PRESETS, load_text, preset_path

from .helpers import MS, rates


def preset(name: str):
    """Return provider ``name`` of a table that includes only its preset (with one key per tier)."""
    table = load_text(f'include = ["{name}"]')
    return table.providers[name]


def with_keys(name: str):
    """Return a table including preset ``name`` with a key called after each of its tiers."""
    provider = preset(name)
    keys = "\n".join(f'[keys.{tier}]\nprovider = "{name}"\ntier = "{tier}"' for tier in provider.tiers)
    return load_text(f'include = ["{name}"]\n{keys}')


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
            for rate in bucket.rates:
                assert rate.margin == min(100 * MS, rate.window // 100)


# 000_8779cf3d9896ed31.txt, "REST API Rate Limits" and "Exit Intelligence Stream Limits by Tier"
LASERSELL_REST = {"personal": 60, "professional": 60, "advanced": 60}
LASERSELL_STREAM = {
    # tier: (wallets/session, positions/wallet, positions/session, sessions/key, hi_capacity, pnl_flush_ms)
    "personal": (1, 2, 2, 1, 256, 100),
    "professional": (5, 100, 500, 1, 256, 100),
    "advanced": (200, 100, 20_000, 1, 256, 100),
}


def test_lasersell_preset():
    provider = preset("lasersell")
    assert list(provider.tiers) == ["personal", "professional", "advanced"]  # Enterprise is "Custom"
    assert provider.endpoints["rest"].buckets == ("rest",)
    assert provider.endpoints["stream"].buckets == ("stream",)
    for name, per_minute in LASERSELL_REST.items():
        tier = provider.tiers[name]
        assert rates(tier.buckets["rest"]) == [(per_minute, "1m")]
        wallets, per_wallet, per_session, sessions, hi_capacity, flush = LASERSELL_STREAM[name]
        stream = tier.buckets["stream"]
        assert (stream.kind, stream.concurrent) == ("concurrency", sessions)
        assert dict(tier.info) == {
            "hi_capacity": hi_capacity,
            "pnl_flush_ms": flush,
            "max_wallets_per_session": wallets,
            "max_positions_per_wallet": per_wallet,
            "max_positions_per_session": per_session,
            "max_sessions_per_api_key": sessions,
            "liquidity_snapshots": name != "personal",
            "partner_fees": name == "advanced",
        }
    # "Inactivity timeout": 45 min on Personal, None elsewhere
    assert provider.tiers["personal"].buckets["stream"].idle == 45 * 60 * 1000 * MS
    assert provider.tiers["professional"].buckets["stream"].idle is None
    assert provider.tiers["advanced"].buckets["stream"].idle is None


# 001_c9abd3ddc2ddfdeb.txt, "Rate Limit Tiers" and "WebSocket Rate Limits"
SURCHI = {"explorer": (60, 1), "sentinel": (300, 3), "elite": (1_200, 10)}


def test_surchi_preset():
    provider = preset("surchi")
    assert list(provider.tiers) == list(SURCHI)
    for name, (per_minute, connections) in SURCHI.items():
        tier = provider.tiers[name]
        assert rates(tier.buckets["rest"]) == [(per_minute, "1m")]  # rolling 60-second window
        ws = tier.buckets["ws"]
        assert (ws.kind, ws.concurrent, ws.when_full) == ("concurrency", connections, "evict-oldest")
    assert with_keys("surchi").route("explorer", "ws").buckets[0].concurrent == 1


# 002_29f8ee710a3f1a6e.txt, "V3 REST data limits" and "Tier limits"
POLYNODE_REST = {"starter": (1_000, 1_000), "growth": (2_000, 1_500), "enterprise": (4_000, 1_500)}
POLYNODE_WS = {"free": 1, "starter": 10, "growth": 50, "enterprise": None}  # None: Unlimited
POLYNODE_SNAPSHOT = {"free": (20, "30s"), "starter": (100, "2m"), "growth": (200, "5m"), "enterprise": (500, "5m")}
POLYNODE_API_KEYS = {"free": 1, "starter": 3, "growth": 10, "enterprise": 25}


def test_polynode_preset():
    table = with_keys("polynode")
    provider = table.providers["polynode"]
    assert list(provider.tiers) == ["free", "starter", "growth", "enterprise"]
    assert provider.endpoints["rest"].buckets == ("standard",)
    assert provider.endpoints["heavy"].buckets == ("standard", "heavy")
    for name, (standard, heavy) in POLYNODE_REST.items():
        route = table.route(name, "heavy")
        assert [rates(bucket) for bucket in route.buckets] == [[(standard, "1m")], [(heavy, "1m")]]
        assert rates(table.route(name, "rest").buckets[0]) == [(standard, "1m")]
    for endpoint in ("rest", "heavy"):  # Free: "Not available" (402), not rate limited
        with pytest.raises(NotAvailable):
            table.route("free", endpoint)
    for name, connections in POLYNODE_WS.items():
        tier = provider.tiers[name]
        for bucket in ("events_ws", "orderbook_ws"):
            spec = tier.buckets[bucket]
            if connections is None:
                assert spec.kind == "unlimited"
            else:
                assert (spec.kind, spec.concurrent, spec.when_full) == ("concurrency", connections, "reject")
        count, lookback = POLYNODE_SNAPSHOT[name]
        assert (tier.info["snapshot_count"], tier.info["snapshot_lookback"]) == (count, lookback)
        assert tier.info["api_keys"] == POLYNODE_API_KEYS[name]


# 003_1eda4d156d40af24.txt, "REST throughput" and "WebSocket connections"
STRUCT = {
    "free": (5, 120, 1),
    "hobby": (25, 1_000, 50),
    "startup": (125, 5_000, 250),
    "scale": (300, 15_000, 1_000),
}


def test_struct_preset():
    provider = preset("struct")
    assert list(provider.tiers) == list(STRUCT)  # Enterprise is "Custom"
    for name, (per_second, per_minute, connections) in STRUCT.items():
        tier = provider.tiers[name]
        assert rates(tier.buckets["rest"]) == [(per_second, "1s"), (per_minute, "1m")]  # both on one bucket
        assert tier.buckets["rest"].scope == "key"
        ws = tier.buckets["ws"]
        # capped per organisation, new connections rejected at handshake (4002)
        assert (ws.kind, ws.concurrent, ws.when_full, ws.scope) == ("concurrency", connections, "reject", "group")
    free = provider.tiers["free"].buckets["rest"].rates
    assert [rate.margin for rate in free] == [10 * MS, 100 * MS]  # 1% of 1 s; capped at 100 ms on 1 min


# 004_c806c4ab7af67d43.txt, "Free Tier Limits" and "Pro Tier Limits" (Min, Hour, Day)
HOUDINI = {
    "free": {"quote": (5, 20, 50), "exchange": (1, 5, 10)},
    "pro": {"quote": (500, 2_000, 5_000), "exchange": (50, 500, 2_000)},
}


def test_houdini_preset():
    table = with_keys("houdini")
    provider = table.providers["houdini"]
    assert list(provider.tiers) == list(HOUDINI)
    for name, endpoints in HOUDINI.items():
        for endpoint, (minute, hour, day) in endpoints.items():
            route = table.route(name, endpoint)
            assert [bucket.name for bucket in route.buckets] == [endpoint]  # per-endpoint buckets
            assert rates(route.buckets[0]) == [(minute, "1m"), (hour, "1h"), (day, "1d")]
