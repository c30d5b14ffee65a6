"""The bucket kinds beyond rates: capacity counts, calendar quotas, time quotas and per-request caps.

Each case is a bucket as a tier table writes it and the ``BucketSpec`` it
must become (the fields the engine reads), its text, and the largest cost one
request may ask of it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ratelimitd.errors import ConfigError
from ratelimitd.limits import calendar
from ratelimitd.limits.calendar import Quota
from ratelimitd.tiers import BucketSpec, load_file, load_text
from ratelimitd.tiers.model import BUCKET_KINDS, RESERVED_PER

from .helpers import PROVIDER

D = Decimal


def has_zone(name: str) -> bool:
    try:
        calendar.time_zone(name)
    except ValueError:
        return False
    return True


def bucket(spec: str) -> BucketSpec:
    """Return bucket ``rest`` of PROVIDER written as ``spec`` (the endpoint's cost set to fit)."""
    text = PROVIDER.replace('rest = { rate = "60/1m" }', f"rest = {spec}")
    return load_text(text).providers["p"].tiers["t"].buckets["rest"]


CASES = {
    "capacity per wallet": (
        '{ capacity = 2, per = "wallet" }',
        BucketSpec("rest", "capacity", count_limit=2, per="wallet"),
        "capacity 2 per wallet",
        2,
    ),
    "capacity per lease, with a cap": (
        '{ capacity = 500, per = "lease", max_cost = 100 }',
        BucketSpec("rest", "capacity", count_limit=500, per="lease", max_cost=100),
        "capacity 500 per lease, max_cost 100",
        100,
    ),
    "capacity per owner, shared by a group": (
        '{ capacity = 10, scope = "group" }',
        BucketSpec("rest", "capacity", count_limit=10, scope="group"),
        "capacity 10 per group",
        10,
    ),
    "monthly quota": (
        '{ quota = "10000/month" }',
        BucketSpec("rest", "quota", quota=Quota(10_000, "month", 1, "UTC", "deny", "units")),
        "quota 10000/month",
        10_000,
    ),
    "monthly quota, every option": (
        '{ quota = "10,000/month", anchor = 15, timezone = "UTC", on_exhaust = "allow", max_cost = 50, '
        'scope = "group", durability = "strict" }',
        BucketSpec(
            "rest", "quota", scope="group", durability="strict", max_cost=50,
            quota=Quota(10_000, "month", 15, "UTC", "allow", "units"),
        ),
        "quota 10000/month, anchor 15, overage allowed, max_cost 50 per group",
        50,
    ),
    "decimal quota that allows overage: no bound": (
        '{ quota = "2.5/day", on_exhaust = "allow" }',
        BucketSpec("rest", "quota", quota=Quota(D("2.5"), "day", on_exhaust="allow")),
        "quota 2.5/day, overage allowed",
        None,
    ),
    "weekly quota from Wednesday": (
        '{ quota = "70/week", anchor = 2 }',
        BucketSpec("rest", "quota", quota=Quota(70, "week", 2)),
        "quota 70/week, anchor 2 (Wednesday)",
        70,
    ),
    "time quota": (
        '{ time_quota = "1h/day" }',
        BucketSpec("rest", "time-quota", quota=Quota(3600, "day", unit="seconds")),
        "time quota 1h/day",
        None,
    ),
    "time quota in ms per week": (
        '{ time_quota = "1500ms/week", on_exhaust = "allow" }',
        BucketSpec("rest", "time-quota", quota=Quota(D("1.5"), "week", unit="seconds", on_exhaust="allow")),
        "time quota 1500ms/week, overage allowed",
        None,
    ),
    "per-request cap": (
        "{ max_cost = 10000 }",
        BucketSpec("rest", "cap", max_cost=10_000),
        "max_cost 10000",
        10_000,
    ),
    "rates keep their capacity": (
        '{ rate = ["5/1s", "120/1m"], max_cost = 3 }',
        None,
        "5/1s, 120/1m, max_cost 3",
        3,
    ),
    "concurrency: its slots": (  # a request holding more than every slot could never be granted
        '{ concurrent = 2, when_full = "evict-oldest" }',
        None,
        "2 concurrent, evict-oldest when full",
        2,
    ),
}


@pytest.mark.parametrize("spec, expected, text, capacity", CASES.values(), ids=list(CASES))
def test_bucket_kinds(spec, expected, text, capacity):
    got = bucket(spec)
    if expected is not None:
        assert got == expected
        assert got.kind in BUCKET_KINDS
    assert str(got) == text
    assert got.capacity == capacity


def test_the_time_quota_counts_seconds_and_the_quota_amounts_exactly():
    assert bucket('{ time_quota = "90m/day" }').quota.limit == 5400
    limit = bucket('{ quota = "0.3/month", on_exhaust = "allow" }').quota.limit
    assert limit == D("0.3") and type(limit) is Decimal


def test_reserved_per_values():
    assert RESERVED_PER == ("connection", "lease")
    assert bucket('{ capacity = 500, per = "connection" }').per == "connection"


@pytest.mark.skipif(not has_zone("Europe/Berlin"), reason="no IANA time zone database on this machine (tzdata)")
def test_a_quota_in_a_time_zone():
    spec = bucket('{ quota = "100/day", timezone = "Europe/Berlin" }')
    assert spec.quota == Quota(100, "day", timezone="Europe/Berlin")
    assert str(spec) == "quota 100/day, Europe/Berlin"


@pytest.mark.skipif(not has_zone("Europe/Berlin"), reason="no IANA time zone database on this machine (tzdata)")
def test_an_unknown_time_zone_names_its_path_and_the_closest(tmp_path):
    file = tmp_path / "tiers.toml"
    file.write_text(PROVIDER.replace('{ rate = "60/1m" }', '{ quota = "1/day", timezone = "Europe/Berln" }'))
    with pytest.raises(ConfigError) as error:
        load_file(file)
    assert (error.value.path, error.value.detail) == (
        "providers.p.tiers.t.rest.timezone",
        '"Europe/Berln" is not a time zone (did you mean "Europe/Berlin"?): write an IANA name such as "UTC", '
        '"Europe/Berlin" or "America/New_York"',
    )


def test_a_machine_without_tzdata_is_told_so_and_utc_still_loads(tmp_path, monkeypatch):
    def missing(name):
        raise calendar.ZoneInfoNotFoundError(f"No time zone found with key {name}")

    monkeypatch.setattr(calendar, "ZoneInfo", missing)
    monkeypatch.setattr(calendar, "available_timezones", set)
    monkeypatch.setattr(calendar, "TZPATH", ("/usr/share/zoneinfo",))
    assert bucket('{ quota = "1/day", timezone = "UTC" }').quota.timezone == "UTC"
    file = tmp_path / "tiers.toml"
    file.write_text(PROVIDER.replace('{ rate = "60/1m" }', '{ quota = "1/day", timezone = "Asia/Tokyo" }'))
    with pytest.raises(ConfigError) as error:
        load_file(file)
    assert (error.value.path, error.value.detail) == (
        "providers.p.tiers.t.rest.timezone",
        'time zone "Asia/Tokyo" cannot be used: this machine has no IANA time zone database (looked in '
        "/usr/share/zoneinfo and for the Python package tzdata); install the system package tzdata or "
        '`pip install tzdata`, or use "UTC", which needs none',
    )


OVERRIDES = """
[providers.p]
docs = "https://example.com/limits"

[providers.p.endpoints]
"rest"     = ["rest"]
"subscribe" = ["filters"]
"credits"  = { buckets = ["credits"], cost = 0.1 }
"position" = ["per_wallet"]

[providers.p.tiers.t]
rest       = { rate = "60/1m" }
filters    = { unlimited = true }
credits    = { quota = "1000/month", on_exhaust = "allow" }
per_wallet = { capacity = 2, per = "wallet" }

[keys.k]
provider = "p"
tier = "t"

[keys.k.overrides]
filters = { max_cost = 50000 }
credits = { quota = "25000/month", anchor = 15 }
per_wallet = { capacity = 100 }
rest = { max_cost = 5 }
"""


def test_overrides_of_the_new_kinds():
    key = load_text(OVERRIDES).key("k")
    # "custom by agreement" on an unlimited bucket: max_cost alone makes it a cap
    assert key.buckets["filters"] == BucketSpec("filters", "cap", max_cost=50_000)
    # field by field: the tier's on_exhaust stays, the billing day and allowance change
    assert key.buckets["credits"].quota == Quota(25_000, "month", 15, on_exhaust="allow")
    # the scope stays
    assert key.buckets["per_wallet"] == BucketSpec("per_wallet", "capacity", count_limit=100, per="wallet")
    # max_cost alone over a rate bucket adds a cap and keeps the rate
    assert str(key.buckets["rest"]) == "60/1m, max_cost 5"
    assert key.overrides == frozenset({"filters", "credits", "per_wallet", "rest"})


def test_an_override_may_turn_a_cap_into_a_limit_of_another_kind():
    text = OVERRIDES.replace(
        "per_wallet = { capacity = 2", 'subscribe_cap = { max_cost = 10 }\nper_wallet = { capacity = 2'
    ) + "subscribe_cap = { unlimited = true }\n"  # into [keys.k.overrides], the last table
    assert load_text(text).key("k").buckets["subscribe_cap"].kind == "unlimited"


def test_keys_of_a_group_must_agree_on_a_shared_quota(tmp_path):
    text = (
        PROVIDER.replace('"rest" = ["rest"]', '"rest" = ["rest"]\n"credits" = ["credits"]')
        + 'credits = { quota = "100/month", scope = "group" }\n'
        + '[keys.a]\nprovider = "p"\ntier = "t"\ngroup = "org"\n'
        + '[keys.b]\nprovider = "p"\ntier = "t"\ngroup = "org"\noverrides = { credits = { anchor = 2 } }\n'
    )
    file = tmp_path / "tiers.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_file(file)
    assert error.value.path == "keys.b.group"
    assert error.value.detail == (
        'keys "a" and "b" of group "org" share bucket "credits" (scope = "group") but set different limits: '
        'quota 100/month per group on "a" (tier "t"), quota 100/month, anchor 2 per group on "b" (tier "t"); '
        "keys of one group must agree on the buckets they share"
    )
