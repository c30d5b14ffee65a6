"""Leases: what a grant holds until it is released, and when a lease ends without being released.

A grant on an endpoint with a concurrency or capacity bucket returns a lease.
The lease holds its amount in each such bucket until it is released
explicitly, its connection closes, its TTL or idle timeout runs out, a newer
lease evicts it (``when_full = "evict-oldest"``), or its time quota is used up.
Leases can nest: a lease taken with ``scopes={"lease": ID}`` (positions inside
a session) ends with its parent.

A reservation is a lease on rate buckets: it charged an estimated cost and
``settle`` charges more or refunds the difference; unsettled, it stays charged
in full.

Leases restored after a restart have no holder: their client may reattach by
renewing within ``ORPHAN_GRACE``, after which their slots are freed.

Every lease that ends other than by its holder's own release produces a
notice for the server to push to the holder.
"""

from __future__ import annotations

import heapq
from typing import Any

from ratelimitd_client.amounts import Amount

from .bucket import Bucket

__all__ = ["Lease", "LeaseBook", "LeaseRequest", "ORPHAN_GRACE"]

# How long a lease of a previous daemon run waits for its client to reattach (renew) after a
# restart. The client library reconnects within a second; 30 s also covers a slow restart.
ORPHAN_GRACE = 30_000_000_000


class LeaseRequest:
    """What an acquire says beyond key, endpoint and cost: scope values, who asks, a reservation.

    ``scopes`` maps a bucket's ``per`` name to its value (``{"wallet": "W1",
    "lease": "a1b2-7"}``); ``connection`` fills ``per = "connection"``; ``holder`` is
    the client's (pid, uid, gid); ``reserve`` (ns) makes the grant a reservation
    to be settled within that time.
    """

    __slots__ = ("scopes", "connection", "holder", "reserve")

    def __init__(self, scopes: dict[str, str] | None = None, connection: str | None = None,
                 holder: Any = None, reserve: int | None = None) -> None:
        self.scopes = scopes or {}
        self.connection = connection
        self.holder = holder
        self.reserve = reserve


class Lease:
    """One lease: the amounts it holds per bucket, who holds it, and when it ends on its own."""

    __slots__ = (
        "id", "key", "endpoint", "holdings", "reserved", "token", "holder", "created", "renewed",
        "ttl", "idle", "ends_at", "time_buckets", "timed_from", "parent", "children", "live",
    )

    def __init__(self, lease_id: str, key: str, endpoint: str, token: Any, holder: Any, now: int) -> None:
        self.id = lease_id
        self.key = key
        self.endpoint = endpoint
        self.holdings: list[Bucket] = []  # buckets whose Holding this lease holds part of
        self.reserved: list[tuple[Bucket, Amount]] = []  # rate buckets charged by a reservation
        self.token = token  # the server's handle for its connection (None: orphaned by a restart)
        self.holder = holder  # (pid, uid, gid) of the client, for people
        self.created = now
        self.renewed = now
        self.ttl: int | None = None
        self.idle: int | None = None
        self.ends_at: int | None = None  # a hard end: time quota, reservation, orphan grace
        self.time_buckets: list[Bucket] = []  # time quotas this lease's held time counts against
        self.timed_from = now  # held time before this is already charged to the time quotas
        self.parent: Lease | None = None
        self.children: list[Lease] = []
        self.live = True

    def deadline(self) -> int | None:
        """Return when this lease ends unless renewed or released (None: never)."""
        ends = [t for t in (
            self.ends_at,
            self.created + self.ttl if self.ttl is not None else None,
            self.renewed + self.idle if self.idle is not None else None,
        ) if t is not None]
        return min(ends) if ends else None

    def describe(self, now: int) -> dict[str, Any]:
        """Return the lease as ``show`` and ``leases`` report it."""
        pid, uid = (self.holder[0], self.holder[1]) if self.holder else (None, None)
        deadline = self.deadline()
        return {
            "lease": self.id,
            "key": self.key,
            "endpoint": self.endpoint,
            "pid": pid,
            "uid": uid,
            "age": (now - self.created) / 1e9,
            "idle_for": (now - self.renewed) / 1e9,
            "ends_in": None if deadline is None else max(deadline - now, 0) / 1e9,
            "orphaned": self.token is None,
            "parent": self.parent.id if self.parent else None,
            "reservation": bool(self.reserved),
        }


class LeaseBook:
    """Every live lease by id, with a heap of the moments at which some may end."""

    def __init__(self, run_tag: str) -> None:
        self.run_tag = run_tag
        self.by_id: dict[str, Lease] = {}
        self._deadlines: list[tuple[int, str]] = []
        self._seq = 0
        self.notices: list[tuple[Any, dict[str, Any]]] = []  # (token, push message) for the server

    def new(self, key: str, endpoint: str, token: Any, holder: Any, now: int) -> Lease:
        """Create and register a lease with a fresh id."""
        self._seq += 1
        lease = Lease(f"{self.run_tag}-{self._seq}", key, endpoint, token, holder, now)
        self.by_id[lease.id] = lease
        return lease

    def adopt(self, lease: Lease) -> None:
        """Register a lease rebuilt from stored state."""
        self.by_id[lease.id] = lease
        self.schedule(lease)

    def schedule(self, lease: Lease) -> None:
        """Note (again) when ``lease`` may end on its own."""
        deadline = lease.deadline()
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, lease.id))

    def due(self, now: int) -> list[Lease]:
        """Return the live leases whose deadline has come (renewed ones are rescheduled)."""
        due = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            _, lease_id = heapq.heappop(heap)
            lease = self.by_id.get(lease_id)
            if lease is None or not lease.live:
                continue
            deadline = lease.deadline()
            if deadline is None or deadline > now:  # renewed (or reattached) since it was scheduled
                if deadline is not None:
                    heapq.heappush(heap, (deadline, lease_id))
                continue
            due.append(lease)
        return due

    def next_deadline(self) -> int | None:
        """Return the earliest moment at which a lease may end on its own."""
        heap = self._deadlines
        while heap and (heap[0][1] not in self.by_id or not self.by_id[heap[0][1]].live):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def notify(self, lease: Lease, reason: str, **extra: Any) -> None:
        """Queue a push telling ``lease``'s holder that the lease ended for ``reason``."""
        if lease.token is not None:
            message = {"push": "lease-ended", "lease": lease.id, "key": lease.key, "endpoint": lease.endpoint, "reason": reason}
            message.update(extra)
            self.notices.append((lease.token, message))
