"""The immutable objects a validated tier table becomes; the engine reads only these.

Nothing here parses TOML or reports errors of a file: ``loader`` does that and
builds these objects, so that everything downstream can trust them (a rate's
limit is positive, an endpoint's buckets are named, a key's tier exists).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from ratelimitd_client.amounts import Amount

from ..errors import NotAvailable, UnknownEndpoint, UnknownKey
from ..limits.base import Rate

__all__ = [
    "ALGORITHMS",
    "BUCKET_KINDS",
    "BucketSpec",
    "EndpointSpec",
    "TierSpec",
    "ProviderSpec",
    "KeySpec",
    "Route",
    "TierTable",
]

# window algorithms a rate bucket may choose; the first is the default
ALGORITHMS = ("sliding-log", "sliding-window", "fixed-window", "gcra")

# "rate": windows of requests/units; "unlimited": offered, never limits.
# (Concurrency, capacity and calendar quotas join this list with their own fields.)
BUCKET_KINDS = ("rate", "unlimited")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """What one bucket allows on one tier: its kind, its rates (all apply) and their algorithm.

    ``max_cost`` is a per-request cap (a request over it is refused outright, never
    queued); ``scope`` says whose bucket it is: ``"key"`` (each key its own) or
    ``"group"`` (shared by every key of the same group, e.g. an organisation).
    """

    name: str
    kind: str = "rate"
    rates: tuple[Rate, ...] = ()
    algorithm: str = "sliding-log"
    max_cost: Amount | None = None
    scope: str = "key"

    @property
    def capacity(self) -> Amount | None:
        """Report the largest cost one request may ask of this bucket (None: no bound)."""
        bounds = [rate.capacity for rate in self.rates]
        if self.max_cost is not None:
            bounds.append(self.max_cost)
        return min(bounds) if bounds else None


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    """A kind of call: the buckets one call consumes from (all or nothing) and its default cost."""

    name: str
    buckets: tuple[str, ...]
    cost: Amount = 1


@dataclass(frozen=True, slots=True)
class TierSpec:
    """The buckets a tier offers. ``info`` holds informational limits reported, not enforced."""

    name: str
    buckets: Mapping[str, BucketSpec]
    info: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider: its endpoints, its tiers, where its rules are documented."""

    name: str
    endpoints: Mapping[str, EndpointSpec]
    tiers: Mapping[str, TierSpec]
    docs: str | None = None


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A local alias for one API key, with its tier's buckets after the key's overrides.

    ``group`` names the group whose ``scope = "group"`` buckets this key shares.
    """

    name: str
    provider: ProviderSpec
    tier: str
    buckets: Mapping[str, BucketSpec]
    info: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    group: str | None = None

    def owner(self, bucket: BucketSpec) -> str:
        """Return whose state ``bucket`` is for this key: the key's name, or ``group:NAME``."""
        if bucket.scope == "group" and self.group is not None:
            return f"group:{self.group}"
        return self.name


@dataclass(frozen=True, slots=True)
class Route:
    """What one (key, endpoint) resolves to: the buckets to check and charge, and the default cost."""

    key: KeySpec
    endpoint: EndpointSpec
    buckets: tuple[BucketSpec, ...]


@dataclass(frozen=True, slots=True)
class TierTable:
    """A whole validated tier table. ``source`` names where it came from, for messages."""

    providers: Mapping[str, ProviderSpec]
    keys: Mapping[str, KeySpec]
    source: str = "<memory>"

    def key(self, name: str) -> KeySpec:
        """Return the key called ``name``, or raise ``UnknownKey``."""
        try:
            return self.keys[name]
        except KeyError:
            raise UnknownKey(f"unknown key {name!r}; the tier table {self.source} defines {sorted(self.keys)}") from None

    def route(self, key_name: str, endpoint_name: str) -> Route:
        """Return the buckets a call of ``endpoint_name`` with ``key_name`` consumes from.

        Raises ``UnknownKey``, ``UnknownEndpoint``, or ``NotAvailable`` when the
        key's tier does not offer one of the endpoint's buckets.
        """
        key = self.key(key_name)
        provider = key.provider
        try:
            endpoint = provider.endpoints[endpoint_name]
        except KeyError:
            raise UnknownEndpoint(
                f"provider {provider.name!r} of key {key_name!r} has no endpoint {endpoint_name!r}; "
                f"it has {sorted(provider.endpoints)}"
            ) from None
        buckets = []
        for bucket_name in endpoint.buckets:
            bucket = key.buckets.get(bucket_name)
            if bucket is None:
                raise NotAvailable(
                    f"endpoint {endpoint_name!r} is not available on tier {key.tier!r} of provider "
                    f"{provider.name!r} (key {key_name!r}): the tier has no bucket {bucket_name!r}"
                )
            buckets.append(bucket)
        return Route(key, endpoint, tuple(buckets))
