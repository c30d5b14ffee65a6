"""One routed request from permit to report, with the opt-in retries: written once per kind of I/O.

``send_sync`` (httpx's sync transport, requests' adapter) and ``send_async``
(httpx's async transport) run the same steps, and the HTTP library is reached
only through an ``Exchange``: how to send, what a response's status, headers
and (small) body are, and how to drop a response that is retried.

The steps: acquire a permit for the target (waiting up to the policy's
``wait``; not granted raises ``RateLimited``), send, parse what the provider
said (``feedback.parse_response``) and report it, then, if the policy allows a
retry, wait as ``Policy.retry_delay`` says and go round again. A retry whose
permit does not come in time ends the loop with the last response (or the
last network error) rather than an exception of ours: the caller sees what
the provider said.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from ..errors import RateLimited
from ..feedback import Feedback, parse_response
from .gate import AsyncGate, Gate
from .policy import BODY_STATUSES, Target

__all__ = ["Exchange", "AsyncExchange", "send_sync", "send_async"]

R = TypeVar("R")


class Exchange(Protocol[R]):
    """What the flow needs of one request in a blocking HTTP library."""

    method: str
    replayable: bool
    network_errors: tuple[type[BaseException], ...]

    def send(self) -> R: ...

    def status(self, response: R) -> int: ...

    def headers(self, response: R) -> Mapping[str, Any]: ...

    def body(self, response: R) -> bytes | None: ...

    def discard(self, response: R) -> None: ...


class AsyncExchange(Protocol[R]):
    """``Exchange`` for an async HTTP library: ``send``, ``body`` and ``discard`` are coroutines."""

    method: str
    replayable: bool
    network_errors: tuple[type[BaseException], ...]

    async def send(self) -> R: ...

    def status(self, response: R) -> int: ...

    def headers(self, response: R) -> Mapping[str, Any]: ...

    async def body(self, response: R) -> bytes | None: ...

    async def discard(self, response: R) -> None: ...


class _Attempts(Generic[R]):
    """The state of one request across attempts: how many were made, and the last outcome."""

    __slots__ = ("count", "response", "error")

    def __init__(self) -> None:
        self.count = 0
        self.response: R | None = None
        self.error: BaseException | None = None

    def refused(self, gate: Gate | AsyncGate, target: Target, permit: Any) -> R:
        """Return the last response, or raise the last error or ``RateLimited``: no permit came in time."""
        if self.response is not None:
            return self.response
        if self.error is not None:
            raise self.error
        raise RateLimited(permit, gate.policy.key, target.endpoint, gate.policy.wait)


def _feedback(gate: Gate | AsyncGate, status: int, headers: Mapping[str, Any], body: bytes | None) -> Feedback:
    return parse_response(status, headers, body, gate.provider(), now=time.time(), scopes=gate.policy.scopes)


def send_sync(
    gate: Gate,
    target: Target,
    exchange: Exchange[R],
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> R:
    """Send ``exchange``'s request under ``gate``'s policy and return the response to give the caller."""
    policy = gate.policy
    tries: _Attempts[R] = _Attempts()
    while True:
        permit = gate.acquire(target)
        granted_at = time.time()
        if permit is not None and not permit.granted:
            return tries.refused(gate, target, permit)
        if tries.response is not None:
            exchange.discard(tries.response)
            tries.response = None
        try:
            response = exchange.send()
        except exchange.network_errors as exc:
            delay = policy.retry_delay(exchange.method, tries.count, exchange.replayable, None, False, time.time(), rng)
            if delay is None:
                raise
            tries.error = exc
        else:
            tries.error = None
            status = exchange.status(response)
            body = exchange.body(response) if status in BODY_STATUSES else None
            feedback = _feedback(gate, status, exchange.headers(response), body)
            held = gate.report(target, feedback, granted_at)
            delay = policy.retry_delay(exchange.method, tries.count, exchange.replayable, feedback, held, time.time(), rng)
            if delay is None:
                return response
            tries.response = response
        if delay:
            sleep(delay)
        tries.count += 1


async def send_async(
    gate: AsyncGate,
    target: Target,
    exchange: AsyncExchange[R],
    sleep: Callable[[float], Awaitable[Any]],
    rng: random.Random | None = None,
) -> R:
    """Send ``exchange``'s request under ``gate``'s policy and return the response. As ``send_sync``."""
    policy = gate.policy
    tries: _Attempts[R] = _Attempts()
    while True:
        permit = await gate.acquire(target)
        granted_at = time.time()
        if permit is not None and not permit.granted:
            return tries.refused(gate, target, permit)
        if tries.response is not None:
            await exchange.discard(tries.response)
            tries.response = None
        try:
            response = await exchange.send()
        except exchange.network_errors as exc:
            delay = policy.retry_delay(exchange.method, tries.count, exchange.replayable, None, False, time.time(), rng)
            if delay is None:
                raise
            tries.error = exc
        else:
            tries.error = None
            status = exchange.status(response)
            body = await exchange.body(response) if status in BODY_STATUSES else None
            feedback = _feedback(gate, status, exchange.headers(response), body)
            held = await gate.report(target, feedback, granted_at)
            delay = policy.retry_delay(exchange.method, tries.count, exchange.replayable, feedback, held, time.time(), rng)
            if delay is None:
                return response
            tries.response = response
        if delay:
            await sleep(delay)
        tries.count += 1
