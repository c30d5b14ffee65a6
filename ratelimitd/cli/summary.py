"""What ``ratelimitctl check`` reports about a tier table: a summary when it is valid, the error when not.

Pure functions over ``ratelimitd.tiers`` objects; loading and validating the
table is ``tiers.load_file``'s job. The JSON shapes are documented in
docs/ratelimitctl.md.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import ConfigError
from ..tiers.model import BucketSpec, TierTable
from ..units import seconds
from .render import NONE, columns, count, pairs

__all__ = ["table_summary", "bucket_summary", "error_summary", "check_text"]


def bucket_summary(bucket: BucketSpec) -> dict[str, Any]:
    """Return one bucket as ``check --json`` shows it: kind, scope, rates or concurrency, and ``limits`` as text."""
    summary: dict[str, Any] = {"kind": bucket.kind, "scope": bucket.scope, "limits": str(bucket)}
    if bucket.kind == "rate":
        summary["algorithm"] = bucket.algorithm
        summary["rates"] = [
            {"rate": str(rate), "limit": rate.limit, "window": seconds(rate.window), "margin": seconds(rate.margin)}
            for rate in bucket.rates
        ]
        if bucket.max_cost is not None:
            summary["max_cost"] = bucket.max_cost
    elif bucket.kind == "concurrency":
        summary["concurrent"] = bucket.concurrent
        summary["when_full"] = bucket.when_full
        summary["ttl"] = None if bucket.ttl is None else seconds(bucket.ttl)
        summary["idle"] = None if bucket.idle is None else seconds(bucket.idle)
    return summary


def table_summary(table: TierTable, file: str) -> dict[str, Any]:
    """Return what ``check --json`` prints for a valid table read from ``file``.

    ``counts`` has the number of providers, of tiers (over all providers), of
    keys, and of buckets (over all keys: what the daemon may keep state for).
    """
    providers = {
        name: {
            "docs": provider.docs,
            "endpoints": {endpoint.name: list(endpoint.buckets) for endpoint in provider.endpoints.values()},
            "tiers": list(provider.tiers),
        }
        for name, provider in table.providers.items()
    }
    keys = {
        name: {
            "provider": key.provider.name,
            "tier": key.tier,
            "group": key.group,
            "overrides": sorted(key.overrides),
            "buckets": {bucket.name: bucket_summary(bucket) for bucket in key.buckets.values()},
        }
        for name, key in table.keys.items()
    }
    return {
        "ok": True,
        "file": file,
        "files": list(table.files),
        "counts": {
            "providers": len(table.providers),
            "tiers": sum(len(provider.tiers) for provider in table.providers.values()),
            "keys": len(table.keys),
            "buckets": sum(len(key.buckets) for key in table.keys.values()),
        },
        "providers": providers,
        "keys": keys,
    }


def error_summary(error: ConfigError, file: str) -> dict[str, Any]:
    """Return what ``check --json`` prints for an invalid table: the whole message, and its file, TOML path and detail apart.

    ``file`` is the file the error is in (an include, perhaps), else the file
    checked; ``path`` is None when the error concerns the whole file (it is not
    TOML, it cannot be read).
    """
    return {"ok": False, "error": str(error), "file": error.file or file, "path": error.path, "detail": error.detail}


def check_text(summary: Mapping[str, Any]) -> str:
    """Return the human summary of a valid table: counts, files read, and a row per key with its buckets' limits."""
    counts = summary["counts"]
    numbers = ", ".join(count(counts[name], name) for name in ("providers", "tiers", "keys", "buckets"))
    lines = [f"{summary['file']}: valid tier table; {numbers}"]
    files = summary["files"]
    if len(files) > 1:
        lines.append(pairs([("files", files[0]), *(("", name) for name in files[1:])]))
    providers = summary["providers"]
    if providers:
        rows = [(name, ", ".join(p["tiers"]) or NONE, ", ".join(p["endpoints"]) or NONE) for name, p in providers.items()]
        lines += ["", columns(("PROVIDER", "TIERS", "ENDPOINTS"), rows)]
    keys = summary["keys"]
    if keys:
        rows = [
            (
                name,
                key["provider"],
                key["tier"],
                key["group"] or NONE,
                "; ".join(f"{bucket} {spec['limits']}" for bucket, spec in key["buckets"].items()) or NONE,
            )
            for name, key in keys.items()
        ]
        lines += ["", columns(("KEY", "PROVIDER", "TIER", "GROUP", "BUCKETS"), rows)]
    else:
        lines += ["", "no keys: the daemon would serve nothing"]
    return "\n".join(lines)
