"""What the engine reports about buckets: ``show`` for a key, and each bucket's wire description.

A mixin of ``Engine``; reading only, it never changes state.
"""

from __future__ import annotations

from typing import Any

from ..units import format_duration, seconds
from .bucket import Bucket
from .leases import Lease

__all__ = ["Describing", "describe_bucket"]


class Describing:
    """``show`` for the ``Engine``."""

    def show(self, key: str, now: int) -> dict[str, Any]:
        """Return what ``show`` reports for ``key``: its provider, tier and every bucket's use at ``now``."""
        spec = self.table.key(key)
        buckets = []
        for bucket_spec in spec.buckets.values():
            owner = spec.owner(bucket_spec)
            bucket = self._buckets.get((owner, bucket_spec.name)) or Bucket(owner, bucket_spec)
            waiting = sum(1 for waiter in self._queue if waiter.live and bucket in waiter.buckets)
            description = describe_bucket(bucket, now, waiting=waiting, leases=self.leases.by_id)
            if getattr(bucket_spec, "per", None):
                prefix = f"{owner}/"
                description["scopes"] = {
                    other.owner[len(prefix):]: describe_bucket(other, now, leases=self.leases.by_id)
                    for (who, name), other in self._buckets.items()
                    if name == bucket_spec.name and who.startswith(prefix)
                }
            buckets.append(description)
        return {
            "key": spec.name,
            "provider": spec.provider.name,
            "tier": spec.tier,
            "group": spec.group,
            "docs": spec.provider.docs,
            "info": dict(spec.info),
            "endpoints": {name: list(e.buckets) for name, e in spec.provider.endpoints.items()},
            "buckets": buckets,
        }


def describe_bucket(
    bucket: Bucket, now: int, usage: bool = True, waiting: int = 0, leases: dict[str, Lease] | None = None
) -> dict[str, Any]:
    """Return the wire description of ``bucket``: its spec, and with ``usage`` its state at ``now``."""
    spec = bucket.spec
    rates = []
    for index, rate in enumerate(spec.rates):
        entry: dict[str, Any] = {
            "rate": str(rate),
            "limit": rate.limit,
            "window": seconds(rate.window),
            "window_text": format_duration(rate.window),
            "margin": seconds(rate.margin),
        }
        if rate.burst is not None:
            entry["burst"] = rate.burst
        if usage and index < len(bucket.limiters):
            limiter = bucket.limiters[index]
            entry["used"] = limiter.used(now)
            entry["remaining"] = limiter.remaining(now)
            entry["reset"] = seconds(limiter.reset_after(now))
        rates.append(entry)
    description: dict[str, Any] = {
        "name": spec.name,
        "kind": spec.kind,
        "algorithm": spec.algorithm,
        "scope": spec.scope,
        "owner": bucket.owner,
        "rates": rates,
    }
    if spec.max_cost is not None:
        description["max_cost"] = spec.max_cost
    for field_name in ("concurrent", "when_full", "ttl", "idle", "count_limit", "per", "durability"):
        value = getattr(spec, field_name, None)
        if value is not None and (spec.kind != "rate" or field_name == "durability"):
            description[field_name] = seconds(value) if field_name in ("ttl", "idle") else value
    quota = getattr(spec, "quota", None)
    if quota is not None:
        description["quota"] = {"limit": quota.limit, "period": quota.period, "timezone": quota.timezone, "on_exhaust": quota.on_exhaust}
    if usage and bucket.holding is not None:
        holding = bucket.holding
        description["held"] = holding.held
        description["leases"] = [
            {"amount": amount, **(leases[lease_id].describe(now) if leases and lease_id in leases else {"lease": lease_id})}
            for lease_id, amount in holding.by_lease.items()
        ]
    if usage and quota is not None and bucket.limiters:
        limiter = bucket.limiters[0]
        description["balance"] = {
            "used": limiter.used(now),
            "remaining": limiter.remaining(now),
            "period_end": seconds(limiter.period_end(now)),
            **({"overage": limiter.overage(now)} if hasattr(limiter, "overage") else {}),
            **({"billed": limiter.billed(now)} if hasattr(limiter, "billed") else {}),
        }
    if usage:
        description["waiters"] = waiting
        description["held_until"] = seconds(bucket.held_until) if bucket.held_until > now else None
        description["feedback"] = {
            name: seconds(value) if name.startswith("last_") else value for name, value in bucket.feedback.items()
        }
    return description
