"""What the provider said, applied to the buckets: holds after a 429, stricter counts from headers.

The provider is the judge. A 429 holds the refusing bucket for every local
process until the provider's retry time, and capacity then comes back at the
bucket's own pace rather than in one burst. A ``Remaining`` count lower than
ours is adopted until the provider's reset. Nothing here ever loosens a
bucket: a provider that reports more room than we think we have is noted as
drift, not believed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ratelimitd_client.amounts import Amount

from ..errors import BadRequest
from .bucket import Bucket
from .core import Engine

__all__ = ["apply_report", "DEFAULT_HOLD", "RELEASE_STEPS"]

# A 429 that says nothing of when to retry holds the bucket this long at least
# (and at least until our own oldest grant ages out).
DEFAULT_HOLD = 1_000_000_000
# After a hold, capacity returns over one window in this many steps, not at once.
RELEASE_STEPS = 20


def apply_report(
    engine: Engine,
    key: str,
    endpoint: str | None,
    bucket_name: str | None,
    status: int,
    now: int,
    retry_after: int | None = None,
    reset_at: int | None = None,
    remaining: Amount | None = None,
    limit: Amount | None = None,
    window: int | None = None,
    granted_at: int | None = None,
) -> list[dict[str, Any]]:
    """Apply one provider answer to the buckets it concerns; return what was done to each.

    The buckets are the named one, else every bucket of ``endpoint``. Times are
    engine ns (``retry_after`` and ``window`` relative, ``reset_at`` and
    ``granted_at`` absolute). ``granted_at``, when the reported call's permit
    was granted, lets a ``remaining`` count be corrected for the grants made
    while the call was in flight: the provider had not seen those yet.
    """
    buckets = _targets(engine, key, endpoint, bucket_name)
    limited = status == 429 or (retry_after is not None and status in (429, 503))
    applied = []
    for bucket in buckets:
        stats = bucket.feedback
        stats["reports"] = stats.get("reports", 0) + 1
        if limit is not None:
            _learn_limit(bucket, limit, window, now)
        if limited:
            until = _hold_until(bucket, now, retry_after, reset_at)
            _hold(bucket, until, now)
            stats["limited"] = stats.get("limited", 0) + 1
            stats["last_limited"] = now
            applied.append({"bucket": bucket.name, "action": "hold", "until": until / 1e9, "remaining": 0})
        elif remaining is not None:
            if granted_at is not None:
                remaining = max(remaining - _spent_since(bucket, granted_at), 0)
            ours, _reset = bucket.report(now)
            applied.append(_restrict(bucket, remaining, limit, reset_at, ours, now))
        else:
            applied.append({"bucket": bucket.name, "action": "none", "until": None, "remaining": bucket.report(now)[0]})
        engine.dirty.add(bucket)
    return applied


def _targets(engine: Engine, key: str, endpoint: str | None, bucket_name: str | None) -> list[Bucket]:
    spec_key = engine.table.key(key)
    if bucket_name is not None:
        spec = spec_key.buckets.get(bucket_name)
        if spec is None:
            raise BadRequest(f"key {key!r} has no bucket {bucket_name!r}; it has {sorted(spec_key.buckets)}")
        return [engine.bucket(spec_key.owner(spec), spec)]
    if endpoint is None:
        raise BadRequest("a report names an 'endpoint' or a 'bucket'")
    return [engine.bucket(spec_key.owner(spec), spec) for spec in engine.table.route(key, endpoint).buckets]


def _hold_until(bucket: Bucket, now: int, retry_after: int | None, reset_at: int | None) -> int:
    if retry_after is not None:
        return now + retry_after
    if reset_at is not None and reset_at > now:
        return reset_at
    own = max((limiter.reset_after(now) for limiter in _windows(bucket)), default=0)
    return now + max(own, DEFAULT_HOLD)


def _windows(bucket: Bucket) -> list[Any]:
    """Return the bucket's window limiters (a calendar quota is not the provider's rate window)."""
    return [limiter for limiter in bucket.limiters if getattr(limiter, "rate", None) is not None]


def _learn_limit(bucket: Bucket, limit: Amount, window: int | None, now: int) -> None:
    """Adopt a provider's limit lower than the table's, for the rate of the window it states.

    Without a stated window (``X-RateLimit-Limit`` alone) the limit is taken as
    the one of the bucket's window, if it has a single one: the tier table names
    the provider's window, and a lower count can only make the bucket stricter
    (if the table's window were longer than the provider's, this under-grants
    until a reload). A bucket of several windows adopts only a stated window.
    """
    windows = _windows(bucket)
    if window is not None:
        matching = [limiter for limiter in windows if limiter.rate.window == window]
    else:
        matching = windows if len(windows) == 1 else []
    for limiter in matching:
        if 0 < limit < limiter.rate.limit:
            limiter.retune(replace(limiter.rate, limit=limit, burst=None if limiter.rate.burst is None else min(limiter.rate.burst, limit)), now)
            bucket.cap = limit if bucket.cap is None else min(bucket.cap, limit)
            bucket.feedback["provider_limit"] = limit
            bucket.feedback["corrections"] = bucket.feedback.get("corrections", 0) + 1
            bucket.feedback["last_correction"] = now


def _spent_since(bucket: Bucket, stamp: int) -> Amount:
    """Return what this bucket granted after ``stamp`` (0 where an algorithm keeps no grant times)."""
    spent = [limiter.spent_since(stamp) for limiter in _windows(bucket) if hasattr(limiter, "spent_since")]
    return max(spent, default=0)


def _hold(bucket: Bucket, until: int, now: int) -> None:
    """Hold ``bucket`` until ``until``; then let what it had left come back over one window, in steps."""
    bucket.held_until = max(bucket.held_until, until)
    for limiter in _windows(bucket):
        left = limiter.remaining(now)
        if not left:
            continue
        span = limiter.rate.window + limiter.rate.margin
        steps = RELEASE_STEPS if isinstance(left, int) and left >= RELEASE_STEPS else 1
        share, rest = divmod(left, steps) if steps > 1 else (left, 0)
        for step in range(steps):
            # the step-th share ages out at until + step/steps of a window
            frees_at = until + (limiter.rate.window * step) // steps
            limiter.charge_at(share + (rest if step == steps - 1 else 0), frees_at - span)


def _restrict(bucket: Bucket, remaining: Amount, limit: Amount | None, reset_at: int | None, ours: Amount | None, now: int) -> dict[str, Any]:
    stats = bucket.feedback
    if ours is not None:
        stats["drift"] = ours - remaining  # > 0: the provider counts more use than we do
    if ours is None or remaining >= ours:
        return {"bucket": bucket.name, "action": "none", "until": None, "remaining": ours}
    windows = _windows(bucket)
    limiters = [limiter for limiter in windows if limit is not None and limiter.rate.limit == limit] or windows
    until = reset_at if reset_at is not None and reset_at > now else None
    for limiter in limiters:
        span = limiter.rate.window + limiter.rate.margin
        limiter.restrict(remaining, (until - now) if until is not None else span, now)
    stats["corrections"] = stats.get("corrections", 0) + 1
    stats["last_correction"] = now
    return {"bucket": bucket.name, "action": "restrict", "until": until / 1e9 if until else None, "remaining": remaining}
