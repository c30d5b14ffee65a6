"""What the engine answers: a ``Decision`` value, granted or not, never an exception.

Times are integer nanoseconds relative to the ``now`` of the request; the
server turns them into seconds for the wire.
"""

from __future__ import annotations

from typing import Any

from ratelimitd_client.amounts import Amount

__all__ = ["Decision", "BucketReport"]

# (bucket name, remaining or None when unlimited, ns until remaining next grows)
BucketReport = tuple[str, "Amount | None", int]


class Decision:
    """The outcome of one acquire.

    ``granted``: every bucket was charged (all or nothing). ``retry_after``: ns until
    every bucket would grant the same cost (0 when granted). ``scope``: when denied,
    the bucket that refuses longest; when granted, the bucket with least remaining.
    ``remaining``/``reset``: that bucket's remaining amount and ns until it grows.
    ``buckets``: a ``BucketReport`` per bucket of the endpoint. ``reason`` says why a
    denial happened: ``"limit"``, ``"queue"`` (waiters are ahead), ``"hold"`` (the
    provider asked us to back off) or ``"timeout"`` (a wait ran out). ``strict``
    marks a grant that must be on disk before it is answered.
    """

    __slots__ = ("granted", "retry_after", "scope", "remaining", "reset", "buckets", "reason", "extra", "strict")

    def __init__(
        self,
        granted: bool,
        retry_after: int,
        scope: str,
        remaining: Amount | None,
        reset: int,
        buckets: tuple[BucketReport, ...],
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.granted = granted
        self.retry_after = retry_after
        self.scope = scope
        self.remaining = remaining
        self.reset = reset
        self.buckets = buckets
        self.reason = reason
        self.extra = extra
        self.strict = False  # granted on a strict bucket: answer only once it is on disk

    def __repr__(self) -> str:
        state = "granted" if self.granted else f"denied({self.reason}, retry_after={self.retry_after}ns)"
        return f"<Decision {state} scope={self.scope!r} remaining={self.remaining} reset={self.reset}ns>"
