"""One bucket of a tier, from its TOML table to a ``BucketSpec``: its kind, fields and margins.

A bucket's kind follows from the one kind field it sets: ``rate`` (a rate
bucket), ``unlimited = true``, ``concurrent = N`` (a concurrency bucket),
``capacity = N`` (a count held by leases), ``quota = "N/PERIOD"`` (a calendar
quota) or ``time_quota = "DURATION/PERIOD"`` (lease time per calendar period).
A bucket with none of these and only ``max_cost`` is a per-request cap. Each
kind accepts its own fields; anything else is refused by name, since a
misspelt ``brust`` silently ignored would change the limits.
"""

from __future__ import annotations

from typing import Any, Callable

from ..limits.base import Rate
from ..limits.calendar import ON_EXHAUST, Quota, seconds_of
from . import fields
from .merge import Origins
from .model import ALGORITHMS, DURABILITIES, RESERVED_PER, SCOPES, WHEN_FULL, BucketSpec, default_margin

__all__ = ["KIND_FIELDS", "FIELDS_OF_KIND", "bucket_kind", "parse_bucket"]

Path = tuple[Any, ...]

# the field that makes a bucket of each kind (a bucket with none of them and a max_cost is a "cap")
KIND_FIELDS = {
    "rate": "rate",
    "unlimited": "unlimited",
    "concurrent": "concurrency",
    "capacity": "capacity",
    "quota": "quota",
    "time_quota": "time-quota",
}

FIELDS_OF_KIND = {
    "rate": ("rate", "algorithm", "burst", "margin", "max_cost", "scope", "durability"),
    "unlimited": ("unlimited",),
    "concurrency": ("concurrent", "when_full", "ttl", "idle", "scope"),
    "capacity": ("capacity", "per", "max_cost", "scope"),
    "quota": ("quota", "anchor", "timezone", "on_exhaust", "max_cost", "scope", "durability"),
    "time-quota": ("time_quota", "anchor", "timezone", "on_exhaust", "scope", "durability"),
    "cap": ("max_cost",),
}

_ALL_FIELDS = tuple(dict.fromkeys(name for names in FIELDS_OF_KIND.values() for name in names))


def bucket_kind(raw: dict[str, Any]) -> str | None:
    """Return the kind the first kind field of ``raw`` gives it: "cap" when it sets none but ``max_cost``, else None."""
    for name, kind in KIND_FIELDS.items():
        if name in raw:
            return kind
    return "cap" if "max_cost" in raw else None


def parse_bucket(
    name: str,
    raw: Any,
    path: Path,
    origins: Origins,
    *,
    provider_margin: int | None = None,
    field_path: Callable[[str], Path] | None = None,
) -> BucketSpec:
    """Return the ``BucketSpec`` of bucket ``name`` written as ``raw`` at ``path``.

    ``field_path(field)`` gives each field's own TOML path (a key's override
    mixes fields of the override and of the tier); by default it is under ``path``.
    Every rate gets the bucket's ``margin``, else ``provider_margin``, else
    ``default_margin`` of its window. Raises ``ConfigError`` for the first problem.
    """
    at = field_path or (lambda field: path + (field,))
    raw = fields.table(raw, path, f"bucket {fields.quote(name)}", '{ rate = "60/1m" }', origins)
    for field in raw:
        if field not in _ALL_FIELDS:
            raise origins.error(fields.unknown_field(field, _ALL_FIELDS, f"bucket {fields.quote(name)}"), at(field))
    kinds = [field for field in KIND_FIELDS if field in raw]
    if not kinds and "max_cost" in raw:
        kinds = ["max_cost"]
    if not kinds:
        raise origins.error(
            f"bucket {fields.quote(name)} sets no limit: give it a rate (rate = \"60/1m\"), "
            f"unlimited = true, concurrent = N, capacity = N, quota = \"N/month\", "
            f"time_quota = \"1h/day\", or max_cost = N",
            path,
        )
    if len(kinds) > 1:
        raise origins.error(
            f"bucket {fields.quote(name)} sets both {fields.quote(kinds[0])} and {fields.quote(kinds[1])}: "
            f"a bucket has one kind; make two buckets and list both in the endpoint",
            at(kinds[1]),
        )
    kind = KIND_FIELDS.get(kinds[0], "cap")
    accepted = FIELDS_OF_KIND[kind]
    for field in raw:
        if field not in accepted:
            raise origins.error(
                f"{fields.quote(field)} does not apply to {'an' if kind[0] in 'aeiou' else 'a'} {kind} bucket; "
                f"accepted: {', '.join(accepted)}",
                at(field),
            )
    if kind == "rate":
        return _rate_bucket(name, raw, at, origins, provider_margin)
    if kind == "unlimited":
        if raw["unlimited"] is not True:
            raise origins.error(
                f"unlimited = {fields.quote(raw['unlimited'])} is not a limit: write unlimited = true, "
                f"give the bucket a rate, or leave it out to make it not available on this tier",
                at("unlimited"),
            )
        return BucketSpec(name, kind="unlimited")
    if kind == "concurrency":
        return _concurrency_bucket(name, raw, at, origins)
    if kind == "capacity":
        return _capacity_bucket(name, raw, at, origins)
    if kind == "cap":
        return BucketSpec(name, "cap", max_cost=fields.amount(raw["max_cost"], at("max_cost"), "max_cost", origins))
    return _quota_bucket(name, kind, raw, at, origins)


def _scope(raw: dict[str, Any], at: Callable[[str], Path], origins: Origins) -> str:
    if "scope" not in raw:
        return SCOPES[0]
    return fields.choice(raw["scope"], SCOPES, at("scope"), "a scope", origins)


def _rate_bucket(
    name: str, raw: dict[str, Any], at: Callable[[str], Path], origins: Origins, provider_margin: int | None
) -> BucketSpec:
    written = raw["rate"]
    if isinstance(written, list):
        if not written:
            raise origins.error(f"bucket {fields.quote(name)} has an empty list of rates: {fields.RATE_FORMS}", at("rate"))
        parsed = [fields.rate(item, at("rate") + (index,), origins) for index, item in enumerate(written)]
    else:
        parsed = [fields.rate(written, at("rate"), origins)]
    algorithm = ALGORITHMS[0]
    if "algorithm" in raw:
        algorithm = fields.choice(raw["algorithm"], ALGORITHMS, at("algorithm"), "an algorithm", origins)
    burst = None
    if "burst" in raw:
        if algorithm != "gcra":
            raise origins.error(
                f"burst applies only to algorithm = \"gcra\" (this bucket uses {fields.quote(algorithm)}): "
                f"set algorithm = \"gcra\" or remove burst",
                at("burst"),
            )
        if len(parsed) > 1:
            raise origins.error(
                f"burst applies to a single rate and bucket {fields.quote(name)} has {len(parsed)}: "
                f"give the rate that bursts a bucket of its own",
                at("burst"),
            )
        burst = fields.amount(raw["burst"], at("burst"), "burst", origins)
    margin = provider_margin
    if "margin" in raw:
        margin = fields.duration(raw["margin"], at("margin"), "margin", origins, zero=True)
    max_cost = None
    if "max_cost" in raw:
        max_cost = fields.amount(raw["max_cost"], at("max_cost"), "max_cost", origins)
    rates = tuple(
        Rate(limit, window, default_margin(window) if margin is None else margin, burst) for limit, window in parsed
    )
    durability = None
    if "durability" in raw:
        durability = fields.choice(raw["durability"], DURABILITIES, at("durability"), "a durability", origins)
    return BucketSpec(name, "rate", rates, algorithm, max_cost, _scope(raw, at, origins), durability=durability)


def _concurrency_bucket(name: str, raw: dict[str, Any], at: Callable[[str], Path], origins: Origins) -> BucketSpec:
    concurrent = fields.count(raw["concurrent"], at("concurrent"), "number of concurrent leases", origins)
    when_full = WHEN_FULL[0]
    if "when_full" in raw:
        when_full = fields.choice(raw["when_full"], WHEN_FULL, at("when_full"), "a when_full policy", origins)
    ttl = fields.duration(raw["ttl"], at("ttl"), "ttl", origins) if "ttl" in raw else None
    idle = fields.duration(raw["idle"], at("idle"), "idle timeout", origins) if "idle" in raw else None
    return BucketSpec(
        name,
        "concurrency",
        scope=_scope(raw, at, origins),
        concurrent=concurrent,
        when_full=when_full,
        ttl=ttl,
        idle=idle,
    )


def _max_cost(raw: dict[str, Any], at: Callable[[str], Path], origins: Origins) -> Any:
    return fields.amount(raw["max_cost"], at("max_cost"), "max_cost", origins) if "max_cost" in raw else None


def _durability(raw: dict[str, Any], at: Callable[[str], Path], origins: Origins) -> str | None:
    if "durability" not in raw:
        return None
    return fields.choice(raw["durability"], DURABILITIES, at("durability"), "a durability", origins)


def _capacity_bucket(name: str, raw: dict[str, Any], at: Callable[[str], Path], origins: Origins) -> BucketSpec:
    count_limit = fields.count(raw["capacity"], at("capacity"), "capacity", origins)
    per = fields.scope_name(raw["per"], RESERVED_PER, at("per"), origins) if "per" in raw else None
    return BucketSpec(
        name,
        "capacity",
        max_cost=_max_cost(raw, at, origins),
        scope=_scope(raw, at, origins),
        count_limit=count_limit,
        per=per,
    )


def _quota_bucket(
    name: str, kind: str, raw: dict[str, Any], at: Callable[[str], Path], origins: Origins
) -> BucketSpec:
    if kind == "quota":
        limit, period = fields.quota(raw["quota"], at("quota"), origins)
        unit = "units"
    else:
        ns, period = fields.time_quota(raw["time_quota"], at("time_quota"), origins)
        limit, unit = seconds_of(ns), "seconds"
    anchor = fields.anchor(raw["anchor"], period, at("anchor"), origins) if "anchor" in raw else None
    timezone = fields.time_zone(raw["timezone"], at("timezone"), origins) if "timezone" in raw else "UTC"
    on_exhaust = ON_EXHAUST[0]
    if "on_exhaust" in raw:
        on_exhaust = fields.choice(raw["on_exhaust"], ON_EXHAUST, at("on_exhaust"), "an on_exhaust policy", origins)
    return BucketSpec(
        name,
        kind,
        max_cost=_max_cost(raw, at, origins),
        scope=_scope(raw, at, origins),
        durability=_durability(raw, at, origins),
        quota=Quota(limit, period, anchor, timezone, on_exhaust, unit),
    )
