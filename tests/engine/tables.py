"""Tier tables for engine tests, built from model objects so these tests stand apart from the loader."""

from __future__ import annotations

from ratelimitd.limits import Rate
from ratelimitd.tiers.model import BucketSpec, EndpointSpec, KeySpec, ProviderSpec, TierSpec, TierTable
from ratelimitd.units import parse_rate

S = 1_000_000_000


def rate(text: str, margin: int = 0, burst=None) -> Rate:
    limit, window = parse_rate(text)
    return Rate(limit, window, margin, burst)


def table(buckets: dict[str, BucketSpec], endpoints: dict[str, tuple[str, ...]], keys=("k",), group=None) -> TierTable:
    """Return a one-provider, one-tier table whose keys all use ``buckets``."""
    provider = ProviderSpec(
        name="p",
        endpoints={name: EndpointSpec(name, names) for name, names in endpoints.items()},
        tiers={"t": TierSpec("t", buckets)},
    )
    return TierTable(
        providers={"p": provider},
        keys={name: KeySpec(name, provider, "t", buckets, group=group) for name in keys},
        source="test",
    )


def single(text: str = "3/10s", algorithm: str = "sliding-log", **kw) -> TierTable:
    """Return a table with key ``k``, endpoint ``e`` on one bucket ``b`` with rate(s) ``text``."""
    rates = tuple(rate(part) for part in text.split(","))
    return table({"b": BucketSpec("b", rates=rates, algorithm=algorithm, **kw)}, {"e": ("b",)})
