"""Every validation error: the file, the TOML path of the offending value, and a message with the value.

Each case is (what the table says, TOML path, message). ``PROVIDER`` is a small
valid provider; the cases change one thing in it.
"""

from __future__ import annotations

import pytest

from ratelimitd.errors import ConfigError
from ratelimitd.tiers import load_file, load_text

from .helpers import PROVIDER

RATE_FORMS = (
    'write "N/DURATION": a positive number, "/", and an integer count with one of ms, s, m, h, d '
    '(e.g. "60/1m", "5/1s", "1,200/1m", "0.5/1s")'
)
DURATION_FORMS = 'write an integer count and one of ms, s, m, h, d (e.g. "100ms", "45m", "1d")'
BUCKET = "providers.p.tiers.t.rest"


def bucket(spec: str) -> str:
    """Return PROVIDER with bucket ``rest`` written as ``spec``."""
    return PROVIDER.replace('rest = { rate = "60/1m" }', f"rest = {spec}")


def endpoint(spec: str) -> str:
    """Return PROVIDER with endpoint ``rest`` written as ``spec``."""
    return PROVIDER.replace('"rest" = ["rest"]', f'"rest" = {spec}')


def key(body: str) -> str:
    """Return PROVIDER with a key ``k`` whose table is ``body``."""
    return PROVIDER + f"[keys.k]\n{body}\n"


CASES = {
    # fields nobody accepts: typos must not pass silently
    "top-level typo": (
        'provders = {}\n' + PROVIDER,
        "provders",
        'unknown field "provders" in the tier table (did you mean "providers"?); accepted: include, providers, keys, access',
    ),
    "provider typo": (
        PROVIDER.replace("docs =", "doc ="),
        "providers.p.doc",
        'unknown field "doc" in provider "p" (did you mean "docs"?); accepted: docs, margin, endpoints, tiers, routes, replace',
    ),
    "bucket typo": (
        bucket('{ rate = "10/1s", algorithm = "gcra", brust = 5 }'),
        f"{BUCKET}.brust",
        'unknown field "brust" in bucket "rest" (did you mean "burst"?); accepted: rate, algorithm, burst, margin, '
        "max_cost, scope, durability, unlimited, concurrent, when_full, ttl, idle, capacity, per, quota, anchor, "
        "timezone, on_exhaust, time_quota",
    ),
    "endpoint typo": (
        endpoint('{ buckets = ["rest"], costs = 2 }'),
        "providers.p.endpoints.rest.costs",
        'unknown field "costs" in endpoint "rest" (did you mean "cost"?); accepted: buckets, cost',
    ),
    "key typo": (
        key('provider = "p"\ntier = "t"\nsecret = "abc"'),
        "keys.k.secret",
        'unknown field "secret" in key "k"; accepted: provider, tier, group, overrides, allow',
    ),
    # rates, durations, amounts
    "bad rate unit": (bucket('{ rate = "60/1x" }'), f"{BUCKET}.rate", f'"60/1x" is not a rate: {RATE_FORMS}'),
    "zero rate": (bucket('{ rate = "0/1m" }'), f"{BUCKET}.rate", '"0/1m" is not a rate: its limit must be positive'),
    "zero window": (
        bucket('{ rate = "5/0s" }'), f"{BUCKET}.rate", '"5/0s" is not a rate: its window must be longer than zero'
    ),
    "rate as a number": (bucket("{ rate = 60 }"), f"{BUCKET}.rate", f"60 is not a rate: {RATE_FORMS}"),
    "bad rate in a list": (
        bucket('{ rate = ["5/1s", "60/"] }'), f"{BUCKET}.rate[1]", f'"60/" is not a rate: {RATE_FORMS}'
    ),
    "empty rate list": (
        bucket("{ rate = [] }"), f"{BUCKET}.rate", f'bucket "rest" has an empty list of rates: {RATE_FORMS}'
    ),
    "bad margin": (
        bucket('{ rate = "60/1m", margin = "100 msec" }'),
        f"{BUCKET}.margin",
        f'"100 msec" is not a duration: {DURATION_FORMS}',
    ),
    "margin as a number": (
        bucket('{ rate = "60/1m", margin = 100 }'),
        f"{BUCKET}.margin",
        f"100 is not a duration: {DURATION_FORMS}, as a string",
    ),
    "bad provider margin": (
        PROVIDER.replace("docs =", 'margin = "1x"\ndocs ='),
        "providers.p.margin",
        f'"1x" is not a duration: {DURATION_FORMS}',
    ),
    "negative max_cost": (
        bucket('{ rate = "60/1m", max_cost = -1 }'),
        f"{BUCKET}.max_cost",
        "-1 is not a valid max_cost: write a positive integer or decimal (e.g. 1, 100, 0.1)",
    ),
    "zero cost": (
        endpoint('{ buckets = ["rest"], cost = 0 }'),
        "providers.p.endpoints.rest.cost",
        "0 is not a valid cost: write a positive integer or decimal (e.g. 1, 100, 0.1)",
    ),
    # algorithms and their options
    "unknown algorithm": (
        bucket('{ rate = "60/1m", algorithm = "leaky" }'),
        f"{BUCKET}.algorithm",
        '"leaky" is not an algorithm; accepted: "sliding-log", "sliding-window", "fixed-window", "gcra"',
    ),
    "burst without gcra": (
        bucket('{ rate = "60/1m", burst = 5 }'),
        f"{BUCKET}.burst",
        'burst applies only to algorithm = "gcra" (this bucket uses "sliding-log"): set algorithm = "gcra" or remove burst',
    ),
    "burst on two rates": (
        bucket('{ rate = ["1/1s", "60/1m"], algorithm = "gcra", burst = 5 }'),
        f"{BUCKET}.burst",
        'burst applies to a single rate and bucket "rest" has 2: give the rate that bursts a bucket of its own',
    ),
    "unknown scope": (
        bucket('{ rate = "60/1m", scope = "org" }'), f"{BUCKET}.scope", '"org" is not a scope; accepted: "key", "group"'
    ),
    # bucket kinds
    "bucket not a table": (
        bucket('"60/1m"'),
        BUCKET,
        'bucket "rest" must be a table such as { rate = "60/1m" }, not a string ("60/1m")',
    ),
    "bucket without a limit": (
        bucket('{ scope = "key" }'),
        BUCKET,
        'bucket "rest" sets no limit: give it a rate (rate = "60/1m"), unlimited = true, concurrent = N, '
        'capacity = N, quota = "N/month", time_quota = "1h/day", or max_cost = N',
    ),
    "two kinds in one bucket": (
        bucket('{ rate = "60/1m", concurrent = 5 }'),
        f"{BUCKET}.concurrent",
        'bucket "rest" sets both "rate" and "concurrent": a bucket has one kind; make two buckets and list both '
        "in the endpoint",
    ),
    "field of another kind": (
        bucket('{ concurrent = 2, algorithm = "gcra" }'),
        f"{BUCKET}.algorithm",
        '"algorithm" does not apply to a concurrency bucket; accepted: concurrent, when_full, ttl, idle, scope',
    ),
    "unlimited false": (
        bucket("{ unlimited = false }"),
        f"{BUCKET}.unlimited",
        "unlimited = false is not a limit: write unlimited = true, give the bucket a rate, or leave it out to make "
        "it not available on this tier",
    ),
    "unknown when_full": (
        bucket('{ concurrent = 2, when_full = "evict-newest" }'),
        f"{BUCKET}.when_full",
        '"evict-newest" is not a when_full policy (did you mean "evict-oldest"?); accepted: "reject", "evict-oldest"',
    ),
    "zero concurrent": (
        bucket("{ concurrent = 0 }"),
        f"{BUCKET}.concurrent",
        "0 is not a valid number of concurrent leases: write a positive integer (e.g. 1, 10)",
    ),
    "zero ttl": (
        bucket('{ concurrent = 1, ttl = "0s" }'), f"{BUCKET}.ttl", '"0s" is not a valid ttl: it must be longer than zero'
    ),
    "bad idle": (bucket('{ concurrent = 1, idle = "45min" }'), f"{BUCKET}.idle", f'"45min" is not a duration: {DURATION_FORMS}'),
    # capacity counts
    "zero capacity": (
        bucket("{ capacity = 0 }"),
        f"{BUCKET}.capacity",
        "0 is not a valid capacity: write a positive integer (e.g. 1, 10)",
    ),
    "fractional capacity": (
        bucket("{ capacity = 2.5 }"),
        f"{BUCKET}.capacity",
        "2.5 is not a valid capacity: write a positive integer (e.g. 1, 10)",
    ),
    "per not a string": (
        bucket("{ capacity = 2, per = 5 }"),
        f"{BUCKET}.per",
        '5 is not a valid per: write the name of a scope the request supplies (e.g. per = "wallet"), or one the '
        'daemon supplies: "connection", "lease"',
    ),
    "per empty": (
        bucket('{ capacity = 2, per = "" }'),
        f"{BUCKET}.per",
        '"" is not a valid per: write the name of a scope the request supplies (e.g. per = "wallet"), or one the '
        'daemon supplies: "connection", "lease"',
    ),
    "per key": (
        bucket('{ capacity = 2, per = "key" }'),
        f"{BUCKET}.per",
        'per = "key" is what scope says: leave per out for one count per key (or per group, with scope = "group"), '
        'or write the name of a scope the request supplies (e.g. per = "wallet"), or one the daemon supplies: '
        '"connection", "lease"',
    ),
    "per with a slash": (
        bucket('{ capacity = 2, per = "wallet/id" }'),
        f"{BUCKET}.per",
        '"wallet/id" is not a valid per: a scope name is letters, digits, "_" and "-" (e.g. "wallet")',
    ),
    "field of another kind on a capacity": (
        bucket('{ capacity = 2, when_full = "reject" }'),
        f"{BUCKET}.when_full",
        '"when_full" does not apply to a capacity bucket; accepted: capacity, per, max_cost, scope',
    ),
    "capacity and concurrent": (
        bucket("{ concurrent = 2, capacity = 5 }"),
        f"{BUCKET}.capacity",
        'bucket "rest" sets both "concurrent" and "capacity": a bucket has one kind; make two buckets and list both '
        "in the endpoint",
    ),
    "cost beyond a capacity": (
        endpoint('{ buckets = ["rest"], cost = 3 }').replace('{ rate = "60/1m" }', '{ capacity = 2, per = "wallet" }'),
        "providers.p.endpoints.rest.cost",
        'the cost 3 of endpoint "rest" exceeds 2, the most bucket "rest" grants in one request (capacity 2) '
        'on tier "t": no call could ever be granted; lower the endpoint\'s cost or raise the limit',
    ),
    # per-request caps
    "cap with a scope": (
        bucket('{ max_cost = 5, scope = "group" }'),
        f"{BUCKET}.scope",
        '"scope" does not apply to a cap bucket; accepted: max_cost',
    ),
    "zero cap": (
        bucket("{ max_cost = 0 }"),
        f"{BUCKET}.max_cost",
        "0 is not a valid max_cost: write a positive integer or decimal (e.g. 1, 100, 0.1)",
    ),
    "cap on an unlimited bucket": (
        bucket("{ unlimited = true, max_cost = 5 }"),
        f"{BUCKET}.max_cost",
        '"max_cost" does not apply to an unlimited bucket; accepted: unlimited',
    ),
    # calendar quotas
    "quota over a rolling window": (
        bucket('{ quota = "10000/30d" }'),
        f"{BUCKET}.quota",
        '"10000/30d" is not a quota: "30d" is a duration, not a calendar period (day, week or month); '
        'for a rolling window write rate = "10000/30d"',
    ),
    "quota over a bare unit": (
        bucket('{ quota = "10000/d" }'),
        f"{BUCKET}.quota",
        '"10000/d" is not a quota: "d" is a duration, not a calendar period (day, week or month); '
        'for a rolling window write rate = "10000/d"',
    ),
    "quota per year": (
        bucket('{ quota = "10000/year" }'),
        f"{BUCKET}.quota",
        '"10000/year" is not a quota: "year" is not a calendar period; accepted: "day", "week", "month"',
    ),
    "quota per months": (
        bucket('{ quota = "10000/months" }'),
        f"{BUCKET}.quota",
        '"10000/months" is not a quota: "months" is not a calendar period (did you mean "month"?); '
        'accepted: "day", "week", "month"',
    ),
    "quota without a period": (
        bucket('{ quota = "10000" }'),
        f"{BUCKET}.quota",
        '"10000" is not a quota: write "N/PERIOD": a positive number, "/", and a calendar period: day, week or month '
        '(e.g. "10000/month", "1,000/day", "0.5/week")',
    ),
    "quota as a number": (
        bucket("{ quota = 10000 }"),
        f"{BUCKET}.quota",
        '10000 is not a quota: write "N/PERIOD": a positive number, "/", and a calendar period: day, week or month '
        '(e.g. "10000/month", "1,000/day", "0.5/week")',
    ),
    "zero quota": (
        bucket('{ quota = "0/month" }'), f"{BUCKET}.quota", '"0/month" is not a quota: its limit must be positive'
    ),
    "monthly anchor out of range": (
        bucket('{ quota = "10000/month", anchor = 31 }'),
        f"{BUCKET}.anchor",
        "31 is not a valid anchor of a monthly quota: write the billing day, an integer from 1 to 28 "
        "(every month has it)",
    ),
    "monthly anchor zero": (
        bucket('{ quota = "10000/month", anchor = 0 }'),
        f"{BUCKET}.anchor",
        "0 is not a valid anchor of a monthly quota: write the billing day, an integer from 1 to 28 "
        "(every month has it)",
    ),
    "weekly anchor as a name": (
        bucket('{ quota = "70/week", anchor = "monday" }'),
        f"{BUCKET}.anchor",
        '"monday" is not a valid anchor of a weekly quota: write the weekday its weeks start on, an integer '
        "from 0 (Monday) to 6 (Sunday)",
    ),
    "weekly anchor out of range": (
        bucket('{ quota = "70/week", anchor = 7 }'),
        f"{BUCKET}.anchor",
        "7 is not a valid anchor of a weekly quota: write the weekday its weeks start on, an integer "
        "from 0 (Monday) to 6 (Sunday)",
    ),
    "anchor on a daily quota": (
        bucket('{ quota = "100/day", anchor = 1 }'),
        f"{BUCKET}.anchor",
        "anchor does not apply to a daily quota: a day starts at midnight in its time zone; remove anchor",
    ),
    "time zone not a string": (
        bucket('{ quota = "100/day", timezone = 1 }'),
        f"{BUCKET}.timezone",
        '1 is not a time zone: write an IANA name such as "UTC", "Europe/Berlin" or "America/New_York", as a string',
    ),
    "unknown on_exhaust": (
        bucket('{ quota = "100/day", on_exhaust = "block" }'),
        f"{BUCKET}.on_exhaust",
        '"block" is not an on_exhaust policy; accepted: "deny", "allow"',
    ),
    "algorithm on a quota": (
        bucket('{ quota = "100/day", algorithm = "gcra" }'),
        f"{BUCKET}.algorithm",
        '"algorithm" does not apply to a quota bucket; accepted: quota, anchor, timezone, on_exhaust, max_cost, scope, '
        "durability",
    ),
    "cost beyond a denying quota": (
        endpoint('{ buckets = ["rest"], cost = 2 }').replace('{ rate = "60/1m" }', '{ quota = "1.5/month" }'),
        "providers.p.endpoints.rest.cost",
        'the cost 2 of endpoint "rest" exceeds 1.5, the most bucket "rest" grants in one request (quota 1.5/month) '
        'on tier "t": no call could ever be granted; lower the endpoint\'s cost or raise the limit',
    ),
    # time quotas
    "time quota of a count": (
        bucket('{ time_quota = "60/day" }'),
        f"{BUCKET}.time_quota",
        '"60/day" is not a time quota: write "DURATION/PERIOD": an integer count with one of ms, s, m, h, d, "/", '
        'and a calendar period: day, week or month (e.g. "1h/day", "90m/week")',
    ),
    "time quota over a rolling window": (
        bucket('{ time_quota = "1h/1d" }'),
        f"{BUCKET}.time_quota",
        '"1h/1d" is not a time quota: "1d" is a duration, not a calendar period (day, week or month)',
    ),
    "zero time quota": (
        bucket('{ time_quota = "0s/day" }'),
        f"{BUCKET}.time_quota",
        '"0s/day" is not a time quota: its duration must be longer than zero',
    ),
    "max_cost on a time quota": (
        bucket('{ time_quota = "1h/day", max_cost = 5 }'),
        f"{BUCKET}.max_cost",
        '"max_cost" does not apply to a time-quota bucket; accepted: time_quota, anchor, timezone, on_exhaust, scope, '
        "durability",
    ),
    "override with a bad max_cost": (
        key('provider = "p"\ntier = "t"\noverrides = { rest = { max_cost = -2 } }'),
        "keys.k.overrides.rest.max_cost",
        "-2 is not a valid max_cost: write a positive integer or decimal (e.g. 1, 100, 0.1)",
    ),
    "info of a date": (
        PROVIDER + "[providers.p.tiers.t.info]\nsince = 1979-05-27\n",
        "providers.p.tiers.t.info.since",
        'informational value "since" is a date/time: write a string, a number, a boolean, or an array of them',
    ),
    # providers and endpoints
    "provider without endpoints": (
        '[providers.p.tiers.t]\nrest = { rate = "60/1m" }\n',
        "providers.p",
        'provider "p" defines no endpoints: add [providers.NAME.endpoints]',
    ),
    "provider without tiers": (
        '[providers.p.endpoints]\n"rest" = ["rest"]\n',
        "providers.p",
        'provider "p" defines no tiers: add [providers.NAME.tiers.TIER]',
    ),
    "endpoint naming a bucket no tier defines": (
        endpoint('["rets"]'),
        "providers.p.endpoints.rest[0]",
        'endpoint "rest" consumes from bucket "rets" (did you mean "rest"?), which no tier of provider "p" defines; '
        'the tiers define "rest"',
    ),
    "endpoint with no bucket": (
        endpoint("[]"), "providers.p.endpoints.rest", 'endpoint "rest" consumes from no bucket: name at least one'
    ),
    "endpoint listing a bucket twice": (
        endpoint('["rest", "rest"]'), "providers.p.endpoints.rest[1]", 'endpoint "rest" lists bucket "rest" twice'
    ),
    "endpoint as a string": (
        endpoint('"rest"'),
        "providers.p.endpoints.rest",
        'endpoint "rest" must list the buckets one call consumes, e.g. ["rest"] or '
        '{ buckets = ["standard", "heavy"], cost = 1 }, not a string ("rest")',
    ),
    "cost beyond every grant": (
        endpoint('{ buckets = ["rest"], cost = 61 }'),
        "providers.p.endpoints.rest.cost",
        'the cost 61 of endpoint "rest" exceeds 60, the most bucket "rest" grants in one request (rate 60/1m) '
        'on tier "t": no call could ever be granted; lower the endpoint\'s cost or raise the limit',
    ),
    "cost beyond max_cost": (
        endpoint('{ buckets = ["rest"], cost = 10 }').replace('{ rate = "60/1m" }', '{ rate = "60/1m", max_cost = 5 }'),
        "providers.p.endpoints.rest.cost",
        'the cost 10 of endpoint "rest" exceeds 5, the most bucket "rest" grants in one request (max_cost 5) '
        'on tier "t": no call could ever be granted; lower the endpoint\'s cost or raise the limit',
    ),
    "default cost beyond a fractional rate": (
        bucket('{ rate = "0.5/1s" }'),
        "providers.p.endpoints.rest",
        'the cost 1 of endpoint "rest" exceeds 0.5, the most bucket "rest" grants in one request (rate 0.5/1s) '
        'on tier "t": no call could ever be granted; lower the endpoint\'s cost or raise the limit',
    ),
    # keys
    "key naming an unknown provider": (
        key('provider = "q"\ntier = "t"'), "keys.k.provider", 'unknown provider "q"; the table defines "p"'
    ),
    "key naming a preset not included": (
        key('provider = "surchi"\ntier = "explorer"'),
        "keys.k.provider",
        'unknown provider "surchi"; the table defines "p"; "surchi" is a bundled preset: add include = ["surchi"] '
        "at the top",
    ),
    "key naming an unknown tier": (
        key('provider = "p"\ntier = "tt"'), "keys.k.tier", 'unknown tier "tt" (did you mean "t"?); provider "p" defines "t"'
    ),
    "key without a tier": (key('provider = "p"'), "keys.k", 'key "k" names no tier: add tier = "NAME"'),
    "key with an empty group": (
        key('provider = "p"\ntier = "t"\ngroup = ""'), "keys.k.group", "group must not be empty"
    ),
    "override of a bucket the tier lacks": (
        key('provider = "p"\ntier = "t"\noverrides = { ws = { concurrent = 2 } }'),
        "keys.k.overrides.ws",
        'tier "t" of provider "p" has no bucket "ws" to override; it has "rest"',
    ),
    "override with a bad rate": (
        key('provider = "p"\ntier = "t"\noverrides = { rest = { rate = "100/1y" } }'),
        "keys.k.overrides.rest.rate",
        f'"100/1y" is not a rate: {RATE_FORMS}',
    ),
    "override below the endpoint's cost": (
        endpoint('{ buckets = ["rest"], cost = 10 }')
        + '[keys.k]\nprovider = "p"\ntier = "t"\noverrides = { rest = { rate = "5/1s" } }\n',
        "keys.k.overrides.rest",
        'the cost 10 of endpoint "rest" exceeds 5, the most bucket "rest" grants in one request (rate 5/1s) '
        'on key "k": no call could ever be granted; raise the overridden limit or lower the endpoint\'s cost',
    ),
    "group shared across providers": (
        PROVIDER.replace('"rest" = ["rest"]', '"rest" = ["rest"]\n"ws" = ["ws"]')
        + 'ws = { concurrent = 2, scope = "group" }\n'
        + PROVIDER.replace("providers.p", "providers.q").replace('"rest" = ["rest"]', '"rest" = ["rest"]\n"ws" = ["ws"]')
        + 'ws = { concurrent = 2, scope = "group" }\n'
        + '[keys.a]\nprovider = "p"\ntier = "t"\ngroup = "org"\n[keys.b]\nprovider = "q"\ntier = "t"\ngroup = "org"\n',
        "keys.b.group",
        'group "org" would share bucket "ws" between key "a" of provider "p" and key "b" of provider "q": '
        "a group's shared buckets belong to one provider; use a group per provider",
    ),
    # includes
    "unknown preset": (
        'include = ["survhi"]\n',
        "include[0]",
        '"survhi" is not a bundled preset (did you mean "surchi"?); the presets are "houdini", "lasersell", '
        '"polynode", "struct", "surchi" (a file path needs a "/" or the ".toml" suffix, e.g. "./survhi.toml")',
    ),
    "include of a number": ("include = [1]\n", "include[0]", "1 is not a preset name or a file path"),
    "include not a list": (
        "include = 5\n",
        "include",
        'include must be an array of preset names and file paths, e.g. include = ["surchi", "./more.toml"]',
    ),
    "replace not a boolean": (
        PROVIDER.replace("docs =", 'replace = "yes"\ndocs ='),
        "providers.p.replace",
        '"yes" is not a boolean: write replace = true to drop what earlier files said about provider "p"',
    ),
}


@pytest.mark.parametrize("text, path, message", CASES.values(), ids=list(CASES))
def test_validation_error(tmp_path, text, path, message):
    file = tmp_path / "tiers.toml"
    file.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_file(file)
    assert (error.value.file, error.value.path, error.value.detail) == (str(file), path, message)
    assert str(error.value) == f"{file}: {path}: {message}"
    assert error.value.code == "invalid-table"


def test_invalid_toml_reports_line_and_column(tmp_path):
    file = tmp_path / "tiers.toml"
    file.write_text(PROVIDER + '[keys.k]\nprovider = "p"\ntier = \n')
    with pytest.raises(ConfigError) as error:
        load_file(file)
    assert (error.value.file, error.value.path) == (str(file), None)
    assert error.value.detail == "not valid TOML: Invalid value (at line 12, column 8)"


def test_missing_files(tmp_path):
    with pytest.raises(ConfigError) as error:
        load_file(tmp_path / "nope.toml")
    assert (error.value.file, error.value.path) == (str(tmp_path / "nope.toml"), None)
    assert error.value.detail == "cannot read the tier table: No such file or directory"
    with pytest.raises(ConfigError) as error:
        load_text('include = ["./gone.toml"]\n', str(tmp_path / "main.toml"))
    assert (error.value.file, error.value.path) == (str(tmp_path / "main.toml"), "include[0]")
    assert error.value.detail == f'cannot read the included file "{tmp_path / "gone.toml"}": No such file or directory'


def test_a_file_that_is_not_utf8(tmp_path):
    file = tmp_path / "tiers.toml"
    file.write_bytes(b'[keys.k]\nprovider = "\xff"\n')
    with pytest.raises(ConfigError) as error:
        load_file(file)
    assert error.value.detail == "not UTF-8 text: byte 21 cannot be decoded"
