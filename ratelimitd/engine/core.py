"""The decision core: every bucket of every key, and acquire / service / reload / reset over them.

Sans-I/O in the manner of h11: requests in, ``Decision`` values out, time passed
in as ``now`` (integer ns). It knows nothing of Trio, sockets or SQLite; the
server reads the clock, calls in, and acts on what comes back (answers, and
when to call ``service`` next).

Rules this module keeps:

- An acquire is all or nothing over the endpoint's buckets: granted only when
  every bucket allows the cost, and then charged to every one.
- A denial names the bucket that refuses longest and the earliest time at which
  *all* would allow the same cost.
- A waiter that a bucket refuses holds that bucket's line: nobody takes from
  it ahead of the waiter (see ``waiting`` for the whole serving rule).
"""

from __future__ import annotations

import heapq
from bisect import insort
from typing import Any, Iterable

from ratelimitd_client.amounts import Amount

from ..errors import CostTooLarge, RequestError
from ..tiers.model import BucketSpec, Route, TierTable
from ..limits.holding import NEVER
from .bucket import HOLDING_KINDS, Bucket, is_strict
from .decision import Decision
from .describing import Describing, describe_bucket
from .lease_ops import LeaseOps
from .leases import LeaseBook, LeaseRequest
from .waiting import Waiter

__all__ = ["Engine", "Answer", "describe_bucket"]

# A waiter whose slot frees at its deadline is granted, even if the timer that woke the
# scheduler fired a little late: deadlines are kept to this precision (ns).
DEADLINE_SLACK = 1_000_000

# (waiter, the decision for it, or the error that ended it) — what ``service`` hands back
Answer = tuple[Waiter, "Decision | RequestError"]


class _Compiled:
    """A resolved (key, endpoint): its route, its live buckets, default cost and largest allowed cost."""

    __slots__ = ("route", "buckets", "cost", "capacity", "capacity_bucket", "strict", "holds", "scoped")

    def __init__(self, route: Route, buckets: tuple[Bucket, ...], strict_default: bool) -> None:
        self.route = route
        self.buckets = buckets
        self.cost = route.endpoint.cost
        # a grant on a strict bucket is answered only once it is on disk (docs/state.md)
        self.strict = any(is_strict(spec, strict_default) for spec in route.buckets)
        # a grant here returns a lease: it holds something (a connection, a count, lease time)
        self.holds = any(spec.kind in HOLDING_KINDS or spec.kind == "time-quota" for spec in route.buckets)
        # buckets counted per value of a scope the request names (per wallet, per connection, per lease)
        self.scoped = any(getattr(spec, "per", None) for spec in route.buckets)
        self.capacity: Amount | None = None
        self.capacity_bucket: BucketSpec | None = None
        for spec in route.buckets:
            bound = spec.capacity
            if bound is not None and (self.capacity is None or bound < self.capacity):
                self.capacity = bound
                self.capacity_bucket = spec


class Engine(LeaseOps, Describing):
    """The state of every bucket under one tier table (see the module docstring)."""

    def __init__(self, table: TierTable, strict_default: bool = False, run_tag: str = "L") -> None:
        self.table = table
        self.leases = LeaseBook(run_tag)
        self.strict_default = strict_default
        self.removed: set[tuple[str, str]] = set()  # buckets a reload dropped, for the store to delete
        self._buckets: dict[tuple[str, str], Bucket] = {}
        self._compiled: dict[str, dict[str, _Compiled]] = {}
        self._queue: list[Waiter] = []  # live waiters in serving order (dead ones dropped lazily)
        self._deadlines: list[tuple[int, int, Waiter]] = []
        self._seq = 0
        self.dirty: set[Bucket] = set()
        self.grants = 0
        self.denials = 0
        self.waiters = 0

    # -- resolution -------------------------------------------------------------------------

    def _bucket(self, owner: str, spec: BucketSpec) -> Bucket:
        bucket = self._buckets.get((owner, spec.name))
        if bucket is None:
            bucket = self._buckets[(owner, spec.name)] = Bucket(owner, spec)
        return bucket

    def _compile(self, key: str, endpoint: str) -> _Compiled:
        by_endpoint = self._compiled.get(key)
        if by_endpoint is not None:
            compiled = by_endpoint.get(endpoint)
            if compiled is not None:
                return compiled
        route = self.table.route(key, endpoint)
        buckets = tuple(self._bucket(route.key.owner(spec), spec) for spec in route.buckets)
        compiled = _Compiled(route, buckets, self.strict_default)
        self._compiled.setdefault(key, {})[endpoint] = compiled
        return compiled

    def _check_cost(self, compiled: _Compiled, cost: Amount) -> None:
        if compiled.capacity is not None and cost > compiled.capacity:
            spec = compiled.capacity_bucket
            assert spec is not None
            raise CostTooLarge(
                f"cost {cost} exceeds the per-request maximum {compiled.capacity} of bucket {spec.name!r} "
                f"(key {compiled.route.key.name!r}, endpoint {compiled.route.endpoint.name!r}); "
                "it could never be granted"
            )

    # -- acquire ----------------------------------------------------------------------------

    def acquire(
        self,
        key: str,
        endpoint: str,
        cost: Amount | None,
        now: int,
        deadline: int | None = None,
        priority: int = 0,
        token: Any = None,
        extras: LeaseRequest | None = None,
        connection: Any = None,
    ) -> Decision | Waiter:
        """Decide an acquire of ``cost`` (None: the endpoint's default) at ``now``.

        Returns a granted or denied ``Decision`` (a grant on an endpoint that holds
        something carries a lease id); or, when ``deadline`` lies after ``now`` and
        the request may still be granted before it, a queued ``Waiter`` that a later
        ``service`` call answers. ``extras`` carries scope values, the holder and a
        reservation. Raises ``RequestError`` subclasses for unknown keys and
        endpoints, unavailable endpoints, missing scopes and impossible costs.
        """
        compiled = self._compile(key, endpoint)
        if cost is None:
            cost = compiled.cost
        elif compiled.capacity is not None and cost > compiled.capacity:
            self._check_cost(compiled, cost)
        if compiled.scoped:
            if extras is None:
                extras = LeaseRequest()
            if extras.connection is None:
                extras.connection = connection
            buckets = self._scoped(compiled, extras)
        else:
            buckets = compiled.buckets
        longest = 0
        refusing: Bucket | None = None
        queued: Bucket | None = None
        for bucket in buckets:
            if bucket.blocker is not None and queued is None and cost and bucket.line_held(now, cost):
                queued = bucket  # a peek (cost 0) takes nothing: it never waits in line
            needed = bucket.wait(cost, now)
            if needed > longest:
                longest = needed
                refusing = bucket
        if not longest and queued is None:
            if compiled.holds or extras is not None:
                return self._grant(key, endpoint, compiled, buckets, cost, now, token, extras)
            dirty = self.dirty
            for bucket in buckets:
                bucket.charge(cost, now)
                dirty.add(bucket)
            self.grants += 1
            decision = self._granted(buckets, now)
            decision.strict = compiled.strict
            return decision
        if longest >= NEVER and any(bucket.cap is not None and cost > bucket.cap for bucket in buckets):
            deadline = None  # over a limit the provider taught us: waiting cannot help, and must not hold the line
        if deadline is not None and deadline > now and (queued is not None or longest >= NEVER or now + longest <= deadline):
            waiter = self._enqueue(key, endpoint, compiled, buckets, cost, deadline, priority, token)
            waiter.extras = extras
            for bucket in buckets:
                if not (bucket.blocker is not None and bucket.blocker.live) and bucket.wait(cost, now):
                    bucket.blocker = waiter
            return waiter
        self.denials += 1
        if refusing is None:
            assert queued is not None
            return self._denied(buckets, cost, now, "queue", queued)
        return self._denied(buckets, cost, now, "hold" if refusing.held_until > now else "limit", refusing)

    def _granted(self, buckets: tuple[Bucket, ...], now: int) -> Decision:
        if len(buckets) == 1:
            bucket = buckets[0]
            remaining, reset = bucket.report(now)
            return Decision(True, 0, bucket.name, remaining, reset, ((bucket.name, remaining, reset),))
        reports = tuple((bucket.name, *bucket.report(now)) for bucket in buckets)
        tightest = min(
            reports, key=lambda report: (report[1] is None, report[1] if report[1] is not None else 0)
        )
        return Decision(True, 0, tightest[0], tightest[1], tightest[2], reports)

    def _denied(self, buckets: tuple[Bucket, ...], cost: Amount, now: int, reason: str, scope: Bucket) -> Decision:
        retry_after = max(bucket.wait(cost, now) for bucket in buckets)
        if reason == "queue" and scope.blocker is not None:
            # not before the waiter ahead is served, and then only when this cost fits beside it
            blocker = scope.blocker
            ahead = max(bucket.wait(blocker.cost, now) for bucket in blocker.buckets)
            both = blocker.cost + cost
            capacity = scope.spec.capacity
            if capacity is None or both <= capacity:
                beside = scope.wait(both, now)
            elif scope.holding is not None:
                beside = NEVER  # the waiter ahead takes what this needs: only a release can help
            else:
                beside = max(ahead, 1)  # not together: after the waiter ahead is served, at the earliest
            retry_after = max(retry_after, beside, ahead)
        reports = tuple((bucket.name, *bucket.report(now)) for bucket in buckets)
        remaining, reset = scope.report(now)
        return Decision(False, retry_after, scope.name, remaining, reset, reports, reason)

    # -- waiting ----------------------------------------------------------------------------

    def _enqueue(
        self,
        key: str,
        endpoint: str,
        compiled: _Compiled,
        buckets: tuple[Bucket, ...],
        cost: Amount,
        deadline: int,
        priority: int,
        token: Any,
    ) -> Waiter:
        self._seq += 1
        waiter = Waiter(key, endpoint, compiled.route, buckets, cost, deadline, priority, self._seq, token)
        waiter.strict = compiled.strict
        insort(self._queue, waiter)
        heapq.heappush(self._deadlines, (deadline, waiter.seq, waiter))
        self.waiters += 1
        return waiter

    def cancel(self, waiter: Waiter) -> None:
        """Drop ``waiter`` (its connection closed); call ``service`` after to let others move up."""
        if waiter.live:
            waiter.live = False
            self.waiters -= 1

    def service(self, now: int) -> tuple[list[Answer], int | None]:
        """Answer every waiter that can be answered at ``now``.

        Returns the answers (granted in queue order, or denied with reason
        ``"timeout"`` when the deadline passed) and the engine time at which
        ``service`` should next be called, or None when nobody waits.
        """
        answers: list[Answer] = []
        self._expire(now - DEADLINE_SLACK, now, answers)
        for lease in self.leases.due(now):
            self.end_lease(lease, now, self._why_ended(lease, now))
        wake: int | None = None
        held: set[Bucket] = set()  # buckets whose line a waiter earlier in this pass holds
        for waiter in self._queue:
            if not waiter.live:
                continue
            stuck = False
            soonest = 0
            for bucket in waiter.buckets:
                if bucket in held:
                    stuck = True
                    continue
                needed = bucket.wait(waiter.cost, now)
                if needed:
                    stuck = True
                    bucket.blocker = waiter
                    held.add(bucket)
                    if not soonest or needed < soonest:
                        soonest = needed
                elif bucket.blocker is not None and bucket.blocker is not waiter:
                    bucket.blocker = None
            if soonest and (wake is None or now + soonest < wake):
                wake = now + soonest
            if stuck:
                continue
            for bucket in waiter.buckets:
                if bucket.blocker is waiter:
                    bucket.blocker = None
            waiter.live = False
            self.waiters -= 1
            compiled = self._compile(waiter.key, waiter.endpoint)
            answers.append((waiter, self._grant(
                waiter.key, waiter.endpoint, compiled, waiter.buckets, waiter.cost, now, waiter.token, waiter.extras
            )))
        self._expire(now, now, answers)
        if len(self._queue) > self.waiters:
            self._queue = [waiter for waiter in self._queue if waiter.live]
        deadlines = self._deadlines
        while deadlines and not deadlines[0][2].live:
            heapq.heappop(deadlines)
        if deadlines and (wake is None or deadlines[0][0] < wake):
            wake = deadlines[0][0]
        lease_deadline = self.leases.next_deadline()
        if lease_deadline is not None and (wake is None or lease_deadline < wake):
            wake = lease_deadline
        return answers, wake

    def _expire(self, until: int, now: int, answers: list[Answer]) -> None:
        """Deny, with reason ``"timeout"``, every live waiter whose deadline is at or before ``until``."""
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= until:
            waiter = heapq.heappop(deadlines)[2]
            if waiter.live:
                waiter.live = False
                self.waiters -= 1
                self.denials += 1
                refusing = max(waiter.buckets, key=lambda bucket: bucket.wait(waiter.cost, now))
                answers.append((waiter, self._denied(waiter.buckets, waiter.cost, now, "timeout", refusing)))

    # -- administration ---------------------------------------------------------------------

    def reload(self, table: TierTable, now: int) -> list[Answer]:
        """Adopt ``table`` at ``now`` keeping every counter whose bucket still exists.

        Buckets the new table no longer has are dropped. Waiters are moved onto
        the new buckets in their order; those whose key or endpoint is gone are
        answered with the error. Call ``service`` afterwards.
        """
        waiters = [waiter for waiter in self._queue if waiter.live]
        old_buckets = self._buckets
        self.table = table
        self._buckets = {}
        self._compiled = {}
        for key in table.keys.values():
            for spec in key.buckets.values():
                ident = (key.owner(spec), spec.name)
                bucket = old_buckets.get(ident)
                if bucket is not None and ident not in self._buckets:
                    bucket.rebuild(spec, now)
                    bucket.blocker = None
                    self._buckets[ident] = bucket
                    self.dirty.add(bucket)
        self.dirty &= set(self._buckets.values())
        self.removed |= old_buckets.keys() - self._buckets.keys()
        return self._requeue(waiters)

    def _requeue(self, waiters: list[Waiter]) -> list[Answer]:
        """Point ``waiters`` at the current buckets, keeping their order; answer those that no longer resolve."""
        answers: list[Answer] = []
        self._queue = []
        for waiter in waiters:
            try:
                compiled = self._compile(waiter.key, waiter.endpoint)
                self._check_cost(compiled, waiter.cost)
            except RequestError as exc:
                waiter.live = False
                self.waiters -= 1
                answers.append((waiter, exc))
                continue
            waiter.route = compiled.route
            waiter.buckets = compiled.buckets
            waiter.strict = compiled.strict
            self._queue.append(waiter)
        return answers

    def reset(self, key: str, endpoint: str | None, now: int) -> list[tuple[str, str]]:
        """Forget what ``key`` spent (on ``endpoint``'s buckets only, if given); return ``(owner, bucket)`` of each.

        Call ``service`` afterwards: waiters on those buckets may now be granted.
        """
        if endpoint is not None:
            specs: Iterable[BucketSpec] = self.table.route(key, endpoint).buckets
        else:
            specs = self.table.key(key).buckets.values()
        spec_key = self.table.key(key)
        names = []
        for spec in specs:
            bucket = self._bucket(spec_key.owner(spec), spec)
            bucket.reset()
            self.dirty.add(bucket)
            names.append((bucket.owner, spec.name))
        return names

    # -- reading ----------------------------------------------------------------------------

    def bucket(self, owner: str, spec: BucketSpec) -> Bucket:
        """Return ``owner``'s live bucket for ``spec``, creating it empty if it was never used."""
        return self._bucket(owner, spec)

    def bucket_specs(self) -> dict[tuple[str, str], BucketSpec]:
        """Return every bucket the table defines, by ``(owner, name)`` (group buckets once)."""
        specs: dict[tuple[str, str], BucketSpec] = {}
        for key in self.table.keys.values():
            for spec in key.buckets.values():
                specs.setdefault((key.owner(spec), spec.name), spec)
        return specs

    def buckets(self) -> Iterable[Bucket]:
        """Return every live bucket (those that were ever used or restored)."""
        return self._buckets.values()
