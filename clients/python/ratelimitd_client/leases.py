"""Leases as a client sees them: a handle per lease it was granted, and the book that ends them.

Sans-I/O like ``messages``: the clients hand the book the ``lease-ended`` pushes
the daemon sends and the outcome of their own release, settle and renew calls;
the book keeps the leases this client holds (to renew them on a new connection
after the daemon restarted), marks each ``Lease`` ended with its reason, and
calls the ``on_lease_end`` callbacks for the leases the daemon took away.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .errors import ProtocolError
from .permit import Permit
from .protocol import LEASE_END_REASONS

__all__ = ["Lease", "LeaseBook", "LeaseEndHook", "CLIENT_END_REASONS", "lease_id", "released_ids"]

log = logging.getLogger("ratelimitd_client")

# Ends a client records itself (the daemon's reasons are protocol.LEASE_END_REASONS):
# "released" — this client released it (release(), permit() exit, close());
# "settled"  — this client settled the reservation;
# "lost"     — the connection broke and, on the next one, the daemon no longer knew the lease
#              (it released it when the connection closed, or restarted and did not keep it).
CLIENT_END_REASONS = ("released", "settled", "lost")

# Pushes for leases the book does not know yet are kept this long (in number): a push can
# arrive in the same read as the reply that grants its lease, and is handled first.
EARLY_ENDS = 64

LeaseEndHook = Callable[["Lease"], object]


class Lease:
    """One lease this client was granted, and whether it has ended.

    ``id`` is the daemon's lease id (what ``Permit.lease`` holds); ``key``,
    ``endpoint`` and ``reservation`` say what was acquired. ``end_reason`` is
    None while the lease is held, then one of the daemon's reasons
    (``"evicted"``, ``"ttl"``, ``"idle"``, ``"time-quota"``, ``"orphaned"``,
    ``"parent-ended"``, ``"reservation-expired"``) or this client's own
    (``"released"``, ``"settled"``, ``"lost"``). ``end_message`` is the daemon's
    ``lease-ended`` push when there was one (``bucket`` names the bucket that
    evicted it). ``reattached`` counts the new connections on which the lease
    was renewed after the previous one broke.

    A lease learns of its end when its client reads from the daemon: during
    any call, or ``poll()``.
    """

    __slots__ = ("id", "key", "endpoint", "reservation", "end_reason", "end_message", "reattached")

    def __init__(self, lease_id: str, key: str | None = None, endpoint: str | None = None, reservation: bool = False) -> None:
        self.id = lease_id
        self.key = key
        self.endpoint = endpoint
        self.reservation = reservation
        self.end_reason: str | None = None
        self.end_message: dict[str, Any] | None = None
        self.reattached = 0

    @property
    def ended(self) -> bool:
        """Report whether the lease has ended, by this client's hand or the daemon's."""
        return self.end_reason is not None

    @property
    def taken_away(self) -> bool:
        """Report whether the lease ended other than by this client's release or settle."""
        return self.end_reason is not None and self.end_reason not in ("released", "settled")

    def __repr__(self) -> str:
        state = "held" if self.end_reason is None else f"ended ({self.end_reason})"
        return f"<Lease {self.id} key={self.key!r} endpoint={self.endpoint!r} {state}>"


def lease_id(lease: object) -> Any:
    """Return the lease id of ``lease``: a ``Lease``, a ``Permit`` that carries one, or the id itself.

    Ids are opaque: the daemon sends text, and an integer is taken as it is.
    """
    if isinstance(lease, Lease):
        return lease.id
    if isinstance(lease, Permit):
        if lease.lease is None:
            raise ValueError(f"the permit carries no lease (granted={lease.granted}): {lease!r}")
        return lease.lease
    if (isinstance(lease, str) and lease) or (type(lease) is int):
        return lease
    raise TypeError(f"a lease is a Lease, a Permit with a lease, or a lease id string, not {type(lease).__name__} {lease!r}")


def released_ids(reply: dict[str, Any]) -> list[str]:
    """Return the lease ids a ``release`` reply lists; raise ``ProtocolError`` when it is not a list of them."""
    released = reply.get("released")
    if type(released) is not list or not all(isinstance(ident, (str, int)) for ident in released):
        raise ProtocolError(f"the daemon's release reply has no list of lease ids in 'released': {reply!r:.200}")
    return released


class LeaseBook:
    """The leases one client holds, by id; the callbacks to call when the daemon ends one.

    ``push(message)`` is the client's push hook. Callbacks are not called from
    inside it: ended leases queue in ``due`` and the client calls ``fire()`` once
    it is safe to (outside its lock), so a callback may call the client.
    """

    __slots__ = ("held", "callbacks", "due", "_early")

    def __init__(self) -> None:
        self.held: dict[str, Lease] = {}
        self.callbacks: list[LeaseEndHook] = []
        self.due: list[Lease] = []
        self._early: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def granted(self, reply: dict[str, Any], key: str, endpoint: str, reservation: bool) -> Permit:
        """Return the Permit of an acquire ``reply`` that carries a lease, the lease now held by this client."""
        lease = Lease(reply["lease"], key, endpoint, reservation)
        permit = Permit.from_reply(reply, lease)
        early = self._early.pop(lease.id, None)
        if early is not None:
            self._end(lease, early.get("reason") or "ended", early)
        elif permit.granted:
            self.held[lease.id] = lease
        return permit

    def push(self, message: dict[str, Any]) -> None:
        """Take a push: a ``lease-ended`` ends its lease (or is kept, if the lease is not known yet)."""
        if message.get("push") != "lease-ended":
            return
        ident = message.get("lease")
        if not isinstance(ident, (str, int)):
            return
        lease = self.held.pop(ident, None)
        reason = message.get("reason")
        if reason not in LEASE_END_REASONS:
            reason = str(reason) if reason else "ended"
        if lease is None:
            self._early[ident] = message
            while len(self._early) > EARLY_ENDS:
                self._early.popitem(last=False)
            return
        self._end(lease, reason, message)

    def lost(self, ident: str) -> None:
        """End the lease ``ident`` as ``"lost"``: the daemon did not know it on a new connection."""
        lease = self.held.pop(ident, None)
        if lease is not None:
            self._end(lease, "lost", None)

    def finished(self, ident: str, reason: str) -> Lease | None:
        """Mark the lease ``ident`` ended by this client (``"released"``, ``"settled"``); return it if it was held."""
        lease = self.held.pop(ident, None)
        if lease is not None and lease.end_reason is None:
            lease.end_reason = reason
        return lease

    def release_all(self) -> None:
        """Mark every lease held as released (the client closed its connection, so the daemon released them)."""
        held, self.held = self.held, {}
        for lease in held.values():
            lease.end_reason = "released"

    def forget(self) -> None:
        """Drop every lease without ending it: after ``fork()`` they belong to the parent's connection."""
        self.held = {}
        self.due.clear()

    def _end(self, lease: Lease, reason: str, message: dict[str, Any] | None) -> None:
        if lease.end_reason is not None:
            return
        lease.end_reason = reason
        lease.end_message = message
        if self.callbacks:
            self.due.append(lease)

    def fire(self) -> None:
        """Call every callback with every lease ended since the last call; a callback that raises is logged."""
        due = self.due[:]
        self.due.clear()  # in place: the clients test this very list on their hot path
        for lease in due:
            for callback in self.callbacks:
                try:
                    callback(lease)
                except Exception:
                    log.exception("on_lease_end callback %r failed for %r", callback, lease)
