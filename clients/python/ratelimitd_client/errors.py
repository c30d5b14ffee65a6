"""The client's exception tree: one base, and one class per way a call can fail.

Being denied is not an error: ``acquire`` returns a ``Permit`` with
``granted == False``. Only ``permit()``, whose caller asked to be stopped when
there is no permit, raises ``RateLimited``. Every error reply of the daemon
becomes the ``RequestFailed`` subclass of its code (``ERRORS`` maps code to
class), so callers catch ``UnknownKey`` rather than compare strings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .protocol import ERROR_CODES

if TYPE_CHECKING:
    from .permit import Permit

__all__ = [
    "RatelimitdError",
    "DaemonUnavailable",
    "ProtocolError",
    "RateLimited",
    "RequestFailed",
    "BadRequest",
    "FrameTooLarge",
    "UnknownOp",
    "UnknownKey",
    "UnknownEndpoint",
    "NotAvailable",
    "CostTooLarge",
    "InvalidTable",
    "UnknownLease",
    "Forbidden",
    "ShuttingDown",
    "InternalError",
    "ERRORS",
    "ResourceLimit",
    "error_from_reply",
]

START_HINT = (
    "start the daemon (`ratelimitd`, or `systemctl start ratelimitd`) "
    "or set RATELIMITD_SOCKET to the socket it listens on"
)


class RatelimitdError(Exception):
    """Base of every error this package raises."""


class DaemonUnavailable(RatelimitdError):
    """The daemon cannot be reached, went away twice during one call, or did not answer in time.

    ``path`` is the socket tried and ``origin`` how that path was chosen
    (``"explicit"``, ``"$RATELIMITD_SOCKET"``, ``"$XDG_RUNTIME_DIR"``, ``"default"``).
    """

    def __init__(self, path: str, reason: str, origin: str = "explicit", *, hint: bool = True) -> None:
        self.path = path
        self.reason = reason
        self.origin = origin
        where = path if origin == "explicit" else f"{path} (from {origin})"
        message = f"cannot reach ratelimitd at {where}: {reason}"
        super().__init__(f"{message}; {START_HINT}" if hint else message)

    @classmethod
    def from_os_error(cls, path: str, origin: str, exc: OSError) -> DaemonUnavailable:
        """Return the error for a failed connect to ``path``, saying what the errno means here."""
        if isinstance(exc, FileNotFoundError):
            return cls(path, "no socket there (the daemon is not running, or listens elsewhere)", origin)
        if isinstance(exc, ConnectionRefusedError):
            return cls(path, "connection refused (the socket file is left from a daemon that is not running)", origin)
        if isinstance(exc, PermissionError):
            return cls(path, "permission denied (the socket is mode 0660: run as its owner or join its group)", origin, hint=False)
        if isinstance(exc, TimeoutError):
            return cls(path, "the daemon did not accept the connection in time", origin, hint=False)
        return cls(path, exc.strerror or str(exc), origin)


class ProtocolError(RatelimitdError):
    """The daemon sent something this client cannot read: not a frame, not a map, no id, a bad field."""


class RequestFailed(RatelimitdError):
    """The daemon refused a request with an error reply; ``code`` is the wire code, ``message`` its text."""

    code = "internal"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} [{code}]")
        self.code = code
        self.message = message


class BadRequest(RequestFailed):
    code = "bad-request"


class FrameTooLarge(RequestFailed):
    """The daemon refused a frame over its maximum and closed the connection."""

    code = "frame-too-large"


class UnknownOp(RequestFailed):
    code = "unknown-op"


class UnknownKey(RequestFailed):
    code = "unknown-key"


class UnknownEndpoint(RequestFailed):
    code = "unknown-endpoint"


class NotAvailable(RequestFailed):
    """The endpoint needs a bucket the key's tier does not offer (a provider's 402, not a 429)."""

    code = "not-available"


class CostTooLarge(RequestFailed):
    """The cost exceeds what the bucket can ever grant in one request; waiting would not help."""

    code = "cost-too-large"


class InvalidTable(RequestFailed):
    """A reload was refused; the daemon keeps the table it had."""

    code = "invalid-table"


class UnknownLease(RequestFailed):
    code = "unknown-lease"


class Forbidden(RequestFailed):
    code = "forbidden"


class ShuttingDown(RequestFailed):
    code = "shutting-down"


class ResourceLimit(RequestFailed):
    """This client reached one of the daemon's per-client limits (connections, waiters, unread replies)."""

    code = "resource-limit"


class InternalError(RequestFailed):
    """The daemon failed while handling the request; it carries on."""

    code = "internal"


# wire error code -> the class raised for it; a code not here raises RequestFailed itself
ERRORS: dict[str, type[RequestFailed]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        FrameTooLarge,
        UnknownOp,
        UnknownKey,
        UnknownEndpoint,
        NotAvailable,
        CostTooLarge,
        InvalidTable,
        UnknownLease,
        Forbidden,
        ShuttingDown,
        ResourceLimit,
        InternalError,
    )
}
assert ERRORS.keys() == ERROR_CODES.keys(), "one class per wire error code"


class RateLimited(RatelimitdError):
    """``permit()`` got no permit in time; ``permit`` is the denial (``retry_after``, ``scope``)."""

    def __init__(self, permit: Permit, key: str | None = None, endpoint: str | None = None, wait: float | None = None) -> None:
        self.permit = permit
        self.key = key
        self.endpoint = endpoint
        self.wait = wait
        what = f"key {key!r} endpoint {endpoint!r}" if key is not None else "request"
        waited = f" after waiting {wait:g} s" if wait else ""
        by = f" by bucket {permit.scope!r}" if permit.scope is not None else ""
        when = "when a holder releases" if permit.retry_after is None else f"after {permit.retry_after:.3f} s"
        super().__init__(f"rate limited: {what} denied{by}{waited}; retry {when}")

    @property
    def retry_after(self) -> float | None:
        """Report the seconds until every bucket of the endpoint would grant the request."""
        return self.permit.retry_after

    @property
    def scope(self) -> str | None:
        """Report the bucket that refused longest."""
        return self.permit.scope


def error_from_reply(reply: dict[str, Any]) -> RequestFailed:
    """Return the exception for an error reply: the class of its code, with the daemon's message."""
    code = reply.get("error")
    message = reply.get("message")
    if not isinstance(message, str):
        message = f"the daemon refused the request with {code!r}"
    cls = ERRORS.get(code) if isinstance(code, str) else None
    if cls is None:
        return RequestFailed(str(code), message)
    return cls(code, message)
