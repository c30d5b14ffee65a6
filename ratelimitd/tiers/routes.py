"""A provider's routes in a tier table: ``[[providers.NAME.routes]]`` entries, validated into ``UrlRoute`` objects.

The pattern syntax and the matching live in the client package
(``ratelimitd_client.routing``), which the HTTP integrations use to match
requests; this module checks the table's side: the fields of each entry, that
its endpoint exists, and that a route's cost can ever be granted. Every problem
raises the ``ConfigError`` of the offending value's TOML path, e.g.
``providers.polynode.routes[2].path``.
"""

from __future__ import annotations

from typing import Any, Mapping

from ratelimitd_client.routing import RouteError, UrlRoute, parse_route

from . import fields
from .merge import Origins
from .model import EndpointSpec, TierSpec

__all__ = ["ROUTE_FIELDS", "parse_routes"]

Path = tuple[Any, ...]

ROUTE_FIELDS = ("path", "endpoint", "host", "methods", "cost")

_q = fields.quote
_EXAMPLE = '[[providers.NAME.routes]] tables such as { path = "/v3/trades", endpoint = "heavy" }'


def parse_routes(
    provider: str,
    value: Any,
    endpoints: Mapping[str, EndpointSpec],
    tiers: Mapping[str, TierSpec],
    origins: Origins,
) -> tuple[UrlRoute, ...]:
    """Return the routes of ``provider`` in table order, or raise ``ConfigError`` at the first bad value.

    Checks each entry's fields, its pattern (``ratelimitd_client.routing``), that
    its endpoint is one of ``endpoints``, and that its cost does not exceed what
    a bucket of that endpoint can grant in one request on a tier offering it.
    """
    path: Path = ("providers", provider, "routes")
    if not isinstance(value, list):
        raise origins.error(f"routes must be an array of {_EXAMPLE}, not {fields.describe(value)} ({_q(value)})", path)
    routes = []
    for index, entry in enumerate(value):
        here = path + (index,)
        what = f"route {index} of provider {_q(provider)}"
        raw = fields.table(entry, here, what, '{ path = "/v3/trades", endpoint = "heavy" }', origins)
        fields.check_fields(raw, ROUTE_FIELDS, here, what, origins)
        for part in ("path", "endpoint"):
            if part not in raw:
                raise origins.error(f"{what} names no {part}: write {{ path = \"/v3/trades\", endpoint = \"heavy\" }}", here)
        endpoint = fields.text(raw["endpoint"], here + ("endpoint",), "endpoint", origins)
        if endpoint not in endpoints:
            raise fields.unknown_name(
                endpoint, endpoints, "endpoint", f"provider {_q(provider)}", here + ("endpoint",), origins
            )
        cost = fields.amount(raw["cost"], here + ("cost",), "cost", origins) if "cost" in raw else None
        try:
            route = parse_route(raw["path"], endpoint, raw.get("host"), raw.get("methods"), cost)
        except RouteError as exc:
            field_path = tuple(_field_path(exc.field))
            raise origins.error(f"{what}: {exc}", here + field_path) from None
        if cost is not None:
            _check_cost(route, endpoints[endpoint], tiers, here + ("cost",), origins)
        routes.append(route)
    return tuple(routes)


def _field_path(field: str) -> list[Any]:
    """Return ``"methods[1]"`` as ``["methods", 1]``."""
    name, _, rest = field.partition("[")
    return [name, int(rest[:-1])] if rest else [name]


def _check_cost(
    route: UrlRoute, endpoint: EndpointSpec, tiers: Mapping[str, TierSpec], path: Path, origins: Origins
) -> None:
    for tier in tiers.values():
        buckets = [tier.buckets.get(name) for name in endpoint.buckets]
        if None in buckets:
            continue  # the endpoint is not available on this tier
        for bucket in buckets:
            capacity = bucket.capacity
            if capacity is not None and route.cost > capacity:
                raise origins.error(
                    f"the cost {route.cost} of the route {_q(route.path)} exceeds {capacity}, the most bucket "
                    f"{_q(bucket.name)} of endpoint {_q(endpoint.name)} grants in one request on tier "
                    f"{_q(tier.name)}: no such call could ever be granted; lower the cost or raise the limit",
                    path,
                )

