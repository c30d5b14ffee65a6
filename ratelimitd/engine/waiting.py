"""Requests that wait: the ``Waiter`` record and the order in which waiters are served.

Waiters are served in one order: priority (higher first), then arrival. A
waiter *holds the line* of each bucket that refuses it: nobody after it may
take from that bucket until it is served. A bucket that would grant it, while
it waits on another one, stays open to others (backfilling): PolyNode's light
calls go on using the standard bucket while a heavy call waits for the heavy
bucket. As soon as the standard bucket would refuse the heavy call, the heavy
call holds that line too, so it is delayed by at most one turn and never
starved; and a large request is never overtaken by small ones on a bucket
that refuses it (nor a small one held forever: the line ahead is finite).

This module keeps the record; ``Engine.service`` decides who is granted when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ratelimitd_client.amounts import Amount

if TYPE_CHECKING:
    from ..tiers.model import Route
    from .bucket import Bucket

__all__ = ["Waiter"]


class Waiter:
    """One queued acquire. ``token`` is the server's handle for answering it; the engine never looks inside.

    ``live`` turns False when the waiter is granted, times out or is cancelled
    (its connection closed); dead waiters are dropped lazily from the queues.
    """

    __slots__ = ("key", "endpoint", "route", "buckets", "cost", "deadline", "priority", "seq", "token", "live", "strict", "extras")

    def __init__(
        self,
        key: str,
        endpoint: str,
        route: "Route",
        buckets: "tuple[Bucket, ...]",
        cost: Amount,
        deadline: int,
        priority: int,
        seq: int,
        token: Any,
    ) -> None:
        self.key = key
        self.endpoint = endpoint
        self.route = route
        self.buckets = buckets
        self.cost = cost
        self.deadline = deadline
        self.priority = priority
        self.seq = seq
        self.token = token
        self.live = True
        self.strict = False
        self.extras: Any = None  # the LeaseRequest of an acquire that gets a lease

    def __lt__(self, other: "Waiter") -> bool:
        return (-self.priority, self.seq) < (-other.priority, other.seq)

    def __repr__(self) -> str:
        return f"<Waiter #{self.seq} {self.key}/{self.endpoint} cost={self.cost} priority={self.priority}>"
