"""The engine's lease operations: granting with leases, evicting, ending, releasing, renewing, settling.

A mixin of ``Engine`` (see ``core``), kept apart because it is the one part of
the decision core that deals with what grants *hold* rather than what they
spend; ``leases`` has the records, this module the operations on them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any, Iterable

from ratelimitd_client.amounts import Amount

from ..errors import BadRequest, UnknownLease
from ..units import NS_PER_SECOND
from .bucket import Bucket
from .decision import Decision
from .leases import Lease, LeaseRequest

if TYPE_CHECKING:
    from .core import _Compiled

__all__ = ["LeaseOps"]


class LeaseOps:
    """Lease operations of the ``Engine`` (which provides the buckets, the lease book and the counters)."""

    def _scoped(self, compiled: _Compiled, extras: LeaseRequest | None) -> tuple[Bucket, ...]:
        """Return the route's buckets with each ``per`` bucket resolved to the request's scope value."""
        scopes = extras.scopes if extras is not None else {}
        key = compiled.route.key
        buckets = []
        for spec, bucket in zip(compiled.route.buckets, compiled.buckets):
            per = getattr(spec, "per", None)
            if not per:
                buckets.append(bucket)
                continue
            if per == "connection":
                value = None if extras is None or extras.connection is None else str(extras.connection)
            else:
                value = scopes.get(per)
            if not isinstance(value, str) or not value:
                raise BadRequest(
                    f"endpoint {compiled.route.endpoint.name!r} needs scope {per!r}: bucket {spec.name!r} counts "
                    f"per {per}; pass scopes={{{per!r}: …}}"
                )
            if per == "lease" and self.leases.by_id.get(value) is None:
                raise UnknownLease(f"scope 'lease' names lease {value!r}, which is not held")
            buckets.append(self._bucket(f"{key.owner(spec)}/{per}={value}", spec))
        return tuple(buckets)

    def _grant(
        self,
        key: str,
        endpoint: str,
        compiled: _Compiled,
        buckets: tuple[Bucket, ...],
        cost: Amount,
        now: int,
        token: Any,
        extras: LeaseRequest | None,
    ) -> Decision:
        """Charge ``buckets`` and, where the endpoint holds something or reserves, open a lease."""
        lease = None
        if compiled.holds or (extras is not None and extras.reserve):
            lease = self.leases.new(key, endpoint, token, extras.holder if extras else None, now)
        for bucket in buckets:
            holding = bucket.holding
            if holding is not None and lease is not None:
                if holding.wait(cost, now):
                    self._evict_for(bucket, cost, now)
                holding.hold(lease.id, cost)
                lease.holdings.append(bucket)
                spec = bucket.spec
                if spec.ttl is not None:
                    lease.ttl = spec.ttl if lease.ttl is None else min(lease.ttl, spec.ttl)
                if spec.idle is not None:
                    lease.idle = spec.idle if lease.idle is None else min(lease.idle, spec.idle)
            elif bucket.spec.kind == "time-quota" and lease is not None:
                self._settle_time(bucket, now)  # what the leases already holding it have used so far
                lease.time_buckets.append(bucket)
                lease.timed_from = now
            else:
                bucket.charge(cost, now)
                if lease is not None and extras is not None and extras.reserve:
                    lease.reserved.append((bucket, cost))
            self.dirty.add(bucket)
        if lease is not None:
            if extras is not None and extras.reserve:
                ends = now + extras.reserve
                lease.ends_at = ends if lease.ends_at is None else min(lease.ends_at, ends)
            parent_id = extras.scopes.get("lease") if extras is not None else None
            if parent_id is not None and parent_id in self.leases.by_id:
                lease.parent = self.leases.by_id[parent_id]
                lease.parent.children.append(lease)
            for bucket in lease.time_buckets:
                self._retime(bucket, now)
            self.leases.schedule(lease)
        self.grants += 1
        decision = self._granted(buckets, now)
        decision.strict = compiled.strict
        if lease is not None:
            decision.extra = {"lease": lease.id}
        return decision

    def _time_leases(self, bucket: Bucket) -> list[Lease]:
        return [lease for lease in self.leases.by_id.values() if lease.live and bucket in lease.time_buckets]

    def _settle_time(self, bucket: Bucket, now: int) -> None:
        """Charge the time quota ``bucket`` with what every lease holding it has held since last settled."""
        if not bucket.limiters:
            return
        for lease in self._time_leases(bucket):
            held = now - lease.timed_from
            if held > 0:
                bucket.limiters[0].charge(Decimal(held) / NS_PER_SECOND, now)
                lease.timed_from = now
                self.dirty.add(bucket)

    def _retime(self, bucket: Bucket, now: int) -> None:
        """Set when the leases holding time quota ``bucket`` end: together they use up what is left."""
        leases = self._time_leases(bucket)
        left = bucket.limiters[0].remaining(now) if bucket.limiters else None
        if not leases or left is None:
            return
        share = int(left * NS_PER_SECOND) // len(leases)  # N connections at once drain it N times as fast
        for lease in leases:
            lease.ends_at = now + share
            self.leases.schedule(lease)

    def _evict_for(self, bucket: Bucket, cost: Amount, now: int) -> None:
        """Take the oldest leases away from ``bucket`` until ``cost`` fits (``when_full = "evict-oldest"``)."""
        holding = bucket.holding
        assert holding is not None and holding.limit is not None
        while holding.held + cost > holding.limit:
            oldest = holding.oldest()
            if oldest is None:
                return
            lease = self.leases.by_id.get(oldest)
            if lease is None:
                holding.release(oldest)  # a slot whose lease record is gone: free it
                continue
            self.end_lease(lease, now, "evicted", bucket=bucket.name)

    def end_lease(self, lease: Lease, now: int, reason: str | None, **extra: Any) -> list[str]:
        """End ``lease`` and its children; give back what they hold; tell the holder unless it asked.

        ``reason`` None means its holder released it (or its connection closed):
        nobody needs telling. Returns the ids of every lease ended.
        """
        if not lease.live:
            return []
        for bucket in lease.time_buckets:
            self._settle_time(bucket, now)  # this lease's time, and the others', up to now
        ended = []
        for child in list(lease.children):
            ended += self.end_lease(child, now, reason and "parent-ended")
        lease.live = False
        for bucket in lease.holdings:
            holding = bucket.holding
            if holding is not None:
                holding.release(lease.id)
                self.dirty.add(bucket)
                if not holding.held and not bucket.limiters and "/" in bucket.owner:
                    self._buckets.pop((bucket.owner, bucket.name), None)  # a per-wallet count gone to zero
                    self.removed.add((bucket.owner, bucket.name))
        if lease.parent is not None and lease in lease.parent.children:
            lease.parent.children.remove(lease)
        self.leases.by_id.pop(lease.id, None)
        for bucket in lease.time_buckets:
            self._retime(bucket, now)  # the others now share what is left
        if reason is not None:
            self.leases.notify(lease, reason, **extra)
        return ended + [lease.id]

    def _why_ended(self, lease: Lease, now: int) -> str:
        if lease.token is None:
            return "orphaned"
        if lease.ends_at is not None and lease.ends_at <= now:
            return "reservation-expired" if lease.reserved else "time-quota"
        if lease.ttl is not None and lease.created + lease.ttl <= now:
            return "ttl"
        return "idle"

    def release(self, lease_id: str, now: int) -> list[str]:
        """Release ``lease_id`` (and its children) at its holder's request; return the ids released.

        A reservation released without a settle stays charged in full. Call
        ``service`` afterwards: waiters may now fit.
        """
        lease = self.leases.by_id.get(lease_id)
        if lease is None:
            raise UnknownLease(f"lease {lease_id!r} is not held (released, ended, or from an unknown daemon run)")
        return self.end_lease(lease, now, None)

    def renew(self, lease_id: str, now: int, token: Any = None) -> Lease:
        """Mark ``lease_id`` as in use at ``now`` (resetting its idle timeout); adopt it if it was orphaned."""
        lease = self.leases.by_id.get(lease_id)
        if lease is None:
            raise UnknownLease(f"lease {lease_id!r} is not held (released, ended, or from an unknown daemon run)")
        lease.renewed = now
        if lease.token is None and token is not None:
            lease.token = token
            lease.ends_at = None if not lease.reserved else lease.ends_at
        self.leases.schedule(lease)
        return lease

    def settle(self, lease_id: str, cost: Amount, now: int) -> Amount:
        """Settle reservation ``lease_id`` at its real ``cost``; return the difference charged (negative: refunded)."""
        lease = self.leases.by_id.get(lease_id)
        if lease is None or not lease.reserved:
            raise UnknownLease(f"no reservation {lease_id!r} is open (settled, expired, or never made)")
        difference: Amount = 0
        for bucket, reserved in lease.reserved:
            difference = cost - reserved
            if difference > 0:
                for limiter in bucket.limiters:
                    limiter.charge_at(difference, now)  # the provider already counted it: record it, fit or not
            elif difference < 0:
                bucket.refund(-difference, now)
            self.dirty.add(bucket)
        lease.reserved = []
        self.end_lease(lease, now, None)
        return difference

    def release_all(self, lease_ids: Iterable[str], now: int) -> None:
        """Release every lease of ``lease_ids`` still held (a connection closed)."""
        for lease_id in lease_ids:
            lease = self.leases.by_id.get(lease_id)
            if lease is not None:
                self.end_lease(lease, now, None)
