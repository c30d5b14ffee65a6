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
from ratelimitd_client.routing import UrlRoute

from ..errors import NotAvailable, UnknownEndpoint, UnknownKey
from ..limits.base import Rate
from ..limits.calendar import Quota
from ..units import format_duration

__all__ = [
    "ALGORITHMS",
    "DURABILITIES",
    "BUCKET_KINDS",
    "SCOPES",
    "WHEN_FULL",
    "RESERVED_PER",
    "DEFAULT_MARGIN_CAP",
    "default_margin",
    "BucketSpec",
    "EndpointSpec",
    "TierSpec",
    "ProviderSpec",
    "Access",
    "KeySpec",
    "Route",
    "TierTable",
]

# window algorithms a rate bucket may choose; the first is the default
ALGORITHMS = ("sliding-log", "sliding-window", "fixed-window", "gcra")

# "rate": windows of requests/units; "unlimited": offered, never limits;
# "concurrency": leases held at once (connections, sessions);
# "capacity": a count that acquire raises and release lowers (wallets per session);
# "quota": units per calendar period (monthly credits); "time-quota": seconds of lease
# time per calendar period (a WebSocket hour a day); "cap": a per-request maximum alone.
BUCKET_KINDS = ("rate", "unlimited", "concurrency", "capacity", "quota", "time-quota", "cap")

# ``per`` values of a capacity bucket that the daemon supplies rather than the request:
# the client connection's id, and the id of the lease the request names
RESERVED_PER = ("connection", "lease")

# whose state a bucket is: each key its own, or one shared by every key of a group
SCOPES = ("key", "group")

# what a full concurrency bucket does with one more lease; the first is the default
WHEN_FULL = ("reject", "evict-oldest")

# the default safety margin is never more than this (ns); see ``default_margin``
DEFAULT_MARGIN_CAP = 100_000_000


def default_margin(window: int) -> int:
    """Return the safety margin (ns) of a rate of ``window`` ns that sets none: min(100 ms, 1% of the window).

    The provider counts the times our requests *arrive*, not the times we granted
    them: a request granted exactly one window after another can arrive less than
    a window after it (scheduling, connection set-up, a slow request ahead of it on
    the same connection), and the provider then answers 429. Holding every grant
    ``margin`` longer than the window absorbs that jitter; 100 ms covers a
    scheduler's tick and a TLS connection set-up on a healthy network. The margin
    costs throughput only at the edge of each window, about ``margin / window`` of
    the quota, so the 1% cap keeps it cheap on short windows (10 ms on a 1 s
    window) where 100 ms would cost a tenth of the quota. Rounded down to whole ns.
    """
    return min(DEFAULT_MARGIN_CAP, window // 100)


# per-bucket durability a tier table may ask for (see docs/state.md)
DURABILITIES = ("batched", "strict")

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """What one bucket allows on one tier: its kind, its rates (all apply) and their algorithm.

    ``max_cost`` is a per-request cap (a request over it is refused outright, never
    queued); ``scope`` says whose bucket it is: ``"key"`` (each key its own) or
    ``"group"`` (shared by every key of the same group, e.g. an organisation).

    A ``"concurrency"`` bucket has no rates: ``concurrent`` leases may be held at
    once; ``when_full`` is ``"reject"`` (refuse the new one) or ``"evict-oldest"``
    (take the oldest lease away); ``ttl`` and ``idle`` (ns, None: no limit) end a
    lease that was held too long or not renewed for that long.

    A ``"capacity"`` bucket counts what is held, not what happened: acquire adds
    the cost, release takes it back, and at most ``count_limit`` is held at once.
    ``per`` names a scope whose value the request supplies (``"wallet"``: one count
    per wallet); ``"connection"`` and ``"lease"`` (``RESERVED_PER``) are supplied by
    the daemon: the client connection's id, the id of the lease the request names.
    Without ``per``, one count per owner (the key, or the group).

    A ``"quota"`` bucket allows ``quota.limit`` units per calendar period
    (``limits.calendar.Quota``); a ``"time-quota"`` bucket the same in seconds
    (``quota.unit == "seconds"``), charged with the time the endpoint's lease is
    held. A ``"cap"`` bucket keeps no state: it refuses a request whose cost
    exceeds ``max_cost``.
    """

    name: str
    kind: str = "rate"
    rates: tuple[Rate, ...] = ()
    algorithm: str = "sliding-log"
    max_cost: Amount | None = None
    scope: str = "key"
    concurrent: int | None = None
    when_full: str = "reject"
    ttl: int | None = None
    idle: int | None = None
    durability: str | None = None
    count_limit: int | None = None
    per: str | None = None
    quota: Quota | None = None

    def __str__(self) -> str:
        if self.kind == "rate":
            text = ", ".join(str(rate) for rate in self.rates)
            if self.algorithm != ALGORITHMS[0]:
                text += f" ({self.algorithm})"
            if self.max_cost is not None:
                text += f", max_cost {self.max_cost}"
        elif self.kind == "concurrency":
            text = f"{self.concurrent} concurrent, {self.when_full} when full"
            if self.ttl is not None:
                text += f", ttl {format_duration(self.ttl)}"
            if self.idle is not None:
                text += f", idle {format_duration(self.idle)}"
        elif self.kind == "capacity":
            text = f"capacity {self.count_limit}" + (f" per {self.per}" if self.per is not None else "")
            if self.max_cost is not None:
                text += f", max_cost {self.max_cost}"
        elif self.kind in ("quota", "time-quota"):
            text = f"{'time quota' if self.kind == 'time-quota' else 'quota'} {self.quota}"
            if self.max_cost is not None:
                text += f", max_cost {self.max_cost}"
        elif self.kind == "cap":
            text = f"max_cost {self.max_cost}"
        else:
            text = self.kind
        return text + (" per group" if self.scope == "group" else "")

    @property
    def capacity(self) -> Amount | None:
        """Report the largest cost one request may ask of this bucket (None: no bound).

        The smallest of: each rate's capacity (its limit, or its burst), the
        ``count_limit`` of a capacity bucket, the slots of a concurrency bucket
        (a request holding more than all of them could never be granted), the limit of a quota that denies
        when exhausted (one that allows overage grants any cost), and
        ``max_cost``. A time quota bounds lease time, not a request's cost: None.
        """
        bounds = [rate.capacity for rate in self.rates]
        if self.count_limit is not None:
            bounds.append(self.count_limit)
        if self.kind == "concurrency" and self.concurrent is not None:
            bounds.append(self.concurrent)
        if self.kind == "quota" and self.quota is not None and self.quota.on_exhaust == "deny":
            bounds.append(self.quota.limit)
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
    """A provider: its endpoints, its tiers, where its rules are documented.

    ``margin`` (ns) is the provider's default safety margin as written in the
    table (None: ``default_margin`` of each window); every ``Rate`` already
    carries the margin that applies to it, so the engine need not look here.
    ``routes`` map HTTP requests to endpoints, first match wins (the ``routes``
    op hands them to clients; ``ratelimitd_client.routing`` defines the patterns).
    """

    name: str
    endpoints: Mapping[str, EndpointSpec]
    tiers: Mapping[str, TierSpec]
    docs: str | None = None
    margin: int | None = None
    routes: tuple[UrlRoute, ...] = ()


@dataclass(frozen=True, slots=True)
class Access:
    """Who may do something: users and groups, resolved to ids when the table is loaded.

    ``names`` keeps how the table wrote them, for messages. A peer is allowed
    when its uid is listed or any of its groups (primary or supplementary) is.
    """

    uids: frozenset[int] = frozenset()
    gids: frozenset[int] = frozenset()
    names: tuple[str, ...] = ()

    def allows(self, uid: int, gids: "frozenset[int] | tuple[int, ...]") -> bool:
        """Report whether a peer with ``uid`` and groups ``gids`` is listed."""
        return uid in self.uids or not self.gids.isdisjoint(gids)

    def __str__(self) -> str:
        return ", ".join(self.names) if self.names else "nobody"


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A local alias for one API key, with its tier's buckets after the key's overrides.

    ``group`` names the group whose ``scope = "group"`` buckets this key shares;
    ``overrides`` names the buckets whose limits this key changes from its tier's.
    """

    name: str
    provider: ProviderSpec
    tier: str
    buckets: Mapping[str, BucketSpec]
    info: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    group: str | None = None
    overrides: frozenset[str] = frozenset()
    allow: Access | None = None  # who may acquire, report and release on this key (None: anyone)

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
    """A whole validated tier table. ``source`` names where it came from, for messages.

    ``files`` lists every file the table was read from, ``source`` first, then
    its includes in the order they were merged (bundled presets by their path).
    """

    providers: Mapping[str, ProviderSpec]
    keys: Mapping[str, KeySpec]
    source: str = "<memory>"
    files: tuple[str, ...] = ()
    admins: Access | None = None  # besides root and the daemon's own user: who may reload, reset, release others' leases

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
