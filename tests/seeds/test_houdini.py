"""Houdini (seeds/004_c806c4ab7af67d43.txt) end to end: every limit of the seed through a real daemon and client.

The bundled ``houdini`` preset is loaded as users load it (``include = ["houdini"]``).
The minute windows are filled for real (no waiting needed) and every window's count
is read back with ``show``. For the hour and the day, a tier ``short`` is added to
the preset's provider with the same endpoints and the same three-rate shape on
1 s / 2 s / 4 s windows; the daemon waits (``acquire(wait=…)``) until each shorter
window has room, so that the minute, then the hour, then the day is the one refusing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ratelimitd_client import Client

from ..daemon import Daemon
from .support import keys_table, module_daemon, rate_numbers, rate_usage

# "Free Tier Limits" and "Pro Tier Limits": Endpoint, Min, Hour, Day
LIMITS = {
    "free": {"quote": (5, 20, 50), "exchange": (1, 5, 10)},
    "pro": {"quote": (500, 2000, 5000), "exchange": (50, 500, 2000)},
}
WINDOWS = ("1m", "1h", "1d")

# The preset's shape on short windows: minute, hour and day are 1 s, 2 s and 4 s, and each
# endpoint allows one more per longer window, so that each window in turn is the one that refuses.
SHORT_TIER = """
[providers.houdini.tiers.short]
quote    = { rate = ["2/1s", "3/2s", "4/4s"] }
exchange = { rate = ["1/1s", "2/2s", "3/4s"] }
"""
SHORT = {"quote": 2, "exchange": 1}  # the "minute" limit; the "hour" and "day" allow one and two more

PARTNER = '{ quote = { rate = ["1000/1m", "4000/1h", "10000/1d"] } }'


def houdini(tier: str, overrides: str | None = None) -> dict[str, str]:
    """Return the fields of a key of the houdini preset on ``tier``."""
    fields = {"provider": "houdini", "tier": tier}
    if overrides is not None:
        fields["overrides"] = overrides
    return fields


KEYS = {
    **{tier: houdini(tier) for tier in LIMITS},
    **{f"{endpoint}_{tier}": houdini(tier) for tier in LIMITS for endpoint in ("quote", "exchange")},
    **{f"short_{endpoint}": houdini("short") for endpoint in SHORT},
    "partner": houdini("pro", PARTNER),
    "told": houdini("free"),
}


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    with module_daemon(keys_table("houdini", KEYS, SHORT_TIER)) as running:
        yield running


@pytest.mark.parametrize("tier", list(LIMITS))
def test_endpoint_limits_per_tier_minute_hour_and_day(daemon, tier: str) -> None:
    with Client(daemon.socket) as client:
        limits = client.hello(tier)
        for endpoint, numbers in LIMITS[tier].items():
            assert rate_numbers(limits, endpoint) == list(zip(numbers, WINDOWS)), endpoint


@pytest.mark.parametrize("endpoint", ["quote", "exchange"])
@pytest.mark.parametrize("tier", list(LIMITS))
def test_a_minutes_calls_count_in_the_hour_and_the_day_too(daemon, tier: str, endpoint: str) -> None:
    minute, hour, day = LIMITS[tier][endpoint]
    key = f"{endpoint}_{tier}"
    with Client(daemon.socket) as client:
        if minute <= 5:
            assert all(client.acquire(key, endpoint).granted for _ in range(minute))
        else:
            assert client.acquire(key, endpoint, cost=minute).granted
        over = client.acquire(key, endpoint)
        assert (over.granted, over.scope) == (False, endpoint)
        assert 59 < over.retry_after <= 60.1  # the minute refuses; the hour and the day have room
        assert rate_usage(client.show(key), endpoint) == [(minute, 0), (minute, hour - minute), (minute, day - minute)]


def test_rate_limits_are_enforced_per_endpoint(daemon) -> None:
    with Client(daemon.socket) as client:
        assert all(client.acquire("free", "quote").granted for _ in range(5))
        assert not client.acquire("free", "quote").granted
        assert client.acquire("free", "exchange").granted  # quote used up, exchange untouched
        assert not client.acquire("free", "exchange").granted


@pytest.mark.parametrize("endpoint", list(SHORT))
def test_the_minute_then_the_hour_then_the_day_refuses(daemon, endpoint: str) -> None:
    """Short windows 1 s / 2 s / 4 s (margins 10 / 20 / 40 ms); each wait is the daemon's."""
    minute = SHORT[endpoint]
    key = f"short_{endpoint}"
    with Client(daemon.socket) as client:

        def remaining() -> list[object]:
            return [left for _used, left in rate_usage(client.show(key), endpoint)]

        assert client.acquire(key, endpoint, cost=minute).granted
        by_minute = client.acquire(key, endpoint)
        assert not by_minute.granted and 0 < by_minute.retry_after <= 1.01
        assert remaining() == [0, 1, 2]  # the minute refuses; the hour and the day have room

        assert client.acquire(key, endpoint, wait=5).granted  # once the minute has room
        by_hour = client.acquire(key, endpoint)
        assert not by_hour.granted and 0 < by_hour.retry_after <= 1.02
        assert remaining()[1:] == [0, 1]  # the hour refuses; the day has room

        assert client.acquire(key, endpoint, wait=5).granted  # once the hour has room
        by_day = client.acquire(key, endpoint)
        assert not by_day.granted and 1.5 < by_day.retry_after <= 2.04  # the day's window, longer than the others
        assert remaining()[2] == 0


def test_pro_limits_adjusted_per_agreement_are_per_key_overrides(daemon) -> None:
    with Client(daemon.socket) as client:
        limits = client.hello("partner")
        assert rate_numbers(limits, "quote") == [(1000, "1m"), (4000, "1h"), (10000, "1d")]
        assert rate_numbers(limits, "exchange") == list(zip(LIMITS["pro"]["exchange"], WINDOWS))  # not overridden
        assert client.acquire("partner", "quote", cost=1000).granted
        assert not client.acquire("partner", "quote").granted
        # other Pro keys keep the tier's
        assert rate_numbers(client.hello("pro"), "quote") == list(zip(LIMITS["pro"]["quote"], WINDOWS))


def test_a_429_with_retry_after_limit_and_window_ms_holds_the_endpoint(daemon) -> None:
    """The seed's 429 body: "retryAfter": 45, "limit": 45, "windowMs": 60000."""
    with Client(daemon.socket) as client:
        applied = client.report("told", "quote", 429, retry_after=45, limit=45, window=60.0)
        assert [(item["bucket"], item["action"]) for item in applied] == [("quote", "hold")]
        held = client.acquire("told", "quote")
        assert (held.granted, held.scope) == (False, "quote") and 44 < held.retry_after <= 45
        assert client.acquire("told", "exchange").granted
