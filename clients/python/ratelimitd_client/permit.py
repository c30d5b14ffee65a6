"""The answer to an acquire, as a value: granted or not, and how long to wait if not.

Being denied is a ``Permit`` with ``granted == False`` (and ``bool(permit)`` is
false), never an exception: the caller decides whether to wait, skip or fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .amounts import Amount
from .errors import ProtocolError

__all__ = ["Permit"]


@dataclass(frozen=True, slots=True)
class Permit:
    """What the daemon answered to one ``acquire``.

    - ``granted``: every bucket of the endpoint was charged the cost (all or nothing).
    - ``retry_after``: seconds from the reply until every bucket would grant this
      cost; ``0.0`` when granted; ``None`` when no time can be known (a full
      concurrency or capacity bucket frees only when a holder releases).
    - ``remaining``, ``reset``: for the ``scope`` bucket, what could still be
      charged and the seconds until that grows. ``None`` when the daemon did not say.
    - ``scope``: when denied, the bucket that refuses longest; when granted, the
      one with the least remaining.
    - ``buckets``: every bucket of the endpoint, ``name -> (remaining, reset)``.
    - ``lease``: the lease id when the grant holds something (a concurrency slot, a
      count, a reservation), else ``None``; ``permit()`` releases it on exit.
    - ``lease_state``: the ``Lease`` of that id as this client tracks it (``.ended``,
      ``.end_reason``: whether and why the daemon took it away), else ``None``.
    """

    granted: bool
    retry_after: float | None = 0.0
    remaining: Amount | None = None
    scope: str | None = None
    reset: float | None = None
    buckets: Mapping[str, tuple[Amount, float]] = field(default_factory=dict, hash=False)
    lease: Any = None
    lease_state: Any = field(default=None, compare=False, repr=False)

    def __bool__(self) -> bool:
        return self.granted

    @classmethod
    def from_reply(cls, reply: dict[str, Any], lease_state: Any = None) -> Permit:
        """Return the Permit an acquire reply describes; raise ``ProtocolError`` when it is not one.

        ``lease_state`` is the client's ``Lease`` for the reply's lease, if any.
        """
        try:
            granted = reply["granted"]
            if type(granted) is not bool:
                raise TypeError(f"'granted' is {granted!r}, not a boolean")
            reset = reply.get("reset")
            retry_after = reply.get("retry_after", 0)
            raw = reply.get("buckets")
            buckets = {name: (left, float(until)) for name, (left, until) in raw.items()} if raw else {}
            return cls(
                granted,
                None if retry_after is None else float(retry_after),
                reply.get("remaining"),
                reply.get("scope"),
                None if reset is None else float(reset),
                buckets,
                reply.get("lease"),
                lease_state,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProtocolError(f"the daemon's acquire reply is not a permit ({exc!r}): {reply!r:.300}") from exc
