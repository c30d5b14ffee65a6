"""Includes: bundled presets and files, merged in order, later wins; records replace, tables merge."""

from __future__ import annotations

import pytest

from ratelimitd.errors import ConfigError
from ratelimitd.tiers import load_file, load_text, preset_path

from .helpers import MS, PROVIDER, rates, write


def load(tmp_path, files, main="main.toml"):
    write(tmp_path, files)
    return load_file(tmp_path / main)


def load_error(tmp_path, files, main="main.toml") -> ConfigError:
    write(tmp_path, files)
    with pytest.raises(ConfigError) as error:
        load_file(tmp_path / main)
    return error.value


def test_a_user_file_includes_a_preset_and_only_adds_keys(tmp_path):
    table = load(tmp_path, {"main.toml": 'include = ["surchi"]\n[keys.research]\nprovider = "surchi"\ntier = "explorer"\n'})
    assert rates(table.route("research", "rest").buckets[0]) == [(60, "1m")]
    assert table.files == (str(tmp_path / "main.toml"), preset_path("surchi"))


def test_relative_includes_resolve_against_the_including_file(tmp_path):
    table = load(tmp_path, {
        "main.toml": 'include = ["conf/providers.toml"]\n[keys.k]\nprovider = "p"\ntier = "t"\n',
        "conf/providers.toml": 'include = ["./more/p.toml"]\n',
        "conf/more/p.toml": PROVIDER,
    })
    assert table.key("k").provider.name == "p"
    assert table.files == (
        str(tmp_path / "main.toml"), str(tmp_path / "conf/more/p.toml"), str(tmp_path / "conf/providers.toml")
    )


def test_load_text_resolves_includes_against_its_source(tmp_path):
    write(tmp_path, {"p.toml": PROVIDER})
    table = load_text('include = ["p.toml"]\n[keys.k]\nprovider = "p"\ntier = "t"\n', str(tmp_path / "inline.toml"))
    assert table.key("k").tier == "t"


def test_tables_merge_and_buckets_replace_whole(tmp_path):
    table = load(tmp_path, {"main.toml": """
include = ["polynode"]
[providers.polynode]
margin = "20ms"                                  # a new provider field, merged in
[providers.polynode.tiers.growth]
standard = { rate = "2500/1m" }                  # replaces this bucket only
[providers.polynode.tiers.growth.info]
note = "by agreement"                            # info merges value by value
[providers.polynode.tiers.custom]                # a tier of one's own
standard = { rate = "9000/1m" }
heavy = { rate = "3000/1m" }
[keys.g]
provider = "polynode"
tier = "growth"
[keys.c]
provider = "polynode"
tier = "custom"
"""})
    provider = table.providers["polynode"]
    assert provider.docs == "https://docs.polynode.dev/guides/rate-limits"  # kept from the preset
    growth = provider.tiers["growth"]
    assert rates(growth.buckets["standard"]) == [(2500, "1m")]
    assert rates(growth.buckets["heavy"]) == [(1500, "1m")]  # untouched
    assert growth.buckets["events_ws"].concurrent == 50
    assert growth.info["snapshot_count"] == 200 and growth.info["note"] == "by agreement"
    assert all(rate.margin == 20 * MS for bucket in growth.buckets.values() for rate in bucket.rates)
    assert list(provider.tiers) == ["free", "starter", "growth", "enterprise", "custom"]
    assert [rates(bucket) for bucket in table.route("c", "heavy").buckets] == [[(9000, "1m")], [(3000, "1m")]]


def test_a_redefined_bucket_inherits_nothing_from_the_earlier_one(tmp_path):
    table = load(tmp_path, {
        "base.toml": PROVIDER.replace('{ rate = "60/1m" }', '{ rate = "10/1s", algorithm = "gcra", burst = 20 }'),
        "main.toml": 'include = ["base.toml"]\n[providers.p.tiers.t]\nrest = { rate = "60/1m" }\n',
    })
    rest = table.providers["p"].tiers["t"].buckets["rest"]
    assert (rest.algorithm, rest.rates[0].burst) == ("sliding-log", None)


def test_a_redefined_endpoint_replaces_the_earlier_one(tmp_path):
    table = load(tmp_path, {"main.toml": """
include = ["polynode"]
[providers.polynode.endpoints]
"heavy" = ["heavy"]
"""})
    endpoints = table.providers["polynode"].endpoints
    assert endpoints["heavy"].buckets == ("heavy",)
    assert endpoints["rest"].buckets == ("standard",)  # the others stay


def test_later_files_win_and_the_including_file_wins_last(tmp_path):
    table = load(tmp_path, {
        "p.toml": PROVIDER + '[providers.p.tiers.u]\nrest = { rate = "6/1m" }\n',
        "one.toml": 'include = ["p.toml"]\n[keys.k]\nprovider = "p"\ntier = "t"\ngroup = "g"\n',
        "two.toml": '[keys.k]\nprovider = "p"\ntier = "u"\n',
        "main.toml": 'include = ["one.toml", "two.toml"]\n[keys.other]\nprovider = "p"\ntier = "t"\n',
    })
    key = table.key("k")
    assert (key.tier, key.group) == ("u", None)  # a key is a record: two.toml's replaces one.toml's whole
    load_main_last = load(tmp_path, {"main.toml": 'include = ["one.toml", "two.toml"]\n[keys.k]\nprovider = "p"\ntier = "t"\n'})
    assert load_main_last.key("k").tier == "t"


def test_replace_true_drops_what_earlier_files_said(tmp_path):
    table = load(tmp_path, {"main.toml": """
include = ["surchi"]
[providers.surchi]
replace = true
docs = "https://example.com/mine"
[providers.surchi.endpoints]
"rest" = ["rest"]
[providers.surchi.tiers.mine]
rest = { rate = "10/1m" }
"""})
    provider = table.providers["surchi"]
    assert list(provider.tiers) == ["mine"] and list(provider.endpoints) == ["rest"]
    assert provider.docs == "https://example.com/mine"


def test_a_file_included_twice_is_merged_once(tmp_path):
    table = load(tmp_path, {
        "a.toml": 'include = ["surchi"]\n[providers.surchi.tiers.explorer]\nrest = { rate = "30/1m" }\n',
        "b.toml": 'include = ["surchi"]\n',  # a diamond: surchi is not merged again over a.toml's change
        "main.toml": 'include = ["a.toml", "b.toml"]\n',
    })
    assert rates(table.providers["surchi"].tiers["explorer"].buckets["rest"]) == [(30, "1m")]
    assert table.files.count(preset_path("surchi")) == 1


def test_an_include_cycle_is_an_error(tmp_path):
    error = load_error(tmp_path, {
        "main.toml": 'include = ["a.toml"]\n',
        "a.toml": 'include = ["./b.toml"]\n',
        "b.toml": 'include = ["main.toml"]\n',
    })
    assert (error.file, error.path) == (str(tmp_path / "b.toml"), "include[0]")
    assert error.detail == (
        f"include cycle: {tmp_path / 'main.toml'} -> {tmp_path / 'a.toml'} -> {tmp_path / 'b.toml'} -> "
        f"{tmp_path / 'main.toml'}"
    )


def test_a_file_including_itself_is_a_cycle(tmp_path):
    error = load_error(tmp_path, {"main.toml": 'include = ["main.toml"]\n'})
    assert (error.file, error.path) == (str(tmp_path / "main.toml"), "include[0]")
    assert error.detail.startswith("include cycle: ")


def test_errors_name_the_file_that_set_the_value(tmp_path):
    files = {
        "p.toml": PROVIDER.replace('"60/1m"', '"60/1x"'),
        "main.toml": 'include = ["p.toml"]\n',
    }
    error = load_error(tmp_path, files)
    assert (error.file, error.path) == (str(tmp_path / "p.toml"), "providers.p.tiers.t.rest.rate")
    # the same mistake made by the including file is reported there
    error = load_error(tmp_path, {
        "p.toml": PROVIDER,
        "main.toml": 'include = ["p.toml"]\n[providers.p.tiers.t]\nrest = { rate = "60/1x" }\n',
    })
    assert (error.file, error.path) == (str(tmp_path / "main.toml"), "providers.p.tiers.t.rest.rate")
    # a key's override is reported at the key, a field it inherits at the tier
    error = load_error(tmp_path, {
        "p.toml": PROVIDER.replace('{ rate = "60/1m" }', '{ rate = "60/1m", algorithm = "gcra" }'),
        "main.toml": 'include = ["p.toml"]\n[keys.k]\nprovider = "p"\ntier = "t"\noverrides = { rest = { burst = 0 } }\n',
    })
    assert (error.file, error.path) == (str(tmp_path / "main.toml"), "keys.k.overrides.rest.burst")


def test_invalid_toml_in_an_included_file_names_it(tmp_path):
    error = load_error(tmp_path, {"bad.toml": "[providers.p\n", "main.toml": 'include = ["bad.toml"]\n'})
    assert (error.file, error.path) == (str(tmp_path / "bad.toml"), None)
    assert error.detail == "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 13)"
