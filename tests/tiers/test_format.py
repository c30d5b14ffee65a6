"""The tier-table format: the DESIGN.md core shape, its extensions, margins, overrides, groups and routes."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ratelimitd.errors import ConfigError, NotAvailable, UnknownEndpoint, UnknownKey
from ratelimitd.limits.base import Rate
from ratelimitd.tiers import BUCKET_KINDS, default_margin, load_file, load_text
from ratelimitd.tiers.model import DEFAULT_MARGIN_CAP

from .helpers import MS, M, PROVIDER, S, rates

# DESIGN.md's core shape, verbatim
CORE = """
[providers.surchi.endpoints]          # endpoint name -> the buckets one call consumes from
"rest" = ["rest"]
"ws"   = ["ws"]

[providers.surchi.tiers.explorer]     # bucket name -> its limit(s) on this tier
rest = { rate = "60/1m" }             # "N/DURATION"; a list of rates means all apply
ws   = { concurrent = 1, when_full = "evict-oldest" }

[keys.research]                       # a local alias for one API key; never the secret itself
provider = "surchi"
tier = "explorer"
"""

# the brief's extended example
EXTENDED = """
[providers.surchi]
docs = "https://example.com/rate-limits"
margin = "100ms"
[providers.surchi.endpoints]
"rest" = ["rest"]
"heavy" = { buckets = ["standard", "heavy"], cost = 1 }
"tenth" = { buckets = ["rest"], cost = 0.1 }
[providers.surchi.tiers.explorer]
rest = { rate = "60/1m" }
rest2 = { rate = ["5/1s", "120/1m"] }
standard = { rate = "1,000/1m" }
heavy = { rate = "500/1m" }
fast = { rate = "10/1s", algorithm = "gcra", burst = 20, margin = "50ms", max_cost = 100, scope = "group" }
free = { unlimited = true }
ws   = { concurrent = 1, when_full = "evict-oldest", ttl = "1h", idle = "45m" }
[providers.surchi.tiers.explorer.info]
hi_capacity = 256
lanes = ["hi", "lo"]
[keys.research]
provider = "surchi"
tier = "explorer"
group = "acme"
overrides = { rest = { rate = "100/1m" } }
"""


def test_core_shape_of_the_design_loads_unchanged():
    table = load_text(CORE, "core.toml")
    route = table.route("research", "rest")
    assert route.key.tier == "explorer" and route.endpoint.cost == 1
    (rest,) = route.buckets
    assert (rest.kind, rest.algorithm, rest.scope) == ("rate", "sliding-log", "key")
    assert rest.rates == (Rate(60, M, 100 * MS),)
    (ws,) = table.route("research", "ws").buckets
    assert (ws.kind, ws.concurrent, ws.when_full, ws.ttl, ws.idle) == ("concurrency", 1, "evict-oldest", None, None)
    assert table.source == "core.toml" and table.files == ("core.toml",)


def test_extended_forms():
    table = load_text(EXTENDED)
    provider = table.providers["surchi"]
    assert (provider.docs, provider.margin) == ("https://example.com/rate-limits", 100 * MS)
    assert provider.endpoints["heavy"].buckets == ("standard", "heavy")
    assert provider.endpoints["tenth"].cost == Decimal("0.1")  # exact, not the float 0.1
    tier = provider.tiers["explorer"]
    assert rates(tier.buckets["rest2"]) == [(5, "1s"), (120, "1m")]
    assert rates(tier.buckets["standard"]) == [(1000, "1m")]
    fast = tier.buckets["fast"]
    assert (fast.algorithm, fast.max_cost, fast.scope) == ("gcra", 100, "group")
    assert fast.rates == (Rate(10, S, 50 * MS, burst=20),)
    assert fast.capacity == 20
    assert tier.buckets["free"].kind == "unlimited"
    ws = tier.buckets["ws"]
    assert (ws.ttl, ws.idle) == (3600 * S, 45 * M)
    assert dict(tier.info) == {"hi_capacity": 256, "lanes": ("hi", "lo")}
    key = table.key("research")
    assert (key.group, key.overrides) == ("acme", frozenset({"rest"}))
    assert key.owner(tier.buckets["fast"]) == "group:acme" and key.owner(tier.buckets["rest"]) == "research"
    assert set(BUCKET_KINDS) >= {"rate", "unlimited", "concurrency"}


def test_tables_are_immutable():
    table = load_text(EXTENDED)
    with pytest.raises(TypeError):
        table.keys["other"] = table.keys["research"]  # type: ignore[index]
    with pytest.raises(TypeError):
        table.providers["surchi"].tiers["explorer"].buckets["rest"] = None  # type: ignore[index]


@pytest.mark.parametrize(
    "window, margin",
    [
        (S, 10 * MS),  # 1% of a short window
        (5 * S, 50 * MS),
        (10 * S, 100 * MS),  # where 1% reaches the cap
        (M, 100 * MS),
        (86_400 * S, 100 * MS),  # never more than 100 ms, however long the window
        (1, 0),
    ],
)
def test_default_margin_is_the_smaller_of_100ms_and_1_percent(window, margin):
    assert default_margin(window) == margin
    assert DEFAULT_MARGIN_CAP == 100 * MS


def test_margin_precedence_bucket_then_provider_then_default():
    text = PROVIDER.replace('rest = { rate = "60/1m" }', 'rest = { rate = ["5/1s", "60/1m"] }')
    by_default = load_text(text).providers["p"].tiers["t"].buckets["rest"].rates
    assert [rate.margin for rate in by_default] == [10 * MS, 100 * MS]
    provider_wide = load_text(text.replace('docs =', 'margin = "250ms"\ndocs ='))
    assert [rate.margin for rate in provider_wide.providers["p"].tiers["t"].buckets["rest"].rates] == [250 * MS] * 2
    own = text.replace('docs =', 'margin = "250ms"\ndocs =').replace('"60/1m"] }', '"60/1m"], margin = "0ms" }')
    assert [rate.margin for rate in load_text(own).providers["p"].tiers["t"].buckets["rest"].rates] == [0, 0]


def test_override_changes_fields_it_names_and_keeps_the_rest():
    text = PROVIDER.replace(
        'rest = { rate = "60/1m" }', 'rest = { rate = "60/1m", algorithm = "sliding-window", margin = "1s" }'
    )
    table = load_text(text + '[keys.k]\nprovider = "p"\ntier = "t"\noverrides = { rest = { rate = "100/1m" } }\n'
                             '[keys.plain]\nprovider = "p"\ntier = "t"\n')
    custom = table.key("k").buckets["rest"]
    assert (rates(custom), custom.algorithm, custom.rates[0].margin) == ([(100, "1m")], "sliding-window", S)
    plain = table.key("plain")
    assert rates(plain.buckets["rest"]) == [(60, "1m")] and plain.overrides == frozenset()
    assert plain.buckets is table.providers["p"].tiers["t"].buckets  # keys without overrides share their tier's


def test_override_that_changes_the_kind_replaces_the_bucket():
    text = PROVIDER.replace('rest = { rate = "60/1m" }', 'rest = { rate = "10/1s", algorithm = "gcra", burst = 5 }')
    table = load_text(text + '[keys.k]\nprovider = "p"\ntier = "t"\noverrides = { rest = { unlimited = true } }\n')
    assert table.key("k").buckets["rest"].kind == "unlimited"


def test_override_of_a_rate_gets_the_default_margin_of_its_new_window():
    table = load_text(PROVIDER + '[keys.k]\nprovider = "p"\ntier = "t"\noverrides = { rest = { rate = "2/1s" } }\n')
    assert table.key("k").buckets["rest"].rates == (Rate(2, S, 10 * MS),)


def test_route_errors():
    table = load_text(
        PROVIDER.replace('"rest" = ["rest"]', '"rest" = ["rest"]\n"pro" = ["pro"]')
        + '[providers.p.tiers.paid]\nrest = { rate = "600/1m" }\npro = { rate = "10/1m" }\n'
        + '[keys.k]\nprovider = "p"\ntier = "t"\n',
        "tiers.toml",
    )
    with pytest.raises(UnknownKey) as unknown_key:
        table.route("kk", "rest")
    assert str(unknown_key.value) == "unknown key 'kk'; the tier table tiers.toml defines ['k']"
    with pytest.raises(UnknownEndpoint) as unknown_endpoint:
        table.route("k", "rets")
    assert str(unknown_endpoint.value) == (
        "provider 'p' of key 'k' has no endpoint 'rets'; it has ['pro', 'rest']"
    )
    with pytest.raises(NotAvailable) as not_available:
        table.route("k", "pro")
    assert str(not_available.value) == (
        "endpoint 'pro' is not available on tier 't' of provider 'p' (key 'k'): the tier has no bucket 'pro'"
    )
    assert [bucket.name for bucket in table.route("k", "rest").buckets] == ["rest"]


def test_groups_must_agree_on_shared_buckets(tmp_path):
    text = PROVIDER.replace('"rest" = ["rest"]', '"rest" = ["rest"]\n"ws" = ["ws"]') + (
        'ws = { concurrent = 5, scope = "group" }\n'
        '[providers.p.tiers.big]\nrest = { rate = "600/1m" }\nws = { concurrent = 50, scope = "group" }\n'
        '[keys.a]\nprovider = "p"\ntier = "t"\ngroup = "org"\n'
        '[keys.b]\nprovider = "p"\ntier = "t"\ngroup = "org"\n'
    )
    table = load_text(text)
    assert table.key("a").owner(table.key("a").buckets["ws"]) == table.key("b").owner(table.key("b").buckets["ws"])
    (tmp_path / "groups.toml").write_text(text + '[keys.c]\nprovider = "p"\ntier = "big"\ngroup = "org"\n')
    with pytest.raises(ConfigError) as error:
        load_file(tmp_path / "groups.toml")
    assert (error.value.file, error.value.path) == (str(tmp_path / "groups.toml"), "keys.c.group")
    assert error.value.detail == (
        'keys "a" and "c" of group "org" share bucket "ws" (scope = "group") but set different limits: '
        '5 concurrent, reject when full per group on "a" (tier "t"), 50 concurrent, reject when full per group '
        'on "c" (tier "big"); keys of one group must agree on the buckets they share'
    )


def test_a_few_hundred_keys_with_groups_and_overrides_load():
    parts = ['include = ["surchi", "polynode", "struct", "houdini", "lasersell"]']
    choices = [("surchi", "sentinel", "rest"), ("polynode", "growth", "standard"), ("struct", "hobby", "rest"),
               ("houdini", "pro", "quote")]
    for index in range(400):
        provider, tier, bucket = choices[index % 4]
        parts.append(f'[keys.k{index}]\nprovider = "{provider}"\ntier = "{tier}"\ngroup = "{provider}-org"')
        if index % 3 == 0:
            parts.append(f'overrides = {{ {bucket} = {{ rate = "{100 + index}/1m" }} }}')
    table = load_text("\n".join(parts))
    assert len(table.keys) == 400
    assert [str(rate) for rate in table.keys["k0"].buckets["rest"].rates] == ["100/1m"]
    assert [str(rate) for rate in table.keys["k4"].buckets["rest"].rates] == ["300/1m"]  # SURCHI Sentinel
