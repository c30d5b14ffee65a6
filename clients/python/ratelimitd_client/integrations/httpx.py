"""httpx transports that take a permit from ratelimitd before each routed request and report the answer.

Wrap the transport an ``httpx.Client`` would use::

    transport = RateLimitedTransport(httpx.HTTPTransport(retries=1), key="markets")
    with httpx.Client(base_url="https://api.polynode.dev", transport=transport) as http:
        http.get("/v3/trades")          # the "heavy" endpoint, by the key's routes

``AsyncRateLimitedTransport`` does the same for ``httpx.AsyncClient`` under
asyncio and Trio. A transport composes with everything else of httpx (base
URLs, auth, event hooks, redirects: every hop is a request of its own, and is
metered), and one client may mount several (``mounts=``) for several keys.
The options are ``make_policy``'s (``wait``, ``fail_open``, ``retries``…).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from ..backends import current_backend
from ..feedback import MAX_BODY
from .flow import send_async, send_sync
from .gate import AsyncGate, Gate
from .policy import make_policy

__all__ = ["RateLimitedTransport", "AsyncRateLimitedTransport"]

_NETWORK_ERRORS = (httpx.TransportError,)


def _replayable(request: httpx.Request) -> bool:
    # bytes, JSON and form bodies are a ByteStream, sent again as they are; a generator is not
    return isinstance(request.stream, httpx.ByteStream)


def _small(response: httpx.Response) -> bool:
    length = response.headers.get("content-length")
    return length is None or not length.isdigit() or int(length) <= MAX_BODY


class _Exchange:
    __slots__ = ("inner", "request", "method", "replayable")
    network_errors = _NETWORK_ERRORS

    def __init__(self, inner: httpx.BaseTransport, request: httpx.Request) -> None:
        self.inner = inner
        self.request = request
        self.method = request.method
        self.replayable = _replayable(request)

    def send(self) -> httpx.Response:
        return self.inner.handle_request(self.request)

    def status(self, response: httpx.Response) -> int:
        return response.status_code

    def headers(self, response: httpx.Response) -> Mapping[str, Any]:
        return response.headers

    def body(self, response: httpx.Response) -> bytes | None:
        return response.read() if _small(response) else None

    def discard(self, response: httpx.Response) -> None:
        response.close()


class _AsyncExchange:
    __slots__ = ("inner", "request", "method", "replayable")
    network_errors = _NETWORK_ERRORS

    def __init__(self, inner: httpx.AsyncBaseTransport, request: httpx.Request) -> None:
        self.inner = inner
        self.request = request
        self.method = request.method
        self.replayable = _replayable(request)

    async def send(self) -> httpx.Response:
        return await self.inner.handle_async_request(self.request)

    def status(self, response: httpx.Response) -> int:
        return response.status_code

    def headers(self, response: httpx.Response) -> Mapping[str, Any]:
        return response.headers

    async def body(self, response: httpx.Response) -> bytes | None:
        return await response.aread() if _small(response) else None

    async def discard(self, response: httpx.Response) -> None:
        await response.aclose()


async def _sleep(seconds: float) -> None:
    """Sleep under whichever of asyncio and Trio runs the task."""
    if current_backend().name == "trio":
        import trio

        await trio.sleep(seconds)
    else:
        await asyncio.sleep(seconds)


class RateLimitedTransport(httpx.BaseTransport):
    """A sync httpx transport: routed requests wait for a permit of ``key`` and report what came back.

    ``inner`` is the transport that sends (default ``httpx.HTTPTransport()``).
    ``client`` is a ``ratelimitd_client.Client`` to use from every thread; by
    default each thread gets its own on ``socket`` (default discovery).
    ``sleep`` and ``rng`` are the backoff's clock and dice, for tests. The
    other options are ``make_policy``'s. Requests that match no route (and no
    ``endpoint=``) go to ``inner`` untouched.
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        *,
        key: str,
        client: Any = None,
        socket: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        **options: Any,
    ) -> None:
        self.inner = inner if inner is not None else httpx.HTTPTransport()
        self.gate = Gate(make_policy(key, **options), client, socket)
        self._sleep = sleep
        self._rng = rng

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``: through the permit, report and retry steps when it is routed, else as it is."""
        target = self.gate.target(request.method, str(request.url))
        if target is None:
            return self.inner.handle_request(request)
        return send_sync(self.gate, target, _Exchange(self.inner, request), self._sleep, self._rng)

    def close(self) -> None:
        """Close the inner transport and the ratelimitd clients this transport opened."""
        self.gate.close()
        self.inner.close()


class AsyncRateLimitedTransport(httpx.AsyncBaseTransport):
    """An async httpx transport (asyncio and Trio); as ``RateLimitedTransport``.

    ``client`` is a ``ratelimitd_client.AsyncClient`` (default: one of its own
    on ``socket``, shared by every task of this transport); ``sleep`` is an
    async function of seconds, for tests.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        key: str,
        client: Any = None,
        socket: Any = None,
        sleep: Callable[[float], Any] = _sleep,
        rng: random.Random | None = None,
        **options: Any,
    ) -> None:
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport()
        self.gate = AsyncGate(make_policy(key, **options), client, socket)
        self._sleep = sleep
        self._rng = rng

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``: through the permit, report and retry steps when it is routed, else as it is."""
        target = await self.gate.target(request.method, str(request.url))
        if target is None:
            return await self.inner.handle_async_request(request)
        return await send_async(self.gate, target, _AsyncExchange(self.inner, request), self._sleep, self._rng)

    async def aclose(self) -> None:
        """Close the inner transport and the ratelimitd client this transport opened."""
        await self.gate.close()
        await self.inner.aclose()
