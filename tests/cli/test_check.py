"""``ratelimitctl check``: validate a tier table without a daemon; exact output for good and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import TABLE, ctl, parse

RATE_FORMS = (
    'write "N/DURATION": a positive number, "/", and an integer count with one of ms, s, m, h, d '
    '(e.g. "60/1m", "5/1s", "1,200/1m", "0.5/1s")'
)


def test_valid_table_prints_a_summary(tmp_path: Path) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text(TABLE + '\n[keys.other]\nprovider = "p"\ntier = "t"\n')
    result = ctl("check", str(path))
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == (
        f"{path}: valid tier table; 1 provider, 1 tier, 2 keys, 8 buckets\n"
        "\n"
        "PROVIDER  TIERS  ENDPOINTS\n"
        "p         t      rest, heavy, tick, credits\n"
        "\n"
        "KEY    PROVIDER  TIER  GROUP  BUCKETS\n"
        "k      p         t     -      rest 3/1m; heavy 1/1m; tick 1/1s; credits 1/1h\n"
        "other  p         t     -      rest 3/1m; heavy 1/1m; tick 1/1s; credits 1/1h\n"
    )


def test_valid_table_json(tmp_path: Path) -> None:
    path = tmp_path / "tiers.toml"
    path.write_text(TABLE)
    result = ctl("check", "--json", str(path))
    assert result.exit_code == 0
    summary = parse(result.stdout)
    assert summary["ok"] is True
    assert summary["file"] == str(path)
    assert summary["files"] == [str(path)]
    assert summary["counts"] == {"providers": 1, "tiers": 1, "keys": 1, "buckets": 4}
    assert summary["providers"] == {
        "p": {
            "docs": "https://example.com/limits",
            "endpoints": {"rest": ["rest"], "heavy": ["rest", "heavy"], "tick": ["tick"], "credits": ["credits"]},
            "tiers": ["t"],
        }
    }
    key = summary["keys"]["k"]
    assert (key["provider"], key["tier"], key["group"], key["overrides"]) == ("p", "t", None, [])
    assert key["buckets"]["rest"] == {
        "kind": "rate",
        "scope": "key",
        "limits": "3/1m",
        "algorithm": "sliding-log",
        "rates": [{"rate": "3/1m", "limit": 3, "window": 60, "margin": parse("0.1")}],
    }


def test_example_table_is_valid() -> None:
    example = Path(__file__).parents[2] / "examples" / "tiers.toml"
    result = ctl("check", "--json", str(example))
    assert result.exit_code == 0, result.output
    summary = parse(result.stdout)
    assert summary["counts"]["keys"] == 5
    assert summary["keys"]["acme-ingest"]["buckets"]["ws"]["scope"] == "group"
    assert summary["keys"]["research"]["buckets"]["ws"] == {
        "kind": "concurrency",
        "scope": "key",
        "limits": "1 concurrent, evict-oldest when full",
        "concurrent": 1,
        "when_full": "evict-oldest",
        "ttl": None,
        "idle": None,
    }


BAD = {
    "validation": (
        TABLE.replace('rest = { rate = "3/1m" }', 'rest = { rate = "3/1x" }'),
        "providers.p.tiers.t.rest.rate",
        f'"3/1x" is not a rate: {RATE_FORMS}',
    ),
    "unknown key field": (
        TABLE + 'secret = "abc"\n',
        "keys.k.secret",
        'unknown field "secret" in key "k"; accepted: provider, tier, group, overrides, allow',
    ),
    "not TOML": (
        "[providers.p\n",
        None,
        "not valid TOML: Expected ']' at the end of a table declaration (at line 1, column 13)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_table_names_file_and_path(tmp_path: Path, case: str) -> None:
    text, toml_path, detail = BAD[case]
    path = tmp_path / "tiers.toml"
    path.write_text(text)
    where = f"{path}: {toml_path}" if toml_path else str(path)

    result = ctl("check", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"Error: {where}: {detail}\n"

    result = ctl("check", "--json", str(path))
    assert result.exit_code == 1
    assert parse(result.stdout) == {
        "ok": False,
        "error": f"{where}: {detail}",
        "file": str(path),
        "path": toml_path,
        "detail": detail,
    }


def test_error_in_an_include_names_the_included_file(tmp_path: Path) -> None:
    (tmp_path / "part").mkdir()
    part = tmp_path / "part" / "keys.toml"
    part.write_text('[keys.k]\nprovider = "p"\ntier = "gold"\n')
    main = tmp_path / "tiers.toml"
    main.write_text('include = ["part/keys.toml"]\n' + TABLE.split("[keys.k]")[0])
    result = ctl("check", "--json", str(main))
    assert result.exit_code == 1
    error = parse(result.stdout)
    assert error["file"] == str(part)
    assert error["path"] == "keys.k.tier"
    assert error["error"].startswith(f"{part}: keys.k.tier: ")
    assert "gold" in error["detail"]


def test_missing_file_is_an_invalid_table_not_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    result = ctl("check", str(path))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {path}: cannot read the tier table: No such file or directory\n"


def test_check_needs_a_file() -> None:
    result = ctl("check")
    assert result.exit_code == 2
    assert "Missing argument 'FILE'" in result.stderr
