"""Drop-in HTTP integrations: httpx transports and a requests adapter that ask ratelimitd before each call.

Before a request, its URL is matched against the key's routes (from the tier
table, through the ``routes`` op; first match wins); a routed request waits for
a permit of its endpoint, is sent, and what the provider answered (429s,
``Retry-After``, ``X-RateLimit-*``, the providers' JSON refusals) is reported so
that every process on the machine holds back. Requests matching no route pass
untouched. Guide: docs/integrations.md.

httpx and requests are optional: ``pip install 'ratelimitd-client[httpx]'`` or
``[requests]``; each integration is imported on first use of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .policy import BACKOFF_BASE, BACKOFF_CAP, DEFAULT_WAIT, IDEMPOTENT, RETRY_STATUSES, Policy, Target, make_policy

if TYPE_CHECKING:
    from .httpx import AsyncRateLimitedTransport, RateLimitedTransport
    from .requests import RateLimitedAdapter, RateLimitedSession

__all__ = [
    "RateLimitedTransport",
    "AsyncRateLimitedTransport",
    "RateLimitedAdapter",
    "RateLimitedSession",
    "Policy",
    "Target",
    "make_policy",
    "IDEMPOTENT",
    "RETRY_STATUSES",
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "DEFAULT_WAIT",
]

_LAZY = {
    "RateLimitedTransport": "httpx",
    "AsyncRateLimitedTransport": "httpx",
    "RateLimitedAdapter": "requests",
    "RateLimitedSession": "requests",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
