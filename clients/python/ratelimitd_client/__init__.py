"""ratelimitd_client: ask the local ratelimitd for a permit before each call to a rate-limited API.

``Client`` is the blocking client, ``AsyncClient`` the one for asyncio and Trio
(imported on first use, so that the blocking client does not pay for asyncio's
import). ``acquire`` returns a ``Permit`` (denied is a value); ``permit()`` is
the context manager that raises ``RateLimited`` when there is no permit in time.
A grant that holds something (a concurrency slot) carries a ``Lease``, which
reports when the daemon takes it away.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .client import Client
from .discovery import default_socket_path, resolve_socket
from .errors import (
    ERRORS,
    BadRequest,
    CostTooLarge,
    DaemonUnavailable,
    Forbidden,
    FrameTooLarge,
    InternalError,
    ResourceLimit,
    InvalidTable,
    NotAvailable,
    ProtocolError,
    RateLimited,
    RatelimitdError,
    RequestFailed,
    ShuttingDown,
    UnknownEndpoint,
    UnknownKey,
    UnknownLease,
    UnknownOp,
)
from .leases import Lease
from .permit import Permit
from .protocol import EXIT_DENIED, PROTOCOL_VERSION

if TYPE_CHECKING:
    from .aio import AsyncClient

__version__ = "0.1.0"

__all__ = [
    "Client",
    "AsyncClient",
    "Permit",
    "Lease",
    "default_socket_path",
    "resolve_socket",
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
    "ResourceLimit",
    "ERRORS",
    "EXIT_DENIED",
    "PROTOCOL_VERSION",
]


def __getattr__(name: str) -> Any:
    if name == "AsyncClient":
        from .aio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
