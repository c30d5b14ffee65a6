"""The daemon's exception tree: one base, and one class per wire error code.

Being rate limited is not here: a denial is a ``Decision`` value. These are for
requests the daemon cannot act on and for faults; each carries the wire code
that ``docs/protocol.md`` lists, and a message with the values involved.
"""

from __future__ import annotations

__all__ = [
    "RatelimitdError",
    "RequestError",
    "BadRequest",
    "UnknownOp",
    "UnknownKey",
    "UnknownEndpoint",
    "NotAvailable",
    "CostTooLarge",
    "UnknownLease",
    "Forbidden",
    "ShuttingDown",
    "ResourceLimit",
    "ConfigError",
]


class RatelimitdError(Exception):
    """Base of every error the daemon raises on purpose."""

    code = "internal"


class RequestError(RatelimitdError):
    """A request the daemon refuses; the reply carries ``code`` and the message."""

    code = "bad-request"


class BadRequest(RequestError):
    code = "bad-request"


class UnknownOp(RequestError):
    code = "unknown-op"


class UnknownKey(RequestError):
    code = "unknown-key"


class UnknownEndpoint(RequestError):
    code = "unknown-endpoint"


class NotAvailable(RequestError):
    """The endpoint uses a bucket the key's tier does not define (PolyNode Free -> 402)."""

    code = "not-available"


class CostTooLarge(RequestError):
    code = "cost-too-large"


class UnknownLease(RequestError):
    code = "unknown-lease"


class Forbidden(RequestError):
    code = "forbidden"


class ShuttingDown(RequestError):
    code = "shutting-down"


class ResourceLimit(RequestError):
    """A per-client limit (connections, waiters, unread replies); it costs only that client."""

    code = "resource-limit"


class ConfigError(RatelimitdError):
    """A tier table that cannot be used. ``where`` is ``FILE: toml.path``."""

    code = "invalid-table"

    def __init__(self, message: str, *, file: str | None = None, path: str | None = None) -> None:
        self.file = file
        self.path = path
        self.detail = message
        where = ": ".join(part for part in (file, path) if part)
        super().__init__(f"{where}: {message}" if where else message)
