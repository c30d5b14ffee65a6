"""From a merged tier table (plain TOML data) to a validated, immutable ``TierTable``.

Everything the engine relies on is checked here, once, so that it can trust the
model: every field is known, every value parses, every endpoint's bucket exists
on some tier, every route names an endpoint of its provider (``routes``), every
key's provider, tier and overrides exist, no endpoint's default cost is beyond
what its buckets can ever grant, and the keys of a group agree on the buckets
they share. The first problem found raises ``ConfigError``
with the file and TOML path of the offending value.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from . import fields
from .access import parse_access
from .buckets import FIELDS_OF_KIND, bucket_kind, parse_bucket
from .merge import Origins
from .model import BucketSpec, EndpointSpec, KeySpec, ProviderSpec, TierSpec, TierTable
from .routes import parse_routes

__all__ = ["TOP_FIELDS", "PROVIDER_FIELDS", "ENDPOINT_FIELDS", "KEY_FIELDS", "build_table"]

Path = tuple[Any, ...]

TOP_FIELDS = ("include", "providers", "keys", "access")
PROVIDER_FIELDS = ("docs", "margin", "endpoints", "tiers", "routes", "replace")
ENDPOINT_FIELDS = ("buckets", "cost")
KEY_FIELDS = ("provider", "tier", "group", "overrides", "allow")

_q = fields.quote


def build_table(
    raw: dict[str, Any],
    origins: Origins,
    *,
    source: str = "<memory>",
    files: tuple[str, ...] = (),
    presets: tuple[str, ...] = (),
) -> TierTable:
    """Return the ``TierTable`` that the merged data ``raw`` describes, or raise ``ConfigError``.

    ``origins`` says which file set each value (for messages); ``presets`` are
    the bundled preset names, suggested when a key names a provider not defined.
    """
    fields.check_fields(raw, TOP_FIELDS, (), "the tier table", origins)
    providers_raw = fields.table(raw.get("providers", {}), ("providers",), "providers", "[providers.NAME]", origins)
    providers = {name: _provider(name, value, origins) for name, value in providers_raw.items()}
    keys_raw = fields.table(raw.get("keys", {}), ("keys",), "keys", "[keys.NAME]", origins)
    keys = {name: _key(name, value, providers, providers_raw, origins, presets) for name, value in keys_raw.items()}
    _check_groups(keys, origins)
    admins = None
    if "access" in raw:
        access = fields.table(raw["access"], ("access",), "access", '{ admins = { groups = ["ratelimit-admin"] } }', origins)
        fields.check_fields(access, ("admins",), ("access",), "access", origins)
        if "admins" in access:
            admins = parse_access(access["admins"], ("access", "admins"), "admins", origins)
    return TierTable(MappingProxyType(providers), MappingProxyType(keys), source, files, admins)


def _provider(name: str, value: Any, origins: Origins) -> ProviderSpec:
    path = ("providers", name)
    what = f"provider {_q(name)}"
    raw = fields.table(value, path, what, "[providers.NAME] with endpoints and tiers", origins)
    fields.check_fields(raw, PROVIDER_FIELDS, path, what, origins)
    docs = fields.text(raw["docs"], path + ("docs",), "docs", origins) if "docs" in raw else None
    margin = None
    if "margin" in raw:
        margin = fields.duration(raw["margin"], path + ("margin",), "margin", origins, zero=True)
    for part, example in (("tiers", "[providers.NAME.tiers.TIER]"), ("endpoints", "[providers.NAME.endpoints]")):
        if not raw.get(part):
            raise origins.error(f"{what} defines no {part}: add {example}", path)
    tiers_raw = fields.table(raw["tiers"], path + ("tiers",), "tiers", "[providers.NAME.tiers.TIER]", origins)
    tiers = {tier: _tier(tier, value, path + ("tiers", tier), margin, origins) for tier, value in tiers_raw.items()}
    defined = list(dict.fromkeys(bucket for tier in tiers.values() for bucket in tier.buckets))
    endpoints_raw = fields.table(raw["endpoints"], path + ("endpoints",), "endpoints", '{ rest = ["rest"] }', origins)
    endpoints = {}
    cost_paths = {}
    for endpoint, value in endpoints_raw.items():
        endpoints[endpoint], cost_paths[endpoint] = _endpoint(name, endpoint, value, defined, origins)
    routes = parse_routes(name, raw["routes"], endpoints, tiers, origins) if "routes" in raw else ()
    provider = ProviderSpec(name, MappingProxyType(endpoints), MappingProxyType(tiers), docs, margin, routes)
    for tier in tiers.values():
        for endpoint, bucket in _costs_beyond_capacity(provider, tier.buckets):
            raise origins.error(
                f"{_cost_message(endpoint, bucket)} on tier {_q(tier.name)}: no call could ever be granted; "
                f"lower the endpoint's cost or raise the limit",
                cost_paths[endpoint.name],
            )
    return provider


def _tier(name: str, value: Any, path: Path, margin: int | None, origins: Origins) -> TierSpec:
    raw = fields.table(value, path, f"tier {_q(name)}", '{ rest = { rate = "60/1m" } }', origins)
    buckets = {}
    info: Mapping[str, Any] = MappingProxyType({})
    for bucket, spec in raw.items():
        if bucket == "info":
            info = _info(spec, path + ("info",), origins)
        else:
            buckets[bucket] = parse_bucket(bucket, spec, path + (bucket,), origins, provider_margin=margin)
    return TierSpec(name, MappingProxyType(buckets), info)


def _info(value: Any, path: Path, origins: Origins) -> Mapping[str, Any]:
    raw = fields.table(value, path, "info", "{ hi_capacity = 256 }", origins)
    info = {}
    for name, item in raw.items():
        items = item if isinstance(item, list) else [item]
        for one in items:
            if not isinstance(one, (str, int, float)):
                raise origins.error(
                    f"informational value {_q(name)} is {fields.describe(one)}: write a string, a number, "
                    f"a boolean, or an array of them",
                    path + (name,),
                )
        info[name] = tuple(item) if isinstance(item, list) else item
    return MappingProxyType(info)


def _endpoint(provider: str, name: str, value: Any, defined: list[str], origins: Origins) -> tuple[EndpointSpec, Path]:
    path = ("providers", provider, "endpoints", name)
    what = f"endpoint {_q(name)}"
    cost = 1
    cost_path = path
    if isinstance(value, dict):
        fields.check_fields(value, ENDPOINT_FIELDS, path, what, origins)
        if "buckets" not in value:
            raise origins.error(f"{what} names no buckets: write {{ buckets = [\"rest\"], cost = 1 }}", path)
        if "cost" in value:
            cost_path = path + ("cost",)
            cost = fields.amount(value["cost"], cost_path, "cost", origins)
        names, list_path = value["buckets"], path + ("buckets",)
    else:
        names, list_path = value, path
    if not isinstance(names, list):
        raise origins.error(
            f"{what} must list the buckets one call consumes, e.g. [\"rest\"] or "
            f"{{ buckets = [\"standard\", \"heavy\"], cost = 1 }}, not {fields.describe(names)} ({_q(names)})",
            list_path,
        )
    if not names:
        raise origins.error(f"{what} consumes from no bucket: name at least one", list_path)
    for index, bucket in enumerate(names):
        item_path = list_path + (index,)
        fields.text(bucket, item_path, "a bucket name", origins)
        if bucket not in defined:
            raise origins.error(
                f"{what} consumes from bucket {_q(bucket)}{fields.did_you_mean(bucket, defined)}, which no tier "
                f"of provider {_q(provider)} defines; the tiers define {fields.one_of_names(defined)}",
                item_path,
            )
        if bucket in names[:index]:
            raise origins.error(f"{what} lists bucket {_q(bucket)} twice", item_path)
    return EndpointSpec(name, tuple(names), cost), cost_path


def _costs_beyond_capacity(
    provider: ProviderSpec, buckets: Mapping[str, BucketSpec], only: frozenset[str] | None = None
) -> list[tuple[EndpointSpec, BucketSpec]]:
    found = []
    for endpoint in provider.endpoints.values():
        specs = [buckets.get(name) for name in endpoint.buckets]
        if None in specs:
            continue  # not available on this tier: no cost to check
        for bucket in specs:
            if only is not None and bucket.name not in only:
                continue
            capacity = bucket.capacity
            if capacity is not None and endpoint.cost > capacity:
                found.append((endpoint, bucket))
    return found


def _cost_message(endpoint: EndpointSpec, bucket: BucketSpec) -> str:
    capacity = bucket.capacity
    if bucket.max_cost is not None and bucket.max_cost == capacity:
        bound = f"max_cost {bucket.max_cost}"
    elif bucket.kind == "capacity":
        bound = f"capacity {bucket.count_limit}"
    elif bucket.kind == "quota":
        bound = f"quota {bucket.quota}"
    else:
        bound = f"rate {min(bucket.rates, key=lambda rate: rate.capacity)}"
    return (
        f"the cost {endpoint.cost} of endpoint {_q(endpoint.name)} exceeds {capacity}, the most bucket "
        f"{_q(bucket.name)} grants in one request ({bound})"
    )


def _key(
    name: str,
    value: Any,
    providers: Mapping[str, ProviderSpec],
    providers_raw: dict[str, Any],
    origins: Origins,
    presets: tuple[str, ...],
) -> KeySpec:
    path = ("keys", name)
    what = f"key {_q(name)}"
    raw = fields.table(value, path, what, '{ provider = "surchi", tier = "explorer" }', origins)
    fields.check_fields(raw, KEY_FIELDS, path, what, origins)
    for part in ("provider", "tier"):
        if part not in raw:
            raise origins.error(f"{what} names no {part}: add {part} = \"NAME\"", path)
    provider_name = fields.text(raw["provider"], path + ("provider",), "provider", origins)
    provider = providers.get(provider_name)
    if provider is None:
        hint = ""
        if provider_name in presets:
            hint = f"; {_q(provider_name)} is a bundled preset: add include = [{_q(provider_name)}] at the top"
        raise fields.unknown_name(
            provider_name, providers, "provider", "the table", path + ("provider",), origins, hint=hint
        )
    tier_name = fields.text(raw["tier"], path + ("tier",), "tier", origins)
    tier = provider.tiers.get(tier_name)
    if tier is None:
        raise fields.unknown_name(
            tier_name, provider.tiers, "tier", f"provider {_q(provider_name)}", path + ("tier",), origins
        )
    group = fields.text(raw["group"], path + ("group",), "group", origins) if "group" in raw else None
    buckets = tier.buckets
    overridden: dict[str, BucketSpec] = {}
    if "overrides" in raw:
        overrides_path = path + ("overrides",)
        overrides = fields.table(raw["overrides"], overrides_path, "overrides", '{ rest = { rate = "100/1m" } }', origins)
        tier_raw = providers_raw[provider_name]["tiers"][tier_name]
        for bucket, change in overrides.items():
            if bucket not in tier.buckets:
                raise origins.error(
                    f"tier {_q(tier_name)} of provider {_q(provider_name)} has no bucket {_q(bucket)} to override; "
                    f"it has {fields.one_of_names(tier.buckets)}",
                    overrides_path + (bucket,),
                )
            overridden[bucket] = _override(
                bucket, change, tier_raw[bucket], overrides_path + (bucket,),
                ("providers", provider_name, "tiers", tier_name, bucket), provider.margin, origins,
            )
        if overridden:
            buckets = MappingProxyType({**tier.buckets, **overridden})
            for endpoint, bucket in _costs_beyond_capacity(provider, buckets, frozenset(overridden)):
                raise origins.error(
                    f"{_cost_message(endpoint, bucket)} on key {_q(name)}: no call could ever be granted; "
                    f"raise the overridden limit or lower the endpoint's cost",
                    overrides_path + (bucket.name,),
                )
    allow = parse_access(raw["allow"], path + ("allow",), f"allow of {what}", origins) if "allow" in raw else None
    return KeySpec(name, provider, tier_name, buckets, tier.info, group, frozenset(overridden), allow)


def _override(
    name: str, change: Any, base: dict[str, Any], path: Path, tier_path: Path, margin: int | None, origins: Origins
) -> BucketSpec:
    """Return bucket ``name`` with a key's ``change`` applied: field by field, or whole if it changes the kind.

    A change of ``max_cost`` alone adds or changes the cap of a kind that takes
    one; over a kind that takes none (unlimited, concurrency, time quota) it
    makes the bucket a cap.
    """
    change = fields.table(change, path, f"the override of bucket {_q(name)}", '{ rate = "100/1m" }', origins)
    kind, base_kind = bucket_kind(change), bucket_kind(base)
    replaces = kind is not None and kind != base_kind
    if kind == "cap" and base_kind is not None and "max_cost" in FIELDS_OF_KIND[base_kind]:
        replaces = False
    merged = change if replaces else {**base, **change}

    def field_path(field: str) -> Path:
        return (path if field in change else tier_path) + (field,)

    return parse_bucket(name, merged, path, origins, provider_margin=margin, field_path=field_path)


def _check_groups(keys: Mapping[str, KeySpec], origins: Origins) -> None:
    """Raise when keys of one group disagree on a bucket they share (``scope = "group"``)."""
    shared: dict[tuple[str, str], KeySpec] = {}
    for key in keys.values():
        if key.group is None:
            continue
        for bucket in key.buckets.values():
            if bucket.scope != "group":
                continue
            first = shared.setdefault((key.group, bucket.name), key)
            if first is key:
                continue
            if first.provider is not key.provider:
                raise origins.error(
                    f"group {_q(key.group)} would share bucket {_q(bucket.name)} between key {_q(first.name)} "
                    f"of provider {_q(first.provider.name)} and key {_q(key.name)} of provider "
                    f"{_q(key.provider.name)}: a group's shared buckets belong to one provider; use a group per provider",
                    ("keys", key.name, "group"),
                )
            theirs = first.buckets[bucket.name]
            if theirs != bucket:
                raise origins.error(
                    f"keys {_q(first.name)} and {_q(key.name)} of group {_q(key.group)} share bucket "
                    f"{_q(bucket.name)} (scope = \"group\") but set different limits: {theirs} on "
                    f"{_q(first.name)} (tier {_q(first.tier)}), {bucket} on {_q(key.name)} (tier {_q(key.tier)}); "
                    f"keys of one group must agree on the buckets they share",
                    ("keys", key.name, "group"),
                )
