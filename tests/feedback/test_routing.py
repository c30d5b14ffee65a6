"""Routes: the pattern syntax, first-match order, hosts and methods, the tier table's checks, the presets.

The preset cases use the six heavy trade-history paths of seed 002 (PolyNode,
"V3 REST data limits") and LaserSell's /v1/sell and /v1/buy (seed 000).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ratelimitd.errors import ConfigError
from ratelimitd.tiers import load_text
from ratelimitd_client import ProtocolError
from ratelimitd_client.routing import RouteError, RouteTable, UrlRoute, compile_path, normalize_path, parse_route

MATCHES = {
    # pattern, path, matches?
    "literal": ("/v3/trades", "/v3/trades", True),
    "literal, trailing slash on the request": ("/v3/trades", "/v3/trades/", True),
    "literal, trailing slash on the pattern": ("/v3/trades/", "/v3/trades", True),
    "literal, query ignored": ("/v3/trades", "/v3/trades?limit=100&after=1", True),
    "literal, fragment ignored": ("/v3/trades", "/v3/trades#x", True),
    "literal is case-sensitive": ("/v3/trades", "/V3/Trades", False),
    "literal, a longer path": ("/v3/trades", "/v3/trades/extra", False),
    "literal, a prefix of a segment": ("/v3/trades", "/v3/tradesx", False),
    "name: one segment": ("/v3/wallets/{address}/trades", "/v3/wallets/0xabc/trades", True),
    "name: not an empty segment": ("/v3/wallets/{address}/trades", "/v3/wallets//trades", False),
    "name: not two segments": ("/v3/wallets/{address}/trades", "/v3/wallets/a/b/trades", False),
    "name at the end": ("/v3/markets/{token_id}", "/v3/markets/123", True),
    "star: the rest": ("/v3/*", "/v3/markets/slug/x", True),
    "star: one segment": ("/v3/*", "/v3/markets", True),
    "star: zero segments": ("/v3/*", "/v3", True),
    "star: not another prefix": ("/v3/*", "/v30/markets", False),
    "root star: everything": ("/*", "/anything/at/all", True),
    "root star: the root": ("/*", "/", True),
    "root: only the root": ("/", "/", True),
    "root: not below": ("/", "/a", False),
    "percent-encoded literal matches as sent": ("/v1/a%20b", "/v1/a%20b", True),
    "regex characters are literal": ("/v1/a.b", "/v1/axb", False),
}


@pytest.mark.parametrize("pattern, path, expected", MATCHES.values(), ids=MATCHES.keys())
def test_path_patterns(pattern, path, expected):
    assert (compile_path(pattern).match(normalize_path(path)) is not None) is expected


BAD_PATTERNS = {
    "relative": ("v3/trades", 'must start with "/"'),
    "empty": ("", "non-empty string"),
    "not a string": (3, "non-empty string"),
    "star in the middle": ("/v3/*/trades", '"*" may only be the last segment'),
    "star inside a segment": ("/v3/trad*", "is neither literal nor a whole"),
    "brace inside a segment": ("/v3/x{id}", "is neither literal nor a whole"),
    "unclosed brace": ("/v3/{id", "is neither literal nor a whole"),
    "name with a dash": ("/v3/{token-id}", "is neither literal nor a whole"),
    "empty segment": ("/v3//trades", 'has an empty segment ("//")'),
    "a query": ("/v3/trades?x=1", "must not hold a query"),
}


@pytest.mark.parametrize("pattern, message", BAD_PATTERNS.values(), ids=BAD_PATTERNS.keys())
def test_bad_patterns(pattern, message):
    with pytest.raises(RouteError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")) as caught:
        compile_path(pattern)
    assert caught.value.field == "path"


def table(*routes: dict) -> RouteTable:
    return RouteTable.from_routes("p", routes)


HOSTS = {
    # host pattern, url, matches?
    "exact": ("api.polynode.dev", "https://api.polynode.dev/v3/trades", True),
    "exact, any case": ("API.PolyNode.dev", "https://api.POLYNODE.dev/v3/trades", True),
    "exact, another host": ("api.polynode.dev", "https://ws.polynode.dev/v3/trades", False),
    "exact, any port": ("localhost", "http://localhost:8080/v3/trades", True),
    "port given": ("localhost:8080", "http://localhost:8080/v3/trades", True),
    "port given, another port": ("localhost:8080", "http://localhost:8081/v3/trades", False),
    "port given, the scheme's default": ("api.x.com:443", "https://api.x.com/v3/trades", True),
    "wildcard: a subdomain": ("*.polynode.dev", "https://api.polynode.dev/v3/trades", True),
    "wildcard: a deeper subdomain": ("*.polynode.dev", "https://eu.api.polynode.dev/v3/trades", True),
    "wildcard: not the bare domain": ("*.polynode.dev", "https://polynode.dev/v3/trades", False),
    "wildcard: not a look-alike": ("*.polynode.dev", "https://evilpolynode.dev/v3/trades", False),
}


@pytest.mark.parametrize("host, url, expected", HOSTS.values(), ids=HOSTS.keys())
def test_hosts(host, url, expected):
    routes = table({"host": host, "path": "/v3/*", "endpoint": "rest"})
    assert (routes.match("GET", url) is not None) is expected


def test_methods_and_first_match_wins():
    routes = table(
        {"path": "/v3/wallets/batch", "methods": ["post"], "endpoint": "batch", "cost": 5},
        {"path": "/v3/wallets/{address}/trades", "endpoint": "heavy"},
        {"path": "/v3/*", "endpoint": "rest"},
    )
    url = "https://api.polynode.dev/v3/wallets/batch"
    assert routes.match("POST", url).endpoint == "batch"
    assert routes.match("POST", url).cost == 5
    assert routes.match("GET", url).endpoint == "rest"
    assert routes.match("get", "https://h/v3/wallets/0x1/trades").endpoint == "heavy"
    assert routes.match("GET", "https://h/v2/trades") is None
    assert routes.match_parts("GET", "H", 443, "/v3/trades?x=1").endpoint == "rest"


def test_an_empty_table_matches_nothing():
    assert not RouteTable(None)
    assert RouteTable(None).match("GET", "https://h/x") is None


def test_local_routes_come_first():
    routes = table({"path": "/v3/*", "endpoint": "rest"}).extended([{"path": "/v3/trades", "endpoint": "heavy"}])
    assert [route.endpoint for route in routes.routes] == ["heavy", "rest"]


BAD_ROUTES = {
    "no endpoint": (dict(path="/x", endpoint=None), "endpoint"),
    "methods a string": (dict(path="/x", endpoint="e", methods="GET"), "methods"),
    "methods empty": (dict(path="/x", endpoint="e", methods=[]), "methods"),
    "a bad method": (dict(path="/x", endpoint="e", methods=["GET", "G ET"]), "methods[1]"),
    "a host with a scheme": (dict(path="/x", endpoint="e", host="https://api.x"), "host"),
    "a host with a path": (dict(path="/x", endpoint="e", host="api.x/v3"), "host"),
    "a port out of range": (dict(path="/x", endpoint="e", host="api.x:70000"), "host"),
    "a negative cost": (dict(path="/x", endpoint="e", cost=-1), "cost"),
    "a zero cost": (dict(path="/x", endpoint="e", cost=0), "cost"),
}


@pytest.mark.parametrize("given, field", BAD_ROUTES.values(), ids=BAD_ROUTES.keys())
def test_bad_routes_name_their_field(given, field):
    with pytest.raises(RouteError) as caught:
        parse_route(**given)
    assert caught.value.field == field


def test_wire_round_trip_keeps_every_field_exact():
    route = parse_route("/v3/wallets/{address}/trades", "heavy", "API.polynode.dev", ["get", "HEAD"], "0.1")
    wire = route.to_wire()
    assert wire == {
        "host": "api.polynode.dev",
        "methods": ["GET", "HEAD"],
        "path": "/v3/wallets/{address}/trades",
        "endpoint": "heavy",
        "cost": Decimal("0.1"),
    }
    assert UrlRoute.from_wire(wire) == route


def test_a_bad_routes_reply_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="not a provider and a list of routes"):
        RouteTable.from_reply({"provider": "p", "routes": "all"})
    with pytest.raises(ProtocolError, match="cannot use"):
        RouteTable.from_reply({"provider": "p", "routes": [{"path": "no-slash", "endpoint": "e"}]})


# -- the tier table --------------------------------------------------------------------------------

PROVIDER = """
[providers.p.endpoints]
"rest" = ["rest"]
"heavy" = ["rest", "heavy"]
[providers.p.tiers.t]
rest = { rate = "60/1m" }
heavy = { rate = "10/1m" }
"""


def routes_table(routes: str) -> str:
    return PROVIDER + routes


def test_routes_load_in_order():
    loaded = load_text(
        routes_table(
            """
[[providers.p.routes]]
path = "/v3/trades"
endpoint = "heavy"
methods = ["get"]
host = "api.example.com"
cost = 2

[[providers.p.routes]]
path = "/v3/*"
endpoint = "rest"
"""
        )
    )
    routes = loaded.providers["p"].routes
    assert [(r.path, r.endpoint, r.host, r.methods, r.cost) for r in routes] == [
        ("/v3/trades", "heavy", "api.example.com", ("GET",), 2),
        ("/v3/*", "rest", None, None, None),
    ]
    assert routes[1].to_wire() == {
        "host": None, "methods": None, "path": "/v3/*", "endpoint": "rest", "cost": None,
    }


LOADER_ERRORS = {
    "not an array": (
        'routes = "all"',
        "providers.p.routes",
        'routes must be an array of [[providers.NAME.routes]] tables such as { path = "/v3/trades", endpoint = "heavy" }, '
        'not a string ("all")',
    ),
    "an item not a table": (
        'routes = ["/v3/*"]',
        "providers.p.routes[0]",
        'route 0 of provider "p" must be a table such as { path = "/v3/trades", endpoint = "heavy" }, not a string ("/v3/*")',
    ),
    "unknown field": (
        'routes = [{ path = "/x", endpoint = "rest", method = ["GET"] }]',
        "providers.p.routes[0].method",
        'unknown field "method" in route 0 of provider "p" (did you mean "methods"?); accepted: path, endpoint, host, methods, cost',
    ),
    "no path": (
        'routes = [{ endpoint = "rest" }]',
        "providers.p.routes[0]",
        'route 0 of provider "p" names no path: write { path = "/v3/trades", endpoint = "heavy" }',
    ),
    "unknown endpoint": (
        'routes = [{ path = "/x", endpoint = "rest" }, { path = "/y", endpoint = "rest" }, { path = "/v3/trades", endpoint = "hevy" }]',
        "providers.p.routes[2].endpoint",
        'unknown endpoint "hevy" (did you mean "heavy"?); provider "p" defines "rest", "heavy"',
    ),
    "bad path": (
        'routes = [{ path = "/x", endpoint = "rest" }, { path = "/y", endpoint = "rest" }, { path = "v3/trades", endpoint = "heavy" }]',
        "providers.p.routes[2].path",
        'route 2 of provider "p": path pattern \'v3/trades\' must start with "/" (e.g. "/v3/trades")',
    ),
    "bad method": (
        'routes = [{ path = "/x", endpoint = "rest", methods = ["GET", 1] }]',
        "providers.p.routes[0].methods[1]",
        'route 0 of provider "p": 1 is not an HTTP method name (e.g. "GET")',
    ),
    "bad cost": (
        'routes = [{ path = "/x", endpoint = "rest", cost = -2 }]',
        "providers.p.routes[0].cost",
        '-2 is not a valid cost: write a positive integer or decimal (e.g. 1, 100, 0.1)',
    ),
    "cost beyond capacity": (
        'routes = [{ path = "/x", endpoint = "heavy", cost = 11 }]',
        "providers.p.routes[0].cost",
        'the cost 11 of the route "/x" exceeds 10, the most bucket "heavy" of endpoint "heavy" grants in one request '
        'on tier "t": no such call could ever be granted; lower the cost or raise the limit',
    ),
}


@pytest.mark.parametrize("routes, path, message", LOADER_ERRORS.values(), ids=LOADER_ERRORS.keys())
def test_loader_errors(routes, path, message):
    text = PROVIDER.replace("[providers.p.endpoints]", f"[providers.p]\n{routes}\n[providers.p.endpoints]")
    with pytest.raises(ConfigError) as caught:
        load_text(text, "tiers.toml")
    assert (caught.value.file, caught.value.path, caught.value.detail) == ("tiers.toml", path, message)


def test_a_later_file_replaces_the_routes_whole(tmp_path):
    (tmp_path / "mine.toml").write_text(
        'include = ["polynode"]\n[[providers.polynode.routes]]\npath = "/v3/*"\nendpoint = "heavy"\n'
    )
    from ratelimitd.tiers import load_file

    routes = load_file(tmp_path / "mine.toml").providers["polynode"].routes
    assert [(route.path, route.endpoint) for route in routes] == [("/v3/*", "heavy")]


# -- the presets ------------------------------------------------------------------------------------

PRESETS = load_text('include = ["polynode", "lasersell", "surchi", "struct", "houdini"]')


def preset(name: str) -> RouteTable:
    provider = PRESETS.providers[name]
    return RouteTable(name, provider.routes)


PRESET_CASES = {
    # provider, method, url, endpoint (None: unrouted)
    "polynode /v3/trades": ("polynode", "GET", "https://api.polynode.dev/v3/trades?limit=300", "heavy"),
    "polynode wallet trades": ("polynode", "GET", "https://api.polynode.dev/v3/wallets/0xabc/trades", "heavy"),
    "polynode wallet combos trades": ("polynode", "GET", "https://api.polynode.dev/v3/wallets/0xabc/combos/trades", "heavy"),
    "polynode market trades": ("polynode", "GET", "https://api.polynode.dev/v3/markets/123/trades", "heavy"),
    "polynode market slug trades": ("polynode", "GET", "https://api.polynode.dev/v3/markets/slug/btc-100k/trades", "heavy"),
    "polynode builder trades": ("polynode", "GET", "https://api.polynode.dev/v3/builders/abc/trades", "heavy"),
    "polynode market search": ("polynode", "GET", "https://api.polynode.dev/v3/markets/search?q=bitcoin&limit=100", "rest"),
    "polynode wallets batch": ("polynode", "POST", "https://api.polynode.dev/v3/wallets/batch", "rest"),
    "polynode pnl events": ("polynode", "GET", "https://api.polynode.dev/v3/wallets/0xabc/pnl/events", "rest"),
    "polynode positions": ("polynode", "GET", "https://api.polynode.dev/v3/markets/condition/c1/positions", "rest"),
    "polynode outside v3": ("polynode", "GET", "https://api.polynode.dev/v2/trades", None),
    "lasersell sell": ("lasersell", "POST", "https://api.lasersell.io/v1/sell", "rest"),
    "lasersell buy": ("lasersell", "POST", "https://api.lasersell.io/v1/buy", "rest"),
    "lasersell something else": ("lasersell", "GET", "https://api.lasersell.io/v1/status", None),
    "surchi signals": ("surchi", "GET", "https://api.surchi.xyz/v1/intelligence/signals", "rest"),
    "struct any REST call": ("struct", "GET", "https://api.struct.to/v1/markets", "rest"),
    "houdini: no routes": ("houdini", "GET", "https://api-partner.houdiniswap.com/quote", None),
}


@pytest.mark.parametrize("provider, method, url, endpoint", PRESET_CASES.values(), ids=PRESET_CASES.keys())
def test_preset_routes(provider, method, url, endpoint):
    route = preset(provider).match(method, url)
    assert (route.endpoint if route is not None else None) == endpoint


def test_polynode_routes_the_six_heavy_paths_of_its_seed():
    heavy = [route.path for route in PRESETS.providers["polynode"].routes if route.endpoint == "heavy"]
    assert heavy == [
        "/v3/trades",
        "/v3/wallets/{address}/trades",
        "/v3/wallets/{address}/combos/trades",
        "/v3/markets/{token_id}/trades",
        "/v3/markets/slug/{slug}/trades",
        "/v3/builders/{code}/trades",
    ]
