"""Requests and replies as maps, apart from any socket: the part the sync and async clients share.

Sans-I/O like ``wire``: request maps are built and checked here, and an
``Inbox`` turns received bytes into ``(id, reply)`` pairs, hands pushes (no
``id``) to hooks, and records a failure that ends the connection (a frame it
cannot read, or an error the daemon sent without an ``id``). The clients only
move bytes and wait.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from . import wire
from .amounts import to_amount
from .errors import ProtocolError, RatelimitdError, error_from_reply

__all__ = [
    "CLIENT_MAX_FRAME",
    "DEFAULT_TIMEOUT",
    "RECV_SIZE",
    "PushHook",
    "Inbox",
    "acquire_message",
    "scopes_field",
    "request_message",
    "hello_message",
    "result",
]

log = logging.getLogger("ratelimitd_client")

# `show` and `status` of a daemon with many keys can be far larger than any
# request; 16 MiB is generous for that and still bounds what a broken daemon
# can make a client buffer.
CLIENT_MAX_FRAME = 16 * 1024 * 1024

# Seconds to wait for a reply beyond the request's own `wait`. The daemon
# answers in microseconds; this only fires when it is stuck or stopped.
DEFAULT_TIMEOUT = 10.0

# One recv takes every reply a pipelining client can have in flight.
RECV_SIZE = 65536

PushHook = Callable[[dict[str, Any]], object]


def _seconds(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise TypeError(f"{what} must be a number of seconds, not {type(value).__name__} {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what} must be a finite, non-negative number of seconds, got {value!r}")
    return number


def acquire_message(
    key: str,
    endpoint: str,
    cost: object = None,
    wait: object = None,
    priority: int = 0,
    scopes: object = None,
    reserve: object = None,
) -> dict[str, Any]:
    """Return the acquire request map (its ``id`` still 0), with ``cost`` made exact.

    ``cost`` None leaves the endpoint's default cost to the daemon; int, Decimal,
    float (through its shortest repr, ``0.1`` → ``Decimal("0.1")``) and numeric
    strings are sent exactly. ``wait`` None or 0 is left out (answer at once);
    otherwise it is sent as float seconds. ``priority`` 0 is left out.
    ``scopes`` (scope name -> value, e.g. ``{"wallet": "W1"}``) and ``reserve``
    (seconds within which the reservation is settled) are sent when not None.
    Raises ``ValueError``/``TypeError`` naming the field for a bad value.
    """
    message: dict[str, Any] = {"op": "acquire", "id": 0, "key": key, "endpoint": endpoint}
    if cost is not None:
        message["cost"] = cost if type(cost) is int and cost >= 0 else to_amount(cost, "cost")
    if wait:
        message["wait"] = _seconds(wait, "wait")
    if priority:
        if type(priority) is not int:
            raise TypeError(f"priority must be an integer, not {type(priority).__name__} {priority!r}")
        message["priority"] = priority
    if scopes is not None:
        message["scopes"] = scopes_field(scopes)
    if reserve is not None:
        seconds = _seconds(reserve, "reserve")
        if not seconds:
            raise ValueError("reserve must be a positive number of seconds (the time within which to settle)")
        message["reserve"] = seconds
    return message


def scopes_field(scopes: object) -> dict[str, str]:
    """Return ``scopes`` as the wire's map of scope name to value; raise ``TypeError`` unless both are strings."""
    if not isinstance(scopes, dict) or not all(type(k) is str and type(v) is str and k and v for k, v in scopes.items()):
        raise TypeError(f"scopes must map scope names to non-empty string values, e.g. {{'wallet': 'W1'}}, not {scopes!r:.80}")
    return dict(scopes)


def request_message(op: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Return the request map for ``op`` (its ``id`` still 0) with the fields that are not None."""
    if type(op) is not str or not op:
        raise TypeError(f"op must be a non-empty string, not {op!r}")
    message: dict[str, Any] = {"op": op, "id": 0}
    for name, value in fields.items():
        if value is not None:
            if name in ("op", "id"):
                raise TypeError(f"{name!r} is set by the client and cannot be passed as a field")
            message[name] = value
    return message


def hello_message(name: str | None, key: str | None = None) -> dict[str, Any]:
    """Return a hello request map (its ``id`` still 0) introducing the client as ``name``."""
    message: dict[str, Any] = {"op": "hello", "id": 0}
    if key is not None:
        message["key"] = key
    if name is not None:
        message["client"] = name
    return message


def result(reply: dict[str, Any]) -> dict[str, Any]:
    """Return ``reply`` without its ``id``, or raise the ``RequestFailed`` subclass of its error code."""
    if "error" in reply:
        raise error_from_reply(reply)
    reply.pop("id", None)
    return reply


class Inbox:
    """Sorts what the daemon sends on one connection: replies by id, pushes to hooks.

    ``receive(data)`` returns the ``(id, reply)`` pairs that ``data`` completes,
    in order. A push is passed to every hook (a hook that raises is logged and
    skipped, so it cannot lose a reply); ``pushes`` counts them. When the
    connection can no longer be trusted, ``failure`` is set to the exception
    that explains why and the messages after it are dropped: the caller closes
    the connection and fails the requests still waiting.
    """

    __slots__ = ("decoder", "hooks", "failure", "pushes")

    def __init__(self, hooks: list[PushHook]) -> None:
        self.decoder = wire.FrameDecoder(CLIENT_MAX_FRAME)
        self.hooks = hooks
        self.failure: RatelimitdError | None = None
        self.pushes = 0

    def receive(self, data: bytes) -> list[tuple[Any, dict[str, Any]]]:
        """Add ``data`` from the socket and return the replies it completes as ``(id, reply)``."""
        if self.failure is not None:
            return []
        try:
            messages = self.decoder.receive(data)
        except wire.FrameTooLarge as exc:
            self.failure = ProtocolError(f"the daemon sent a frame of {exc.length} bytes, over this client's maximum of {exc.maximum}")
            return []
        replies = []
        for message in messages:
            if type(message) is dict:
                rid = message.get("id")
                if rid is not None:
                    replies.append((rid, message))
                    continue
                if "push" in message:
                    self._push(message)
                    continue
                if "error" in message:
                    # an error the daemon could not tie to a request: it concerns the connection
                    self.failure = error_from_reply(message)
                    break
                self.failure = ProtocolError(f"the daemon sent a message with neither 'id' nor 'push': {message!r:.200}")
            elif isinstance(message, wire.BadFrame):
                self.failure = ProtocolError(f"the daemon sent a frame this client cannot decode: {message.reason}")
            else:
                self.failure = ProtocolError(f"the daemon sent {type(message).__name__} {message!r:.100} where a map was expected")
            break
        return replies

    def _push(self, message: dict[str, Any]) -> None:
        self.pushes += 1
        for hook in self.hooks:
            try:
                hook(message)
            except Exception:
                log.exception("push hook %r failed on %r", hook, message)
