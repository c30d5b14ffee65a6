"""Names the protocol fixes: its version, the ops, the error codes, the push kinds.

Both sides import these, so a code is spelled once. The meaning of each is in
``docs/protocol.md``.
"""

from __future__ import annotations

__all__ = ["PROTOCOL_VERSION", "OPS", "ERROR_CODES", "PUSHES", "LEASE_END_REASONS", "EXIT_DENIED"]

PROTOCOL_VERSION = 1

OPS = (
    "hello",
    "acquire",
    "release",
    "renew",
    "settle",
    "leases",
    "report",
    "routes",
    "status",
    "keys",
    "show",
    "reload",
    "reset",
)

# error code -> one line on what it means (the wire carries the code and a message with the values)
ERROR_CODES = {
    "bad-request": "the request is not a map, or a field is missing, of the wrong type or out of range",
    "frame-too-large": "the frame's length prefix is over the daemon's maximum; the connection is closed",
    "unknown-op": "the daemon does not know this op",
    "unknown-key": "no key of this name is in the tier table",
    "unknown-endpoint": "the key's provider has no endpoint of this name",
    "not-available": "the endpoint needs a bucket the key's tier does not offer (a provider's 402)",
    "cost-too-large": "the cost exceeds what the bucket can ever grant in one request",
    "invalid-table": "the tier table was refused; the daemon keeps the one it had",
    "unknown-lease": "no lease of this id is held",
    "forbidden": "this peer may not perform this operation",
    "shutting-down": "the daemon is stopping and cancelled the request",
    "resource-limit": "a per-client limit of the daemon was reached (connections, waiters, unread replies)",
    "internal": "the daemon failed while handling the request; it carries on",
}

# push kind -> what it tells (a push is a message without ``id``; clients ignore kinds they do not know)
PUSHES = {
    "lease-ended": "a lease ended other than by its holder's release; 'reason' says why",
}

# the 'reason' of a lease-ended push: why the daemon ended a lease its holder did not release
LEASE_END_REASONS = (
    "evicted",  # a newer lease took the slot (when_full = "evict-oldest"); 'bucket' names the bucket
    "ttl",  # the bucket's ttl ran out
    "idle",  # the bucket's idle timeout ran out without a renew
    "time-quota",  # the lease-time quota it counts against (e.g. 1 hour a day) is used up
    "orphaned",  # restored after a restart, its holder did not reattach (renew) within the grace
    "parent-ended",  # the lease it was taken inside (scopes={"lease": ID}) ended
    "reservation-expired",  # a reservation not settled within its time: charged in full
)

# ratelimitctl's exit status when a permit is denied or a wait timed out (EX_TEMPFAIL)
EXIT_DENIED = 75
