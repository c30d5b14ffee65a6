"""Requests that wait: the ``Waiter`` record and the order in which waiters are served.

Each waiter joins the queue of every bucket its endpoint needs. Queues are
ordered by priority (higher first) and then by arrival, and a waiter is served
only when it is at the head of all its queues and all its buckets allow it.
The waiter that comes first in that global order is at the head of every queue
it is in, so someone can always make progress; and since nobody overtakes a
waiter at the head, a large request is never starved by a stream of small ones
(nor a small one forever by anything but the finite line ahead of it).

This module keeps the order; ``Engine.service`` decides who is granted when.
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

    __slots__ = ("key", "endpoint", "route", "buckets", "cost", "deadline", "priority", "seq", "token", "live")

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

    def at_head(self) -> bool:
        """Report whether this waiter is first in the queue of every bucket it needs."""
        return all(bucket.head() is self for bucket in self.buckets)

    def __lt__(self, other: "Waiter") -> bool:
        return (-self.priority, self.seq) < (-other.priority, other.seq)

    def __repr__(self) -> str:
        return f"<Waiter #{self.seq} {self.key}/{self.endpoint} cost={self.cost} priority={self.priority}>"
