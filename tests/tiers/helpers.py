"""Helpers for tier-table tests: write files, load them, read a bucket's numbers back."""

from __future__ import annotations

from pathlib import Path

from ratelimitd.tiers import BucketSpec
from ratelimitd.units import format_duration

MS = 1_000_000
S = 1_000 * MS
M = 60 * S


def write(directory: Path, files: dict[str, str]) -> None:
    """Write each ``name: text`` of ``files`` under ``directory`` (names may hold subdirectories)."""
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def rates(bucket: BucketSpec) -> list[tuple[object, str]]:
    """Return the bucket's rates as ``(limit, window)`` with the window spelled as in a table ("1m")."""
    return [(rate.limit, format_duration(rate.window)) for rate in bucket.rates]


# a minimal valid provider, for tests that need one to hang a key or an error on
PROVIDER = """
[providers.p]
docs = "https://example.com/limits"

[providers.p.endpoints]
"rest" = ["rest"]

[providers.p.tiers.t]
rest = { rate = "60/1m" }
"""
